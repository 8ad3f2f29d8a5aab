"""Specificity guardrails: the wrong sibling (side, encounter, 'with'/'without', type, stage, acuity) is rejected.

Crafted notes test each rule; the red team made from gold (``evals/data/swaps.jsonl``, written by
``tools/make_swaps.py``) tests the catch rate by swap kind and the false-rejection rate on the
unswapped gold pairs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from medcode.codesets import ICD10CMCodeSet
from medcode.config import Settings
from medcode.evals._dataset import read_dataset
from medcode.evals.redteam import DATA_DIR, SWAP_KINDS, load_jsonl, run_swaps, summarize_swaps
from medcode.validators import RULE_IDS, CodeVerdict, ValidationContext, ValidatorPipeline, parse_proposal
from medcode.validators._data import load_rules_data
from tools.make_swaps import GOLD_PATH, SWAPS_PATH, SwapMaker, _gold_spans, _records

SPECIFICITY_REJECTS = ("SPECIFICITY_UNSUPPORTED", "LATERALITY_CONFLICT", "ENCOUNTER_CONFLICT")


@pytest.fixture(scope="module")
def pipeline(session_settings: Settings) -> Iterator[ValidatorPipeline]:
    with ValidatorPipeline(session_settings) as p:
        yield p


def _verdict(
    pipeline: ValidatorPipeline, note: str, code: str, quote: str, *, setting: str = "outpatient"
) -> CodeVerdict:
    start = note.index(quote)
    proposal = parse_proposal(
        {"codes": [{"code": code, "evidence": [{"text": quote, "start": start, "end": start + len(quote)}]}]}
    )
    return pipeline.validate(proposal, ValidationContext(note_text=note, setting=setting)).verdicts[0]  # type: ignore[arg-type]


def _rules(verdict: CodeVerdict) -> list[str]:
    return [r.rule for r in verdict.results]


# ------------------------------------------------------------------------------ reading (no embedder)
def test_rule_ids_and_data_files_are_registered() -> None:
    for rule in (*SPECIFICITY_REJECTS, "MORE_SPECIFIC_AVAILABLE", "DOCUMENTATION_GAP"):
        assert rule in RULE_IDS
    lexicon = load_rules_data().specificity
    assert lexicon.cdi_axes == ["laterality", "acuity", "type"]
    assert "initial" in lexicon.encounter_explicit and "hyperglycemia" in lexicon.cue_phrases


def test_reading_signs_words_binds_numbers_and_finds_axes(pipeline: ValidatorPipeline) -> None:
    an = pipeline.specificity
    r = an.read("Type 2 diabetes mellitus without complications, CKD stage 3a, BMI 32.4")
    assert {"+type_2", "-complic", "+stage_3a", "+bmi_32"} <= r.signed
    assert "+complic" not in r.signed
    assert an.read("Diabetes mellitus type II").signed >= {"+type_2"}
    sides = an.read("R knee pain, L ear fullness; right and left hips").sides
    assert sides == {"right", "left"}
    assert an.read("r/o pneumonia").sides == set()  # a lone letter is a side only before a body part
    assert an.read("Acute on chronic diastolic heart failure").acuity == {"acute_on_chronic"}
    assert an.read("G2P1 at 24 weeks gestation").trimester == {"second"}
    assert an.read("Gastroesophageal reflux without esophagitis").signed >= {"-esophagitis", "+esophag"}


def test_family_comes_from_the_code_set(pipeline: ValidatorPipeline, codeset: ICD10CMCodeSet) -> None:
    an = pipeline.specificity
    e1165 = {m.record.code for m in an.family(codeset.get("E11.65"), codeset).members}
    assert {"E11.9", "E11.22", "E11.649", "E10.65"} <= e1165  # category, and the type-1 twin
    assert "E08.65" not in e1165  # "due to underlying condition": another condition, not a type value
    fracture = an.family(codeset.get("S52.531A"), codeset)
    assert all(m.record.code.endswith("A") for m in fracture.members)
    assert {v.code for v in fracture.variants} >= {"S52.531D", "S52.531S"}
    assert fracture.encounter == "initial"


# ------------------------------------------------------------------------------ each rule
NOTE = """CHIEF COMPLAINT: Follow-up.
HISTORY OF PRESENT ILLNESS: 61-year-old woman for diabetes and knee pain. Fell on ice 2 hours before arrival.
ASSESSMENT AND PLAN:
1. Type 2 diabetes mellitus without complications. A1c 6.8%.
2. Primary osteoarthritis of the left knee.
3. Acute on chronic diastolic heart failure.
4. Chronic kidney disease, stage 3a.
5. Sprain of the right ankle, initial encounter.
6. Heart failure.
7. Osteoarthritis of knee.
8. Cellulitis of the leg.
9. Chronic obstructive pulmonary disease with acute exacerbation.
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    ("code", "quote", "rule"),
    [
        ("E11.65", "Type 2 diabetes mellitus without complications", "SPECIFICITY_UNSUPPORTED"),  # 'with' vs 'without'
        ("E10.9", "Type 2 diabetes mellitus without complications", "SPECIFICITY_UNSUPPORTED"),  # type
        ("N18.32", "Chronic kidney disease, stage 3a", "SPECIFICITY_UNSUPPORTED"),  # stage
        ("I50.31", "Acute on chronic diastolic heart failure", "SPECIFICITY_UNSUPPORTED"),  # acuity
        ("M17.11", "Primary osteoarthritis of the left knee", "LATERALITY_CONFLICT"),
        ("S93.402D", "Sprain of the right ankle, initial encounter", "ENCOUNTER_CONFLICT"),  # also the wrong side
        ("J44.0", "Chronic obstructive pulmonary disease with acute exacerbation", "SPECIFICITY_UNSUPPORTED"),
    ],
)
def test_wrong_sibling_is_rejected(pipeline: ValidatorPipeline, code: str, quote: str, rule: str) -> None:
    verdict = _verdict(pipeline, NOTE, code, quote)
    assert verdict.status == "rejected" and rule in verdict.rules, verdict.results
    result = next(r for r in verdict.results if r.rule == rule)
    assert result.data_version and result.suggestions  # the better sibling is named
    codeset = pipeline.registry.get()
    named = {codeset.get(c).description.lower() for c in (code, *result.suggestions)}
    if quote.lower() not in named:  # reasons never quote the note (only code-set descriptions)
        assert quote.lower() not in result.reason.lower()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("code", "quote"),
    [
        ("E11.9", "Type 2 diabetes mellitus without complications"),
        ("N18.31", "Chronic kidney disease, stage 3a"),
        ("I50.33", "Acute on chronic diastolic heart failure"),
        ("M17.12", "Primary osteoarthritis of the left knee"),
        ("S93.401A", "Sprain of the right ankle, initial encounter"),
        ("J44.1", "Chronic obstructive pulmonary disease with acute exacerbation"),
    ],
)
def test_right_sibling_is_accepted(pipeline: ValidatorPipeline, code: str, quote: str) -> None:
    verdict = _verdict(pipeline, NOTE, code, quote)
    assert verdict.status == "accepted", verdict.results
    assert not set(_rules(verdict)) & set(SPECIFICITY_REJECTS)


