"""The validators' acceptance test: the red-team set is rejected 100% with the right rule, the sound
set is accepted at least 95%. Both sets and their notes are the project's own (evals/data)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from medcode.config import Settings
from medcode.evals.redteam import DATA_DIR, load_jsonl, load_notes, run_items, summarize
from medcode.validators import RULE_IDS, ValidatorPipeline

REDTEAM = load_jsonl(DATA_DIR / "redteam.jsonl")
SOUND = load_jsonl(DATA_DIR / "sound.jsonl")
NOTES = load_notes()


@pytest.fixture(scope="module")
def pipeline(session_settings: Settings) -> Iterator[ValidatorPipeline]:
    with ValidatorPipeline(session_settings) as p:
        yield p


def test_sets_are_large_and_cover_every_category() -> None:
    assert len(REDTEAM) >= 200 and len(SOUND) >= 100
    categories = Counter(item["category"] for item in REDTEAM)
    for category in (
        "invented_code", "header_code", "seventh_character", "fabricated_quote", "negated", "family_history",
        "hypothetical", "uncertain", "historical", "unrelated_quote", "excludes1", "prompt_injection",
    ):  # fmt: skip
        assert categories[category] >= 5, category
    expected = {rule for item in REDTEAM for rule in item["expect_rules"]}
    assert expected <= set(RULE_IDS)
    warn_only = {
        "USE_ADDITIONAL",
        "SYMPTOM_INTEGRAL",
        "MORE_SPECIFIC_AVAILABLE",
        "DOCUMENTATION_GAP",
        "NO_EVIDENCE_GIVEN",
    }
    # every rejecting rule is exercised; LATERALITY_CONFLICT and ENCOUNTER_CONFLICT by the swaps made from
    # gold (tests/test_validators_specificity.py)
    assert expected >= set(RULE_IDS) - warn_only - {"LATERALITY_CONFLICT", "ENCOUNTER_CONFLICT"}
    assert all(item["note_id"] in NOTES for item in REDTEAM + SOUND)


@pytest.mark.slow
def test_redteam_is_rejected_with_the_right_rule(pipeline: ValidatorPipeline) -> None:
    outcomes = run_items(pipeline, REDTEAM, NOTES)
    failures = [f"{o.id} [{o.category}] {o.detail}" for o in outcomes if not o.passed]
    assert not failures, "\n".join(failures)
    assert summarize(outcomes).rate == 1.0


@pytest.mark.slow
def test_sound_proposals_are_accepted(pipeline: ValidatorPipeline) -> None:
    outcomes = run_items(pipeline, SOUND, NOTES)
    codes = sum(o.codes for o in outcomes)
    accepted = sum(o.accepted_codes for o in outcomes)
    false_rejection = 1 - accepted / codes
    detail = "\n".join(f"{o.id}: {o.detail}" for o in outcomes if not o.passed)
    assert false_rejection <= 0.05, f"false-rejection rate {false_rejection:.3f}\n{detail}"
    assert summarize(outcomes).rate >= 0.95, detail
