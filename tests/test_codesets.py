"""ICD-10-CM code set: normalisation, hierarchy, notes, 7th characters, dates, bad input."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest

from medcode.cli import main
from medcode.codesets import CodeSetRegistry, ICD10CMCodeSet, ReleaseMapper, normalize_icd10cm
from medcode.config import load_settings
from medcode.errors import (
    CodeSetBuildError,
    ConfigError,
    DateOutOfRangeError,
    MalformedCodeError,
    UnknownCodeError,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("s72001a", "S72.001A"),
        (" S72.001A ", "S72.001A"),
        ("e119", "E11.9"),
        ("E11 .9", "E11.9"),
        ("i10", "I10"),
        ("c4a.0", "C4A.0"),
        ("Z3a.01", "Z3A.01"),
        ("t360x1a", "T36.0X1A"),
        ("qa0.0101", "QA0.0101"),  # April 2026: a letter in the second place
    ],
)
def test_normalize_accepts_common_spellings(raw: str, expected: str) -> None:
    assert normalize_icd10cm(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "E",
        "E1",
        "11.9",
        "E11.",
        "E1.19",
        "E11..9",
        "E11.99999",
        "É11.9",
        "E11.9\u200b",
        "x" * 10_000,
        "E1@",
        "AND",
        "QAA.1",
    ],
)
def test_normalize_rejects_bad_shapes(raw: str) -> None:
    with pytest.raises(MalformedCodeError):
        normalize_icd10cm(raw)


def test_normalize_rejects_non_strings() -> None:
    with pytest.raises(MalformedCodeError):
        normalize_icd10cm(None)
    with pytest.raises(MalformedCodeError):
        normalize_icd10cm(110)


def test_counts_match_the_release(codeset: ICD10CMCodeSet) -> None:
    stats = codeset.stats()
    assert stats["billable"] == 74_719
    assert stats["version"] == "icd10cm-2026-04"
    assert stats["chapters"] == 22


def test_billable_versus_header(codeset: ICD10CMCodeSet) -> None:
    assert codeset.get("E11.9").billable
    header = codeset.get("E11")
    assert not header.billable and header.kind == "category"
    assert "E11.9" in header.children
    assert not codeset.get("E11.2").billable  # subcategory header
    assert codeset.get("I10").billable  # a 3-character billable category
    # The duplicated names in the package (block vs category) resolve to the category.
    for code in ("B20", "F99", "R99", "Z66"):
        assert codeset.get(code).kind == "category"
        assert codeset.get(code).billable


def test_every_code_of_the_release_has_a_valid_shape(codeset: ICD10CMCodeSet) -> None:
    # The April 2026 release added QA0 (a letter in the second place): every stored code must normalise to
    # itself, or the validators would call a real code malformed.
    import sqlite3

    store = sqlite3.connect(f"file:{codeset.path}?mode=ro", uri=True)
    codes = [code for (code,) in store.execute("SELECT code FROM codes")]
    store.close()
    assert [c for c in codes if normalize_icd10cm(c) != c] == []
    assert codeset.get("qa0.0101").billable and "QA0.0101" in codeset


def test_descendants_suggest_billable_children(codeset: ICD10CMCodeSet) -> None:
    kids = codeset.billable_descendants("E11.2")
    assert kids == ["E11.21", "E11.22", "E11.29"]
    assert all(codeset.is_billable(k) for k in codeset.billable_descendants("S72.0", limit=20))


def test_descendants_are_every_billable_code_under_the_header(codeset: ICD10CMCodeSet) -> None:
    # The range scan on dotted codes must find what an undotted prefix match finds, in code order.
    import sqlite3

    store = sqlite3.connect(f"file:{codeset.path}?mode=ro", uri=True)
    for header in ("E11", "E11.2", "S72", "S72.00", "T78.40", "I10", "Z66", "O09.3"):
        nodot = header.replace(".", "")
        expected = [
            code
            for (code,) in store.execute("SELECT code FROM codes WHERE billable = 1 ORDER BY code")
            if code.replace(".", "").startswith(nodot)
        ]
        assert expected and codeset.billable_descendants(header, limit=100_000) == expected
    store.close()


def test_inherited_notes_are_shared_but_per_ancestor(codeset: ICD10CMCodeSet) -> None:
    # Ancestors are read once and shared between records: each record still lists its own ancestors.
    a, b = codeset.get("E11.21"), codeset.get("E10.21")
    assert {n.source for n in a.all_notes("excludes1")} >= {"E11"}
    assert "E11" not in {n.source for n in b.all_notes("excludes1")}
    assert a.block == b.block and a.block_title == b.block_title != ""
    assert a.chapter_title and a.chapter_title == b.chapter_title


def test_seventh_character_is_inherited_from_category(codeset: ICD10CMCodeSet) -> None:
    record = codeset.get("s72001a")
    assert record.code == "S72.001A"
    assert record.seventh is not None
    assert record.seventh.defined_at == "S72"
    assert record.seventh.character == "A"
    assert record.seventh.meaning == "initial encounter for closed fracture"
    assert not record.seventh.placeholder_x
    header = codeset.get("S72.001")
    assert header.seventh is not None and header.seventh.required and not header.billable
    assert "A" in header.seventh.allowed and "S" in header.seventh.allowed


def test_placeholder_x(codeset: ICD10CMCodeSet) -> None:
    record = codeset.get("T78.40XA")
    assert record.seventh is not None and record.seventh.placeholder_x and record.billable
    assert "T78.40A" not in codeset  # the placeholder cannot be dropped
    sprain = codeset.get("S93.401A")
    assert sprain.seventh is not None and not sprain.seventh.placeholder_x


def test_codes_without_seventh_character_have_none(codeset: ICD10CMCodeSet) -> None:
    assert codeset.get("E11.9").seventh is None


@pytest.mark.parametrize(
    ("written", "codes", "outcome"),
    [
        ("E11.9", ("E11.9",), "kept"),
        ("R51", ("R51.9",), "expanded"),  # a header since FY2021: its "unspecified" child
        ("M54.5", ("M54.50",), "expanded"),
        ("D49.51", ("D49.519",), "expanded"),  # "unspecified kidney", not the shorter "left kidney"
        ("H00.03", ("H00.039",), "expanded"),  # "unspecified eye, unspecified eyelid", not "left eye, ..."
        ("Z89.20", ("Z89.209",), "expanded"),
        ("T14.90", ("T14.90XA", "T14.90XD", "T14.90XS"), "variants"),  # written without its 7th character
        ("W19.XXX", ("W19.XXXA", "W19.XXXD", "W19.XXXS"), "variants"),  # with its placeholders, without it
        ("T81.4XX", (), "missing"),  # T81.4 was split (T81.40-T81.49): no single group
        ("K35.2", (), "no_default"),  # several specific children, none unspecified
        ("Q99.99", (), "missing"),
        ("not a code", (), "missing"),
    ],
)
def test_release_mapper_steps_headers_down_to_their_default(
    codeset: ICD10CMCodeSet, written: str, codes: tuple[str, ...], outcome: str
) -> None:
    found, variants, how = ReleaseMapper(codeset).map(written)
    assert (found, how) == (codes, outcome)
    assert variants == (outcome == "variants")


def test_excludes1_own_and_inherited(codeset: ICD10CMCodeSet) -> None:
    e11 = codeset.get("E11")
    assert any("E10" in text for text in e11.excludes1)
    e119 = codeset.get("E11.9")
    inherited = e119.all_notes("excludes1")
    assert any(n.source == "E11" and "E10" in n.text for n in inherited)


def test_use_additional_and_code_first(codeset: ICD10CMCodeSet) -> None:
    e1122 = codeset.get("E11.22")
    assert any("N18" in n.text for n in e1122.all_notes("use_additional"))
    # A manifestation code carries a code-first note.
    assert codeset.get("G63").code_first


def test_unknown_code_suggests_near_matches(codeset: ICD10CMCodeSet) -> None:
    with pytest.raises(UnknownCodeError) as info:
        codeset.get("E11.99")
    assert "unknown code" in str(info.value)
    assert "E11.9" in info.value.suggestions
    assert "E11.99" not in codeset
    assert codeset.exists("e11.9") and not codeset.exists("not a code")


def test_date_of_service_selects_or_refuses(session_settings) -> None:  # type: ignore[no-untyped-def]
    registry = CodeSetRegistry(session_settings)
    assert registry.release_for(dt.date(2026, 4, 1)).id == "icd10cm-2026-04"
    assert registry.release_for(dt.date(2026, 9, 30)).id == "icd10cm-2026-04"
    assert registry.release_for(None).id == "icd10cm-2026-04"
    for day in (dt.date(2026, 3, 31), dt.date(2026, 10, 1), dt.date(2019, 1, 1)):
        with pytest.raises(DateOutOfRangeError, match="no loaded ICD-10-CM release covers"):
            registry.release_for(day)


def test_a_new_release_is_data_not_code(tmp_path: Path, session_settings) -> None:  # type: ignore[no-untyped-def]
    """An October release added through the releases file is picked by date."""
    from importlib import resources

    pkg = resources.files("simple_icd_10_cm") / "data"
    extra = [
        {
            "id": "icd10cm-2026-10-test",
            "name": "test release (same files, later dates)",
            "effective_from": "2026-10-01",
            "effective_to": "2027-09-30",
            "source": {
                "kind": "files",
                "code_list": str(pkg / "code-list-April-2026.txt"),
                "tabular_xml": str(pkg / "icd10c-tabular-April-1-2026.xml"),
            },
        }
    ]
    releases = tmp_path / "releases.json"
    releases.write_text(json.dumps(extra))
    settings = load_settings(data_dir=session_settings.data_dir, codeset_releases_file=releases)
    registry = CodeSetRegistry(settings)
    later = registry.get(dt.date(2026, 11, 26))
    assert later.version == "icd10cm-2026-10-test"
    assert later.get("I10").release == "icd10cm-2026-10-test"
    assert registry.get(dt.date(2026, 5, 1)).version == "icd10cm-2026-04"


def test_overlapping_or_broken_release_files_are_config_errors(tmp_path: Path, session_settings) -> None:  # type: ignore[no-untyped-def]
    overlapping = tmp_path / "overlap.json"
    overlapping.write_text(
        json.dumps(
            [
                {
                    "id": "overlap",
                    "name": "x",
                    "effective_from": "2026-09-01",
                    "effective_to": "2026-12-31",
                    "source": {"kind": "files", "code_list": "a", "tabular_xml": "b"},
                }
            ]
        )
    )
    with pytest.raises(ConfigError, match="overlap"):
        CodeSetRegistry(load_settings(data_dir=tmp_path, codeset_releases_file=overlapping))
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(ConfigError, match="invalid code-set releases file"):
        CodeSetRegistry(load_settings(data_dir=tmp_path, codeset_releases_file=broken))


def test_missing_source_files_fail_clearly(tmp_path: Path) -> None:
    releases = tmp_path / "r.json"
    releases.write_text(
        json.dumps(
            [
                {
                    "id": "icd10cm-2026-10-missing",
                    "name": "x",
                    "effective_from": "2026-10-01",
                    "effective_to": "2027-09-30",
                    "source": {"kind": "files", "code_list": str(tmp_path / "nope.txt"), "tabular_xml": "nope.xml"},
                }
            ]
        )
    )
    registry = CodeSetRegistry(load_settings(data_dir=tmp_path, codeset_releases_file=releases))
    with pytest.raises(CodeSetBuildError, match="file not found"):
        registry.get(dt.date(2026, 12, 1))
    assert not list((tmp_path / "codesets").glob("*.tmp-*"))


def test_corrupt_store_is_rebuilt(tmp_path: Path, codeset: ICD10CMCodeSet) -> None:
    settings = load_settings(data_dir=tmp_path)
    store = tmp_path / "codesets" / "icd10cm-2026-04.sqlite"
    store.parent.mkdir(parents=True)
    store.write_bytes(b"this is not a database")
    with pytest.raises(CodeSetBuildError):
        ICD10CMCodeSet(store)
    rebuilt = CodeSetRegistry(settings).get()
    assert rebuilt.stats()["billable"] == 74_719
    with sqlite3.connect(store) as conn:
        assert conn.execute("SELECT count(*) FROM codes WHERE billable = 1").fetchone()[0] == 74_719


def test_cli_show_and_stats(session_settings, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    data_dir = str(session_settings.data_dir)
    assert main(["--data-dir", data_dir, "codes", "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["billable"] == 74_719 and stats["version"] == "icd10cm-2026-04"

    assert main(["--data-dir", data_dir, "codes", "show", "s72001a", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["code"] == "S72.001A"
    assert record["seventh"]["meaning"] == "initial encounter for closed fracture"

    assert main(["--data-dir", data_dir, "codes", "show", "E11.99"]) == 1
    err = capsys.readouterr().err
    assert "unknown code" in err and "E11.9" in err

    assert main(["--data-dir", data_dir, "codes", "show", "E11.9", "--date", "2020-01-01"]) == 2
    assert "no loaded ICD-10-CM release covers" in capsys.readouterr().err

    assert main(["--data-dir", data_dir, "codes", "show", "ÄÖÜ"]) == 2
    assert "non-ASCII" in capsys.readouterr().err


def test_cli_rejects_bad_date_argument(session_settings, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as info:
        main(["codes", "show", "I10", "--date", "yesterday"])
    assert info.value.code == 2
    assert "not a date" in capsys.readouterr().err


def test_settings_errors_are_config_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDCODE_EMBED_THREADS", "zero")
    with pytest.raises(ConfigError, match="embed_threads"):
        load_settings(data_dir=tmp_path)
    monkeypatch.delenv("MEDCODE_EMBED_THREADS")
    config = tmp_path / "config.toml"
    config.write_text('llm_threads = 3\ndata_dir = "/tmp/x"\n')
    monkeypatch.setenv("MEDCODE_CONFIG", str(config))
    settings = load_settings()
    assert settings.llm_threads == 3
    monkeypatch.setenv("MEDCODE_LLM_THREADS", "5")
    assert load_settings().llm_threads == 5  # environment beats the file