@pytest.mark.slow
def test_complication_the_note_does_not_document(pipeline: ValidatorPipeline) -> None:
    note = "ASSESSMENT: Type 2 diabetes mellitus, doing well on metformin.\n"
    verdict = _verdict(pipeline, note, "E11.65", "Type 2 diabetes mellitus")
    assert verdict.rules == ["SPECIFICITY_UNSUPPORTED"] and "nor the note documents" in verdict.results[0].reason
    assert verdict.results[0].suggestions[0] == "E11.9"
    documented = "ASSESSMENT: Type 2 diabetes mellitus, poorly controlled, A1c 9.8%.\n"
    assert _verdict(pipeline, documented, "E11.65", "Type 2 diabetes mellitus").status == "accepted"
    denied = "ROS: denies chest pain.\nASSESSMENT: Coronary artery disease, stable.\n"
    assert _verdict(pipeline, denied, "I25.110", "Coronary artery disease").status == "rejected"


@pytest.mark.slow
def test_a_clause_documented_in_other_words(pipeline: ValidatorPipeline) -> None:
    """R39.198's 'with micturition' is what 'difficulty urinating' says (complication_cues.json)."""
    note = "REVIEW OF SYSTEMS:\nGenitourinary: Reports difficulty urinating.\n"
    assert _verdict(pipeline, note, "R39.198", "Reports difficulty urinating").status == "accepted"
    denied = "REVIEW OF SYSTEMS:\nGenitourinary: Denies urinating at night. Reports difficulty.\n"
    assert _verdict(pipeline, denied, "R39.198", "Reports difficulty").rules == ["SPECIFICITY_UNSUPPORTED"]


