"""``NCCIEdits``: CMS's NCCI procedure-to-procedure edits (hospital outpatient) by quarter, from pyoce's data.

pyoce's I/OCE archive (the same file the HCPCS store is built from, see ``_hcpcs_build.py``) holds
the NCCI PTP table the Integrated Outpatient Code Editor applies (``map_ncci``: column-1 code ->
column-2 codes, each with a modifier indicator and the span of quarters it is in force) and the
modifier table (``data_modifier``, with the modifiers NCCI accepts to bypass a pair). The store
keeps only codes and flags: no CPT text is read or written.

A pair with modifier indicator 0 may never be billed together (the column-2 code is denied); with
indicator 1 it may when an NCCI-associated modifier (59, XE, XS, XP, XU, LT/RT, 25, ...) marks a
distinct service. Medically unlikely edits (units per day) are not in pyoce 0.1.0's archive (its
I/OCE edit 15 is marked inactive), so there is no MUE table here.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import marshal
from pathlib import Path
from typing import Any, NamedTuple

from medcode._sqlite import ReadOnlyStore, atomic_build
from medcode.codesets._hcpcs_build import (
    PYOCE_INSTALL_HINT,
    ResolvedSource,
    _inflated,
    _quarter_end,
    file_sha256,
    resolve_hcpcs_source,
)
from medcode.config import Settings
from medcode.errors import CodeSetBuildError, DateOutOfRangeError

__all__ = ["NCCIEdits", "NCCIQuarter", "PTPEdit", "build_ncci_store", "ncci_store_path", "open_ncci"]

log = logging.getLogger(__name__)

NCCI_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE quarters (version INTEGER PRIMARY KEY, ioce_version TEXT NOT NULL, date_from TEXT NOT NULL,
    date_to TEXT NOT NULL);
CREATE TABLE ptp (
    code1 TEXT NOT NULL,
    code2 TEXT NOT NULL,
    lo INTEGER NOT NULL,
    hi INTEGER NOT NULL,
    modifier_allowed INTEGER NOT NULL,
    PRIMARY KEY (code1, code2, lo)
) WITHOUT ROWID;
CREATE TABLE modifiers (
    modifier TEXT NOT NULL,
    lo INTEGER NOT NULL,
    hi INTEGER NOT NULL,
    ncci INTEGER NOT NULL,
    PRIMARY KEY (modifier, lo)
) WITHOUT ROWID;
"""


class NCCIQuarter(NamedTuple):
    """One I/OCE quarter: its version number, CMS's I/OCE release id and the dates it covers."""

    version: int
    ioce_version: str
    date_from: dt.date
    date_to: dt.date


class PTPEdit(NamedTuple):
    """A procedure-to-procedure edit in force: ``column2`` is not paid with ``column1`` unless a modifier
    is allowed (``modifier_allowed``, CMS's modifier indicator 1) and used."""

    column1: str
    column2: str
    modifier_allowed: bool
    quarter: NCCIQuarter


