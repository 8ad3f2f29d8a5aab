"""The review database: one store by URL, Alembic migrations on open, the import of the earlier release's files."""

from __future__ import annotations

import json
import logging
import multiprocessing
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from medcode.agent._routing import RoutingPolicy
from medcode.cli import main
from medcode.config import Settings, load_settings
from medcode.copilot import JobStore
from medcode.errors import AuditTamperedError, ConfigError, InputError, StoreError
from medcode.review import AuditLog, CodingDecision, ReviewQueue, ReviewStore, review_database_url
from medcode.review._store import _head_revision, metadata
from medcode.validators import CodeVerdict

LEGACY = Path(__file__).parent / "fixtures" / "legacy-review-v1"
LEGACY_FILES = ("queue.sqlite", "audit/audit.sqlite", "copilot_jobs.sqlite")
NOTE = "Seen today: essential hypertension. Store-marker 5150."


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data")


def _decision(note: str = NOTE) -> CodingDecision:
    verdicts = [CodeVerdict(code="I10", canonical="I10", status="accepted", confidence=0.9)]
    return CodingDecision(note_text=note, verdicts=verdicts, routing=RoutingPolicy().decide(verdicts, "progress"))


def _rows(path: Path, table: str, order: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return conn.execute(f"SELECT * FROM {table} ORDER BY {order}").fetchall()
    finally:
        conn.close()


@pytest.fixture()
def legacy_dir(settings: Settings) -> Path:
    """A data dir holding a copy of the review files the release before wrote."""
    for name in LEGACY_FILES:
        target = settings.data_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(LEGACY / name, target)
    return settings.data_dir


# -- the store ------------------------------------------------------------------------------------


def test_default_url_is_one_sqlite_file_in_the_data_dir(settings: Settings, tmp_path: Path) -> None:
    assert review_database_url(settings) == f"sqlite:///{settings.data_dir.absolute()}/review.sqlite"
    other = load_settings(data_dir=tmp_path / "data", database_url=f"sqlite:///{tmp_path}/elsewhere/r.db")
    ReviewQueue(other).close()
    assert (tmp_path / "elsewhere" / "r.db").stat().st_mode & 0o077 == 0
    assert not (tmp_path / "data" / "review.sqlite").exists()


@pytest.mark.parametrize(
    ("url", "match"),
    [("mysql://u@h/db", "supports sqlite and postgresql, not 'mysql'"), ("::not a url::", "not a database URL")],
)
def test_bad_database_urls_are_config_errors(tmp_path: Path, url: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        ReviewQueue(load_settings(data_dir=tmp_path, database_url=url))


def test_migrated_schema_matches_the_table_definitions(settings: Settings) -> None:
    """A change to the tables in review/_store.py without a migration (or the reverse) fails here."""
    ReviewStore(settings).close()
    engine = create_engine(review_database_url(settings))
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        triggers = {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
    engine.dispose()
    assert diff == []
    assert triggers == {"audit_records_no_update", "audit_records_no_delete", "audit_head_forward"}


def test_a_newer_schema_is_refused_and_an_older_one_migrated(settings: Settings) -> None:
    ReviewStore(settings).close()
    path = settings.data_dir / "review.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.close()
    with pytest.raises(StoreError, match="schema revision 9999, newer than this medcode"):
        ReviewQueue(settings)
    # An older database (here: one from before revision 0001, with nothing in it) is migrated on open.
    conn = sqlite3.connect(path, isolation_level=None)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        if name != "sqlite_sequence":
            conn.execute(f"DROP TABLE {name}")
    conn.close()
    with ReviewQueue(settings) as queue:
        chart_id = queue.enqueue(_decision())
        assert queue.get(chart_id).version == 1
    with ReviewStore(settings) as store, store.read() as c:
        assert ReviewStore.revision(c) == _head_revision()  # 0001, 0002 (governance), 0003 (note metadata)


def test_a_file_that_is_not_a_database_is_a_store_error(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True)
    (settings.data_dir / "review.sqlite").write_bytes(b"not a database, just bytes " * 100)
    with pytest.raises(StoreError, match="review queue"):
        ReviewQueue(settings)


def test_a_writer_waiting_past_the_busy_timeout_gets_a_store_error(settings: Settings) -> None:
    ReviewStore(settings).close()
    impatient = settings.model_copy(update={"db_busy_timeout_s": 0.2})
    with AuditLog(impatient) as log:
        other = sqlite3.connect(settings.data_dir / "review.sqlite", isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        try:
            with pytest.raises(StoreError, match=r"busy \(waited 0.2s"):
                log.append("test_event", {"i": 1})
            assert log.verify().ok  # readers are not blocked by a writer
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert log.append("test_event", {"i": 1}).seq == 1


def test_a_chart_change_and_its_audit_record_commit_together(settings: Settings) -> None:
    """When the audit append fails, the chart change is rolled back with it (one transaction, one database)."""
    with ReviewQueue(settings) as queue:
        chart_id = queue.enqueue(_decision())
        conn = sqlite3.connect(settings.data_dir / "review.sqlite", isolation_level=None)
        conn.execute("DROP TRIGGER audit_head_forward")
        conn.execute("UPDATE audit_head SET seq = 7")  # the head no longer matches: appends are refused
        with pytest.raises(AuditTamperedError, match="refusing to append"):
            queue.record_action(chart_id, "reject", "I10", user="ann", expected_version=1)
        chart = queue.get(chart_id)
        assert (chart.version, chart.status, chart.actions, chart.codes[0].decision) == (1, "pending", [], "pending")
        conn.execute("UPDATE audit_head SET seq = 1")
        conn.close()
        assert queue.record_action(chart_id, "reject", "I10", user="ann", expected_version=1).version == 2


def test_the_dead_list_alias_is_gone() -> None:
    assert not hasattr(ReviewQueue, "list") and hasattr(ReviewQueue, "list_charts")


# -- legacy import ----------------------------------------------------------------------------------


def test_legacy_files_are_imported_once_and_keep_their_chain(
    legacy_dir: Path, settings: Settings, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {
        # Revision 0003 appended the note metadata columns; the first release had none (NULL).
        "charts": [(*row, None, None, None, None) for row in _rows(LEGACY / "queue.sqlite", "charts", "chart_id")],
        "chart_codes": _rows(LEGACY / "queue.sqlite", "chart_codes", "chart_id, position"),
        "actions": _rows(LEGACY / "queue.sqlite", "actions", "action_id"),
        "audit_records": _rows(LEGACY / "audit" / "audit.sqlite", "records", "seq"),
        "audit_head": _rows(LEGACY / "audit" / "audit.sqlite", "head", "id"),
        "jobs": _rows(LEGACY / "copilot_jobs.sqlite", "jobs", "seq"),
    }
    old_head = before["audit_head"][0][2]
    with caplog.at_level(logging.INFO, logger="medcode.review.store"):
        queue = ReviewQueue(settings)
    imported = [r.getMessage() for r in caplog.records if "imported the review data" in r.getMessage()]
    assert len(imported) == 1
    assert "3 charts (7 codes, 8 actions), 13 audit records (head 13 " in imported[0] and "3 coding jobs" in imported[0]
    assert "Legacy-marker" not in caplog.text  # counts and hashes, never note text
    # Every row came across unchanged: ids, versions, audit seq/ts/payload/prev_hash/hash and the head.
    db = legacy_dir / "review.sqlite"
    assert before == {
        "charts": _rows(db, "charts", "chart_id"),
        "chart_codes": _rows(db, "chart_codes", "chart_id, position"),
        "actions": _rows(db, "actions", "action_id"),
        "audit_records": _rows(db, "audit_records", "seq"),
        "audit_head": _rows(db, "audit_head", "id"),
        "jobs": _rows(db, "jobs", "seq"),
    }
    for name in LEGACY_FILES:
        assert not (legacy_dir / name).exists() and (legacy_dir / f"{name}.imported").is_file()

    # The queue API sees the imported charts as the old release left them.
    charts = {c.chart_id: c for c in queue.list_charts()}
    assert {i: (c.status, c.version) for i, c in charts.items()} == {
        1: ("finalised", 6),
        2: ("coding", 2),
        3: ("finalised", 1),
    }
    first = queue.get(1)
    assert first.selected_codes == ["I10", "E11.65", "Z79.4"] and first.finalised_by == "bob"
    assert [a.action for a in first.actions] == ["accept", "status", "replace", "add", "reject", "finalise"]
    assert first.note_text is not None and "Legacy-marker 7731" in first.note_text
    # The copilot's jobs are there too, with their state.
    jobs = JobStore(settings)
    assert sorted(j.status for j in jobs.active()) == ["failed", "queued"]
    assert jobs.counts() == {"done": 1, "failed": 1, "queued": 1}
    claimed = jobs.claim()
    assert claimed is not None and claimed[1].id == "job-queued"
    jobs.close()

    # The chain verifies, the head hash taken before the upgrade is still in it, and new changes extend it.
    assert main(["--data-dir", str(legacy_dir), "audit", "verify", "--json", "--expect-head", old_head]) == 0
    assert json.loads(capsys.readouterr().out)["last_hash"] == old_head
    chart = queue.record_action(2, "accept", "J45.901", user="dan", expected_version=2)
    assert chart.version == 3 and chart.actions[-1].audit_seq == 14
    new_id = queue.enqueue(_decision())
    assert new_id == 4  # chart ids continue after the imported ones
    queue.close()
    with AuditLog(settings) as log:
        result = log.verify(expected_head=old_head)
        assert result.ok and result.records == 15 and log.records(start_seq=14)[0].prev_hash == old_head

    # Opening again imports nothing more.
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="medcode.review.store"), ReviewQueue(settings) as again:
        assert len(again.list_charts()) == 4
    assert "imported" not in caplog.text


def _open_and_enqueue(data_dir: str, worker: int, barrier: Any) -> None:
    barrier.wait(60)
    with ReviewQueue(load_settings(data_dir=data_dir)) as queue:
        for i in range(3):
            queue.enqueue(_decision(f"{NOTE} worker {worker} note {i}"))


def test_processes_opening_a_legacy_data_dir_at_once_import_it_once(legacy_dir: Path, settings: Settings) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(3)
    procs = [ctx.Process(target=_open_and_enqueue, args=(str(legacy_dir), w, barrier)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    with AuditLog(settings) as log:
        result = log.verify()
    assert result.ok and result.records == 13 + 9
    with ReviewQueue(settings) as queue:
        assert sorted(c.chart_id for c in queue.list_charts(limit=100)) == list(range(1, 13))
    assert sorted(p.name for p in legacy_dir.glob("*.imported")) == [
        "copilot_jobs.sqlite.imported",
        "queue.sqlite.imported",
    ]


def test_the_cli_opens_a_legacy_data_dir(legacy_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``medcode queue list`` / ``audit verify`` never create a store, but do import one from the old files."""
    assert main(["--data-dir", str(legacy_dir), "queue", "list", "--json"]) == 0
    assert [c["chart_id"] for c in json.loads(capsys.readouterr().out)] == [1, 2, 3]
    assert main(["--data-dir", str(legacy_dir), "audit", "verify"]) == 0
    assert "13 records verify" in capsys.readouterr().out


def test_only_an_audit_log_is_imported_too(settings: Settings) -> None:
    """A data dir that only ever had an audit log (AuditLog used alone) keeps its chain."""
    (settings.data_dir / "audit").mkdir(parents=True)
    shutil.copyfile(LEGACY / "audit" / "audit.sqlite", settings.data_dir / "audit" / "audit.sqlite")
    with AuditLog(settings) as log:
        assert log.verify().records == 13
        assert log.append("test_event", {"i": 1}).seq == 14


def test_legacy_files_beside_a_database_with_data_are_refused(legacy_dir: Path, settings: Settings) -> None:
    moved = legacy_dir.parent / "moved"
    moved.mkdir()
    for name in ("queue.sqlite", "copilot_jobs.sqlite"):
        (legacy_dir / name).rename(moved / name)
    (legacy_dir / "audit").rename(moved / "audit")
    with ReviewQueue(settings) as queue:
        queue.enqueue(_decision())
    shutil.copyfile(moved / "queue.sqlite", legacy_dir / "queue.sqlite")
    with pytest.raises(StoreError, match=r"earlier medcode \(queue.sqlite\).*already holds data"):
        ReviewQueue(settings)


def test_a_legacy_file_of_another_schema_is_refused(settings: Settings) -> None:
    settings.data_dir.mkdir(parents=True)
    shutil.copyfile(LEGACY / "queue.sqlite", settings.data_dir / "queue.sqlite")
    conn = sqlite3.connect(settings.data_dir / "queue.sqlite")
    conn.execute("UPDATE meta SET value = '7' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="has schema 7; this medcode imports schema 1 only"):
        ReviewQueue(settings)
    assert (settings.data_dir / "queue.sqlite").is_file()  # nothing renamed, nothing lost


def test_cli_without_any_store_says_so(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no review queue at"):
        ReviewQueue(load_settings(data_dir=tmp_path / "none"), create=False)
    assert not (tmp_path / "none").exists()
