"""The review queue: enqueue, coder actions, optimistic locking, several processes, metrics, CLI."""

from __future__ import annotations

import json
import multiprocessing
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from medcode.agent._routing import RoutingDecision, RoutingPolicy
from medcode.cli import main
from medcode.codesets import ICD10CMCodeSet
from medcode.config import Settings, load_settings
from medcode.errors import ChartConflictError, ChartNotFoundError, InputError, MalformedCodeError
from medcode.review._audit import AuditLog, CodingDecision
from medcode.review._queue import ReviewQueue
from medcode.validators import CodeVerdict, Evidence, RuleResult

NOTE = "Follow-up: type 2 diabetes, stable. Hypertension controlled. Denies chest pain. Zebra-marker 4411."


def _ok(code: str, confidence: float = 0.95, quote: str | None = None) -> CodeVerdict:
    evidence = [Evidence(text=quote, start=NOTE.index(quote), end=NOTE.index(quote) + len(quote))] if quote else []
    return CodeVerdict(
        code=code.lower(),
        canonical=code,
        description=f"desc {code}",
        status="accepted",
        confidence=confidence,
        evidence=evidence,
    )


def _rej(code: str, rule: str) -> CodeVerdict:
    return CodeVerdict(code=code, canonical=code, status="rejected", confidence=0.99, rules=[rule])


CHAPTERS = {"E11.9": "4", "E11.65": "4", "I10": "9", "J45.909": "10", "R07.9": "18", "Z79.4": "21"}


def _decision(
    verdicts: list[CodeVerdict], note_type: str = "progress", note: str = NOTE, routing: RoutingDecision | None = None
) -> CodingDecision:
    return CodingDecision(
        note_text=note,
        note_id="n-1",
        note_type=note_type,
        verdicts=verdicts,
        routing=routing or RoutingPolicy().decide(verdicts, note_type),
        chapters=CHAPTERS,
        llm_model="m",
        prompt_version="p1",
        codeset_version="icd10cm-2026-04",
        rules_version="r1",
        raw_llm_output='{"quote": "Zebra-marker 4411"}',
    )


@pytest.fixture()
def settings(tmp_path: Path, review_engine: str) -> Settings:
    """Settings of a fresh data dir; the review database is SQLite or PostgreSQL (``review_engine``)."""
    return load_settings(data_dir=tmp_path / "data")


@pytest.fixture()
def queue(settings: Settings) -> Iterator[ReviewQueue]:
    with ReviewQueue(settings) as q:
        yield q


@pytest.fixture()
def chart_id(queue: ReviewQueue) -> int:
    return queue.enqueue(
        _decision(
            [
                _ok("E11.9", quote="type 2 diabetes"),
                _ok("I10", quote="Hypertension"),
                _rej("R07.9", "SPAN_NEGATED"),
            ]
        )
    )


# -- enqueue -------------------------------------------------------------------------------


def test_enqueue_stores_a_pending_chart_with_prefilled_suggestions(queue: ReviewQueue, chart_id: int) -> None:
    chart = queue.get(chart_id)
    assert (chart.status, chart.version, chart.routing) == ("pending", 1, "review")
    assert chart.reasons == ["HUMAN_ASSISTED_DEFAULT", "CODE_REJECTED:R07.9:SPAN_NEGATED"]
    assert chart.note_text == NOTE and chart.note_sha256 == _decision([]).note_sha256
    assert [(c.code, c.proposed_status, c.decision, c.chapter) for c in chart.codes] == [
        ("E11.9", "accepted", "pending", "4"),
        ("I10", "accepted", "pending", "9"),
        ("R07.9", "rejected", "pending", "18"),
    ]
    assert chart.selected_codes == ["E11.9", "I10"]
    assert chart.codes[2].rules == ["SPAN_NEGATED"]
    assert chart.codes[0].evidence[0].text == "type 2 diabetes"
    assert chart.decision["prompt_version"] == "p1" and "note_text" not in chart.decision
    assert queue.get(chart_id, include_text=False).note_text is None
    assert queue.find(chart.note_sha256) == [chart_id]
    summary = queue.list_charts()[0]
    assert (summary.chart_id, summary.n_codes, summary.n_rejected, summary.status) == (chart_id, 3, 1, "pending")
    assert summary.age_seconds >= 0


