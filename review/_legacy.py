"""Import of the review data the release before the one review database wrote: three SQLite files.

That release kept ``<data_dir>/queue.sqlite`` (charts, codes, actions), ``<data_dir>/audit/audit.sqlite``
(the hash-chained records and their head anchor) and ``<data_dir>/copilot_jobs.sqlite`` (coding jobs).
When a review database is opened empty and any of them exist, their rows are copied into it in the
opening transaction, keeping chart ids, versions, action ids, audit ``seq``/``ts``/``payload``/
``prev_hash``/``hash`` and the head, so ``medcode audit verify`` (and ``--expect-head`` with a head hash
taken before) still verifies. After the commit the files are renamed ``*.imported`` and one log line
says what came across (counts and the head, never note text).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Table, func, select, text

from medcode.errors import StoreError
from medcode.review._store import actions, audit_head, audit_records, chart_codes, charts, jobs, store_meta

if TYPE_CHECKING:
    from medcode.review._store import ReviewStore

__all__ = ["LEGACY_FILES", "import_legacy", "legacy_files", "rename_imported"]

log = logging.getLogger("medcode.review.store")

LEGACY_FILES = ("queue.sqlite", "audit/audit.sqlite", "copilot_jobs.sqlite")
_MARKER = "legacy_import"
_BATCH = 1_000
# legacy file -> [(legacy table, new table)], in insertion order (charts before the rows that point at them)
_TABLES: dict[str, list[tuple[str, Table]]] = {
    "queue.sqlite": [("charts", charts), ("chart_codes", chart_codes), ("actions", actions)],
    "audit/audit.sqlite": [("records", audit_records), ("head", audit_head)],
    "copilot_jobs.sqlite": [("jobs", jobs)],
}
_SCHEMA_VERSION = "1"
# Columns added after the first release (revision 0003): its files have none, they stay NULL.
_ADDED_SINCE = {"charts": frozenset({"provider_id", "department", "payer", "encounter_date"})}
_SEQUENCES = ((charts, "chart_id"), (actions, "action_id"), (jobs, "seq"))


def legacy_files(data_dir: Path) -> list[Path]:
    """The legacy review files present in ``data_dir`` (none once imported: they are renamed)."""
    return [data_dir / name for name in LEGACY_FILES if (data_dir / name).is_file()]


def _name(path: Path) -> str:
    return path.parent.name + "/" + path.name if path.parent.name == "audit" else path.name


def _open(path: Path) -> sqlite3.Connection:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True)  # read-write: replays a WAL left by a crash
        if _name(path) != "copilot_jobs.sqlite":
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is None or row[0] != _SCHEMA_VERSION:
                conn.close()
                raise StoreError(
                    f"legacy review file {path} has schema {row[0] if row else '?'}; this medcode imports "
                    f"schema {_SCHEMA_VERSION} only"
                )
    except sqlite3.Error as error:
        raise StoreError(f"legacy review file {path} cannot be read ({error})") from error
    return conn


def _rows(conn: sqlite3.Connection, table: str, columns: list[str], path: Path) -> Iterator[list[dict[str, Any]]]:
    quoted = ", ".join(f'"{c}"' for c in columns)
    try:
        cursor = conn.execute(f'SELECT {quoted} FROM "{table}" ORDER BY rowid')
        while batch := cursor.fetchmany(_BATCH):
            yield [dict(zip(columns, row, strict=True)) for row in batch]
    except sqlite3.Error as error:
        raise StoreError(f"legacy review file {path}: table {table} cannot be read ({error})") from error


def import_legacy(store: ReviewStore, conn: Connection, files: list[Path]) -> dict[str, Any] | None:
    """Copy the legacy files' rows into the (empty) review database inside the caller's transaction.

    Returns what was imported, or None when an earlier open already imported them (a crash came
    between that commit and the renaming). Raises ``StoreError`` for an unreadable legacy file, one
    of another schema, or a review database that already holds data of its own.
    """
    if conn.execute(select(store_meta.c.value).where(store_meta.c.key == _MARKER)).first() is not None:
        return None
    held = sum(
        int(conn.execute(select(func.count()).select_from(t)).scalar_one()) for t in (charts, audit_records, jobs)
    )
    if held:
        raise StoreError(
            f"found review files of an earlier medcode ({', '.join(_name(p) for p in files)}) in {files[0].parent}, "
            f"but the review database {store.where} already holds data; move the old files aside to continue "
            "(or open them with an empty database to import them)"
        )
    counts: dict[str, int] = {}
    for path in files:
        source = _open(path)
        try:
            for legacy_table, table in _TABLES[_name(path)]:
                if table is audit_head:
                    conn.execute(audit_head.delete())  # the new database's genesis head; replaced by the old one
                n = 0
                added = _ADDED_SINCE.get(table.name, frozenset())
                columns = [column.key for column in table.c if column.key not in added]
                for batch in _rows(source, legacy_table, columns, path):
                    conn.execute(table.insert(), batch)
                    n += len(batch)
                counts[table.name] = n
        finally:
            source.close()
    if store.dialect == "postgresql":  # explicit ids do not advance a serial column's sequence
        for table, column in _SEQUENCES:
            conn.execute(
                text(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column}'), "
                    f"(SELECT COALESCE(MAX({column}), 0) + 1 FROM {table.name}), false)"
                )
            )
    head = conn.execute(select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).first()
    summary: dict[str, Any] = {
        "files": [_name(p) for p in files],
        "charts": counts.get("charts", 0),
        "codes": counts.get("chart_codes", 0),
        "actions": counts.get("actions", 0),
        "audit_records": counts.get("audit_records", 0),
        "head": [int(head[0]), str(head[1])] if head else None,
        "jobs": counts.get("jobs", 0),
    }
    conn.execute(store_meta.insert().values(key=_MARKER, value=json.dumps(summary, sort_keys=True)))
    return summary


def _free_name(path: Path) -> Path:
    target = path.with_name(path.name + ".imported")
    n = 2
    while target.exists():
        target = path.with_name(f"{path.name}.imported-{n}")
        n += 1
    return target


def rename_imported(files: list[Path], summary: dict[str, Any] | None, where: str) -> None:
    """Rename imported legacy files (and any ``-wal``/``-shm`` beside them) to ``*.imported``; log one line.

    A file that cannot be renamed is logged and left in place (the next open renames it: the
    database remembers the import).
    """
    for path in files:
        for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            if part.exists():
                try:
                    os.replace(part, _free_name(part))
                except FileNotFoundError:
                    pass  # another process that opened the store at the same time renamed it first
                except OSError as error:
                    log.error("imported %s but cannot rename it: %s", part, error)
    if summary is None:
        log.info("renamed review files imported earlier into %s: %s", where, ", ".join(_name(p) for p in files))
        return
    head = summary["head"]
    log.warning(
        "imported the review data of an earlier medcode into %s: %d charts (%d codes, %d actions), %d audit records "
        "(head %s %s), %d coding jobs; renamed %s to *.imported",
        where,
        summary["charts"],
        summary["codes"],
        summary["actions"],
        summary["audit_records"],
        head[0] if head else "-",
        head[1] if head else "-",
        summary["jobs"],
        ", ".join(summary["files"]),
    )
