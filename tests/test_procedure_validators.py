"""Procedure validators: PCS complete and allowed by its table, HCPCS/CPT in force, NCCI pairs by quarter,
modifiers, sex edits by date, and procedure evidence (planned, declined, not in the note)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from medcode.cli import main
from medcode.codesets import CodeSystems, NCCIEdits
from medcode.config import Settings
from medcode.errors import DateOutOfRangeError, InputError
from medcode.validators import (
    PROCEDURE_RULE_IDS,
    ProcedureVerdict,
    ValidationContext,
    ValidatorPipeline,
    infer_procedure_system,
    parse_proposal,
)

NOTE = """PROCEDURE NOTE
Patient underwent colonoscopy with biopsy of a sigmoid polyp. A diagnostic colonoscopy was performed first.
She is scheduled for laparoscopic cholecystectomy next month. Patient declined the flu vaccine.
He underwent transurethral resection of the prostate. Influenza vaccine was administered today.
Office visit with the nurse was done today.
"""
DAY = dt.date(2026, 5, 1)


@pytest.fixture(scope="module")
def pipeline(session_settings: Settings) -> Iterator[ValidatorPipeline]:
    with ValidatorPipeline(session_settings) as p:
        yield p


@pytest.fixture(scope="module")
def ncci(session_settings: Settings) -> NCCIEdits:
    return CodeSystems(session_settings).ncci()


def judge(
    pipeline: ValidatorPipeline, procedures: list[dict[str, object]], **ctx: object
) -> dict[str, ProcedureVerdict]:
    proposal = parse_proposal({"procedures": procedures})
    context = ValidationContext(note_text=NOTE, date_of_service=ctx.pop("date", DAY), **ctx)  # type: ignore[arg-type]
    report = pipeline.validate(proposal, context)
    assert report.verdicts == []  # procedures are reported apart from diagnoses
    return {v.code: v for v in report.procedures}


def test_system_from_shape_and_proposal_format() -> None:
    assert infer_procedure_system("0ft44zz") == "icd10pcs"
    assert infer_procedure_system("G0105") == "hcpcs"
    assert infer_procedure_system("45380") == "cpt" and infer_procedure_system("0591T") == "cpt"
    assert infer_procedure_system("hello world") is None
    assert parse_proposal({"procedures": [{"code": "0FT44ZZ"}]}).codes == []
    with pytest.raises(InputError, match="codes: Field required"):
        parse_proposal({"code": "I10"})
    with pytest.raises(InputError, match=r"procedures\.0\.modifiers"):
        parse_proposal({"procedures": [{"code": "45380", "modifiers": ["59", "XS", "RT", "LT", "76"]}]})


def test_pcs_codes_must_be_complete_valid_and_allowed_by_their_row(pipeline: ValidatorPipeline) -> None:
    quote = [{"text": "transurethral resection of the prostate"}]
    v = judge(
        pipeline,
        [
            {"code": "0VT08ZZ", "evidence": quote},
            {"code": "0VT0XZZ", "evidence": quote},
            {"code": "0VT0", "evidence": quote},
            {"code": "ZZZ1234", "evidence": quote},
        ],
        setting="inpatient",
    )
    assert v["0VT08ZZ"].status == "accepted" and v["0VT08ZZ"].system == "icd10pcs"
    assert v["0VT08ZZ"].description == "Resection of Prostate, Via Natural or Artificial Opening Endoscopic"
    assert v["0VT08ZZ"].evidence[0].text == "transurethral resection of the prostate"
    bad_axis = v["0VT0XZZ"].results[0]
    assert v["0VT0XZZ"].rules == ["PCS_AXIS_INVALID"] and "character 5 (Approach) 'X'" in bad_axis.reason
    assert bad_axis.data_version.startswith("icd10pcs-fy2026+") and "rules-" in bad_axis.data_version
    assert v["0VT0"].rules == ["PCS_INCOMPLETE"] and "0VT08ZZ" in v["0VT0"].results[0].suggestions
    assert v["ZZZ1234"].rules == ["PCS_AXIS_INVALID"] and "character 1 (Section)" in v["ZZZ1234"].results[0].reason


def test_a_pcs_code_deleted_before_the_date_is_unknown_then(pipeline: ValidatorPipeline) -> None:
    pcs = pipeline.systems.icd10pcs()
    code, last = (
        pcs.connection()
        .execute("SELECT code, max(date_to) FROM spans GROUP BY code HAVING max(date_to) < '2025-09-30' LIMIT 1")
        .fetchone()
    )
    quote = [{"text": "transurethral resection of the prostate"}]
    v = judge(pipeline, [{"code": code, "evidence": quote}], setting="inpatient")[code]
    assert v.rules == ["PROC_CODE_UNKNOWN"] and f"..{last}" in v.results[0].reason
    before = judge(pipeline, [{"code": code, "evidence": quote}], setting="inpatient", date=dt.date.fromisoformat(last))
    assert "PROC_CODE_UNKNOWN" not in before[code].rules


def test_sex_edits_where_the_mce_has_them(pipeline: ValidatorPipeline) -> None:
    quote = [{"text": "transurethral resection of the prostate"}]
    old = judge(
        pipeline, [{"code": "0VT08ZZ", "evidence": quote}], setting="inpatient", sex="F", date=dt.date(2024, 5, 1)
    )
    assert old["0VT08ZZ"].rules == ["PROC_SEX_CONFLICT"] and "male-only" in old["0VT08ZZ"].results[0].reason
    assert (
        judge(
            pipeline, [{"code": "0VT08ZZ", "evidence": quote}], setting="inpatient", sex="M", date=dt.date(2024, 5, 1)
        )["0VT08ZZ"].status
        == "accepted"
    )
    # CMS dropped the MCE's procedure sex edits from FY2025: the same code has no edit in 2026
    assert judge(pipeline, [{"code": "0VT08ZZ", "evidence": quote}], setting="inpatient", sex="F")[
        "0VT08ZZ"
    ].status == ("accepted")


def test_ncci_pair_with_modifier_indicator_0_rejects_the_column2_code(pipeline: ValidatorPipeline) -> None:
    v = judge(
        pipeline,
        [
            {"code": "45380", "evidence": [{"text": "underwent colonoscopy with biopsy"}]},
            {"code": "45378", "modifiers": ["59"], "evidence": [{"text": "diagnostic colonoscopy was performed"}]},
        ],
    )
    assert v["45380"].status == "accepted" and [w.rule for w in v["45380"].warnings] == ["CPT_UNVERIFIED"]
    assert v["45378"].rules == ["NCCI_PTP_BUNDLED"]
    result = v["45378"].results[-1]
    assert result.related_codes == ["45380"] and "I/OCE 27.1.0" in result.reason
    assert result.data_version.startswith("ncci-ioce-27.1.0+")


def test_ncci_modifier_indicator_1_needs_a_modifier(pipeline: ValidatorPipeline, ncci: NCCIEdits) -> None:
    edit = ncci.pair("G0008", "99211", DAY)
    assert edit is not None and edit.modifier_allowed and edit.column1 == "G0008"
    lines = [
        {"code": "G0008", "evidence": [{"text": "Influenza vaccine was administered today"}]},
        {"code": "99211", "evidence": [{"text": "Office visit with the nurse was done today"}]},
    ]
    v = judge(pipeline, lines)
    assert v["99211"].rules == ["NCCI_MODIFIER_REQUIRED"] and v["G0008"].status == "accepted"
    lines[1]["modifiers"] = ["25"]
    v = judge(pipeline, lines)
    assert v["99211"].status == "accepted" and "NCCI_MODIFIER_BYPASS" in [w.rule for w in v["99211"].warnings]
    lines[1]["modifiers"] = ["Q9"]  # a real modifier that NCCI does not accept to bypass a pair
    assert ncci.modifier("Q9", DAY) is False
    assert judge(pipeline, lines)["99211"].rules == ["NCCI_MODIFIER_REQUIRED"]
    lines[1]["modifiers"] = ["ZZ"]
    assert judge(pipeline, lines)["99211"].rules == ["MODIFIER_UNKNOWN"]


def test_ncci_edits_by_quarter_in_force(ncci: NCCIEdits) -> None:
    code1, code2, _lo = (
        ncci.connection()
        .execute("SELECT code1, code2, lo FROM ptp WHERE lo = 103 AND hi = 103 AND code1 LIKE 'G%' LIMIT 1")
        .fetchone()
    )
    assert ncci.pair(code1, code2, dt.date(2026, 4, 1)) is not None
    assert ncci.pair(code2, code1, dt.date(2026, 4, 1)) is not None  # either order
    assert ncci.pair(code1, code2, dt.date(2026, 3, 31)) is None  # the edit is new that quarter
    assert ncci.quarter_for(dt.date(2026, 5, 1)).ioce_version == "27.1.0"
    with pytest.raises(DateOutOfRangeError):
        ncci.quarter_for(dt.date(2026, 7, 1))  # the data's last quarter ends 2026-06-30
    assert ncci.stats()["ptp_in_newest_quarter"] > 1_000_000


def test_procedure_evidence_planned_declined_or_missing(pipeline: ValidatorPipeline) -> None:
    v = judge(
        pipeline,
        [
            {"code": "0FT44ZZ", "evidence": [{"text": "laparoscopic cholecystectomy"}]},
            {"code": "G0008", "evidence": [{"text": "declined the flu vaccine"}]},
            {"code": "J1100", "evidence": [{"text": "dexamethasone 10 mg IV"}]},
            {"code": "G0105", "evidence": []},
        ],
    )
    assert v["0FT44ZZ"].rules == ["SPAN_HYPOTHETICAL"] and "'scheduled for'" in v["0FT44ZZ"].results[-1].reason
    assert [w.rule for w in v["0FT44ZZ"].warnings] == ["PROC_SETTING_MISMATCH"]  # PCS on an outpatient claim
    assert v["G0008"].rules == ["SPAN_NEGATED"] and v["G0008"].rejected_evidence
    assert v["J1100"].rules == ["SPAN_NOT_IN_NOTE"] and v["G0105"].rules == ["SPAN_NOT_IN_NOTE"]
    assert set(PROCEDURE_RULE_IDS) >= {r for x in v.values() for r in x.rules}


def test_cli_validate_reports_procedures(
    session_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    note = tmp_path / "note.txt"
    note.write_text(NOTE, encoding="utf-8")
    proposal = tmp_path / "p.json"
    proposal.write_text(
        json.dumps(
            {
                "procedures": [
                    {"code": "45380", "evidence": [{"text": "underwent colonoscopy with biopsy"}]},
                    {"code": "45378", "evidence": [{"text": "diagnostic colonoscopy was performed"}]},
                ]
            }
        ),
        encoding="utf-8",
    )
    argv = ["--data-dir", str(session_settings.data_dir), "validate", "--note", str(note), "--proposal", str(proposal)]
    assert main([*argv, "--no-candidates", "--date", "2026-05-01", "--json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["codes"] == []
    assert [(p["code"], p["system"], p["status"]) for p in document["procedures"]] == [
        ("45380", "cpt", "accepted"),
        ("45378", "cpt", "rejected"),
    ]
    assert document["procedures"][1]["rules"] == ["NCCI_PTP_BUNDLED"]
    assert document["routing"]["decision"] == "review"
    assert main([*argv, "--no-candidates", "--date", "2026-05-01"]) == 1
    assert "NCCI_PTP_BUNDLED" in capsys.readouterr().out
