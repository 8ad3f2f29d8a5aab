"""Grouping a note's candidates into conditions (siblings compete; one sentence, one reading)."""

from __future__ import annotations

from medcode.agent import group_conditions
from medcode.codesets import ICD10CMCodeSet
from medcode.retrieval import NoteCandidate, NoteCandidates, Segment, SpanHit

SEGMENTS = [
    Segment(id=0, start=0, end=20, text="x" * 20, section="hpi"),
    Segment(id=1, start=21, end=60, text="y" * 39, section="assessment_plan"),
    Segment(id=2, start=61, end=90, text="z" * 29, section="assessment_plan"),
]


def _cand(code: str, score: float, *segments: int, description: str = "d") -> NoteCandidate:
    hits = [
        SpanHit(
            segment_id=s, start=SEGMENTS[s].start, end=SEGMENTS[s].end, section=SEGMENTS[s].section, score=score, rank=1
        )
        for s in segments
    ]
    return NoteCandidate(
        code=code,
        description=description,
        chapter="x",
        score=score,
        rank=1,
        source="dense",
        matched_text="m",
        hits=hits,
    )


def _note(*cands: NoteCandidate) -> NoteCandidates:
    return NoteCandidates(codeset_version="icd10cm-2026-04", segments=SEGMENTS, candidates=list(cands))


def test_siblings_share_a_condition_best_first(codeset: ICD10CMCodeSet) -> None:
    conds = group_conditions(_note(_cand("E11.22", 1.0, 1), _cand("E11.9", 0.95, 1), _cand("I10", 0.9, 2)), codeset)
    assert [[o.code for o in c.options] for c in conds] == [["E11.22", "E11.9"], ["I10"]]
    assert conds[0].anchor.segment_id == 1


def test_same_block_same_sentence_competes_but_other_sentences_do_not(codeset: ICD10CMCodeSet) -> None:
    # E10.9 (type 1) is in the diabetes block with E11.9; found by the same sentence it competes.
    same = group_conditions(_note(_cand("E11.9", 1.0, 1), _cand("E10.9", 0.97, 1)), codeset)
    assert [[o.code for o in c.options] for c in same] == [["E11.9", "E10.9"]]
    apart = group_conditions(_note(_cand("J44.9", 1.0, 1), _cand("J45.909", 0.97, 2)), codeset)
    assert len(apart) == 2


def test_a_weaker_reading_of_an_anchored_sentence_is_dropped(codeset: ICD10CMCodeSet) -> None:
    conds = group_conditions(_note(_cand("I10", 1.0, 1), _cand("I97.3", 0.85, 1), _cand("N18.31", 0.97, 1)), codeset)
    assert [c.options[0].code for c in conds] == ["I10", "N18.31"]  # N18.31 is close enough to be its own


def test_thresholds_limits_and_diagnostic_sections(codeset: ICD10CMCodeSet) -> None:
    note = _note(_cand("R05.9", 1.0, 0), _cand("I10", 0.95, 1), _cand("E78.5", 0.6, 2), _cand("X99.99", 0.99, 1))
    assert [c.options[0].code for c in group_conditions(note, codeset)] == ["R05.9", "I10", "E78.5"]
    assert [c.options[0].code for c in group_conditions(note, codeset, min_score=0.9)] == ["R05.9", "I10"]
    assert [c.options[0].code for c in group_conditions(note, codeset, max_conditions=1)] == ["R05.9"]
    diag = group_conditions(note, codeset, diagnostic_only=True)
    assert [c.options[0].code for c in diag] == ["I10", "E78.5"]  # the HPI-only cough is left out
