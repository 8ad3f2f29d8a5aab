"""Codes a coder adds or substitutes go through the validators: the queue with a real pipeline, and the CLI.

The charts are enqueued by hand (no retrieval or LLM); the validators run on the real ICD-10-CM
release, ConText and the relatedness model of the session data dir.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from medcode.agent import RoutingPolicy
from medcode.cli import main
from medcode.codesets import ICD10CMCodeSet
from medcode.config import Settings, load_settings
from medcode.errors import ChartConflictError, InputError, OverrideReasonRequiredError, UnknownCodeError
from medcode.review import AuditLog, CodingDecision, EvidenceSpan, ReviewQueue, ReviewStore
from medcode.validators import CodeVerdict, Evidence, ValidatorPipeline

pytestmark = pytest.mark.slow

NOTE = "Follow-up: type 2 diabetes, stable. Hypertension controlled. Denies chest pain. Zebra-marker 4411."

KNEE_NOTE = """HPI: 67-year-old woman with knee pain for a year, worse on stairs.
ASSESSMENT: Primary osteoarthritis of left knee. Right knee examination normal.
PLAN: Physical therapy, acetaminophen as needed.
"""
KNEE = "Primary osteoarthritis of left knee"


def _ok(code: str, quote: str, note: str = NOTE) -> CodeVerdict:
    start = note.index(quote)
    evidence = [Evidence(text=quote, start=start, end=start + len(quote))]
    return CodeVerdict(code=code, canonical=code, description=f"desc {code}", status="accepted", evidence=evidence)


def _rej(code: str, rule: str) -> CodeVerdict:
    return CodeVerdict(code=code, canonical=code, status="rejected", rules=[rule])


def _decision(verdicts: list[CodeVerdict], note: str = NOTE) -> CodingDecision:
    return CodingDecision(
        note_text=note, note_type="progress", verdicts=verdicts, routing=RoutingPolicy().decide(verdicts, "progress")
    )


@pytest.fixture(scope="module")
def pipeline(session_settings: Settings) -> Iterator[ValidatorPipeline]:
    with ValidatorPipeline(session_settings) as p:
        yield p


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data")


@pytest.fixture()
def queue(settings: Settings, pipeline: ValidatorPipeline) -> Iterator[ReviewQueue]:
    with ReviewQueue(settings, validators=pipeline) as q:
        yield q


@pytest.fixture()
def chart_id(queue: ReviewQueue) -> int:
    """NOTE: 'type 2 diabetes' (E11.9), 'Hypertension' (I10), 'Denies chest pain' (R07.9, rejected)."""
    return queue.enqueue(
        _decision([_ok("E11.9", "type 2 diabetes"), _ok("I10", "Hypertension"), _rej("R07.9", "SPAN_NEGATED")])
    )


def _span(note: str, quote: str) -> EvidenceSpan:
    start = note.index(quote)
    return EvidenceSpan(start=start, end=start + len(quote))


def test_a_rejected_new_code_needs_a_reason_then_is_stored_audited_and_counted(
    queue: ReviewQueue, chart_id: int, settings: Settings
) -> None:
    # E10.9 on a claim that bills E11.9: Excludes1. Without a reason nothing changes.
    with pytest.raises(OverrideReasonRequiredError, match=r"E10\.9 is rejected by the validators") as caught:
        queue.record_action(chart_id, "add", "e109", user="ann", expected_version=1)
    assert caught.value.rules == {"E10.9": ["EXCLUDES1_CONFLICT"]}
    shown = caught.value.details[0]
    assert shown["reasons"][0]["rule"] == "EXCLUDES1_CONFLICT" and "E11.9" in shown["reasons"][0]["reason"]
    assert [w["rule"] for w in shown["warnings"]] == ["NO_EVIDENCE_GIVEN"]
    chart = queue.get(chart_id)
    assert chart.version == 1 and chart.actions == [] and "E10.9" not in [c.code for c in chart.codes]

    # With a reason it is stored with its verdict, billed, and audited as a guardrail override.
    chart = queue.record_action(
        chart_id, "add", "E10.9", user="ann", expected_version=1, reason="endocrinology documents type 1"
    )
    added = chart.codes[-1]
    assert (added.code, added.origin, added.decision, added.proposed_status) == (
        "E10.9",
        "added",
        "accepted",
        "rejected",
    )
    assert added.rules == ["EXCLUDES1_CONFLICT"] and added.warnings == ["NO_EVIDENCE_GIVEN"]
    assert added.description == "Type 1 diabetes mellitus without complications" and added.chapter == "4"
    assert added.check is not None and added.check.status == "rejected" and not added.check.evidence_given
    assert added.check.codeset_version.startswith("icd10cm-") and added.check.rules_version
    assert "E10.9" in chart.selected_codes
    assert queue.list_charts()[0].n_rejected == 1  # the blocked suggestion R07.9; the coder's code is not "blocked"
    with AuditLog(settings) as log:
        record = log.records(chart_id=chart_id, event_type="code_action")[-1]
        assert log.verify().ok
    payload = record.payload
    assert (payload["action"], payload["code"], payload["validated"], payload["guardrail_override"]) == (
        "add",
        "E10.9",
        True,
        True,
    )
    assert payload["rules"] == ["EXCLUDES1_CONFLICT"] and payload["warnings"] == ["NO_EVIDENCE_GIVEN"]
    assert payload["reason"] == "endocrinology documents type 1"
    assert payload["check"]["results"][-1]["rule"] == "EXCLUDES1_CONFLICT"

    # Rejected by the coder, then accepted again: an override again, so a reason again.
    queue.record_action(chart_id, "reject", "E10.9", user="ann", expected_version=2)
    with pytest.raises(OverrideReasonRequiredError, match="accepting it needs a reason"):
        queue.record_action(chart_id, "accept", "E10.9", user="ann", expected_version=3)
    queue.record_action(chart_id, "accept", "E10.9", user="ann", expected_version=3, reason="confirmed")

    # Counted like accepting a rejected suggestion; the chart is an edited one.
    queue.finalise(chart_id, user="ann", expected_version=4)
    overall = queue.metrics().overall
    assert (overall.guardrail_overrides, overall.added, overall.edited_charts) == (1, 1, 1)
    assert overall.override_rate == pytest.approx(1 / 3)  # 1 override over 2 suggested + 1 proposed rejected


def test_an_accepted_new_code_carries_its_warnings_and_the_claim_is_the_one_after_the_change(
    queue: ReviewQueue, chart_id: int
) -> None:
    # Rejecting E11.9 in the same change takes it off the claim: E10.9 no longer conflicts.
    chart = queue.resolve(
        chart_id, user="ann", expected_version=1, actions=[("reject", "E11.9", None), ("add", "E10.9", None)]
    )
    added = chart.codes[-1]
    assert (added.code, added.proposed_status, added.rules, added.warnings) == (
        "E10.9",
        "accepted",
        [],
        ["NO_EVIDENCE_GIVEN"],
    )
    # A replacement is judged on the claim without the code it replaces (E10.9 is already there: I10 -> E11.9
    # would conflict with E10.9, and E11.65 too).
    with pytest.raises(OverrideReasonRequiredError, match="EXCLUDES1_CONFLICT"):
        queue.record_action(chart_id, "replace", "I10", new_code="E11.65", user="ann", expected_version=2)
    chart = queue.record_action(chart_id, "replace", "E10.9", new_code="E11.65", user="ann", expected_version=2)
    assert chart.codes[-1].code == "E11.65" and chart.codes[-1].proposed_status == "accepted"


def test_evidence_that_the_note_negates_is_rejected_span_negated(queue: ReviewQueue, chart_id: int) -> None:
    negated = _span(NOTE, "chest pain")  # "Denies chest pain."
    with pytest.raises(OverrideReasonRequiredError, match="SPAN_NEGATED"):
        queue.record_action(chart_id, "add", "R07.89", user="ann", expected_version=1, evidence=[negated])
    # A quote works as well as offsets; the failing span is kept with the verdict, not as the code's evidence.
    chart = queue.record_action(
        chart_id,
        "add",
        "R07.89",
        user="ann",
        expected_version=1,
        evidence=[EvidenceSpan(text="chest pain")],
        reason="patient called back: the pain is new",
    )
    added = chart.codes[-1]
    assert added.rules == ["SPAN_NEGATED"] and added.evidence == []
    assert added.check is not None and added.check.evidence_given
    assert [(e.start, e.end) for e in added.check.rejected_evidence] == [(negated.start, negated.end)]
    shown = chart.to_display(show_text=False)["codes"][-1]["check"]
    assert shown["rejected_evidence"] == [{"start": negated.start, "end": negated.end, "chars": 10}]


def test_a_wrong_side_replacement_with_evidence_is_rejected_laterality_conflict(
    queue: ReviewQueue, settings: Settings
) -> None:
    chart_id = queue.enqueue(_decision([_ok("M17.12", KNEE, KNEE_NOTE)], note=KNEE_NOTE))
    with pytest.raises(OverrideReasonRequiredError, match="LATERALITY_CONFLICT") as caught:
        queue.record_action(
            chart_id,
            "replace",
            "M17.12",
            new_code="M17.11",
            user="ann",
            expected_version=1,
            evidence=[_span(KNEE_NOTE, KNEE)],
        )
    assert caught.value.rules == {"M17.11": ["LATERALITY_CONFLICT"]}
    assert "left" in caught.value.details[0]["reasons"][0]["reason"]
    # The same replacement without evidence is judged on the code and claim only: accepted, with the warning.
    chart = queue.record_action(chart_id, "replace", "M17.12", new_code="M17.11", user="ann", expected_version=1)
    assert chart.codes[-1].warnings == ["NO_EVIDENCE_GIVEN"] and chart.codes[-1].replaces == "M17.12"
    with AuditLog(settings) as log:
        payload = log.records(chart_id=chart_id, event_type="code_action")[-1].payload
        assert log.verify().ok
    assert (payload["new_code"], payload["guardrail_override"], payload["rules"]) == ("M17.11", False, [])


def test_new_codes_that_cannot_be_billed_are_refused_even_with_a_reason(queue: ReviewQueue, chart_id: int) -> None:
    with pytest.raises(UnknownCodeError):
        queue.record_action(chart_id, "add", "E11.99", user="ann", expected_version=1, reason="sure")
    with pytest.raises(InputError, match="header"):
        queue.record_action(chart_id, "add", "E11", user="ann", expected_version=1, reason="sure")
    with pytest.raises(InputError, match="does not add or substitute"):
        queue.resolve(
            chart_id,
            user="ann",
            expected_version=1,
            actions=[("add", "E11.65", None)],
            evidence={"I10": [EvidenceSpan(text="Hypertension")]},
        )
    with pytest.raises(InputError, match="outside the note"):
        queue.record_action(
            chart_id, "add", "E11.65", user="ann", expected_version=1, evidence=[EvidenceSpan(start=5, end=5_000)]
        )
    # A stale version is a conflict, not a verdict on a chart the coder did not see.
    with pytest.raises(ChartConflictError):
        queue.record_action(chart_id, "add", "E10.9", user="ann", expected_version=7)
    assert queue.get(chart_id).version == 1


def test_without_validators_new_codes_are_stored_unchecked(
    settings: Settings, chart_id: int, queue: ReviewQueue
) -> None:
    with ReviewQueue(settings) as plain:
        with pytest.raises(InputError, match="no validators"):
            plain.record_action(
                chart_id, "add", "E10.9", user="ann", expected_version=1, evidence=[EvidenceSpan(text="diabetes")]
            )
        chart = plain.record_action(chart_id, "add", "E10.9", user="ann", expected_version=1)
    added = chart.codes[-1]
    assert (added.proposed_status, added.check, added.rules) == (None, None, [])
    with AuditLog(settings) as log:
        assert log.records(chart_id=chart_id, event_type="code_action")[-1].payload["validated"] is False


def test_a_database_from_before_the_checks_is_migrated(settings: Settings, pipeline: ValidatorPipeline) -> None:
    with ReviewQueue(settings) as plain:
        chart_id = plain.enqueue(_decision([_ok("E11.9", "type 2 diabetes")]))
        plain.record_action(chart_id, "add", "I10", user="ann", expected_version=1)
    # Back to revision 0003, as the revision before left it: no check column (nor 0005's users table).
    conn = sqlite3.connect(settings.data_dir / "review.sqlite", isolation_level=None)
    conn.execute("ALTER TABLE chart_codes DROP COLUMN check_json")
    conn.execute("DROP TABLE users")
    conn.execute("UPDATE alembic_version SET version_num = '0003'")
    conn.close()
    with ReviewQueue(settings, validators=pipeline) as queue:
        old = queue.get(chart_id).codes[-1]
        assert (old.code, old.check, old.proposed_status) == ("I10", None, None)  # added unchecked: stays so
        chart = queue.record_action(chart_id, "add", "E10.9", user="ann", expected_version=2, reason="type 1 too")
        assert chart.codes[-1].check is not None and chart.codes[-1].rules == ["EXCLUDES1_CONFLICT"]
    with ReviewStore(settings) as store, store.read() as c:
        assert ReviewStore.revision(c) == "0005"


# -- CLI ----------------------------------------------------------------------------------------


@pytest.fixture()
def cli_data(settings: Settings, chart_id: int, codeset: ICD10CMCodeSet) -> list[str]:
    (settings.data_dir / "codesets").symlink_to(codeset.path.parent, target_is_directory=True)
    return ["--data-dir", str(settings.data_dir)]


def test_cli_add_rejected_needs_a_reason(
    cli_data: list[str], chart_id: int, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [*cli_data, "queue", "resolve", str(chart_id), "--user", "ann"]
    assert main([*argv, "--add", "E10.9"]) == 2
    err = capsys.readouterr().err
    assert "EXCLUDES1_CONFLICT" in err and "needs a reason" in err and "E11.9" in err
    start = NOTE.index("chest pain")
    assert main([*argv, "--add", "R07.89", "--evidence", f"R07.89={start}:{start + 10}"]) == 2
    assert "SPAN_NEGATED" in capsys.readouterr().err
    assert main([*argv, "--add", "R07.89", "--quote", "I10=Hypertension"]) == 2
    assert "does not add or substitute" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--add", "R07.89", "--evidence", "R07.89=twelve"])
    assert exc.value.code == 2

    assert main([*argv, "--add", "E10.9", "--reason", "endocrinology documents type 1"]) == 0
    out = capsys.readouterr().out
    assert "E10.9: REJECTED by the validators (kept against them" in out and "x EXCLUDES1_CONFLICT" in out
    assert "! NO_EVIDENCE_GIVEN" in out
    assert main([*cli_data, "queue", "show", str(chart_id), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["codes"][-1]
    assert (shown["code"], shown["proposed_status"], shown["check"]["rules"]) == (
        "E10.9",
        "rejected",
        ["EXCLUDES1_CONFLICT"],
    )
    assert main([*cli_data, "audit", "verify"]) == 0
    with AuditLog(settings) as log:
        payload = log.records(chart_id=chart_id, event_type="code_action")[-1].payload
    assert payload["guardrail_override"] is True and payload["rules"] == ["EXCLUDES1_CONFLICT"]