def _db(settings: Settings) -> Path:
    return settings.data_dir / "review.sqlite"


@pytest.mark.sqlite_only
def test_queue_file_is_owner_only(queue: ReviewQueue, settings: Settings) -> None:
    assert os.stat(_db(settings)).st_mode & 0o077 == 0


def test_same_result_is_enqueued_once_unless_asked(queue: ReviewQueue, chart_id: int, settings: Settings) -> None:
    decision = _decision(
        [_ok("E11.9", quote="type 2 diabetes"), _ok("I10", quote="Hypertension"), _rej("R07.9", "SPAN_NEGATED")]
    )
    assert queue.enqueue(decision) == chart_id
    other = queue.enqueue(decision, allow_duplicate=True)
    assert other != chart_id
    different = queue.enqueue(_decision([_ok("E11.9", confidence=0.5)]))
    assert different not in (chart_id, other)
    assert len(queue.list_charts()) == 3
    with AuditLog(settings) as log:
        decisions = log.records(event_type="coding_decision")
        assert [r.payload.get("deduplicated", False) for r in decisions] == [False, True, False, False]
        assert log.verify().ok


def test_auto_decision_lands_finalised_by_auto(queue: ReviewQueue, settings: Settings) -> None:
    chart_id = queue.enqueue(_decision([_ok("I10")], routing=RoutingDecision(decision="auto", reasons=[])))
    chart = queue.get(chart_id)
    assert (chart.status, chart.finalised_by, chart.routing) == ("finalised", "auto", "auto")
    assert [(c.decision, c.prefilled) for c in chart.codes] == [("accepted", True)]
    with pytest.raises(ChartConflictError, match="already finalised by auto"):
        queue.record_action(chart_id, "reject", "I10", user="ann", expected_version=1)
    with AuditLog(settings) as log:
        assert [r.event_type for r in log.records(chart_id=chart_id)] == ["coding_decision", "chart_finalised"]


@pytest.mark.sqlite_only
def test_note_text_and_quotes_never_reach_the_audit_records(
    queue: ReviewQueue, chart_id: int, settings: Settings
) -> None:
    queue.record_action(chart_id, "reject", "I10", user="ann", expected_version=1)
    conn = sqlite3.connect(_db(settings))
    audit = "\n".join("|".join(map(str, row)) for row in conn.execute("SELECT * FROM audit_records"))
    head = conn.execute("SELECT * FROM audit_head").fetchall()
    conn.close()
    assert audit.count("\n") == 2 and len(head) == 1  # coding_decision, code_action, chart_status
    assert "Zebra-marker" not in audit and "type 2 diabetes" not in audit
    raw = b"".join(p.read_bytes() for p in settings.data_dir.glob("review.sqlite*"))
    assert b"Zebra-marker" in raw  # the working store (the charts table) does keep it


def test_display_without_text_drops_every_quote(queue: ReviewQueue) -> None:
    """Spans that failed a check are quotes too: without text only their offsets and lengths are shown."""
    start = NOTE.index("chest pain")
    failed = CodeVerdict(
        code="R07.9",
        canonical="R07.9",
        status="rejected",
        rules=["SPAN_NEGATED"],
        rejected_evidence=[Evidence(text="chest pain", start=start, end=start + 10)],
    )
    chart = queue.get(queue.enqueue(_decision([failed])))
    shown = chart.to_display(show_text=False)
    assert "chest pain" not in json.dumps(shown)
    assert shown["decision"]["verdicts"][0]["rejected_evidence"] == [{"start": start, "end": start + 10, "chars": 10}]
    assert "chest pain" in json.dumps(chart.to_display(show_text=True))


# -- coder actions ----------------------------------------------------------------------------


