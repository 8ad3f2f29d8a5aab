"""Procedure mentions and proposals on a small in-memory procedure index (never the full one)."""

from __future__ import annotations

from medcode.agent._procedure_proposer import ProcedureProposer
from medcode.retrieval._procedures import ProcedureIndex, load_procedure_lexicon, procedure_mentions

ENTRIES = [
    ("0FT44ZZ", "icd10pcs", "Resection of Gallbladder, Percutaneous Endoscopic Approach | Hepatobiliary System"),
    ("0FT40ZZ", "icd10pcs", "Resection of Gallbladder, Open Approach | Hepatobiliary System"),
    ("0DTJ4ZZ", "icd10pcs", "Resection of Appendix, Percutaneous Endoscopic Approach | Gastrointestinal System"),
    ("BW03ZZZ", "icd10pcs", "Plain Radiography of Chest | Anatomical Regions"),
    ("BW24ZZZ", "icd10pcs", "Computerized Tomography (CT Scan) of Abdomen and Pelvis | Anatomical Regions"),
    ("G0008", "hcpcs", "Admin influenza virus vac"),
    ("J1100", "hcpcs", "Dexamethasone sodium phos"),
]
NOTE = """HPI: 55 yo F with RUQ pain. She underwent laparoscopic cholecystectomy without complication.
She is scheduled for an appendectomy next month. Patient declined the influenza vaccine.
PAST SURGICAL HISTORY: appendectomy 2010.
PROCEDURES:
- chest x-ray
"""


def test_mentions_skip_planned_declined_and_history() -> None:
    mentions = procedure_mentions(NOTE)
    assert [m.text for m in mentions] == [
        "She underwent laparoscopic cholecystectomy without complication.",
        "chest x-ray",
    ]
    assert mentions[0].trigger == "underwent" and mentions[1].trigger == "section:procedures"
    lex = load_procedure_lexicon()
    start = NOTE.index("appendectomy next")
    assert lex.status(NOTE, start, start + 12) == ("planned", "scheduled for")
    start = NOTE.index("influenza")
    assert lex.status(NOTE, start, start + 17)[0] == "declined"


def test_proposals_carry_the_mention_as_evidence() -> None:
    proposer = ProcedureProposer(ProcedureIndex.build(ENTRIES))
    proposed = proposer.propose(NOTE, "inpatient")
    assert [p.code for p in proposed] == ["0FT44ZZ", "BW03ZZZ"]  # laparoscopic -> percutaneous endoscopic
    evidence = proposed[0].evidence[0]
    assert evidence.start is not None and NOTE[evidence.start : evidence.end] == evidence.text
    outpatient = ProcedureProposer(ProcedureIndex.build(ENTRIES)).propose(
        "Influenza vaccine was administered today.", "outpatient"
    )
    assert [(p.code, p.system) for p in outpatient] == [("G0008", "hcpcs")]
    assert proposer.index.query_terms("CT of the abdomen") == ["computerized", "tomography", "abdomen"]


def test_diagnostic_tests_named_without_a_verb_are_mentions() -> None:
    entries = [
        *ENTRIES,
        ("B020ZZZ", "icd10pcs", "Computerized Tomography (CT Scan) of Brain | Central Nervous System"),
        (
            "4A02X4Z",
            "icd10pcs",
            "Measurement of Cardiac Electrical Activity, External Approach | Physiological Systems",
        ),
        ("4A0204Z", "icd10pcs", "Measurement of Cardiac Electrical Activity, Open Approach | Physiological Systems"),
    ]
    note = (
        "The chest X-ray showed a left pleural effusion. CT scan of the abdomen and pelvis revealed a mass.\n"
        "The CT showed nothing new. She is scheduled for an MRI of the brain. An ECG showed sinus rhythm.\n"
    )
    mentions = procedure_mentions(note)
    assert [(m.text, m.trigger) for m in mentions] == [
        ("The chest X-ray", "test:x-ray"),
        ("CT scan of the abdomen and pelvis", "test:ct scan"),
        ("An ECG", "test:ecg"),
    ]  # "The CT" names no site; the MRI is planned
    assert all(note[m.start : m.end] == m.text for m in mentions)
    proposed = ProcedureProposer(ProcedureIndex.build(entries)).propose(note, "inpatient")
    assert [p.code for p in proposed] == ["BW03ZZZ", "BW24ZZZ", "4A02X4Z"]  # ECG: external, not open approach
    # a site word that no candidate's title has proposes nothing rather than the wrong body part
    assert (
        ProcedureProposer(ProcedureIndex.build(entries)).propose("An X-ray of the feet was normal.", "inpatient") == []
    )
