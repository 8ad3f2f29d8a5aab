"""Procedure coding in ``MedicalCoder.code``: opt-in, validated, routed, recorded with the chart.

The real pipeline on the small diagnosis index (tests/conftest.py) and the real procedure index (ICD-10-PCS
and HCPCS from the packaged data, built in a few seconds); the retrieval proposer, so no LLM.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medcode.agent import MedicalCoder, Note, Runtime
from medcode.cli import main
from medcode.config import Settings
from medcode.review import AuditLog, QueueRecorder, ReviewQueue

pytestmark = pytest.mark.slow

NOTE = """HISTORY OF PRESENT ILLNESS: 55-year-old woman with type 2 diabetes and right upper quadrant pain.
Her mother underwent a mastectomy.
She underwent laparoscopic cholecystectomy without complication.
She is scheduled for a colonoscopy next month. She declined the influenza vaccine.

ASSESSMENT AND PLAN:
1. Type 2 diabetes mellitus without complications. Continue metformin.
"""


@pytest.fixture(scope="module")
def runtime(small_index_settings: Settings) -> Runtime:
    with Runtime(small_index_settings) as rt:
        yield rt  # type: ignore[misc]


def _note(setting: str = "inpatient") -> Note:
    return Note.checked(NOTE, 100_000, id=f"proc-{setting}", setting=setting, age=55, sex="F")


def test_procedures_are_off_by_default(small_index_settings: Settings, runtime: Runtime) -> None:
    with MedicalCoder(small_index_settings, runtime=runtime, proposer="retrieval") as coder:
        result = coder.code(_note())
    assert result.procedures is None
    assert "procedure_index" not in result.versions
    assert not any(":0FT44ZZ:" in r or "PROCEDURES" in r for r in result.routing.reasons)


def test_procedures_are_proposed_validated_routed_and_recorded(
    small_index_settings: Settings, runtime: Runtime, capsys: pytest.CaptureFixture[str]
) -> None:
    recorder = QueueRecorder(small_index_settings)
    with MedicalCoder(
        small_index_settings, runtime=runtime, proposer="retrieval", recorder=recorder, procedures=True
    ) as coder:
        result = coder.code(_note())
    assert result.procedures is not None
    by_code = {p.code: p for p in result.procedures}
    # "underwent laparoscopic cholecystectomy" -> resection of gallbladder, percutaneous endoscopic
    chole = by_code["0FT44ZZ"]
    assert chole.status == "accepted" and chole.system == "icd10pcs" and chole.confidence is None
    assert chole.evidence and all(NOTE[e.start : e.end] == e.text for e in chole.evidence)  # type: ignore[misc]
    assert "cholecystectomy" in chole.evidence[0].text
    # the mother's mastectomy is proposed from its verb, and the validators reject it (ConText: family)
    family = [p for p in result.procedures if p.status == "rejected"]
    assert family and all(p.rules == ["SPAN_FAMILY_HISTORY"] for p in family)
    assert family[0].reasons[0].rule == "SPAN_FAMILY_HISTORY" and family[0].reasons[0].reason
    # planned and declined procedures are never proposed
    assert not any(p.code.startswith(("0DJD", "3E0234")) for p in result.procedures)
    # a rejected procedure routes the chart to review, with its rule id
    assert result.routing.decision == "review"
    assert f"CODE_REJECTED:{family[0].code}:SPAN_FAMILY_HISTORY" in result.routing.reasons
    assert str(result.versions["procedure_index"]).startswith("procedures-icd10pcs")
    assert "E11.9" in result.accepted_codes  # diagnoses are coded as before

    # the chart keeps the procedures (in its decision JSON), redacted without --show-text
    assert result.chart_id is not None
    with ReviewQueue(small_index_settings) as queue:
        chart = queue.get(result.chart_id, include_text=True)
    assert [(p.code, p.status) for p in chart.procedures] == [(p.code, p.status) for p in result.procedures]
    shown = chart.to_display(show_text=False)
    assert all("text" not in e for p in shown["decision"]["procedures"] for e in p["evidence"])
    with AuditLog(small_index_settings) as audit:
        assert audit.verify().ok
        payloads = [r.payload for r in audit.records() if r.payload.get("chart_id") == result.chart_id]
    assert any(p.get("procedures") for p in payloads)
    assert not any("cholecystectomy" in json.dumps(p) for p in payloads)  # no note text in the audit log
    capsys.readouterr()
    assert main(["--data-dir", str(small_index_settings.data_dir), "queue", "show", str(result.chart_id)]) == 0
    shown_text = capsys.readouterr().out
    assert "  procedures\n" in shown_text and "0FT44ZZ" in shown_text and "pending" in shown_text
    assert "cholecystectomy" not in shown_text  # quotes only with --show-text


def test_outpatient_notes_get_hcpcs(small_index_settings: Settings, runtime: Runtime) -> None:
    note = Note.checked(
        "PROCEDURES:\n- Influenza vaccine was administered today.\n", 100_000, id="proc-out", setting="outpatient"
    )
    with MedicalCoder(small_index_settings, runtime=runtime, proposer="retrieval", procedures=True) as coder:
        result = coder.code(note)
    assert result.procedures is not None
    assert [(p.system, p.status) for p in result.procedures][:1] == [("hcpcs", "accepted")]
    assert result.procedures[0].description and "influenza" in result.procedures[0].description.lower()
    # no calibrated confidence for procedures: an accepted one still goes to a coder
    assert f"LOW_CONFIDENCE:{result.procedures[0].code}" in result.routing.reasons


def test_cli_procedures_flag_and_setting(
    small_index_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    note_file = tmp_path / "note.txt"
    note_file.write_text(NOTE, encoding="utf-8")
    base = ["--data-dir", str(small_index_settings.data_dir), "code", str(note_file), "--setting", "inpatient"]
    args = [*base, "--proposer", "retrieval", "--no-record"]
    assert main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["procedures"] is None
    assert main([*args, "--json", "--procedures"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert "0FT44ZZ" in [p["code"] for p in out["procedures"]]
    assert {"code", "system", "status", "evidence", "rules", "reasons", "confidence"} <= set(out["procedures"][0])
    monkeypatch.setenv("MEDCODE_PROCEDURES", "1")
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "procedures:" in table and "0FT44ZZ" in table and "SPAN_FAMILY_HISTORY" in table
    assert "cholecystectomy" not in table  # offsets, never note text