def test_actions_update_codes_bump_version_and_are_audited(
    queue: ReviewQueue, chart_id: int, settings: Settings
) -> None:
    chart = queue.record_action(chart_id, "reject", "i10", user="ann", expected_version=1)
    assert (chart.version, chart.status, chart.assigned_to) == (2, "coding", "ann")
    chart = queue.record_action(
        chart_id,
        "replace",
        "E119",
        new_code="e11.65",
        user="ann",
        expected_version=2,
        chapter="4",
        description="T2DM with hyperglycemia",
    )
    chart = queue.record_action(chart_id, "add", "z79.4", user="ann", expected_version=3, chapter="21")
    assert chart.version == 4
    by_code = {c.code: c for c in chart.codes}
    assert by_code["I10"].decision == "rejected" and by_code["I10"].decided_by == "ann"
    assert (by_code["E11.9"].decision, by_code["E11.9"].replaced_by) == ("replaced", "E11.65")
    assert (by_code["E11.65"].origin, by_code["E11.65"].replaces, by_code["E11.65"].chapter) == ("added", "E11.9", "4")
    assert by_code["Z79.4"].origin == "added"
    assert chart.selected_codes == ["E11.65", "Z79.4"]
    chart = queue.finalise(chart_id, user="bob", expected_version=4)
    assert (chart.status, chart.finalised_by, chart.version) == ("finalised", "bob", 5)
    assert [(c.code, c.decision, c.prefilled) for c in chart.codes] == [
        ("E11.9", "replaced", False),
        ("I10", "rejected", False),
        ("R07.9", "rejected", True),
        ("E11.65", "accepted", False),
        ("Z79.4", "accepted", False),
    ]
    assert [a.action for a in chart.actions] == ["reject", "status", "replace", "add", "finalise"]
    with AuditLog(settings) as log:
        events = log.records(chart_id=chart_id)
        assert [e.event_type for e in events] == [
            "coding_decision",
            "code_action",
            "chart_status",
            "code_action",
            "code_action",
            "chart_finalised",
        ]
        assert events[-1].payload["final_codes"] == ["E11.65", "Z79.4"]
        assert [a.audit_seq for a in chart.actions] == [e.seq for e in events[1:]]
        assert log.verify().ok


def test_accepting_a_rejected_code_needs_a_reason(queue: ReviewQueue, chart_id: int) -> None:
    with pytest.raises(InputError, match=r"rejected by the validators \(SPAN_NEGATED\).*needs a reason"):
        queue.record_action(chart_id, "accept", "R07.9", user="ann", expected_version=1)
    chart = queue.record_action(
        chart_id,
        "accept",
        "R07.9",
        user="ann",
        expected_version=1,
        reason="pain is current, 'denies' refers to the past visit",
    )
    assert chart.codes[2].decision == "accepted" and chart.codes[2].reason is not None
    assert "R07.9" in chart.selected_codes


@pytest.mark.parametrize(
    ("action", "code", "new_code", "error", "match"),
    [
        ("accept", "J45.909", None, InputError, "not on chart"),
        ("add", "E11.9", None, InputError, "already on chart"),
        ("add", "12345", None, MalformedCodeError, "malformed"),
        ("replace", "E11.9", None, InputError, "OLD=NEW"),
        ("replace", "E11.9", "e119", InputError, "itself"),
        ("replace", "E11.9", "I10", InputError, "already on chart"),
        ("delete", "E11.9", None, InputError, "unknown action"),
    ],
)
def test_bad_actions_are_input_errors_and_change_nothing(
    queue: ReviewQueue,
    chart_id: int,
    action: Any,
    code: str,
    new_code: str | None,
    error: type[Exception],
    match: str,
) -> None:
    with pytest.raises(error, match=match):
        queue.record_action(chart_id, action, code, new_code=new_code, user="ann", expected_version=1)
    chart = queue.get(chart_id)
    assert chart.version == 1 and chart.actions == [] and chart.status == "pending"