@pytest.mark.slow
def test_the_alphabetic_index_choice_of_a_code_is_not_contradicted(pipeline: ValidatorPipeline) -> None:
    """'Hemianopia (heteronymous) H53.47': a member sharing more words (H53.40 '... visual field defects')
    does not contradict the code the Index gives the evidence's words, unless the evidence also names an
    Index term of that member."""
    note = "EXAM:\nVisual field testing reveals bitemporal hemianopia.\nVisual field defect of the left eye.\n"
    quote = "Visual field testing reveals bitemporal hemianopia"
    assert _verdict(pipeline, note, "H53.47", quote).status == "accepted"
    named = _verdict(pipeline, note, "H53.47", "Visual field defect of the left eye")
    assert named.status == "rejected" and "SPECIFICITY_UNSUPPORTED" in named.rules, named.results
    # the Index's default code for a main term does not hide what its subterms name ('Diabetes, with, foot ulcer')
    ulcer = "ASSESSMENT:\nRight non-healing diabetic foot ulcer.\n"
    verdict = _verdict(pipeline, ulcer, "E11.9", "Right non-healing diabetic foot ulcer")
    assert verdict.status == "rejected" and "E11.621" in verdict.results[0].suggestions, verdict.results


@pytest.mark.slow
def test_encounter_from_the_note_only_warns(pipeline: ValidatorPipeline) -> None:
    note = "HPI: Here for follow-up of the fracture, healing well.\nASSESSMENT: Closed fracture of the right radius.\n"
    verdict = _verdict(pipeline, note, "S52.91XA", "Closed fracture of the right radius")
    assert verdict.status == "accepted"
    warning = next(w for w in verdict.warnings if w.rule == "ENCOUNTER_CONFLICT")
    assert "S52.91XD" in warning.suggestions


@pytest.mark.slow
def test_bilateral_is_coded_with_both_sides_when_the_family_has_no_bilateral_code(
    pipeline: ValidatorPipeline,
) -> None:
    note = "ASSESSMENT: Bilateral medial epicondylitis.\n"
    assert _verdict(pipeline, note, "M77.01", "Bilateral medial epicondylitis").status == "accepted"
    knees = "ASSESSMENT: Primary osteoarthritis of both knees.\n"  # M17.0 is the bilateral code
    assert "LATERALITY_CONFLICT" in _verdict(pipeline, knees, "M17.11", "Primary osteoarthritis of both knees").rules


@pytest.mark.slow
def test_more_specific_available_names_the_better_code(pipeline: ValidatorPipeline) -> None:
    note = "ASSESSMENT: Cellulitis of the right lower leg.\n"
    verdict = _verdict(pipeline, note, "L03.119", "Cellulitis of the right lower leg")
    assert verdict.status == "accepted"
    warning = next(w for w in verdict.warnings if w.rule == "MORE_SPECIFIC_AVAILABLE")
    assert "L03.115" in warning.suggestions and warning.severity == "warn"


@pytest.mark.slow
def test_a_less_specific_code_beside_the_sibling_it_names_is_a_duplicate(pipeline: ValidatorPipeline) -> None:
    # F17.200 warns MORE_SPECIFIC_AVAILABLE (F17.210: the note says cigarettes) when alone, and is rejected as the
    # same condition reported twice when F17.210 is coded too; F17.210 stands.
    note = "ASSESSMENT: Nicotine dependence. Type 2 diabetes.\nHe smokes cigarettes, a pack a day.\n"

    def codes(*pairs: tuple[str, str], claim: tuple[str, ...] = ()) -> list[CodeVerdict]:
        proposal = parse_proposal({"codes": [{"code": c, "evidence": [{"text": q}]} for c, q in pairs]})
        ctx = ValidationContext(note_text=note, setting="outpatient", claim_codes=claim)
        return pipeline.validate(proposal, ctx).verdicts

    (alone,) = codes(("F17.200", "Nicotine dependence"))
    assert alone.status == "accepted"
    assert any(w.rule == "MORE_SPECIFIC_AVAILABLE" and "F17.210" in w.suggestions for w in alone.warnings)
    unspecified, specific = codes(("F17.200", "Nicotine dependence"), ("F17.210", "He smokes cigarettes, a pack a day"))
    assert unspecified.rules == ["LESS_SPECIFIC_DUPLICATE"] and specific.status == "accepted"
    (reason,) = [r for r in unspecified.results if r.rule == "LESS_SPECIFIC_DUPLICATE"]
    assert reason.related_codes == ["F17.210"] and "guideline I.B.2" in reason.reason
    (on_claim,) = codes(("F17.200", "Nicotine dependence"), claim=("F17.210",))  # already on the claim counts
    assert on_claim.rules == ["LESS_SPECIFIC_DUPLICATE"]
    assert any("already on the claim" in r.reason for r in on_claim.results if r.rule == "LESS_SPECIFIC_DUPLICATE")
    # A code the warning does not name is another condition, not a duplicate.
    other, _ = codes(("F17.200", "Nicotine dependence"), ("E11.9", "Type 2 diabetes"))
    assert other.status == "accepted" and "LESS_SPECIFIC_DUPLICATE" not in other.rules


