"""The outpatient HCPCS gold set (evals/data/hcpcs_gold.jsonl) through the real procedure validators and proposer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from medcode.agent import Runtime
from medcode.config import Settings
from medcode.errors import InputError
from medcode.evals import ProcedureGoldCase, read_procedure_gold, score_proposer, score_traps

GOLD = Path(__file__).resolve().parents[1] / "evals" / "data" / "hcpcs_gold.jsonl"


@pytest.fixture(scope="module")
def runtime(session_settings: Settings) -> Iterator[Runtime]:
    with Runtime(session_settings) as rt:
        yield rt


@pytest.fixture(scope="module")
def cases() -> list[ProcedureGoldCase]:
    return read_procedure_gold(GOLD)


def test_the_gold_set_has_every_kind_of_trap(cases: list[ProcedureGoldCase]) -> None:
    kinds = {c.trap for c in cases}
    assert kinds >= {"ncci_bundled", "ncci_modifier_required", "ncci_modifier_bypass", "declined", "scheduled"}
    expects = {line.expect for c in cases for line in c.lines}
    assert expects >= {"accepted", "NCCI_PTP_BUNDLED", "NCCI_MODIFIER_REQUIRED", "SPAN_NEGATED", "SPAN_HYPOTHETICAL"}
    # the same pair with and without a modifier: the modifier is the only difference
    pair = [c for c in cases if {line.code for line in c.lines} == {"G0127", "G0463"}]
    assert {c.trap for c in pair} == {"ncci_modifier_required", "ncci_modifier_bypass"}


def test_every_trap_is_rejected_with_its_rule_and_clean_lines_pass(
    runtime: Runtime, cases: list[ProcedureGoldCase]
) -> None:
    outcomes, figures = score_traps(cases, runtime.validators.procedures)
    wrong = [o for o in outcomes if not o.ok]
    assert not wrong, [(o.case, o.code, o.expect, o.got, o.warnings) for o in wrong]
    assert figures["traps"] >= 10 and figures["traps_rejected_with_the_right_rule"] == figures["traps"]
    assert figures["clean_lines_wrongly_rejected"] == 0
    # the modifier-indicator-1 pair: rejected without 59/X{EPSU}, accepted (with a warning) with one on either line
    by_case = {(o.case, o.code): o for o in outcomes}
    assert by_case[("hg-05", "G0463")].got == "NCCI_MODIFIER_REQUIRED"
    assert (
        by_case[("hg-06", "G0463")].got == "accepted" and "NCCI_MODIFIER_BYPASS" in by_case[("hg-06", "G0463")].warnings
    )
    assert by_case[("hg-07", "G0463")].got == "accepted"


def test_a_performed_verb_is_not_a_context_cue_for_procedures(runtime: Runtime) -> None:
    """ConText's condition cues misread procedure text ("removed" historical, "not at high risk" negated); the
    guard keeps real negation and other people's procedures."""
    from medcode.validators import Evidence, ProposedProcedure, ValidationContext

    def status(sentence: str) -> tuple[str, list[str]]:
        note = f"HPI: {sentence}\n"
        proposed = ProposedProcedure(code="G0268", system="hcpcs", evidence=[Evidence(text=sentence)])
        verdict = runtime.validators.procedures.validate([proposed], ValidationContext(note_text=note))[0]
        return verdict.status, verdict.rules

    assert status("Impacted cerumen was removed from the right ear.") == ("accepted", [])
    assert status("The wax was removed; no complications.") == ("accepted", [])
    assert status("Cerumen removal was not performed due to pain.") == ("rejected", ["SPAN_NEGATED"])
    assert status("No cerumen removal was performed.") == ("rejected", ["SPAN_NEGATED"])  # lexicon declined_patterns
    assert status("Her mother had impacted cerumen removed.") == ("rejected", ["SPAN_FAMILY_HISTORY"])


def test_the_proposer_on_the_gold_notes(runtime: Runtime, cases: list[ProcedureGoldCase]) -> None:
    figures = score_proposer(cases, runtime.procedure_proposer, runtime.validators.procedures)
    # the README's figures; a weak lexical proposer over HCPCS's abbreviated descriptors
    assert figures == {
        "notes": 14,
        "gold_codes": 14,
        "accepted": 9,
        "micro_precision": 0.333,
        "micro_recall": 0.214,
        "micro_f1": 0.261,
    }


def test_bad_gold_records_are_named(tmp_path: Path, cases: list[ProcedureGoldCase]) -> None:
    bad = tmp_path / "bad.jsonl"
    record = cases[0].model_dump(mode="json")
    bad.write_text(json.dumps({**record, "lines": [{**record["lines"][0], "quote": "not in the note"}]}) + "\n")
    with pytest.raises(InputError, match=r"line 1: .*quote of G0008 is not in the note"):
        read_procedure_gold(bad)
    bad.write_text(json.dumps(record) + "\n" + json.dumps(record) + "\n")
    with pytest.raises(InputError, match="line 2: id 'hg-01' is repeated"):
        read_procedure_gold(bad)
