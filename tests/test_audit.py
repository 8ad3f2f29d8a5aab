"""The hash-chained audit log: verify catches edits, removals, reorders and truncation; no PHI by default."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from medcode.agent._routing import RoutingDecision, RoutingPolicy
from medcode.cli import main
from medcode.config import Settings, load_settings
from medcode.errors import AuditTamperedError, StoreError
from medcode.review._audit import GENESIS_HASH, AuditLog, CodingDecision, _record_hash
from medcode.validators import CodeVerdict, Evidence

NOTE = "Pt seen for follow-up of zebra-stripe dermatitis. Denies chest pain."


@pytest.fixture()
def settings(tmp_path: Path, review_engine: str) -> Settings:
    """Settings of a fresh data dir; the review database is SQLite or PostgreSQL (``review_engine``)."""
    return load_settings(data_dir=tmp_path / "data")


@pytest.fixture()
def log(settings: Settings) -> Iterator[AuditLog]:
    with AuditLog(settings) as audit:
        for i in range(6):
            audit.append("test_event", {"i": i, "user": "ann", "nested": {"x": [1, 2.5, None]}}, chart_id=i % 2 + 1)
        yield audit


def _db(settings: Settings) -> Path:
    return settings.data_dir / "review.sqlite"


def _raw(settings: Settings) -> sqlite3.Connection:
    """A plain connection that, like an attacker with file access, first drops the append-only triggers."""
    conn = sqlite3.connect(_db(settings), isolation_level=None)
    conn.execute("DROP TRIGGER audit_records_no_update")
    conn.execute("DROP TRIGGER audit_records_no_delete")
    conn.execute("DROP TRIGGER audit_head_forward")
    return conn


def _cli_verify(settings: Settings, *extra: str) -> int:
    return main(["--data-dir", str(settings.data_dir), "audit", "verify", *extra])


def _decision(verdicts: list[CodeVerdict] | None = None) -> CodingDecision:
    verdicts = verdicts or [
        CodeVerdict(
            code="L30.9",
            canonical="L30.9",
            status="accepted",
            confidence=0.95,
            evidence=[Evidence(text="zebra-stripe dermatitis", start=25, end=48)],
        ),
        CodeVerdict(
            code="R07.9",
            canonical="R07.9",
            status="rejected",
            rules=["SPAN_NEGATED"],
            evidence=[Evidence(text="chest pain", start=58, end=68)],
        ),
    ]
    routing = RoutingPolicy().decide(verdicts, "progress note")
    return CodingDecision(
        note_text=NOTE,
        note_type="progress note",
        verdicts=verdicts,
        routing=routing,
        llm_model="qwen-test",
        prompt_version="p1",
        codeset_version="icd10cm-2026-04",
        rules_version="r1",
        index_version="i1",
        candidates=["L30.9", "R07.9", "L20.9"],
        raw_llm_output='{"codes":[{"code":"L30.9","quote":"zebra-stripe dermatitis"}]}',
    )


# -- a clean log ------------------------------------------------------------------------


def test_untouched_log_verifies(log: AuditLog, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    result = log.verify()
    assert result.ok and result.records == 6 and result.problem is None
    assert (result.last_seq, result.last_hash) == log.head()
    records = log.records()
    assert [r.seq for r in records] == [1, 2, 3, 4, 5, 6]
    assert records[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    assert records[2].payload == {"i": 2, "user": "ann", "nested": {"x": [1, 2.5, None]}}
    assert [r.seq for r in log.records(chart_id=2)] == [2, 4, 6]
    assert _cli_verify(settings) == 0
    assert "6 records verify" in capsys.readouterr().out
    assert _cli_verify(settings, "--json", "--expect-head", result.last_hash) == 0
    assert json.loads(capsys.readouterr().out)["last_hash"] == result.last_hash


def test_empty_log_verifies(settings: Settings) -> None:
    with AuditLog(settings) as audit:
        result = audit.verify()
    assert result.ok and result.records == 0 and result.last_hash == GENESIS_HASH


@pytest.mark.sqlite_only
def test_triggers_refuse_update_and_delete(log: AuditLog, settings: Settings) -> None:
    conn = sqlite3.connect(_db(settings))
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("UPDATE audit_records SET payload = '{}' WHERE seq = 2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute("DELETE FROM audit_records WHERE seq = 6")
    with pytest.raises(sqlite3.DatabaseError, match="only moves forward"):
        conn.execute("UPDATE audit_head SET seq = 3")
    conn.close()
    assert log.verify().ok


# -- tampering ----------------------------------------------------------------------------


@pytest.mark.sqlite_only
def test_edited_field_is_detected(log: AuditLog, settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    conn = _raw(settings)
    payload = json.loads(conn.execute("SELECT payload FROM audit_records WHERE seq = 3").fetchone()[0])
    payload["user"] = "mallory"
    conn.execute("UPDATE audit_records SET payload = ? WHERE seq = 3", (json.dumps(payload),))
    conn.close()
    result = log.verify()
    assert (result.ok, result.problem, result.first_bad_seq) == (False, "edited", 3)
    with pytest.raises(AuditTamperedError, match="record 3 was edited"):
        result.raise_for_problem()
    assert _cli_verify(settings) == 1
    assert "TAMPERED" in capsys.readouterr().err


@pytest.mark.sqlite_only
def test_edited_timestamp_or_event_type_is_detected(log: AuditLog, settings: Settings) -> None:
    conn = _raw(settings)
    conn.execute("UPDATE audit_records SET ts = '2020-01-01T00:00:00+00:00' WHERE seq = 5")
    conn.close()
    assert (log.verify().problem, log.verify().first_bad_seq) == ("edited", 5)


@pytest.mark.sqlite_only
def test_deleted_record_is_detected(log: AuditLog, settings: Settings) -> None:
    conn = _raw(settings)
    conn.execute("DELETE FROM audit_records WHERE seq = 2")
    conn.close()
    result = log.verify()
    assert (result.ok, result.problem, result.first_bad_seq) == (False, "removed", 2)
    assert _cli_verify(settings) == 1


@pytest.mark.sqlite_only
def test_deleted_and_renumbered_record_is_detected(log: AuditLog, settings: Settings) -> None:
    conn = _raw(settings)
    conn.execute("DELETE FROM audit_records WHERE seq = 4")
    conn.execute("UPDATE audit_records SET seq = seq - 1 WHERE seq > 4")
    conn.execute("UPDATE audit_head SET seq = seq - 1")
    conn.close()
    result = log.verify()
    assert (result.problem, result.first_bad_seq) == ("removed", 4)
    assert _cli_verify(settings) == 1


@pytest.mark.sqlite_only
def test_swapped_records_are_detected(log: AuditLog, settings: Settings) -> None:
    conn = _raw(settings)
    rows = {
        seq: row
        for seq, *row in conn.execute(
            "SELECT seq, ts, event_type, chart_id, payload, prev_hash, hash FROM audit_records WHERE seq IN (3, 4)"
        )
    }
    for seq, other in ((3, 4), (4, 3)):
        conn.execute(
            "UPDATE audit_records SET ts = ?, event_type = ?, chart_id = ?, payload = ?, prev_hash = ?, hash = ? WHERE seq = ?",
            (*rows[other], seq),
        )
    conn.close()
    result = log.verify()
    assert (result.ok, result.problem, result.first_bad_seq) == (False, "reordered", 3)
    assert _cli_verify(settings) == 1


@pytest.mark.sqlite_only
def test_truncated_tail_is_detected_and_blocks_appends(log: AuditLog, settings: Settings) -> None:
    conn = _raw(settings)
    conn.execute("DELETE FROM audit_records WHERE seq >= 5")
    conn.close()
    result = log.verify()
    assert (result.problem, result.first_bad_seq) == ("truncated", 5)
    assert _cli_verify(settings) == 1
    with pytest.raises(AuditTamperedError, match="refusing to append"):
        log.append("test_event", {"i": 99})


@pytest.mark.sqlite_only
def test_rewritten_log_is_caught_only_by_an_external_anchor(log: AuditLog, settings: Settings) -> None:
    """The documented limit: a full rewrite with recomputed hashes verifies, unless you kept the head hash."""
    anchor = log.verify().last_hash
    conn = _raw(settings)
    prev = GENESIS_HASH
    rows = conn.execute("SELECT seq, ts, event_type, chart_id, payload FROM audit_records ORDER BY seq").fetchall()
    for seq, ts, event_type, chart_id, payload in rows:
        data = json.loads(payload)
        data["user"] = "mallory"
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        digest = _record_hash(ts, event_type, chart_id, data, prev)
        conn.execute(
            "UPDATE audit_records SET payload = ?, prev_hash = ?, hash = ? WHERE seq = ?", (text, prev, digest, seq)
        )
        prev = digest
    conn.execute("UPDATE audit_head SET hash = ?", (prev,))
    conn.close()
    assert log.verify().ok  # no secret, no external copy: undetectable by design
    result = log.verify(expected_head=anchor)
    assert (result.ok, result.problem) == (False, "anchor_missing")
    assert _cli_verify(settings, "--expect-head", anchor) == 1


# -- PHI and payload checks --------------------------------------------------------------


def test_payload_with_note_text_is_refused_unless_configured(settings: Settings, tmp_path: Path) -> None:
    with AuditLog(settings) as audit:
        for payload in (
            {"note_text": NOTE},
            {"verdicts": [{"evidence": [{"text": "chest pain"}]}]},
            {"raw_llm_output": "x"},
        ):
            with pytest.raises(StoreError, match="would store note text"):
                audit.append("decision", payload)
        audit.append("decision", {"note_text": None, "note_sha256": "ab"})  # a null is not text
        with pytest.raises(StoreError, match="event type"):
            audit.append("Bad Type!", {})
        with pytest.raises(StoreError, match="JSON"):
            audit.append("decision", {"x": float("nan")})
        assert audit.verify().records == 1
    allowed = load_settings(data_dir=tmp_path / "phi", audit_store_note_text=True)
    with AuditLog(allowed) as audit:
        assert audit.append("decision", {"note_text": NOTE}).payload["note_text"] == NOTE


@pytest.mark.sqlite_only
def test_decision_record_holds_hashes_and_versions_not_text(settings: Settings) -> None:
    decision = _decision()
    with AuditLog(settings) as audit:
        record = audit.append_decision(decision)
    payload = record.payload
    assert payload["note_sha256"] == decision.note_sha256 and payload["note_chars"] == len(NOTE)
    assert "note_text" not in payload and "raw_llm_output" not in payload
    assert payload["raw_llm_output_digest"]["chars"] == len(decision.raw_llm_output or "")
    assert (payload["llm_model"], payload["prompt_version"], payload["codeset_version"], payload["index_version"]) == (
        "qwen-test",
        "p1",
        "icd10cm-2026-04",
        "i1",
    )
    assert payload["candidates"] == ["L30.9", "R07.9", "L20.9"]
    assert payload["routing"]["decision"] == "review"
    assert [v["status"] for v in payload["verdicts"]] == ["accepted", "rejected"]
    assert payload["verdicts"][0]["evidence"] == [
        {"start": 25, "end": 48, "chars": 23, "sha256": payload["verdicts"][0]["evidence"][0]["sha256"]}
    ]
    raw = b"".join(p.read_bytes() for p in settings.data_dir.glob("review.sqlite*"))
    assert raw and b"zebra" not in raw  # neither the note nor an evidence quote reached the database files


def test_decision_record_keeps_text_when_configured(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, audit_store_note_text=True)
    with AuditLog(settings) as audit:
        payload = audit.append_decision(_decision()).payload
    assert payload["note_text"] == NOTE
    assert payload["verdicts"][0]["evidence"][0]["text"] == "zebra-stripe dermatitis"
    assert "quote" in payload["raw_llm_output"]


def test_coding_decision_checks_the_note_hash() -> None:
    from pydantic import ValidationError

    good = _decision()
    assert good.note_sha256 is not None and len(good.note_sha256) == 64
    with pytest.raises(ValidationError, match="does not match"):
        CodingDecision(note_text=NOTE, note_sha256="0" * 64, routing=good.routing)
    with pytest.raises(ValidationError, match="blank"):
        CodingDecision(note_text="   ", routing=good.routing)
    auto = RoutingDecision(decision="auto", reasons=[])
    with pytest.raises(ValidationError, match=r"routing 'auto' needs .*R07\.9"):
        CodingDecision(note_text=NOTE, verdicts=good.verdicts, routing=auto)
    with pytest.raises(ValidationError, match="routing 'auto' needs"):
        CodingDecision(note_text=NOTE, verdicts=[], routing=auto)


# -- several processes --------------------------------------------------------------------


def _append_many(data_dir: str, worker: int, count: int, barrier: Any) -> None:
    with AuditLog(load_settings(data_dir=data_dir)) as audit:
        barrier.wait(60)
        for i in range(count):
            audit.append("test_event", {"worker": worker, "i": i})


def test_two_processes_appending_keep_one_valid_chain(settings: Settings) -> None:
    AuditLog(settings).close()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_append_many, args=(str(settings.data_dir), w, 100, barrier)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    with AuditLog(settings) as audit:
        result = audit.verify()
        records = audit.records()
    assert result.ok and result.records == 200
    for worker in range(2):  # each writer's records are all there, in its own order
        assert [r.payload["i"] for r in records if r.payload["worker"] == worker] == list(range(100))


# -- CLI ----------------------------------------------------------------------------------


@pytest.mark.sqlite_only
def test_cli_tail_and_bad_input(
    log: AuditLog, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--data-dir", str(settings.data_dir), "audit"]
    assert main([*base, "tail", "-n", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [5, 6]
    assert main([*base, "tail", "--chart", "1"]) == 0
    assert [json.loads(line)["seq"] for line in capsys.readouterr().out.splitlines()] == [1, 3, 5]
    assert main([*base, "verify", "--expect-head", "not-a-hash"]) == 2
    assert "64-character" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([*base, "tail", "-n", "0"])
    assert exc.value.code == 2
    assert main(["--data-dir", str(tmp_path / "nowhere"), "audit", "verify"]) == 2
    assert "no audit log" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()  # verify never creates a log


def test_help_is_helpful(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["audit", "--help"], ["audit", "verify", "--help"], ["audit", "tail", "--help"]):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
    assert "--expect-head" in capsys.readouterr().out
