"""The review database on a real PostgreSQL server: ``MEDCODE_TEST_POSTGRES_URL``, or the throwaway server the
``postgres_url`` fixture starts from Debian's ``postgresql`` package (skipped when neither exists).

For example ``MEDCODE_TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:5432/medcode_test`` (needs
``pip install 'medcode[postgres]'``). Every test empties that database's ``public`` schema first: point it at a
database kept for tests.
"""

from __future__ import annotations

import multiprocessing
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, exc

from medcode.agent._routing import RoutingPolicy
from medcode.config import Settings, load_settings
from medcode.copilot import JobStore
from medcode.errors import ChartConflictError
from medcode.review import AuditLog, CodingDecision, ReviewQueue
from medcode.validators import CodeVerdict

LEGACY = Path(__file__).parent / "fixtures" / "legacy-review-v1"


def _settings(data_dir: Path | str, url: str) -> Settings:
    return load_settings(data_dir=data_dir, database_url=url)


@pytest.fixture()
def settings(tmp_path: Path, empty_postgres_url: str) -> Settings:
    return _settings(tmp_path / "data", empty_postgres_url)


def _decision(note: str) -> CodingDecision:
    verdicts = [
        CodeVerdict(code="I10", canonical="I10", status="accepted", confidence=0.9),
        CodeVerdict(code="R07.9", canonical="R07.9", status="rejected", rules=["SPAN_NEGATED"]),
    ]
    return CodingDecision(note_text=note, verdicts=verdicts, routing=RoutingPolicy().decide(verdicts, "progress"))


def test_legacy_files_import_into_postgresql_and_ids_continue(settings: Settings) -> None:
    for name in ("queue.sqlite", "audit/audit.sqlite", "copilot_jobs.sqlite"):
        (settings.data_dir / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(LEGACY / name, settings.data_dir / name)
    with AuditLog(settings) as log:
        old_head = log.head()[1]
    with ReviewQueue(settings) as queue:
        assert [c.chart_id for c in queue.list_charts()] == [1, 2, 3]
        chart_id = queue.enqueue(_decision("a new note"))
        assert chart_id == 4  # the serial sequence was moved past the imported ids
        queue.record_action(chart_id, "accept", "R07.9", user="ann", expected_version=1, reason="documented")
        assert queue.finalise(chart_id, user="ann", expected_version=2).selected_codes == ["I10", "R07.9"]
    jobs = JobStore(settings)
    assert jobs.counts() == {"done": 1, "failed": 1, "queued": 1}
    jobs.close()
    with AuditLog(settings) as log:
        result = log.verify(expected_head=old_head)
    assert result.ok and result.records == 13 + 4  # decision, accept + status, finalise


def test_triggers_keep_the_audit_log_append_only(settings: Settings) -> None:
    with AuditLog(settings) as log:
        for i in range(3):
            log.append("test_event", {"i": i})
    engine = create_engine(str(settings.database_url))
    for statement in (
        "UPDATE audit_records SET payload = '{}' WHERE seq = 2",
        "DELETE FROM audit_records WHERE seq = 3",
        "TRUNCATE audit_records",
        "UPDATE audit_head SET seq = 2",
    ):
        with pytest.raises(exc.DBAPIError, match=r"append-only|only moves forward"), engine.begin() as conn:
            conn.exec_driver_sql(statement)
    engine.dispose()
    with AuditLog(settings) as log:
        assert log.verify().ok


def _append_and_act(url: str, data_dir: str, worker: int, barrier: Any) -> None:
    settings = _settings(data_dir, url)  # the URL is passed: a spawned child's environment lacks the variable
    barrier.wait(60)
    with AuditLog(settings) as log:
        for i in range(30):
            log.append("test_event", {"worker": worker, "i": i})
    with ReviewQueue(settings) as queue:
        for i in range(5):
            chart_id = queue.enqueue(_decision(f"note {worker} {i}"))
            queue.record_action(chart_id, "reject", "I10", user=f"coder{worker}", expected_version=1)


def _finalise(url: str, data_dir: str, chart_id: int, user: str, barrier: Any, results: Any) -> None:
    with ReviewQueue(_settings(data_dir, url)) as queue:
        barrier.wait(60)
        try:
            queue.finalise(chart_id, user=user, expected_version=1)
            results.put("ok")
        except ChartConflictError as error:
            results.put(f"conflict:{error.current_version}")


def test_processes_keep_one_chain_and_one_finaliser(settings: Settings) -> None:
    ReviewQueue(settings).close()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(3)
    procs = [
        ctx.Process(target=_append_and_act, args=(str(settings.database_url), str(settings.data_dir), w, barrier))
        for w in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    with AuditLog(settings) as log:
        result = log.verify()
    assert result.ok and result.records == 3 * (30 + 5 * 3)
    with ReviewQueue(settings) as queue:
        chart_id = queue.enqueue(_decision("the contested note"))
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(
            target=_finalise, args=(str(settings.database_url), str(settings.data_dir), chart_id, u, barrier, results)
        )
        for u in ("a", "b")
    ]
    for p in procs:
        p.start()
    outcomes = sorted(results.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(60)
    assert outcomes == ["conflict:2", "ok"]