def test_resolve_is_all_or_nothing(queue: ReviewQueue, chart_id: int, settings: Settings) -> None:
    with AuditLog(settings) as log:
        before = log.head()
    with pytest.raises(InputError, match="not on chart"):
        queue.resolve(
            chart_id,
            user="ann",
            expected_version=1,
            actions=[("reject", "I10", None), ("reject", "K21.9", None)],
            finalise=True,
        )
    chart = queue.get(chart_id)
    assert (chart.version, chart.status, chart.actions) == (1, "pending", [])
    with AuditLog(settings) as log:
        assert log.head() == before
    chart = queue.resolve(
        chart_id,
        user="ann",
        expected_version=1,
        actions=[("reject", "I10", None), ("add", "Z79.4", None)],
        finalise=True,
    )
    assert (chart.version, chart.status, chart.selected_codes) == (2, "finalised", ["E11.9", "Z79.4"])


@pytest.mark.parametrize("user", ["", "   ", "auto", "x" * 101, "bad\nname"])
def test_bad_user_names_are_refused(queue: ReviewQueue, chart_id: int, user: str) -> None:
    with pytest.raises(InputError):
        queue.finalise(chart_id, user=user, expected_version=1)


def test_status_transitions(queue: ReviewQueue, chart_id: int) -> None:
    chart = queue.set_status(chart_id, "coding", user="ann", expected_version=1)
    assert (chart.status, chart.assigned_to, chart.version) == ("coding", "ann", 2)
    chart = queue.set_status(chart_id, "in_review", user="ann", expected_version=2)
    assert chart.status == "in_review"
    with pytest.raises(InputError, match="finalise"):
        queue.set_status(chart_id, "finalised", user="ann", expected_version=3)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="cannot move"):
        queue.set_status(chart_id, "in_review", user="ann", expected_version=3)
    chart = queue.set_status(chart_id, "pending", user="bob", expected_version=3)
    assert (chart.status, chart.assigned_to) == ("pending", None)
    assert [q.chart_id for q in queue.list_charts(status="pending")] == [chart_id]
    assert queue.list_charts(status="coding") == []
    with pytest.raises(InputError, match="unknown status"):
        queue.list_charts(status="open")  # type: ignore[arg-type]


# -- optimistic locking -------------------------------------------------------------------------


def test_stale_version_is_a_conflict(queue: ReviewQueue, chart_id: int) -> None:
    seen_by_ann = queue.get(chart_id).version
    seen_by_bob = queue.get(chart_id).version
    queue.record_action(chart_id, "reject", "I10", user="ann", expected_version=seen_by_ann)
    with pytest.raises(ChartConflictError, match="changed since you read it") as exc:
        queue.finalise(chart_id, user="bob", expected_version=seen_by_bob)
    assert (exc.value.chart_id, exc.value.current_version) == (chart_id, 2)
    queue.finalise(chart_id, user="ann", expected_version=2)
    with pytest.raises(ChartConflictError, match="already finalised by ann"):
        queue.finalise(chart_id, user="bob", expected_version=3)
    with pytest.raises(ChartNotFoundError):
        queue.finalise(9_999, user="bob", expected_version=1)
    with pytest.raises(InputError, match="positive integer"):
        queue.finalise(chart_id, user="bob", expected_version=0)


def _finalise_race(data_dir: str, chart_id: int, user: str, barrier: Any, results: Any) -> None:
    with ReviewQueue(load_settings(data_dir=data_dir)) as queue:
        barrier.wait(30)
        try:
            queue.finalise(chart_id, user=user, expected_version=1)
            results.put((user, "ok"))
        except ChartConflictError as exc:
            results.put((user, f"conflict:{exc.current_version}"))


