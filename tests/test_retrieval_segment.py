"""Note segmentation and query expansion: pure functions, no model or index needed."""

from __future__ import annotations

import time

import pytest

from medcode import retrieval
from medcode.retrieval import QueryExpander, default_expander, segment_note
from medcode.retrieval._segment import section_headers


def _check_offsets(text: str) -> list[retrieval.Segment]:
    segments = segment_note(text)
    previous_end = 0
    for i, seg in enumerate(segments):
        assert seg.id == i
        assert text[seg.start : seg.end] == seg.text
        assert seg.start >= previous_end, "segments overlap or are out of order"
        assert seg.text == seg.text.strip() and seg.text
        previous_end = seg.end
    return segments


def test_public_api_is_declared() -> None:
    for name in retrieval.__all__:
        assert hasattr(retrieval, name), name
    assert {"HybridRetriever", "Candidate", "Segment", "segment_note", "NoteCandidates"} <= set(retrieval.__all__)


def test_sections_inline_headers_and_list_items() -> None:
    note = (
        "CHIEF COMPLAINT\r\n\r\nJoint pain.\r\n\r\nPMH: HTN, DM2, CKD 3a, AFib\r\n"
        "FAMILY HISTORY:\r\nMother had breast cancer. Father with MI at 50.\r\n\r\n"
        "A/P:\r\n1. Hypertension - continue lisinopril\r\n2. Type 2 diabetes, A1c 7.2.\r\n"
    )
    segments = _check_offsets(note)
    by_text = {s.text: s.section for s in segments}
    assert by_text["Joint pain."] == "chief_complaint"
    # The inline header switches the section and its list is split into items without commas.
    assert [s.text for s in segments if s.section == "past_medical_history"] == ["HTN", "DM2", "CKD 3a", "AFib"]
    assert by_text["Mother had breast cancer."] == "family_history"
    assert by_text["Father with MI at 50."] == "family_history"
    # Numbered list markers are stripped; header lines are not segments.
    assert by_text["Hypertension - continue lisinopril"] == "assessment_plan"
    assert "A/P:" not in by_text and "1." not in by_text and "FAMILY HISTORY:" not in by_text


def test_bullet_labels_do_not_switch_sections() -> None:
    note = "ASSESSMENT AND PLAN\n\nArthritis.\n• Medical Treatment: Initiate Ultram.\n• Treatment: rest.\nKnee pain."
    segments = _check_offsets(note)
    assert {s.section for s in segments} == {"assessment_plan"}
    assert segments[1].text == "Medical Treatment: Initiate Ultram."


def test_sentence_split_respects_abbreviations_and_decimals() -> None:
    segments = _check_offsets("Seen by Dr. Smith on 3.5 mg daily. Pain improved e.g. at night. Next visit soon.")
    assert [s.text for s in segments] == [
        "Seen by Dr. Smith on 3.5 mg daily.",
        "Pain improved e.g. at night.",
        "Next visit soon.",
    ]


def test_wrapped_lines_join_and_unpunctuated_lines_stay_apart() -> None:
    note = "The patient has a long history of\nchronic kidney disease stage 3\nDiabetes\nAsthma"
    texts = [s.text for s in _check_offsets(note)]
    assert texts[0] == "The patient has a long history of\nchronic kidney disease stage 3"
    assert texts[1:] == ["Diabetes", "Asthma"]


def test_a_list_item_that_only_names_a_side_or_an_encounter_stays_with_its_diagnosis() -> None:
    note = (
        "DIAGNOSIS: Sprain of anterior talofibular ligament, left ankle, initial encounter.\n"
        "ASSESSMENT: Hypertension, diabetes, left knee pain, right hemiparesis, CKD stage 3a, bilateral\n"
        "PLAN: Fracture of shaft of femur, right lower extremity, subsequent encounter, Asthma, Gout\n"
    )
    texts = [s.text for s in _check_offsets(note) if s.section == "assessment_plan"]
    assert texts[0] == "Sprain of anterior talofibular ligament, left ankle, initial encounter."
    # Items naming a condition stay apart (a side with a condition too); a bare side or site joins the item before.
    assert texts[1:6] == ["Hypertension", "diabetes", "left knee pain", "right hemiparesis", "CKD stage 3a, bilateral"]
    assert texts[6:] == ["Fracture of shaft of femur, right lower extremity, subsequent encounter", "Asthma", "Gout"]


def test_long_sentences_are_split_into_clauses() -> None:
    clause = "worsening shortness of breath on exertion with bilateral ankle swelling"
    sentence = "; ".join([clause] * 6) + "."
    segments = _check_offsets(sentence)
    assert len(segments) == 6
    assert all(len(s.text) <= 200 for s in segments)


