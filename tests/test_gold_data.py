"""The shipped gold set, its generator, the sample notes, and the gold checker."""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from medcode.codesets import CodeSetRegistry
from medcode.config import Settings
from medcode.evals.check_gold import NOTE_TYPES, TRAP_KINDS, check_gold, main
from tools.make_gold import GOLD_PATH, SAMPLE_FILES, build_records, render_jsonl

SAMPLES_DIR = Path(__file__).resolve().parents[1] / "samples"


@pytest.fixture(scope="session")
def gold_registry(session_settings: Settings) -> CodeSetRegistry:
    """Registry over the session's temp data dir (the store is built once, ~3 s)."""
    return CodeSetRegistry(session_settings)


@pytest.fixture(scope="module")
def gold() -> list[dict[str, Any]]:
    return [json.loads(line) for line in GOLD_PATH.read_text(encoding="utf-8").splitlines() if line.strip()]


# -- the shipped data ----------------------------------------------------------------------------
def test_shipped_gold_passes_checker(gold_registry: CodeSetRegistry) -> None:
    assert check_gold(GOLD_PATH, gold_registry) == []


def test_gold_size_and_coverage(gold: list[dict[str, Any]]) -> None:
    assert len(gold) >= 50
    kinds = Counter(trap["kind"] for note in gold for trap in note.get("traps", []))
    assert set(kinds) == set(TRAP_KINDS), f"missing trap kinds: {set(TRAP_KINDS) - set(kinds)}"
    assert kinds["prompt_injection"] >= 3
    assert {note["note_type"] for note in gold} == set(NOTE_TYPES)
    assert {note["setting"] for note in gold} == {"outpatient", "inpatient"}
    assert all(note["setting"] == "inpatient" for note in gold if note["note_type"] == "discharge_summary")
    assert all("2026-04-01" <= note["date_of_service"] <= "2026-09-30" for note in gold)
    per_note = [len(note["codes"]) for note in gold]
    assert max(per_note) <= 6 and sum(2 <= n <= 6 for n in per_note) >= 0.75 * len(gold)
    assert all(80 <= len(note["text"].split()) <= 400 for note in gold)


def test_prompt_injection_codes_are_not_gold(gold: list[dict[str, Any]]) -> None:
    for note in gold:
        for trap in note.get("traps", []):
            if trap["kind"] == "prompt_injection":
                assert trap["text"] in note["text"]
                assert not set(trap["not_codes"]) & set(note["codes"])


def test_gold_file_matches_generator() -> None:
    """gold.jsonl is exactly what make_gold writes: edit the generator, then rerun it."""
    assert GOLD_PATH.read_text(encoding="utf-8") == render_jsonl(build_records())


def test_samples_are_gold_notes(gold: list[dict[str, Any]]) -> None:
    by_id = {note["id"]: note for note in gold}
    for note_id, filename in SAMPLE_FILES.items():
        assert (SAMPLES_DIR / filename).read_text(encoding="utf-8") == by_id[note_id]["text"]


def test_dataset_reader_accepts_gold(gold: list[dict[str, Any]]) -> None:
    """The eval harness's reader (evals._dataset, another work item) loads every note."""
    dataset = pytest.importorskip("medcode.evals._dataset", reason="evals._dataset not in this checkout yet")
    docs = list(dataset.read_dataset(GOLD_PATH, strict=True))
    assert [d.id for d in docs] == [note["id"] for note in gold]
    assert all(d.spans for d in docs)


def test_generator_rejects_ambiguous_or_missing_evidence() -> None:
    from tools.make_gold import N

    text = "CHIEF COMPLAINT: cough. " + "Cough with fever for two days and some more words here. " * 9
    with pytest.raises(ValueError, match="occurs 9 times"):
        build_records([N("x", "outpatient_visit", "2026-05-01", 30, "F", text, {"R05.9": "Cough with fever"})])
    with pytest.raises(ValueError, match="occurs 0 times"):
        build_records([N("x", "outpatient_visit", "2026-05-01", 30, "F", text, {"R05.9": "wheezing"})])


# -- the checker on broken inputs ---------------------------------------------------------------
_TEXT = (
    "ASSESSMENT AND PLAN: Type 2 diabetes mellitus without complications. Essential hypertension. Denies chest pain."
)


def _good() -> dict[str, Any]:
    dm = _TEXT.index("Type 2 diabetes mellitus without complications")
    htn = _TEXT.index("Essential hypertension")
    return {
        "id": "t-1",
        "text": _TEXT,
        "codes": ["E11.9", "I10"],
        "spans": [
            {"code": "E11.9", "start": dm, "end": dm + len("Type 2 diabetes mellitus without complications")},
            {"code": "I10", "start": htn, "end": htn + len("Essential hypertension")},
        ],
        "setting": "outpatient",
        "note_type": "outpatient_visit",
        "date_of_service": "2026-05-01",
        "traps": [{"kind": "negation", "text": "Denies chest pain", "not_codes": ["R07.9"]}],
    }


def _write(tmp_path: Path, records: list[Any]) -> Path:
    path = tmp_path / "gold.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def apply(r: dict[str, Any]) -> None:
        r[key] = value

    return apply


