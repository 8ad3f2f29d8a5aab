"""``code-batch`` never sticks: whatever fails, the note gets an error line, the rest are coded, reruns finish.

Findings of issue 17: a lone surrogate in a note id crashed the batch before the line was written (so every
rerun crashed at the same note); one bad byte refused the whole file; error lines were never retried and a
rerun exited 0. Real pipeline (small real index, retrieval proposer, nothing recorded).
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from medcode.cli import main
from medcode.config import Settings

pytestmark = pytest.mark.slow

NOTE = "ASSESSMENT AND PLAN:\n1. Essential hypertension, well controlled. Continue lisinopril.\n"


def _cmd(settings: Settings, batch: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--data-dir",
        str(settings.data_dir),
        "code-batch",
        str(batch),
        "--out",
        str(out),
        "--proposer",
        "retrieval",
        "--no-record",
        *extra,
    ]


def _rows(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.read_text(encoding="ascii").splitlines()]


def test_a_lone_surrogate_in_an_id_gets_an_error_line_and_reruns_finish(
    small_index_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = tmp_path / "in.jsonl"
    # JSON allows the escape; Python decodes it to a str no UTF-8 file can hold.
    batch.write_text(
        '{"id": "a\\ud800", "text": "'
        + NOTE.replace("\n", "\\n")
        + '"}\n'
        + json.dumps({"id": "b", "text": NOTE})
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    assert main(_cmd(small_index_settings, batch, out)) == 1
    rows = _rows(out)  # ASCII-safe JSON: readable as ASCII
    by_id = {row["note_id"]: row for row in rows}
    assert set(by_id) == {"a\ud800", "b"}
    error = by_id["a\ud800"]["error"]
    assert isinstance(error, dict) and "id" in str(error["message"]) and "unicode" in str(error["message"]).lower()
    assert "codes" in by_id["b"]
    capsys.readouterr()
    # The rerun does not crash at the same note and does not code it again; it still reports the failure.
    assert main(_cmd(small_index_settings, batch, out)) == 1
    assert len(_rows(out)) == 2
    assert "1 note(s) failed in all" in capsys.readouterr().err
    # Evidence quotes are PHI: the results file is owner-only.
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_a_bad_byte_spoils_only_its_line_and_retry_failed_codes_it_again(
    small_index_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = tmp_path / "in.jsonl"
    good = json.dumps({"id": "good", "text": NOTE}).encode()
    bad = b'{"id": "bad", "text": "Essential hypertension \xff"}'
    deep = b'{"id": "deep", "text": "x", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    batch.write_bytes(good + b"\n" + bad + b"\n" + deep)
    out = tmp_path / "out.jsonl"
    assert main(_cmd(small_index_settings, batch, out)) == 1
    by_id = {row["note_id"]: row for row in _rows(out)}
    assert "codes" in by_id["good"] and "codes" not in by_id["line-2"]
    error = by_id["line-2"]["error"]
    assert isinstance(error, dict) and "line 2: not valid UTF-8" in str(error["message"])
    assert "nested too deeply" in str(by_id["line-3"]["error"])  # a RecursionError is that line's error only
    err = capsys.readouterr().err
    assert "2 note(s) failed in all" in err and "--retry-failed" in err

    # Without --retry-failed nothing is coded again and the exit says notes failed.
    assert main(_cmd(small_index_settings, batch, out)) == 1
    assert len(_rows(out)) == 3
    # Fix the input and retry: the failed notes are coded again, the coded one is not.
    fixed = [json.dumps({"id": f"line-{n}", "text": NOTE}).encode() for n in (2, 3)]
    batch.write_bytes(b"\n".join([good, *fixed]) + b"\n")
    capsys.readouterr()
    assert main(_cmd(small_index_settings, batch, out, "--retry-failed")) == 0
    rows = _rows(out)
    assert [r["note_id"] for r in rows].count("good") == 1
    assert [r["note_id"] for r in rows[-2:]] == ["line-2", "line-3"] and all("codes" in r for r in rows[-2:])


def test_code_refuses_an_over_long_note_type_before_coding(
    small_index_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    note = tmp_path / "note.txt"
    note.write_text(NOTE, encoding="utf-8")
    data_dir = tmp_path / "empty-data"  # no code set or index: coding would fail, so exit 2 means it never started
    assert main(["--data-dir", str(data_dir), "code", str(note), "--note-type", "x" * 101, "--no-record"]) == 2
    err = capsys.readouterr().err
    assert "note_type" in err and "Traceback" not in err


def test_validate_refuses_a_deeply_nested_proposal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    note = tmp_path / "note.txt"
    note.write_text(NOTE, encoding="utf-8")
    proposal = tmp_path / "p.json"
    proposal.write_text("[" * 100_000 + "]" * 100_000, encoding="utf-8")
    code = main(
        [
            "--data-dir",
            str(tmp_path / "d"),
            "validate",
            "--note",
            str(note),
            "--proposal",
            str(proposal),
            "--no-candidates",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "nested too deeply" in err and "Traceback" not in err


def test_a_ray_worker_turns_any_per_note_exception_into_that_notes_error_line() -> None:
    """On Ray an exception out of the worker stops the batch (DistributedError): the worker catches it first."""
    from medcode.agent.cli import _code_on_worker, _RunCollector

    class Boom:
        recorder = _RunCollector()

        def code(self, note: object) -> object:
            raise KeyError("a quote from the note")  # not a medcode error: its message may hold PHI

    outcome = _code_on_worker(100_000, False, Boom(), (1, {"id": "n1", "text": NOTE}, None))  # type: ignore[arg-type]
    assert outcome.failed and outcome.run is None
    assert outcome.record == {
        "note_id": "n1",
        "error": {"type": "KeyError", "message": "unexpected KeyError while coding this note"},
    }
    # With --format fhir the worker's error line is already a Bundle holding an OperationOutcome.
    fhir = _code_on_worker(100_000, True, Boom(), (1, {"id": "n1", "text": NOTE}, None))  # type: ignore[arg-type]
    assert fhir.failed and fhir.record["resourceType"] == "Bundle"
    assert [e["resource"]["resourceType"] for e in fhir.record["entry"]] == ["OperationOutcome"]


def test_retry_failed_knows_json_and_fhir_error_lines() -> None:
    from medcode.agent.cli import _is_error_line

    assert _is_error_line({"note_id": "a", "error": {"type": "NoteError", "message": "empty"}})
    outcome = {"resource": {"resourceType": "OperationOutcome", "issue": []}}
    assert _is_error_line({"resourceType": "Bundle", "entry": [outcome]})
    claim = {"resource": {"resourceType": "Claim"}}
    assert not _is_error_line({"resourceType": "Bundle", "entry": [claim, outcome]})  # coded, with rejected codes
    assert not _is_error_line({"note_id": "a", "codes": []})
