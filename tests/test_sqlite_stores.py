"""Built read-only SQLite files (code-set stores, lexical index): atomic builds, stamped schema, checked on open."""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
from pathlib import Path

import pytest

from medcode._sqlite import ReadOnlyStore, atomic_build, schema_version_of
from medcode.codesets import CodeSetRegistry, ICD10CMCodeSet, strip_dot
from medcode.config import load_settings
from medcode.errors import CodeSetBuildError, IndexMismatchError, RetrievalError


def _build(path: Path, version: int = 3, rows: int = 2) -> None:
    with atomic_build(path, "test store", schema_version=version, error=RetrievalError) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(rows)])


def _open(path: Path, version: int = 3) -> ReadOnlyStore:
    return ReadOnlyStore(
        path,
        what="test store",
        schema_version=version,
        error=RetrievalError,
        stale_error=IndexMismatchError,
        fix="rebuild it",
    )


def test_atomic_build_stamps_the_schema_and_renames_into_place(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "store.sqlite"
    _build(target)
    assert schema_version_of(target) == 3
    assert [p.name for p in target.parent.iterdir()] == ["store.sqlite"]
    store = _open(target)
    assert store.connection().execute("SELECT count(*) FROM t").fetchone() == (2,)
    store.close()


def test_a_failed_build_leaves_the_old_file_and_no_temporary_one(tmp_path: Path) -> None:
    target = tmp_path / "store.sqlite"
    _build(target, rows=5)
    with (
        pytest.raises(ValueError, match="boom"),
        atomic_build(target, "test store", schema_version=4, error=RetrievalError) as conn,
    ):
        conn.execute("CREATE TABLE t (x INTEGER)")
        raise ValueError("boom")
    with (
        pytest.raises(RetrievalError, match=r"cannot write test store .*store.sqlite"),
        atomic_build(target, "test store", schema_version=4, error=RetrievalError) as conn,
    ):
        conn.execute("CREATE TABLE broken (")
    assert [p.name for p in tmp_path.iterdir()] == ["store.sqlite"]
    assert schema_version_of(target) == 3 and _open(target).connection().execute(
        "SELECT count(*) FROM t"
    ).fetchone() == (5,)


def test_open_refuses_another_schema_a_missing_file_and_garbage(tmp_path: Path) -> None:
    target = tmp_path / "store.sqlite"
    _build(target, version=2)
    with pytest.raises(IndexMismatchError, match="schema version 2, this medcode needs 3; rebuild it"):
        _open(target)
    with pytest.raises(RetrievalError, match="is missing; rebuild it"):
        _open(tmp_path / "absent.sqlite")
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not sqlite at all " * 200)
    with pytest.raises(RetrievalError, match="unreadable"):
        _open(garbage)
    assert schema_version_of(garbage) is None


def test_each_thread_gets_its_own_read_only_connection(tmp_path: Path) -> None:
    target = tmp_path / "store.sqlite"
    _build(target)
    store = _open(target)
    mine = store.connection()
    assert store.connection() is mine
    seen: list[sqlite3.Connection] = []
    worker = threading.Thread(target=lambda: seen.append(store.connection()))
    worker.start()
    worker.join()
    assert seen and seen[0] is not mine
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        mine.execute("INSERT INTO t VALUES (9)")
    store.close()


def test_a_code_set_store_of_an_older_schema_is_rebuilt_with_a_log_line(
    codeset: ICD10CMCodeSet, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(data_dir=tmp_path)
    store = tmp_path / "codesets" / codeset.path.name
    store.parent.mkdir()
    shutil.copyfile(codeset.path, store)
    conn = sqlite3.connect(store)
    conn.execute("PRAGMA user_version = 0")  # a store written before the schema was stamped
    conn.commit()
    conn.close()
    with pytest.raises(CodeSetBuildError, match="has schema version 0, this medcode needs 1"):
        ICD10CMCodeSet(store)
    with caplog.at_level(logging.WARNING, logger="medcode.codesets._registry"):
        rebuilt = CodeSetRegistry(settings).open(codeset.release)
    assert "rebuilding the code-set store of icd10cm" in caplog.text and "schema version 0" in caplog.text
    assert schema_version_of(store) == 1 and rebuilt.get("I10").description == codeset.get("I10").description
    rebuilt.close()


def test_the_code_set_api_answers_what_retrieval_asks(codeset: ICD10CMCodeSet) -> None:
    described = codeset.describe(["I10", "E11.9", "I10", "E11", "Q99.99"])
    assert described["I10"] == (codeset.get("I10").description, "9")
    assert described["E11"][1] == "4" and "Q99.99" not in described  # headers too; unknown codes are left out
    assert len(codeset.describe([f"S72.00{i}A" for i in range(1, 10)] + ["I10"] * 600)) >= 1
    headers = list(codeset.iter_headers())
    assert ("E11", codeset.get("E11").description, "4") in headers
    assert all(not codeset.is_billable(code) for code, _, _ in headers[:50])
    billable = codeset.billable_descriptions()
    assert len(billable) == codeset.counts["billable"]
    assert [n for n, _, _ in billable] == sorted(n for n, _, _ in billable)
    assert all(n == strip_dot(c) for n, c, _ in billable[:100])
    entry = next(e for e in codeset.iter_billable() if e.code == "S72.001A")
    assert (entry.parent, entry.kind, entry.chapter) == ("S72.001", "extension", "19")