def _bad_offset(r: dict[str, Any]) -> None:
    r["spans"][0]["end"] = len(r["text"]) + 5


def _unknown_code(r: dict[str, Any]) -> None:
    r["codes"][0] = "E11.99"
    r["spans"][0]["code"] = "E11.99"


def _header_code(r: dict[str, Any]) -> None:
    r["codes"][0] = "E11"
    r["spans"][0]["code"] = "E11"


def _missing_span(r: dict[str, Any]) -> None:
    del r["spans"][1]


def _span_for_unlisted_code(r: dict[str, Any]) -> None:
    r["spans"][1]["code"] = "I12.9"


def _whitespace_span(r: dict[str, Any]) -> None:
    r["spans"][0]["start"] -= 1


def _trap_text_absent(r: dict[str, Any]) -> None:
    r["traps"][0]["text"] = "denies palpitations"


def _trap_forbids_gold(r: dict[str, Any]) -> None:
    r["traps"][0]["not_codes"] = ["I10"]


def _trap_bad_kind(r: dict[str, Any]) -> None:
    r["traps"][0]["kind"] = "sarcasm"


def _lowercase_code(r: dict[str, Any]) -> None:
    r["codes"][1] = "i10"
    r["spans"][1]["code"] = "i10"


def _missing_text(r: dict[str, Any]) -> None:
    del r["text"]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (_bad_offset, "is outside the text"),
        (_unknown_code, "'E11.99' does not exist"),
        (_header_code, "'E11' is a header, not billable"),
        (_missing_span, "code 'I10' has no span"),
        (_span_for_unlisted_code, "code 'I12.9' is not one of the note's codes"),
        (_whitespace_span, "starts or ends with whitespace"),
        (_trap_text_absent, "does not occur in the note"),
        (_trap_forbids_gold, "forbids 'I10', which is a gold code"),
        (_trap_bad_kind, "kind 'sarcasm' is not one of"),
        (_lowercase_code, "not in canonical dotted upper-case form"),
        (_missing_text, "missing required field 'text'"),
        (_set("spans", None), "spans must be a list"),
        (_set("date_of_service", "2025-01-15"), "no loaded ICD-10-CM release covers"),
        (_set("date_of_service", "15/05/2026"), "is not a YYYY-MM-DD date"),
        (_set("note_type", "discharge_summary"), "must have setting 'inpatient'"),
        (_set("sex", "female"), "sex 'female' is not"),
        (_set("codes_pcs", ["02703"]), "are not 7-character ICD-10-PCS codes"),
        (_set("colour", "blue"), "unknown field(s) ['colour']"),
    ],
    ids=lambda v: getattr(v, "__name__", None) if callable(v) else None,
)
def test_checker_catches_broken_record(
    tmp_path: Path, gold_registry: CodeSetRegistry, mutate: Callable[[dict[str, Any]], None], expected: str
) -> None:
    assert check_gold(_write(tmp_path, [_good()]), gold_registry) == []
    record = copy.deepcopy(_good())
    mutate(record)
    problems = check_gold(_write(tmp_path, [record]), gold_registry)
    assert any(expected in p for p in problems), problems
    assert all(p.startswith(f"{tmp_path / 'gold.jsonl'}:1") for p in problems)


def test_checker_catches_file_level_problems(tmp_path: Path, gold_registry: CodeSetRegistry) -> None:
    problems = check_gold(_write(tmp_path, [_good(), "{not json", _good(), "[1, 2]"]), gold_registry)
    assert any(":2: invalid JSON" in p for p in problems)
    assert any(":3: t-1: duplicate id (first seen on line 1)" in p for p in problems)
    assert any(":4: expected a JSON object" in p for p in problems)
    assert not any(":1:" in p for p in problems)
    assert check_gold(tmp_path / "missing.jsonl", gold_registry)[0].endswith(
        "No such file or directory: '" + str(tmp_path / "missing.jsonl") + "'"
    )
    assert check_gold(_write(tmp_path, []), gold_registry) == [f"{tmp_path / 'gold.jsonl'}: no documents"]


def test_missing_spans_allowed_when_not_required(tmp_path: Path, gold_registry: CodeSetRegistry) -> None:
    record = _good()
    del record["spans"]
    path = _write(tmp_path, [record])
    assert any("no spans" in p for p in check_gold(path, gold_registry))
    assert check_gold(path, gold_registry, require_spans=False) == []


def test_cli_exit_codes(
    tmp_path: Path,
    session_settings: Settings,
    gold_registry: CodeSetRegistry,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("MEDCODE_DATA_DIR", str(session_settings.data_dir))
    good = _write(tmp_path, [_good()])
    assert main([str(good)]) == 0
    bad_record = _good()
    bad_record["codes"].append("E11")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(bad_record) + "\n", encoding="utf-8")
    capsys.readouterr()
    assert main([str(bad)]) == 1
    out = capsys.readouterr().out
    assert "'E11' is a header" in out and "code 'E11' has no span" in out
    assert main([str(tmp_path / "nope.jsonl")]) == 2