def test_two_processes_cannot_finalise_the_same_chart(settings: Settings, chart_id: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(target=_finalise_race, args=(str(settings.data_dir), chart_id, u, barrier, results))
        for u in ("ann", "bob")
    ]
    for p in procs:
        p.start()
    outcomes = dict(results.get(timeout=60) for _ in procs)
    for p in procs:
        p.join(60)
    assert sorted(outcomes.values()) == ["conflict:2", "ok"]
    winner = next(u for u, o in outcomes.items() if o == "ok")
    with ReviewQueue(settings) as queue:
        chart = queue.get(chart_id)
        assert (chart.status, chart.finalised_by, chart.version) == ("finalised", winner, 2)
        assert [a.action for a in chart.actions] == ["finalise"]
    with AuditLog(settings) as log:
        assert len(log.records(event_type="chart_finalised")) == 1 and log.verify().ok


def _enqueue_and_act(data_dir: str, worker: int, count: int, barrier: Any) -> None:
    with ReviewQueue(load_settings(data_dir=data_dir)) as queue:
        barrier.wait(60)
        for i in range(count):
            cid = queue.enqueue(_decision([_ok("E11.9"), _ok("I10")], note=f"{NOTE} worker {worker} note {i}"))
            queue.record_action(cid, "reject", "I10", user=f"coder{worker}", expected_version=1)


@pytest.mark.sqlite_only
def test_two_processes_share_the_queue_without_corruption(settings: Settings) -> None:
    ReviewQueue(settings).close()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_enqueue_and_act, args=(str(settings.data_dir), w, 15, barrier)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    with ReviewQueue(settings) as queue:
        charts = queue.list_charts(limit=1_000)
        assert len(charts) == 30 and len({c.chart_id for c in charts}) == 30
        assert {(c.status, c.version) for c in charts} == {("coding", 2)}
        conn = sqlite3.connect(_db(settings))
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert conn.execute("SELECT COUNT(*) FROM actions").fetchone() == (60,)  # reject + status per chart
        conn.close()
    with AuditLog(settings) as log:
        result = log.verify()
        assert result.ok and result.records == 30 * 3


def test_a_replacement_a_rule_named_is_audited_with_the_rule(queue: ReviewQueue, settings: Settings) -> None:
    def named(rule: str, severity: str, *codes: str) -> RuleResult:
        return RuleResult(rule=rule, severity=severity, reason="r", data_version="v", suggestions=list(codes))

    obesity = _ok("E66.9").model_copy(update={"warnings": [named("MORE_SPECIFIC_AVAILABLE", "warn", "E66.812")]})
    knee = _rej("M17.11", "LATERALITY_CONFLICT").model_copy(
        update={"results": [named("LATERALITY_CONFLICT", "reject", "M17.12")]}
    )
    also = _rej("I10", "USE_ADDITIONAL").model_copy(update={"results": [named("USE_ADDITIONAL", "reject", "I12.9")]})
    chart_id = queue.enqueue(_decision([obesity, knee, also]))
    queue.resolve(
        chart_id,
        user="ann",
        expected_version=1,
        reason="per the note",
        actions=[("replace", "E66.9", "E66.812"), ("replace", "M17.11", "M17.12"), ("replace", "I10", "I12.9")],
        details={"E66812": (None, "4"), "M1712": (None, "13"), "I129": (None, "9")},
    )
    with AuditLog(settings) as log:
        payloads = [r.payload for r in log.records(chart_id=chart_id, event_type="code_action")]
    # A warning's and a rejection's named code; USE_ADDITIONAL names codes to add, not replacements.
    assert [(p["new_code"], p.get("named_by_rule")) for p in payloads] == [
        ("E66.812", "MORE_SPECIFIC_AVAILABLE"),
        ("M17.12", "LATERALITY_CONFLICT"),
        ("I12.9", None),
    ]


# -- metrics ------------------------------------------------------------------------------------