@pytest.mark.parametrize("text", ["", "   \n\r\n\t", "...", "\n1.\n2.\n-\n"])
def test_empty_or_contentless_notes_give_no_segments(text: str) -> None:
    assert segment_note(text) == []


def test_large_note_is_fast_and_exact() -> None:
    block = (
        "HISTORY OF PRESENT ILLNESS\nPatient is a 70 yo with CHF and COPD, here for follow up. "
        "He denies chest pain.\n• Vitals: BP 150/90\n1) Metformin 500 mg\n"
    )
    note = block * (100_000 // len(block))
    started = time.perf_counter()
    segments = _check_offsets(note)
    elapsed = time.perf_counter() - started
    assert len(segments) >= 4 * (100_000 // len(block))
    assert elapsed < 5.0  # generous: a functional guard against quadratic behaviour, not a benchmark


def test_header_table_is_data_and_complete() -> None:
    table = section_headers()
    for label, section in {
        "family history": "family_history",
        "a/p": "assessment_plan",
        "pmh": "past_medical_history",
        "review of systems": "ros",
        "hpi": "hpi",
    }.items():
        assert table[label] == section
    assert set(table.values()) <= set(retrieval.SECTION_NAMES)


def test_expander_replaces_whole_words_and_respects_case() -> None:
    expander = default_expander()
    assert expander.expand("HTN and T2DM") == "hypertension and type 2 diabetes mellitus"
    assert expander.expand("heart attack last year") == "myocardial infarction last year"
    assert expander.expand("MS flare") == "multiple sclerosis flare"
    assert expander.expand("took 5 ms") is None  # short keys are case-sensitive
    assert expander.expand("HTNX and CHFs") is None  # whole words only
    assert expander.expand("no known terms here") is None


def test_expander_words_the_code_set_words_otherwise() -> None:
    """Plurals and spellings the code set's titles and the Index do not use are searched in its wording too
    ("liver metastases" found no C78.7 in the top 6 before)."""
    expander = default_expander()
    assert expander.expand("Liver metastases") == "Liver secondary malignant neoplasm metastasis"
    assert expander.expand("cervical adenopathies, pale") == (
        "cervical adenopathy lymphadenopathy enlarged lymph nodes, pallor"
    )
    assert expander.expand("renal tumour") == "renal tumor"
    assert expander.expand("metastasectomy") is None  # whole words only


def test_expander_reads_a_former_smoker_as_history_not_current_use() -> None:
    """'ex-smoker' held 'smoker', which searched current nicotine dependence (F17.2-); the longer term wins."""
    expander = default_expander()
    assert expander.expand("ex-smoker, hypertension") == "personal history of nicotine dependence, hypertension"
    assert expander.expand("Former smoker.") == "personal history of nicotine dependence."
    assert expander.expand("current smoker") == "current nicotine dependence cigarettes"


def test_expander_from_json() -> None:
    expander = QueryExpander.from_json(
        '{"abbreviations": {"ABC": "alpha beta"}, "lay_terms": {"tummy bug": "gastroenteritis"}}'
    )
    assert expander.expand("ABC with a Tummy Bug") == "alpha beta with a gastroenteritis"


def test_term_table_longest_match_and_case() -> None:
    from medcode.retrieval._expand import TermTable

    table = TermTable({"low back pain": "M54.50", "pain": "R52", "MS": "G35.D"}, 1.05, 0.95)
    table.add_index_texts(
        [
            ("Shock, unspecified", ["R57.9"], "description"),
            ("Other shock", ["R57.8"], "description"),
            ("Pain abdominal", ["R10.9"], "description"),
            ("abdominal pain", ["R10.9"], "alphabetic_index"),
            ("Fever", ["R50.81"], "description"),
            ("Fever", ["R50.9"], "alphabetic_index"),  # the Index's default wins over a Tabular text
        ]
    )
    assert table.lookup("Low back pain.") == [("M54.50", "Low back pain", True)]
    assert table.lookup("abdominal pain") == [("R10.9", "abdominal pain", True)]
    assert table.lookup("fever") == [("R50.9", "fever", True)]
    assert ("R52", "pain", False) in table.lookup("chest wall pain and shock")
    assert ("R57.9", "shock", False) in table.lookup("chest wall pain and shock")
    assert table.lookup("MS flare")[0][0] == "G35.D"
    assert table.lookup("took 5 ms") == []
    assert table.lookup("other") == []  # generic words never match alone


def test_split_mentions_offsets() -> None:
    from medcode.retrieval._segment import split_mentions

    text = "No history of nephrolithiasis, hematuria or urinary tract infections."
    pieces = [text[s:e] for s, e in split_mentions(text)]
    assert pieces == ["No history of nephrolithiasis", "hematuria", "urinary tract infections"]
    assert split_mentions("Hypertension.") == []
