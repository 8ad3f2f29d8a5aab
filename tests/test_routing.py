"""Routing policy: human-assisted by default; auto only when every condition holds."""

from __future__ import annotations

import random

import pytest

from medcode.agent._routing import RoutingPolicy, reason_kind
from medcode.config import load_settings
from medcode.errors import ConfigError
from medcode.validators import CodeVerdict, RuleResult


def _ok(code: str, confidence: float | None = 0.97) -> CodeVerdict:
    return CodeVerdict(code=code.lower(), canonical=code, status="accepted", confidence=confidence)


def _warned(code: str, rule: str) -> CodeVerdict:
    warning = RuleResult(rule=rule, severity="warn", reason="check it", data_version="test")
    return CodeVerdict(code=code, canonical=code, status="accepted", confidence=0.99, warnings=[warning])


def _rejected(code: str, *rules: str, confidence: float | None = 1.0) -> CodeVerdict:
    return CodeVerdict(code=code, canonical=code, status="rejected", confidence=confidence, rules=list(rules))


AUTONOMOUS = RoutingPolicy(auto_threshold=0.9, autonomy_note_types=frozenset({"progress note"}))


def test_default_settings_are_human_assisted() -> None:
    policy = RoutingPolicy.from_settings(load_settings())
    assert policy.human_assisted
    decision = policy.decide([_ok("E11.9", 1.0)], "progress note")
    assert decision.decision == "review"
    assert decision.reasons == ["HUMAN_ASSISTED_DEFAULT"]
    assert decision.threshold == 0.9


def test_auto_only_when_everything_holds() -> None:
    decision = AUTONOMOUS.decide([_ok("E11.9"), _ok("I10", 0.91)], "Progress  Note")
    assert decision.decision == "auto"
    assert decision.reasons == []


def test_settings_allow_list_and_threshold_come_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDCODE_ROUTING_AUTONOMY_NOTE_TYPES", '["Progress Note"]')
    monkeypatch.setenv("MEDCODE_ROUTING_AUTO_THRESHOLD", "0.5")
    policy = RoutingPolicy.from_settings(load_settings())
    assert policy.autonomy_note_types == frozenset({"progress note"})
    assert policy.decide([_ok("E11.9", 0.6)], "progress note").decision == "auto"


def test_blank_allow_list_entry_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="empty note type"):
        RoutingPolicy.from_settings(load_settings(routing_autonomy_note_types=["  "]))


@pytest.mark.parametrize("note_type", ["discharge summary", None, ""])
def test_note_type_off_the_allow_list_is_reviewed(note_type: str | None) -> None:
    decision = AUTONOMOUS.decide([_ok("E11.9")], note_type)
    assert decision.decision == "review"
    assert decision.reasons == ["NOTE_TYPE_NOT_AUTONOMOUS"]


def test_confidence_must_be_strictly_above_threshold_and_known() -> None:
    decision = AUTONOMOUS.decide([_ok("E11.9", 0.9), _ok("I10", None), _ok("J45.909", 0.95)], "progress note")
    assert decision.decision == "review"
    assert decision.reasons == ["LOW_CONFIDENCE:E11.9", "LOW_CONFIDENCE:I10"]


def test_rejected_code_is_never_auto_whatever_its_confidence() -> None:
    decision = AUTONOMOUS.decide(
        [_ok("E11.9"), _rejected("R07.9", "SPAN_NEGATED", "SPAN_NOT_IN_NOTE"), _rejected("X99.99")], "progress note"
    )
    assert decision.decision == "review"
    assert decision.reasons == [
        "CODE_REJECTED:R07.9:SPAN_NEGATED",
        "CODE_REJECTED:R07.9:SPAN_NOT_IN_NOTE",
        "CODE_REJECTED:X99.99:UNSPECIFIED",
    ]


def test_warning_forces_review() -> None:
    decision = AUTONOMOUS.decide([_warned("E11.9", "EXCLUDES2_PAIR")], "progress note")
    assert decision.reasons == ["WARNING:E11.9:EXCLUDES2_PAIR"]


def test_no_codes_is_reviewed() -> None:
    decision = AUTONOMOUS.decide([], "progress note")
    assert (decision.decision, decision.reasons) == ("review", ["NO_CODES"])


def test_llm_unavailable_is_always_reviewed() -> None:
    decision = AUTONOMOUS.decide([_ok("E11.9")], "progress note", extra_reasons=["LLM_UNAVAILABLE", "LLM_UNAVAILABLE"])
    assert (decision.decision, decision.reasons) == ("review", ["LLM_UNAVAILABLE"])
    with pytest.raises(ValueError, match="non-empty"):
        AUTONOMOUS.decide([_ok("E11.9")], "progress note", extra_reasons=[" "])


def test_all_reasons_are_listed_not_only_the_first() -> None:
    decision = RoutingPolicy().decide([_rejected("R07.9", "SPAN_NEGATED"), _ok("I10", 0.2)], None, ["LLM_UNAVAILABLE"])
    assert [reason_kind(r) for r in decision.reasons] == [
        "LLM_UNAVAILABLE",
        "HUMAN_ASSISTED_DEFAULT",
        "CODE_REJECTED",
        "LOW_CONFIDENCE",
    ]


def test_random_verdict_sets_route_auto_only_when_all_conditions_hold() -> None:
    rng = random.Random(7)
    autos = 0
    for _ in range(2_000):
        verdicts = []
        for i in range(rng.randint(0, 4)):
            kind = rng.choice(["ok", "ok", "ok", "low", "none", "warn", "rejected"])
            code = f"E{10 + i}.9"
            if kind == "ok":
                verdicts.append(_ok(code, rng.uniform(0.905, 1.0)))
            elif kind == "low":
                verdicts.append(_ok(code, rng.uniform(0.0, 0.9)))
            elif kind == "none":
                verdicts.append(_ok(code, None))
            elif kind == "warn":
                verdicts.append(_warned(code, "W"))
            else:
                verdicts.append(_rejected(code, "R", confidence=rng.uniform(0.0, 1.0)))
        note_type = rng.choice(["progress note", "op note", None])
        decision = AUTONOMOUS.decide(verdicts, note_type)
        expected_auto = (
            note_type == "progress note"
            and bool(verdicts)
            and all(
                v.status == "accepted" and not v.warnings and v.confidence is not None and v.confidence > 0.9
                for v in verdicts
            )
        )
        assert (decision.decision == "auto") == expected_auto
        assert (decision.reasons == []) == expected_auto
        autos += expected_auto
    assert 50 < autos < 1_000  # both outcomes were exercised
