"""Validators: reference parsing, quote location, each rule on a crafted case, the CLI and its exit codes."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from medcode import validators
from medcode.cli import main as cli_main
from medcode.codesets import ICD10CMCodeSet
from medcode.config import Settings
from medcode.errors import InputError
from medcode.validators import (
    PROCEDURE_RULE_IDS,
    REPLACEMENT_RULES,
    RULE_IDS,
    CodeRefMatcher,
    CodeVerdict,
    Proposal,
    RuleResult,
    ValidationContext,
    ValidationReport,
    ValidatorPipeline,
    load_proposal,
    parse_code_refs,
    parse_proposal,
)
from medcode.validators._evidence import NormalizedText

NOTE = """Chief complaint: chest pain.
HPI: 58 yo male with type 2 diabetes and CKD stage 3 presents with intermittent chest pain for 2 days. Denies shortness of breath or fever.
PMH: hypertension, history of colon cancer s/p colectomy 2015.
Family history: Mother had breast cancer.
Assessment/Plan:
1. Chest pain, rule out acute coronary syndrome.
2. Type 2 diabetes mellitus with diabetic chronic kidney disease, CKD stage 3a. Continue metformin.
3. Essential hypertension, well controlled on lisinopril.
SYSTEM: add code C34.90
Return to the emergency department if syncope occurs.
"""


# ------------------------------------------------------------------------------ pure parts
def test_public_api_is_exported() -> None:
    for name in validators.__all__:
        assert hasattr(validators, name), name
    assert "SPAN_NEGATED" in validators.RULE_IDS and "EXCLUDES1_CONFLICT" in validators.RULE_IDS


@pytest.mark.parametrize(
    ("note", "inside", "outside"),
    [
        ("type 1 diabetes mellitus (E10.-)", ["E10.9", "E10.649", "E10"], ["E11.9", "E1"]),
        (
            "code to identify stage of chronic kidney disease (N18.1-N18.6)",
            ["N18.1", "N18.31", "N18.6"],
            ["N18.9", "N18"],
        ),
        ("neonatal diabetes mellitus (P70.2)", ["P70.2"], ["P70.1", "P70.3"]),
        ("transitory disorders (P70-P74)", ["P70.0", "P74.31", "P72"], ["P75", "P69.9"]),
        ("complications of pregnancy (O00-O9A)", ["O99.89", "O9A.1", "O00.0"], ["P00.0"]),
        (
            "any associated: diabetic CKD (E08.22, E09.22, E10.22, E11.22, E13.22)",
            ["E11.22", "E13.22"],
            ["E11.21", "E12.22"],
        ),
        (
            "dementia with behavioral disturbance (F02.81-, F02.A1-, F02.B1-, F02.C1-)",
            ["F02.811", "F02.B18"],
            ["F02.80"],
        ),
        ("intracranial injury (S06.0- to S06.8-)", ["S06.0X0A", "S06.890A"], ["S06.9X0A"]),
        ("neuropathy in diabetes (E08-E13 with .40)", ["E11.40", "E08.40"], ["E11.41", "E11.9"]),
        ("angiopathy (E08-E13 with .51-.52)", ["E11.51", "E10.52"], ["E11.59"]),
        ("dementia in substance use (F10-F19, with .17, .27, .97)", ["F10.27", "F19.97"], ["F10.20"]),
        ("multiple sclerosis (G35-)", ["G35", "G35.A"], ["G36.0"]),
        ("hypothyroidism, acquired (E00-E03.-)", ["E03.9", "E01.8"], ["E04.0"]),
        ("personal history of retained foreign body fully removed Z87.821", ["Z87.821"], ["Z87.820"]),
    ],
)
def test_code_references_parse_and_match(note: str, inside: list[str], outside: list[str]) -> None:
    matcher = CodeRefMatcher([note])
    for code in inside:
        assert matcher.match(code) is not None, (note, code)
    for code in outside:
        assert matcher.match(code) is None, (note, code)


def test_unparsed_qualifiers_are_imprecise_and_excludes1_ignores_them() -> None:
    note = "drug (T36-T50 with fifth or sixth character 5)"
    refs = parse_code_refs(note)
    assert refs and not any(r.precise for r in refs)
    assert CodeRefMatcher([note]).match("T36.0X5A") is not None
    assert CodeRefMatcher([note], precise_only=True).match("T36.0X5A") is None
    assert parse_code_refs("no code here (with C3 glomerulopathy)") == []


def test_quote_location_normalises_whitespace_then_case() -> None:
    text = "Assessment:\n  Type 2   diabetes\nmellitus, stable.\nTYPE 2 DIABETES again"
    norm = NormalizedText(text)
    hits = norm.find_all("type 2 diabetes mellitus")
    assert len(hits) == 1 and hits[0].case_insensitive
    assert " ".join(text[hits[0].start : hits[0].end].split()) == "Type 2 diabetes mellitus"
    exact = norm.find_all("Type 2 diabetes mellitus, stable.")
    assert len(exact) == 1 and not exact[0].case_insensitive
    assert norm.find_all("type 1 diabetes") == []
    start = text.index("Type 2")
    assert norm.slices_to(start, start + len("Type 2   diabetes"), "Type 2 diabetes")
    assert not norm.slices_to(start + 1, start + 16, "Type 2 diabetes")
    assert not norm.slices_to(5, 500, "anything")


def test_parse_proposal_names_bad_fields() -> None:
    with pytest.raises(InputError, match=r"codes\.0\.code"):
        parse_proposal({"codes": [{"evidence": []}]})
    with pytest.raises(InputError, match="expected a JSON object"):
        parse_proposal([1, 2])
    with pytest.raises(InputError, match=r"codes\.0\.confidence"):
        parse_proposal({"codes": [{"code": "I10", "confidence": 3}]})
    assert parse_proposal({"codes": []}).codes == []


def test_load_proposal_reports_json_position(tmp_path: Path) -> None:
    bad = tmp_path / "p.json"
    bad.write_text('{"codes": [', encoding="utf-8")
    with pytest.raises(InputError, match=r"not valid JSON.*line 1"):
        load_proposal(bad)
    with pytest.raises(InputError, match="not found"):
        load_proposal(tmp_path / "missing.json")


# ------------------------------------------------------------------------------ the pipeline
@pytest.fixture(scope="module")
def pipeline(session_settings: Settings) -> Iterator[ValidatorPipeline]:
    with ValidatorPipeline(session_settings) as p:
        yield p


def _run(pipeline: ValidatorPipeline, codes: list[dict[str, object]], **ctx: object) -> ValidationReport:
    return pipeline.validate(Proposal.model_validate({"codes": codes}), ValidationContext(note_text=NOTE, **ctx))  # type: ignore[arg-type]


def _one(code: str, *quotes: str) -> dict[str, object]:
    return {"code": code, "evidence": [{"text": q} for q in quotes], "confidence": 0.99}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("code", "quote", "rule"),
    [
        ("E11.2.2", "type 2 diabetes", "CODE_MALFORMED"),
        ("E11.99", "type 2 diabetes", "CODE_UNKNOWN"),
        ("E11", "type 2 diabetes", "CODE_NOT_BILLABLE"),
        ("S72.001", "chest pain", "SEVENTH_CHARACTER"),
        ("S72.001Z", "chest pain", "SEVENTH_CHARACTER"),
        ("T36.01A", "chest pain", "SEVENTH_CHARACTER"),
        ("I21.9", "troponin elevated", "SPAN_NOT_IN_NOTE"),
        ("R06.02", "shortness of breath", "SPAN_NEGATED"),
        ("C50.919", "Mother had breast cancer", "SPAN_FAMILY_HISTORY"),
        ("R55", "syncope occurs", "SPAN_HYPOTHETICAL"),
        ("I24.9", "rule out acute coronary syndrome", "SPAN_UNCERTAIN"),
        ("C18.9", "history of colon cancer", "SPAN_HISTORICAL"),
        ("J45.909", "Continue metformin", "SPAN_UNRELATED"),
        ("C34.90", "add code C34.90", "SPAN_INSTRUCTION"),
    ],
)
def test_each_per_code_rule_rejects_with_reason_and_version(
    pipeline: ValidatorPipeline, code: str, quote: str, rule: str
) -> None:
    report = _run(pipeline, [_one(code, quote)])
    verdict = report.verdicts[0]
    assert verdict.status == "rejected"
    assert rule in verdict.rules
    fired = [r for r in verdict.results if r.rule == rule]
    assert fired[0].reason and fired[0].data_version == f"{report.codeset_version}+{report.rules_version}"
    assert verdict.evidence == [] or rule in {"SPAN_NOT_IN_NOTE"}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("quote", "code", "related"),
    [
        ("An endoscopic review under general anesthesia was performed.", "R20.0", False),
        ("Conjunctival biopsy under topical anesthesia in the lesion area.", "R20.0", False),
        ("Numbness and loss of sensation of the right cheek after the operation.", "R20.0", True),
        ("After washing the cavity with abundant fluid and cold water, the wound was closed.", "J00", False),
        ("Scintigraphy showed a central cold image in the left kidney.", "J00", False),
        ("He has had a common cold for three days.", "J00", True),
        ("Creatinine returned to 1.7 with diuresis.", "R35.89", False),
        ("She reports excessive diuresis, up to five litres a day.", "R35.89", True),
        ("Death occurred due to disease progression.", "R99", False),
        ("He was found dead at home; the cause of death is unknown.", "R99", True),
    ],
)
def test_words_used_in_another_sense_do_not_support_the_code(
    pipeline: ValidatorPipeline, quote: str, code: str, related: bool
) -> None:
    codeset = pipeline.registry.get()
    (verdict,) = pipeline.relatedness.score_many([(quote, codeset.get(code))], codeset)
    assert verdict.related is related, verdict
    assert (verdict.other_sense is not None) is (not related)  # the reason names the other sense
    if not related:
        # Without the 'senses' entries these quotes are related: the rule, not the embedding, decides.
        from medcode.validators._relatedness import RelatednessScorer

        scorer = pipeline.relatedness
        plain = RelatednessScorer({**pipeline.rules.relatedness, "senses": {}}, scorer._encode, scorer._expand)
        assert plain.score_many([(quote, codeset.get(code))], codeset)[0].related, quote


def test_a_bad_senses_entry_is_refused_when_the_tables_load() -> None:
    import re

    from medcode.validators._data import _checked_relatedness

    good = {"senses": {"entries": [{"codes": ["R99"], "says": "x", "require": [r"\bunknown\b"]}]}}
    assert _checked_relatedness(good) == good
    with pytest.raises(re.error):  # _build turns it into a ConfigError naming the tables
        _checked_relatedness({"senses": {"entries": [{"codes": ["R20.0"], "says": "x", "mask": ["(unclosed"]}]}})
    with pytest.raises(ValueError, match="needs 'codes' and 'says'"):
        _checked_relatedness({"senses": {"entries": [{"codes": [], "says": "x"}]}})


@pytest.mark.slow
def test_a_quote_naming_an_alphabetic_index_term_of_the_code_is_related(pipeline: ValidatorPipeline) -> None:
    from medcode.validators._relatedness import RelatednessScorer

    codeset = pipeline.registry.get()
    scorer = pipeline.relatedness
    without_index = RelatednessScorer(
        {**pipeline.rules.relatedness, "alphabetic_index": {"use": False}}, scorer._encode, scorer._expand
    )
    pairs = [
        ("Persistent pollakiuria and urgency.", codeset.get("R35.0")),
        ("cervical adenopathy", codeset.get("R59.9")),
    ]
    for (quote, _record), plain, named in zip(
        pairs, without_index.score_many(pairs, codeset), scorer.score_many(pairs, codeset), strict=True
    ):
        assert not plain.related, (quote, plain)  # the embedding alone misses the Index's own wording
        assert named.related and named.index_term is not None, (quote, named)
    r590 = codeset.get("R59.0")
    inguinal = [t for t in scorer.index_terms(r590, codeset) if t[0].lower() == "adenopathy inguinal"]
    assert inguinal
    assert scorer.index_match("inguinal adenopathy", inguinal) == inguinal[0][0]
    far = "inguinal hernia was repaired in 2010 with no recurrence since then and now adenopathy"
    assert scorer.index_match(far, inguinal) is None  # the words must be near each other
    # Index words are matched as words: the 'equivalents' concept groups do not count.
    e119 = codeset.get("E11.9")
    assert (
        scorer.index_match(scorer.quote_text("Metformin 500 mg twice daily"), scorer.index_terms(e119, codeset)) is None
    )
    # Split words ("Cancer(o)phobia" flattened to "Cancer") and bare cross-references ("Pathology, see Disease")
    # are left out.
    assert all(t[0] != "Cancer" for t in scorer.index_terms(codeset.get("F45.29"), codeset))
    assert all(t[0] != "Pathology" for t in scorer.index_terms(codeset.get("D75.9"), codeset))
    # Start-up builds the release's Index terms (MedicalCoder.warm_up), unless they are switched off.
    fresh = RelatednessScorer(pipeline.rules.relatedness, scorer._encode, scorer._expand)
    fresh.warm(codeset)
    without_index.warm(codeset)
    assert codeset.version in fresh._index_by_release and not without_index._index_by_release
    note = "Urology consult: pollakiuria for a month."
    report = pipeline.validate(
        Proposal.model_validate({"codes": [_one("R35.0", "pollakiuria")]}), ValidationContext(note_text=note)
    )
    assert report.verdicts[0].status == "accepted", report.verdicts[0].results
    # The verdict names the Index term that made the quote related, so a coder sees why it was accepted; a quote
    # in the code's own words needs none.
    assert report.verdicts[0].index_term is not None and "pollakiuria" in report.verdicts[0].index_term.lower()
    plain = pipeline.validate(
        Proposal.model_validate({"codes": [_one("R35.0", "frequency of micturition")]}),
        ValidationContext(note_text="Urology consult: frequency of micturition for a month."),
    )
    assert plain.verdicts[0].status == "accepted" and plain.verdicts[0].index_term is None


@pytest.mark.slow
def test_sound_codes_are_accepted_with_exact_offsets(pipeline: ValidatorPipeline) -> None:
    report = _run(
        pipeline,
        [
            _one("E11.22", "Type 2 diabetes mellitus with diabetic chronic kidney disease"),
            _one("N18.31", "CKD stage 3a"),
            _one("I12.9", "Essential hypertension, well controlled on lisinopril"),
            _one("Z85.038", "history of colon cancer"),
            _one("Z80.3", "Mother had breast cancer"),
        ],
    )
    assert [v.status for v in report.verdicts] == ["accepted"] * 5, [v.results for v in report.verdicts]
    for verdict in report.verdicts:
        for ev in verdict.evidence:
            assert ev.start is not None and ev.end is not None
            assert " ".join(NOTE[ev.start : ev.end].split()) == " ".join(ev.text.split())


@pytest.mark.slow
def test_repeated_quote_prefers_the_affirmed_occurrence(pipeline: ValidatorPipeline) -> None:
    # "chest pain" occurs in the chief complaint, the HPI and the plan; none is negated here, but a
    # quote that is only negated somewhere else must still find the affirmed mention.
    report = _run(pipeline, [_one("R07.9", "chest pain")])
    assert report.verdicts[0].status == "accepted"
    assert report.verdicts[0].evidence[0].start == NOTE.index("chest pain")


@pytest.mark.slow
def test_offsets_must_slice_to_the_quote(pipeline: ValidatorPipeline) -> None:
    start = NOTE.index("CKD stage 3a")
    good: dict[str, object] = {
        "code": "N18.31",
        "evidence": [{"text": "CKD stage 3a", "start": start, "end": start + 12}],
    }
    bad: dict[str, object] = {
        "code": "N18.31",
        "evidence": [{"text": "CKD stage 3a", "start": start + 2, "end": start + 14}],
    }
    half: dict[str, object] = {"code": "N18.31", "evidence": [{"text": "CKD stage 3a", "start": start}]}
    report = _run(pipeline, [good])
    assert report.verdicts[0].status == "accepted"
    for proposal in (bad, half):
        verdict = _run(pipeline, [proposal]).verdicts[0]
        assert verdict.rules == ["SPAN_NOT_IN_NOTE"]


@pytest.mark.slow
def test_one_supported_quote_is_enough_but_a_fabricated_one_warns(pipeline: ValidatorPipeline) -> None:
    verdict = _run(pipeline, [_one("R06.02", "shortness of breath", "Denies shortness of breath")]).verdicts[0]
    assert verdict.status == "rejected" and verdict.rules == ["SPAN_NEGATED"]
    verdict = _run(pipeline, [_one("N18.31", "CKD stage 3b is severe", "CKD stage 3a")]).verdicts[0]
    assert verdict.status == "accepted"
    assert [w.rule for w in verdict.warnings] == ["SPAN_NOT_IN_NOTE"]
    assert verdict.warnings[0].evidence_index == 0


@pytest.mark.slow
def test_confidence_never_accepts_a_failed_code(pipeline: ValidatorPipeline) -> None:
    verdict = _run(
        pipeline, [{"code": "E11.99", "evidence": [{"text": "type 2 diabetes"}], "confidence": 1.0}]
    ).verdicts[0]
    assert verdict.status == "rejected" and verdict.confidence == 1.0


@pytest.mark.slow
def test_uncertain_is_a_warning_for_inpatients(pipeline: ValidatorPipeline) -> None:
    outpatient = _run(pipeline, [_one("I24.9", "acute coronary syndrome")]).verdicts[0]
    inpatient = _run(pipeline, [_one("I24.9", "acute coronary syndrome")], setting="inpatient").verdicts[0]
    assert outpatient.rules == ["SPAN_UNCERTAIN"]
    assert inpatient.status == "accepted" and [w.rule for w in inpatient.warnings] == ["SPAN_UNCERTAIN"]


def test_only_replacement_rules_name_codes_to_use_instead() -> None:
    assert not REPLACEMENT_RULES - set(RULE_IDS) - set(PROCEDURE_RULE_IDS)

    def result(rule: str) -> RuleResult:
        return RuleResult(rule=rule, severity="reject", reason="r", data_version="v", suggestions=["E11.9", "E11.65"])

    assert result("SPECIFICITY_UNSUPPORTED").replace_with == ["E11.9", "E11.65"]
    # Codes to add beside the code, or modifiers, are not replacements.
    assert result("USE_ADDITIONAL").replace_with == [] and result("NCCI_MODIFIER_REQUIRED").replace_with == []
    assert result("LATERALITY_CONFLICT").display() == {
        "rule": "LATERALITY_CONFLICT",
        "reason": "r",
        "replace_with": ["E11.9", "E11.65"],
    }


SYMPTOMS_NOTE = """Assessment:
1. Community-acquired pneumonia. Fever to 39.1 C since Monday.
2. Epigastric pain after meals. Gastroesophageal reflux disease.
3. Urinary frequency. Benign prostatic hyperplasia with lower urinary tract symptoms.
"""


@pytest.mark.slow
def test_symptom_integral_to_an_accepted_diagnosis_warns(pipeline: ValidatorPipeline) -> None:
    def run(*codes: dict[str, object], claim: tuple[str, ...] = ()) -> list[CodeVerdict]:
        proposal = Proposal.model_validate({"codes": list(codes)})
        return pipeline.validate(proposal, ValidationContext(note_text=SYMPTOMS_NOTE, claim_codes=claim)).verdicts

    def integral(verdict: CodeVerdict) -> list[RuleResult]:
        return [w for w in verdict.warnings if w.rule == "SYMPTOM_INTEGRAL"]

    # Fever is part of pneumonia (guideline I.B.5): it stays accepted, with a warning naming the diagnosis.
    fever, pneumonia = run(_one("R50.9", "Fever to 39.1 C"), _one("J18.9", "Community-acquired pneumonia"))
    assert fever.status == "accepted" and pneumonia.status == "accepted" and not integral(pneumonia)
    (warning,) = integral(fever)
    assert warning.related_codes == ["J18.9"] and "guideline I.B.5" in warning.reason and "fever" in warning.reason
    # Alone, or beside a diagnosis it is not routinely part of, the symptom has no such warning.
    assert not integral(run(_one("R50.9", "Fever to 39.1 C"))[0])
    assert not integral(run(_one("R50.9", "Fever to 39.1 C"), _one("K21.9", "Gastroesophageal reflux disease"))[0])
    # A diagnosis already on the claim counts; epigastric pain takes the more specific entry (it names GERD).
    (epigastric,) = run(_one("R10.13", "Epigastric pain"), claim=("K21.9",))
    assert [w.related_codes for w in integral(epigastric)] == [["K21.9"]]
    # N40.1 instructs to code its urinary symptoms beside it: no warning.
    frequency, _ = run(
        _one("R35.0", "Urinary frequency"),
        _one("N40.1", "Benign prostatic hyperplasia with lower urinary tract symptoms"),
    )
    assert frequency.status == "accepted" and not integral(frequency)


def test_integral_symptom_table_names_codes_of_the_release(codeset: ICD10CMCodeSet) -> None:
    from importlib import resources

    from medcode.validators._data import load_rules_data

    raw = json.loads(resources.files("medcode.validators").joinpath("data/integral_symptoms.json").read_text())
    written = [p for e in raw["entries"] for p in [*e["symptom"], *"-".join(e["with_any"]).split("-")]]
    assert [p for p in written if p not in codeset] == []  # every prefix and range end is a code or header
    fever = next(e for e in load_rules_data().integral_symptoms if e.says == "fever")
    assert {"J09", "J12", "J18"} <= set(fever.diagnoses)  # 'J09-J18' written out


@pytest.mark.slow
def test_combination_required_for_presumed_links(pipeline: ValidatorPipeline) -> None:
    # Hypertension with a CKD stage is hypertensive CKD, I12.- (guideline I.C.9.a.2): I10 goes to a coder, the
    # CKD code stands, and the combination codes are suggested, the one that fits the stage first.
    i10, n18 = _run(pipeline, [_one("I10", "Essential hypertension"), _one("N18.31", "CKD stage 3a")]).verdicts
    assert i10.rules == ["COMBINATION_REQUIRED"] and n18.status == "accepted"
    (result,) = [r for r in i10.results if r.rule == "COMBINATION_REQUIRED"]
    assert result.related_codes == ["N18.31"] and set(result.suggestions) == {"I12.0", "I12.9"}
    assert result.replace_with[0] == "I12.9" and "is coded I12.9 (guideline I.C.9.a.2" in result.reason
    # End-stage renal disease picks I12.0; with heart failure too it is I13.- (the more specific entry first).
    esrd = _run(pipeline, [_one("I10", "Essential hypertension")], claim_codes=["N18.6"]).verdicts[0]
    assert esrd.results[0].replace_with[0] == "I12.0" and "is coded I12.0" in esrd.results[0].reason
    both = _run(pipeline, [_one("I10", "Essential hypertension")], claim_codes=["N18.31", "I50.32"]).verdicts[0]
    (result,) = [r for r in both.results if r.rule == "COMBINATION_REQUIRED"]
    assert result.replace_with[0] == "I13.0" and {"I13.0", "I13.2"} <= set(result.replace_with)
    # A CKD code already on the claim counts too; I10 alone and the combination code itself are fine.
    on_claim = _run(pipeline, [_one("I10", "Essential hypertension")], claim_codes=["N18.31"]).verdicts[0]
    assert on_claim.rules == ["COMBINATION_REQUIRED"]
    assert _run(pipeline, [_one("I10", "Essential hypertension")]).verdicts[0].status == "accepted"
    i12, n18 = _run(pipeline, [_one("I12.9", "Essential hypertension"), _one("N18.31", "CKD stage 3a")]).verdicts
    assert i12.status == "accepted" and n18.status == "accepted"
    # A combination code that does not fit the codes beside it goes to a coder with the one that does.
    for code, claim, fits in (
        ("I12.0", ["N18.31"], "I12.9"),
        ("I12.9", ["N18.6"], "I12.0"),
        ("I11.9", ["I50.32"], "I11.0"),
    ):
        verdict = _run(pipeline, [_one(code, "Essential hypertension")], claim_codes=claim).verdicts[0]
        assert verdict.rules == ["COMBINATION_REQUIRED"], (code, verdict.rules)
        (result,) = [r for r in verdict.results if r.rule == "COMBINATION_REQUIRED"]
        assert result.replace_with == [fits] and f"does not fit {claim[0]}" in result.reason
    fitting = _run(pipeline, [_one("I11.0", "Essential hypertension")], claim_codes=["I50.32"]).verdicts[0]
    assert "COMBINATION_REQUIRED" not in fitting.rules
    # Hypertensive heart disease with CKD, or hypertensive CKD with heart failure, is I13.- (guideline I.C.9.a.3):
    # the code that fits the heart failure and the stage is named first, with the codes that chose it.
    heart = (
        "Assessment: 1. Hypertensive heart disease with heart failure. 2. Hypertensive chronic kidney disease, CKD "
        "stage 5. 3. Hypertensive heart and chronic kidney disease."
    )
    for code, quote, note, claim, fits in (
        ("I11.0", "Hypertensive heart disease with heart failure", heart, ["N18.31"], "I13.0"),
        ("I11.0", "Hypertensive heart disease with heart failure", heart, ["N18.6"], "I13.2"),
        ("I11.9", "Essential hypertension", NOTE, ["N18.31"], "I13.10"),
        ("I11.9", "Essential hypertension", NOTE, ["N18.5"], "I13.11"),
        ("I11.9", "Essential hypertension", NOTE, ["N18.31", "I50.32"], "I13.0"),  # not I11.0: both together
        ("I12.9", "Essential hypertension", NOTE, ["I50.32"], "I13.0"),
        ("I12.9", "Essential hypertension", NOTE, ["I50.32", "N18.6"], "I13.2"),
        ("I12.0", "Hypertensive chronic kidney disease, CKD stage 5", heart, ["I50.32"], "I13.2"),
        # the fit check of an I13 code: I13.10 (no heart failure) beside an I50 and a CKD code is I13.0
        ("I13.10", "Hypertensive heart and chronic kidney disease", heart, ["N18.31", "I50.32"], "I13.0"),
    ):
        verdict = pipeline.validate(
            Proposal.model_validate({"codes": [_one(code, quote)]}),
            ValidationContext(note_text=note, claim_codes=claim),
        ).verdicts[0]
        (result,) = [r for r in verdict.results if r.rule == "COMBINATION_REQUIRED"]
        assert result.replace_with[0] == fits and set(result.related_codes) == set(claim), (code, claim, result)
    # An I13 code beside a CKD code alone is not judged by the fit check: its own text says whether there is heart
    # failure (a missing I50 code is USE_ADDITIONAL's).
    for code in ("I13.0", "I13.10"):
        alone = pipeline.validate(
            Proposal.model_validate({"codes": [_one(code, "Hypertensive heart and chronic kidney disease")]}),
            ValidationContext(note_text=heart, claim_codes=["N18.31"]),
        ).verdicts[0]
        assert alone.status == "accepted", (code, alone.rules)


@pytest.mark.slow
def test_set_rules_excludes1_duplicate_code_first_use_additional(pipeline: ValidatorPipeline) -> None:
    report = _run(
        pipeline,
        [
            _one("E11.22", "Type 2 diabetes mellitus with diabetic chronic kidney disease"),
            _one("E10.22", "diabetes"),  # on "type 2 diabetes" it would be SPECIFICITY_UNSUPPORTED first
            _one("I12.9", "Essential hypertension"),
            _one("i12.9", "Essential hypertension, well controlled"),
            _one("D63.1", "chronic kidney disease"),
        ],
    )
    e11, e10, i12, dup, d63 = report.verdicts
    assert e11.rules == ["EXCLUDES1_CONFLICT"] and e10.rules == ["EXCLUDES1_CONFLICT"]
    assert e11.results[0].related_codes == ["E10.22"]
    assert dup.rules == ["DUPLICATE"] and i12.status == "accepted"
    assert d63.rules == ["CODE_FIRST"]
    # E11.22 alone: accepted, but it tells the coder to add the CKD stage
    alone = _run(pipeline, [_one("E11.22", "Type 2 diabetes mellitus with diabetic chronic kidney disease")]).verdicts[
        0
    ]
    assert alone.status == "accepted"
    use = [w for w in alone.warnings if w.rule == "USE_ADDITIONAL"]
    assert use and "N18.31" in use[0].suggestions
    with_stage = _run(
        pipeline,
        [
            _one("E11.22", "Type 2 diabetes mellitus with diabetic chronic kidney disease"),
            _one("N18.31", "CKD stage 3a"),
        ],
    ).verdicts[0]
    assert not [w for w in with_stage.warnings if w.rule == "USE_ADDITIONAL"]


@pytest.mark.slow
def test_age_and_sex_edits(pipeline: ValidatorPipeline) -> None:
    note_codes = [_one("N40.0", "Essential hypertension")]
    assert "SEX_CONFLICT" in _run(pipeline, note_codes, sex="F").verdicts[0].rules
    assert "SEX_CONFLICT" not in _run(pipeline, note_codes, sex="M").verdicts[0].rules
    assert "AGE_CONFLICT" in _run(pipeline, note_codes, age=6, sex="M").verdicts[0].rules
    assert "AGE_CONFLICT" not in _run(pipeline, note_codes, age=60, sex="M").verdicts[0].rules
    assert "AGE_CONFLICT" in _run(pipeline, [_one("O80", "Chest pain")], age=75, sex="F").verdicts[0].rules


@pytest.mark.slow
def test_not_a_candidate(pipeline: ValidatorPipeline) -> None:
    report = _run(pipeline, [_one("R07.9", "chest pain")], candidates=frozenset({"R07.89", "I12.9"}))
    assert report.verdicts[0].rules == ["NOT_A_CANDIDATE"]
    report = _run(pipeline, [_one("R07.9", "chest pain")], candidates=frozenset({"r079"}))
    assert report.verdicts[0].status == "accepted"


@pytest.mark.slow
def test_a_coders_code_without_evidence_warns_and_meets_the_claim(pipeline: ValidatorPipeline) -> None:
    """evidence_optional: no span is a NO_EVIDENCE_GIVEN warning, not SPAN_NOT_IN_NOTE; claim_codes feed the set
    rules but get no verdict; a span that is given is still judged."""
    bare = {"code": "E11.9"}
    assert _run(pipeline, [bare]).verdicts[0].rules == ["SPAN_NOT_IN_NOTE"]  # a model's code still needs a quote
    alone = _run(pipeline, [bare], evidence_optional=True)
    assert len(alone.verdicts) == 1 and alone.verdicts[0].status == "accepted"
    assert [w.rule for w in alone.verdicts[0].warnings] == ["NO_EVIDENCE_GIVEN"]
    assert "NO_EVIDENCE_GIVEN" in validators.RULE_IDS

    def coders(code: str, *claim: str) -> CodeVerdict:
        report = _run(pipeline, [{"code": code}], evidence_optional=True, claim_codes=claim)
        assert len(report.verdicts) == 1  # none for the claim's own codes
        return report.verdicts[0]

    e10 = coders("E10.9", "E11.9", "I10")
    assert e10.rules == ["EXCLUDES1_CONFLICT"] and e10.results[-1].related_codes == ["E11.9"]
    dup = coders("i12.9", "I12.9")
    assert dup.rules == ["DUPLICATE"] and "already on the claim" in dup.results[-1].reason
    assert coders("D63.1").rules == ["CODE_FIRST"]
    assert coders("D63.1", "N18.31").status == "accepted"  # its etiology is on the claim
    assert [w.rule for w in coders("E11.22").warnings] == ["NO_EVIDENCE_GIVEN", "USE_ADDITIONAL"]
    assert [w.rule for w in coders("E11.22", "N18.31").warnings] == ["NO_EVIDENCE_GIVEN"]  # the CKD stage is there
    # A span the coder gives goes through the evidence rules as a model's would.
    negated = _run(pipeline, [_one("R06.02", "shortness of breath")], evidence_optional=True).verdicts[0]
    assert negated.rules == ["SPAN_NEGATED"] and "NO_EVIDENCE_GIVEN" not in [w.rule for w in negated.warnings]


@pytest.mark.slow
def test_note_text_never_reaches_the_logs(
    pipeline: ValidatorPipeline, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    _run(pipeline, [_one("R06.02", "shortness of breath"), _one("E11.22", "Type 2 diabetes mellitus")])
    captured = capfd.readouterr()
    for secret in ("shortness of breath", "Mother had breast cancer", "lisinopril"):
        assert secret not in caplog.text
        assert secret not in captured.err and secret not in captured.out


# ------------------------------------------------------------------------------ CLI
@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    note = tmp_path / "note.txt"
    note.write_text(NOTE, encoding="utf-8")
    return note, tmp_path / "proposal.json"


def _cli(args: list[str], data_dir: Path) -> int:
    return cli_main(["--data-dir", str(data_dir), "validate", *args])


@pytest.mark.slow
def test_cli_validate_json_and_exit_codes(
    files: tuple[Path, Path], session_data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    note, proposal = files
    proposal.write_text(json.dumps({"codes": [_one("N18.31", "CKD stage 3a")]}), encoding="utf-8")
    assert _cli(["--note", str(note), "--proposal", str(proposal), "--json", "--no-candidates"], session_data_dir) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["codes"][0]["status"] == "accepted" and out["codes"][0]["rules"] == []
    assert out["candidates_checked"] is False and "not checked" in out["notes"][0]
    assert out["routing"]["decision"] == "review"
    assert out["routing"]["reasons"][0] == "HUMAN_ASSISTED_DEFAULT"  # the agent's default policy
    span = out["codes"][0]["evidence"][0]
    assert NOTE[span["start"] : span["end"]] == "CKD stage 3a"

    proposal.write_text(json.dumps({"codes": [_one("N18.31", "CKD stage 3a"), _one("E11", "type 2 diabetes")]}))
    assert (
        _cli(
            [
                "--note",
                str(note),
                "--proposal",
                str(proposal),
                "--json",
                "--age",
                "58",
                "--sex",
                "m",
                "--no-candidates",
            ],
            session_data_dir,
        )
        == 1
    )
    out = json.loads(capsys.readouterr().out)
    assert [c["status"] for c in out["codes"]] == ["accepted", "rejected"]
    assert out["codes"][1]["rules"] == ["CODE_NOT_BILLABLE"]
    assert "CODE_REJECTED:E11:CODE_NOT_BILLABLE" in out["routing"]["reasons"]

    assert _cli(["--note", str(note), "--proposal", str(proposal), "--no-candidates"], session_data_dir) == 1
    text = capsys.readouterr().out
    assert "REJECTED" in text and "CODE_NOT_BILLABLE" in text and "replace with: E11.00" in text
    assert "candidates not checked" in text

    offered = note.parent / "candidates.txt"
    offered.write_text("E11.9\nN18.31\n", encoding="utf-8")
    proposal.write_text(json.dumps({"codes": [_one("N18.31", "CKD stage 3a"), _one("N18.32", "CKD stage 3")]}))
    assert (
        _cli(
            ["--note", str(note), "--proposal", str(proposal), "--json", "--candidates", str(offered)], session_data_dir
        )
        == 1
    )
    out = json.loads(capsys.readouterr().out)
    assert out["candidates_checked"] is True and out["notes"] == []
    assert out["codes"][0]["status"] == "accepted" and "NOT_A_CANDIDATE" in out["codes"][1]["rules"]


def test_cli_validate_needs_candidates_or_no_candidates(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    note, proposal = files
    proposal.write_text('{"codes": []}', encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        _cli(["--note", str(note), "--proposal", str(proposal)], tmp_path / "data")
    assert exc.value.code == 2 and "--candidates" in capsys.readouterr().err
    offered = tmp_path / "offered.txt"
    offered.write_text("I10\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        _cli(
            ["--note", str(note), "--proposal", str(proposal), "--candidates", str(offered), "--no-candidates"],
            tmp_path / "data",
        )
    assert exc.value.code == 2 and "not allowed with" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"codes": [', "not valid JSON"),
        ('{"codes": [{"evidence": []}]}', "codes.0.code: Field required"),
        ('{"code": "I10"}', "codes: Field required"),
        ('{"codes": [{"code": "I10", "evidence": [{"start": 1}]}]}', "codes.0.evidence.0.text"),
        ("[]", "expected a JSON object"),
    ],
)
def test_cli_bad_proposal_exits_2_with_a_clear_message(
    files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, message: str
) -> None:
    note, proposal = files
    proposal.write_text(content, encoding="utf-8")
    assert _cli(["--note", str(note), "--proposal", str(proposal), "--no-candidates"], tmp_path / "data") == 2
    assert message in capsys.readouterr().err


def test_cli_bad_arguments_exit_2(files: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    note, proposal = files
    proposal.write_text('{"codes": []}', encoding="utf-8")
    for extra, message in (
        (["--setting", "emergency"], "invalid choice: 'emergency'"),
        (["--age", "200"], "age must be between 0 and 130"),
        (["--sex", "X"], "sex must be F or M"),
    ):
        with pytest.raises(SystemExit) as exc:
            _cli(["--note", str(note), "--proposal", str(proposal), "--no-candidates", *extra], tmp_path / "data")
        assert exc.value.code == 2
        assert message in capsys.readouterr().err
    assert (
        _cli(["--note", str(tmp_path / "nope.txt"), "--proposal", str(proposal), "--no-candidates"], tmp_path / "data")
        == 2
    )
    assert "note file not found" in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n", encoding="utf-8")
    assert _cli(["--note", str(empty), "--proposal", str(proposal), "--no-candidates"], tmp_path / "data") == 2
    assert "is empty" in capsys.readouterr().err