def test_metrics_by_hand(queue: ReviewQueue) -> None:
    a = queue.enqueue(_decision([_ok("E11.9"), _ok("I10"), _rej("R07.9", "SPAN_NEGATED")], note=NOTE + " a"))
    queue.finalise(a, user="ann", expected_version=1)
    b = queue.enqueue(_decision([_ok("E11.9"), _ok("J45.909")], note=NOTE + " b"))
    queue.resolve(
        b,
        user="ann",
        expected_version=1,
        finalise=True,
        actions=[("reject", "J45.909", None), ("add", "Z79.4", None)],
        details={"Z794": (None, "21")},
    )
    c = queue.enqueue(
        _decision([_rej("R07.9", "NOT_A_CANDIDATE"), _ok("E11.9")], note_type="op note", note=NOTE + " c")
    )
    queue.resolve(
        c,
        user="bob",
        expected_version=1,
        reason="documented",
        finalise=True,
        actions=[("replace", "E11.9", "E11.65"), ("accept", "R07.9", None)],
        details={"E1165": (None, "4")},
    )
    queue.enqueue(_decision([_ok("I10")], routing=RoutingDecision(decision="auto", reasons=[]), note=NOTE + " d"))
    queue.enqueue(_decision([_ok("E11.9")], note=NOTE + " e"))
    f = queue.enqueue(_decision([_ok("E11.9")], note=NOTE + " f"))
    queue.set_status(f, "in_review", user="ann", expected_version=1)

    m = queue.metrics()
    assert (m.charts, m.routing, m.auto_share) == (6, {"review": 5, "auto": 1}, pytest.approx(1 / 6))
    assert (m.open_by_status, m.open_charts) == ({"pending": 1, "in_review": 1}, 2)
    assert m.oldest_open_age_s is not None and m.median_open_age_s is not None
    o = m.overall
    assert (o.charts, o.edited_charts, o.suggested, o.kept, o.rejected_by_coder, o.replaced) == (3, 2, 5, 3, 1, 1)
    assert (o.proposed_rejected, o.guardrail_overrides, o.added) == (2, 1, 1)
    assert (o.acceptance_rate, o.override_rate, o.edit_rate) == (
        pytest.approx(0.6),
        pytest.approx(3 / 7),
        pytest.approx(2 / 3),
    )
    ch = m.by_chapter
    assert set(ch) == {"4", "9", "10", "18", "21"}
    assert (ch["4"].charts, ch["4"].edited_charts, ch["4"].suggested, ch["4"].kept, ch["4"].replaced) == (3, 1, 3, 2, 1)
    assert (ch["18"].charts, ch["18"].edited_charts, ch["18"].proposed_rejected, ch["18"].guardrail_overrides) == (
        2,
        1,
        2,
        1,
    )
    assert (ch["21"].charts, ch["21"].edited_charts, ch["21"].added) == (1, 1, 1)
    assert (ch["10"].rejected_by_coder, ch["9"].kept, ch["9"].edited_charts) == (1, 1, 0)
    assert (m.by_note_type["progress"].charts, m.by_note_type["progress"].edited_charts) == (2, 1)
    assert (m.by_note_type["op note"].charts, m.by_note_type["op note"].override_rate) == (1, pytest.approx(1.0))
    assert m.validator_rejections == {"SPAN_NEGATED": 1, "NOT_A_CANDIDATE": 1}
    assert m.routing_reasons == {"HUMAN_ASSISTED_DEFAULT": 5, "CODE_REJECTED": 2}
    assert queue.metrics(note_type="op note").overall.charts == 1
    json.dumps(m.as_dict())  # JSON-ready


# -- CLI ----------------------------------------------------------------------------------------