def _read(mdb: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(quarters, PTP rows, modifier rows) from an inflated pyoce archive."""
    try:
        import lmdb
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise CodeSetBuildError("the lmdb package is not installed (pip install 'lmdb>=1.4')") from exc
    try:
        env = lmdb.open(
            str(mdb), subdir=False, readonly=True, lock=False, max_dbs=128, map_size=max(mdb.stat().st_size, 1 << 24)
        )
    except lmdb.Error as exc:
        raise CodeSetBuildError(f"cannot open the I/OCE archive {mdb}: {exc}") from None
    quarters: list[tuple[Any, ...]] = []
    pairs: list[tuple[Any, ...]] = []
    modifiers: list[tuple[Any, ...]] = []
    try:
        dbs = {}
        for name in ("version_range", "map_ncci", "data_modifier"):
            try:
                dbs[name] = env.open_db(name.encode(), create=False)
            except lmdb.Error:
                raise CodeSetBuildError(f"I/OCE archive {mdb} has no table {name}: not a pyoce archive") from None
        with env.begin() as txn:
            for key, raw in txn.cursor(db=dbs["version_range"]):
                row = marshal.loads(bytes(raw))
                quarters.append(
                    (
                        int(bytes(key)),
                        str(row["version_id"]),
                        dt.datetime.strptime(str(row["date_started"]), "%Y%m%d").date().isoformat(),
                        dt.datetime.strptime(str(row["date_ended"]), "%Y%m%d").date().isoformat(),
                    )
                )
            for key, raw in txn.cursor(db=dbs["map_ncci"]):
                code1 = bytes(key).decode("ascii")
                for code2, blob in marshal.loads(bytes(raw)):
                    edit = marshal.loads(blob)
                    pairs.append(
                        (
                            code1,
                            code2.decode("ascii"),
                            int(edit["lo_version"]),
                            int(edit["hi_version"]),
                            int(bool(edit["mod_indicator"])),
                        )
                    )
            for key, raw in txn.cursor(db=dbs["data_modifier"]):
                modifier, lo, hi = bytes(key).decode("ascii").split("|")
                row = marshal.loads(bytes(raw))
                modifiers.append((modifier, int(lo), int(hi), int(bool(row.get("ncci")))))
    except (lmdb.Error, KeyError, ValueError, TypeError, EOFError) as exc:
        raise CodeSetBuildError(f"the I/OCE archive {mdb} has an unexpected NCCI layout: {exc!r}") from None
    finally:
        env.close()
    if not quarters or not pairs:
        raise CodeSetBuildError(f"the I/OCE archive {mdb} holds no NCCI edits")
    return quarters, pairs, modifiers


def build_ncci_store(source: ResolvedSource, target: Path) -> dict[str, int]:
    """Write the NCCI store at ``target`` from a pyoce source and return its counts (about 20 s: 1.6M pairs).

    Raises ``CodeSetBuildError`` when the source is not a readable pyoce archive.
    """
    log.info("building NCCI store %s from %s", target, source.path)
    sha = file_sha256(source.path)
    with _inflated(source, target.parent, False) as mdb:
        quarters, pairs, modifiers = _read(mdb)
    quarters.sort()
    newest = quarters[-1][0]
    # the newest quarter is open-ended in I/OCE (to 2036); it is in force to its quarter's end only
    last_start = dt.date.fromisoformat(quarters[-1][2])
    quarters[-1] = (
        *quarters[-1][:3],
        min(dt.date.fromisoformat(quarters[-1][3]), _quarter_end(last_start)).isoformat(),
    )
    counts = {
        "quarters": len(quarters),
        "ptp_rows": len(pairs),
        "ptp_in_newest_quarter": sum(1 for p in pairs if p[2] <= newest <= p[3]),
        "modifiers": len({m[0] for m in modifiers}),
    }
    info = {
        "source": {"path": str(source.path), "package_version": source.package_version, "sha256": sha},
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "counts": counts,
    }
    with atomic_build(target, "NCCI store", schema_version=NCCI_SCHEMA_VERSION, error=CodeSetBuildError) as conn:
        conn.executescript(_SCHEMA)
        conn.executemany("INSERT INTO quarters VALUES (?,?,?,?)", quarters)
        conn.executemany("INSERT OR REPLACE INTO ptp VALUES (?,?,?,?,?)", pairs)
        conn.executemany("INSERT OR REPLACE INTO modifiers VALUES (?,?,?,?)", modifiers)
        conn.execute("INSERT INTO meta VALUES ('info', ?)", (json.dumps(info),))
    return counts


class NCCIEdits(ReadOnlyStore):
    """NCCI PTP edits and modifiers by date of service, read-only and thread-safe.

    Every lookup takes a date of service (default: the newest quarter) and raises
    ``DateOutOfRangeError`` for a date no loaded quarter covers. Codes are compared as given
    (upper case, no dots): pass canonical HCPCS/CPT codes.
    """

    def __init__(self, store: Path) -> None:
        super().__init__(
            store,
            what="NCCI store",
            schema_version=NCCI_SCHEMA_VERSION,
            error=CodeSetBuildError,
            fix="open_ncci rebuilds it from the installed pyoce package",
        )
        conn = self._conn()
        self.info: dict[str, Any] = json.loads(conn.execute("SELECT value FROM meta WHERE key = 'info'").fetchone()[0])
        self.quarters = [
            NCCIQuarter(v, i, dt.date.fromisoformat(a), dt.date.fromisoformat(b))
            for v, i, a, b in conn.execute("SELECT * FROM quarters ORDER BY version")
        ]

    @property
    def version(self) -> str:
        """``ncci-ioce-<I/OCE release>`` of the newest quarter plus a hash of the source."""
        return f"ncci-ioce-{self.quarters[-1].ioce_version}+{self.info['source']['sha256'][:8]}"

    def quarter_for(self, date_of_service: dt.date | None = None) -> NCCIQuarter:
        """The quarter in force on a date (the newest when None). Raises ``DateOutOfRangeError``."""
        if date_of_service is None:
            return self.quarters[-1]
        for quarter in self.quarters:
            if quarter.date_from <= date_of_service <= quarter.date_to:
                return quarter
        raise DateOutOfRangeError(
            f"no loaded NCCI quarter covers date of service {date_of_service.isoformat()}; the data covers "
            f"{self.quarters[0].date_from}..{self.quarters[-1].date_to}"
        )

    def pair(self, code_a: str, code_b: str, date_of_service: dt.date | None = None) -> PTPEdit | None:
        """The edit in force between two codes (either order), or None when they may be billed together."""
        quarter = self.quarter_for(date_of_service)
        row = (
            self._conn()
            .execute(
                "SELECT code1, code2, modifier_allowed FROM ptp WHERE ((code1 = ? AND code2 = ?) OR "
                "(code1 = ? AND code2 = ?)) AND lo <= ? AND hi >= ? ORDER BY modifier_allowed LIMIT 1",
                (code_a, code_b, code_b, code_a, quarter.version, quarter.version),
            )
            .fetchone()
        )
        return PTPEdit(row[0], row[1], bool(row[2]), quarter) if row else None

    def column2_of(self, code: str, date_of_service: dt.date | None = None, limit: int = 50) -> list[str]:
        """Column-2 codes bundled into ``code`` in the quarter in force (for reasons and traps)."""
        quarter = self.quarter_for(date_of_service)
        rows = self._conn().execute(
            "SELECT code2 FROM ptp WHERE code1 = ? AND lo <= ? AND hi >= ? ORDER BY code2 LIMIT ?",
            (code, quarter.version, quarter.version, limit),
        )
        return [r[0] for r in rows]

    def modifier(self, modifier: str, date_of_service: dt.date | None = None) -> bool | None:
        """None for a modifier the quarter does not list; else whether NCCI accepts it to bypass a pair."""
        quarter = self.quarter_for(date_of_service)
        row = (
            self._conn()
            .execute(
                "SELECT ncci FROM modifiers WHERE modifier = ? AND lo <= ? AND hi >= ?",
                (modifier.upper(), quarter.version, quarter.version),
            )
            .fetchone()
        )
        return None if row is None else bool(row[0])

    def stats(self) -> dict[str, Any]:
        """Counts and provenance."""
        newest = self.quarters[-1]
        return {
            "system": "NCCI PTP (hospital outpatient, from CMS I/OCE)",
            "version": self.version,
            "newest_quarter": {"ioce_version": newest.ioce_version, "from": newest.date_from.isoformat()},
            "effective_from": self.quarters[0].date_from.isoformat(),
            "effective_to": newest.date_to.isoformat(),
            "mue": "not available: pyoce's I/OCE archive has no medically unlikely edits table",
            **self.info["counts"],
        }


def ncci_store_path(settings: Settings) -> Path:
    """Where the NCCI store lives: ``<data_dir>/codesets/ncci.sqlite``."""
    return settings.data_dir / "codesets" / "ncci.sqlite"


def open_ncci(settings: Settings) -> NCCIEdits:
    """Open the NCCI store, building it (about 20 s) when missing, unreadable or built from another archive.

    Raises ``ConfigError`` for a bad ``hcpcs_source`` and ``CodeSetBuildError`` when there is neither a
    store nor a pyoce source, or the build fails.
    """
    path = ncci_store_path(settings)
    source = resolve_hcpcs_source(settings.hcpcs_source)
    edits: NCCIEdits | None = None
    if path.is_file():
        try:
            edits = NCCIEdits(path)
        except CodeSetBuildError as exc:
            log.warning("rebuilding the NCCI store: %s", exc)
            edits = None
        if edits is not None and source is not None and edits.info["source"]["sha256"] != file_sha256(source.path):
            edits.close()
            edits = None
    if edits is not None:
        return edits
    if source is None:
        raise CodeSetBuildError(f"no NCCI data: {PYOCE_INSTALL_HINT}")
    build_ncci_store(source, path)
    return NCCIEdits(path)