@pytest.mark.slow
def test_documentation_gap_reads_as_a_query(pipeline: ValidatorPipeline) -> None:
    verdict = _verdict(pipeline, "ASSESSMENT: Heart failure, on furosemide.\n", "I50.9", "Heart failure")
    assert verdict.status == "accepted"
    gap = next(w for w in verdict.warnings if w.rule == "DOCUMENTATION_GAP")
    assert gap.reason.startswith("Query:") and "acute" in gap.reason and "systolic" in gap.reason.lower()
    knee = _verdict(pipeline, "ASSESSMENT: Osteoarthritis of knee.\n", "M17.9", "Osteoarthritis of knee")
    assert any(w.rule == "DOCUMENTATION_GAP" and "laterality" in w.reason for w in knee.warnings)
    sided = _verdict(
        pipeline, "HPI: left knee pain.\nASSESSMENT: Osteoarthritis of knee.\n", "M17.9", "Osteoarthritis of knee"
    )
    assert not any(w.rule == "DOCUMENTATION_GAP" and "laterality" in w.reason for w in sided.warnings)


# ------------------------------------------------------------------------------ the red team made from gold
def test_swaps_file_matches_generator(codeset: ICD10CMCodeSet) -> None:
    docs = list(read_dataset(GOLD_PATH, strict=True))
    records, made, _ = _records(SwapMaker(codeset), docs, _gold_spans(docs), "gold.jsonl")
    rendered = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    assert SWAPS_PATH.read_text(encoding="utf-8") == rendered, "run python -m tools.make_swaps"
    assert made["gold"] >= 200 and all(made[k] >= 20 for k in SWAP_KINDS)


@pytest.mark.slow
def test_contradicted_swaps_are_rejected_and_gold_pairs_accepted(pipeline: ValidatorPipeline) -> None:
    records = load_jsonl(DATA_DIR / "swaps.jsonl")
    docs = {d.id: d for d in read_dataset(DATA_DIR / "gold.jsonl")}
    outcomes = run_swaps(pipeline, records, docs)
    summary = summarize_swaps(outcomes)
    assert summary.catch_rate >= 0.9, summary
    for kind, (rejected, total) in summary.by_kind.items():
        assert rejected >= 0.9 * total, (kind, rejected, total)
    assert summary.false_rejection_rate <= 0.02, [o for o in outcomes if o.kind == "gold" and o.rejected]
    exercised = {rule for o in outcomes if o.kind != "gold" for rule in o.rules}
    assert set(SPECIFICITY_REJECTS) <= exercised


@pytest.mark.slow
def test_a_without_code_is_contradicted_by_the_note(pipeline: ValidatorPipeline) -> None:
    note = (
        "HPI: type 2 diabetes, on metformin.\n"
        "ASSESSMENT: Type 2 diabetes mellitus with diabetic chronic kidney disease, stage 3a.\n"
    )
    verdict = _verdict(pipeline, note, "E11.9", "type 2 diabetes")
    assert verdict.rules == ["SPECIFICITY_UNSUPPORTED"] and verdict.results[0].suggestions == ["E11.22"]
    assert _verdict(pipeline, note, "E11.22", "type 2 diabetes").status == "accepted"
    # a catch-all code is less specific, not wrong: a warning that names the better code
    smoker = "ASSESSMENT: Nicotine dependence.\nHe smokes cigarettes, a pack a day.\n"
    verdict = _verdict(pipeline, smoker, "F17.200", "Nicotine dependence")
    assert verdict.status == "accepted"
    assert any(w.rule == "MORE_SPECIFIC_AVAILABLE" and "F17.210" in w.suggestions for w in verdict.warnings)