@pytest.fixture()
def cli_data(settings: Settings, chart_id: int, codeset: ICD10CMCodeSet) -> list[str]:
    """A data dir with one pending chart and the real ICD-10-CM store (shared, built once per session)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # with PostgreSQL nothing else creates it
    (settings.data_dir / "codesets").symlink_to(codeset.path.parent, target_is_directory=True)
    return ["--data-dir", str(settings.data_dir)]


def test_cli_list_and_show_hide_phi_by_default(
    cli_data: list[str], chart_id: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*cli_data, "queue", "list"]) == 0
    out = capsys.readouterr().out
    assert "pending" in out and "HUMAN_ASSISTED_DEFAULT" in out
    assert main([*cli_data, "queue", "list", "--status", "finalised", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main([*cli_data, "queue", "show", str(chart_id)]) == 0
    out = capsys.readouterr().out
    assert "R07.9" in out and "SPAN_NEGATED" in out and "(15 chars)" in out
    assert "Zebra" not in out and "type 2 diabetes" not in out
    assert main([*cli_data, "queue", "show", str(chart_id), "--json"]) == 0
    out = capsys.readouterr().out
    assert "Zebra" not in out and "type 2 diabetes" not in out
    shown = json.loads(out)
    assert "note_text" not in shown and shown["codes"][0]["evidence"] == [{"start": 11, "end": 26, "chars": 15}]
    assert main([*cli_data, "queue", "show", str(chart_id), "--show-text"]) == 0
    out = capsys.readouterr().out
    assert "Zebra-marker 4411" in out and "'type 2 diabetes'" in out


def test_cli_resolve_and_finalise(
    cli_data: list[str], chart_id: int, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*cli_data, "queue", "resolve", str(chart_id), "--user", "ann"]
    assert main([*argv, "--reject", "I10", "--replace", "E11.9=E11.65", "--add", "z794", "--finalise"]) == 0
    assert "finalised" in capsys.readouterr().out
    with ReviewQueue(settings) as queue:
        chart = queue.get(chart_id)
    assert chart.selected_codes == ["E11.65", "Z79.4"]
    added = {c.code: c for c in chart.codes if c.origin == "added"}
    assert (added["E11.65"].chapter, added["Z79.4"].chapter) == ("4", "21")
    assert added["Z79.4"].description and "insulin" in added["Z79.4"].description.lower()
    assert main([*argv, "--accept", "E11.65"]) == 1
    assert "already finalised by ann" in capsys.readouterr().err
    assert main([*cli_data, "audit", "verify"]) == 0


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--add", "E11.99"], 1, "unknown code"),
        (["--add", "12345"], 2, "malformed"),
        (["--add", "E11"], 2, "header"),
        (["--accept", "R07.9"], 2, "needs a reason"),
        (["--accept", "K21.9"], 2, "not on chart"),
        (["--expect-version", "7", "--reject", "I10"], 1, "changed since"),
        ([], 2, "nothing to do"),
    ],
)
def test_cli_resolve_bad_input(
    cli_data: list[str], chart_id: int, extra: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*cli_data, "queue", "resolve", str(chart_id), "--user", "ann", *extra]) == code
    assert message in capsys.readouterr().err


def test_cli_errors_for_missing_things(
    cli_data: list[str], review_engine: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*cli_data, "queue", "show", "999"]) == 2
    assert "no chart 999" in capsys.readouterr().err
    if review_engine == "sqlite":  # a data dir without a database (with PostgreSQL the database is the URL's)
        assert main(["--data-dir", str(tmp_path / "none"), "queue", "list"]) == 2
        assert "no review queue" in capsys.readouterr().err
        assert not (tmp_path / "none").exists()
    for argv in (
        ["queue", "show", "abc"],
        ["queue", "resolve", "1", "--accept", "E11.9"],
        ["queue", "resolve", "1", "--user", "a", "--replace", "E11.9"],
        ["queue", "list", "--status", "x"],
    ):
        with pytest.raises(SystemExit) as exc:
            main([*cli_data, *argv])
        assert exc.value.code == 2


def test_cli_metrics(cli_data: list[str], chart_id: int, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*cli_data, "queue", "metrics"]) == 0
    assert "open             1" in capsys.readouterr().out
    assert main([*cli_data, "queue", "metrics", "--json", "--since", "2000-01-01"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["open_by_status"] == {"pending": 1} and data["validator_rejections"] == {"SPAN_NEGATED": 1}


def test_help_is_helpful(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["queue", "--help"],
        ["queue", "list", "--help"],
        ["queue", "show", "--help"],
        ["queue", "resolve", "--help"],
        ["queue", "metrics", "--help"],
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--show-text" in out and "OLD=NEW" in out and "--expect-version" in out
    assert "CODE=START:END" in out and "CODE=QUOTE" in out and "NO_EVIDENCE_GIVEN" in out
