"""The real pipeline end to end: small real index, real validators, real embedded SmolLM2 server.

The index covers a few hundred codes around the test note's conditions so it builds in seconds;
everything else (code set, embedder, ConText, llama.cpp) is what users run.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from medcode.agent import MedicalCoder, Note, Runtime
from medcode.cli import main
from medcode.codesets import CodeSetRegistry, ICD10CMCodeSet
from medcode.config import Settings
from medcode.review import AuditLog, QueueRecorder, ReviewQueue

pytestmark = pytest.mark.slow

NOTE = """CHIEF COMPLAINT: Follow-up of diabetes and blood pressure.

HISTORY OF PRESENT ILLNESS: 58-year-old man with type 2 diabetes and high blood pressure.
He denies chest pain. He reports no shortness of breath.

FAMILY HISTORY: Mother had breast cancer.

ASSESSMENT AND PLAN:
1. Type 2 diabetes mellitus without complications. Continue metformin 500 mg twice daily.
2. Essential hypertension, well controlled. Continue lisinopril.
"""


@pytest.fixture(scope="module")
def agent_settings(small_index_settings: Settings) -> Settings:
    return small_index_settings


@pytest.fixture(scope="module")
def codeset(agent_settings: Settings) -> ICD10CMCodeSet:
    return CodeSetRegistry(agent_settings).get()


def _check_result_integrity(result_codes: list[dict], text: str, codeset: ICD10CMCodeSet, offered: list[str]) -> None:
    for code in result_codes:
        if code["status"] != "accepted":
            assert code["rules"], f"{code['code']} rejected without a rule id"
            continue
        assert code["code"] in codeset and codeset.is_billable(code["code"])
        assert code["code"] in offered
        assert code["evidence"], f"accepted {code['code']} without evidence"
        for ev in code["evidence"]:
            assert text[ev["start"] : ev["end"]] == ev["text"]


def test_the_proposer_follows_the_settings_unless_given(agent_settings: Settings) -> None:
    with Runtime(agent_settings) as runtime:
        for name in ("retrieval", "llm"):
            settings = agent_settings.model_copy(update={"proposer": name})
            assert MedicalCoder(settings, runtime=runtime).proposer_name == name
        assert MedicalCoder(agent_settings, runtime=runtime, proposer="llm").proposer_name == "llm"


def test_codes_passed_on_to_be_shown_rejected_are_never_accepted(agent_settings: Settings) -> None:
    from medcode.agent._proposers import Proposed, RetrievalProposer

    class MarksAcceptedAsBlocked(RetrievalProposer):
        """Simulates vetting and final validation disagreeing: accepted codes come back marked blocked."""

        def propose(self, *args, **kwargs) -> Proposed:  # type: ignore[no-untyped-def]
            proposed = super().propose(*args, **kwargs)
            proposed.blocked = frozenset(i.code for i in proposed.items)
            return proposed

    note = Note.checked(NOTE, agent_settings.max_note_chars, id="t-blocked")
    with MedicalCoder(agent_settings, proposer="retrieval") as coder:
        assert {"E11.9", "I10"} <= set(coder.code(note).accepted_codes)
        coder._proposer = MarksAcceptedAsBlocked(coder.runtime.acceptance_model, vetter=coder.vet)
        result = coder.code(note)
    assert result.accepted_codes == []


CKD_NOTE = """ASSESSMENT AND PLAN:
1. Essential hypertension, well controlled. Continue lisinopril.
2. Chronic kidney disease stage 3a, creatinine stable.
"""


@pytest.mark.parametrize(
    ("first", "partner_quote", "also_proposed", "step", "expected"),
    [
        ("I10", "Chronic kidney disease stage 3a", [], True, "I12.9"),  # hypertension with CKD is I12.- (I.C.9.a.2)
        ("I12.0", "Chronic kidney disease stage 3a", [], True, "I12.9"),  # stage 5's code does not fit stage 3a
        ("I11.9", "Chronic kidney disease stage 3a", [], True, "I13.10"),  # hypertensive heart disease with CKD
        ("I10", "Chronic kidney disease stage 5", [], True, None),  # the partner's quote is not in the note
        ("I10", "Chronic kidney disease stage 3a", ["I12.9"], True, None),  # already proposed: not added twice
        ("I10", "Chronic kidney disease stage 3a", [], False, None),  # MEDCODE_COMBINATION_CODES=0: the coder's
    ],
)
def test_the_combination_code_the_rule_names_is_proposed_and_judged(
    agent_settings: Settings,
    first: str,
    partner_quote: str,
    also_proposed: list[str],
    step: bool,
    expected: str | None,
) -> None:
    """I10 rejected by COMBINATION_REQUIRED beside an accepted CKD code brings in the code the rule names, citing
    both codes' spans at the lower confidence; it is validated like any proposal."""
    from medcode.agent._proposers import Proposed, ProposedItem, RetrievalProposer
    from medcode.validators import Evidence

    def item(code: str, quote: str, confidence: float) -> ProposedItem:
        start = CKD_NOTE.find(quote)
        span = Evidence(text=quote, start=start, end=start + len(quote)) if start >= 0 else Evidence(text=quote)
        return ProposedItem(code=code, evidence=[span], features={}, confidence=confidence)

    class Fixed(RetrievalProposer):
        def propose(self, *args, **kwargs) -> Proposed:  # type: ignore[no-untyped-def]
            items = [item(first, "Essential hypertension", 0.7), item("N18.31", partner_quote, 0.9)]
            items += [item(code, "Essential hypertension", 0.5) for code in also_proposed]
            return Proposed(items=items, candidates_offered=[i.code for i in items])

    note = Note.checked(CKD_NOTE, agent_settings.max_note_chars, id="t-combination")
    settings = agent_settings.model_copy(update={"combination_codes": step})
    with MedicalCoder(settings, proposer="retrieval") as coder:
        coder._proposer = Fixed(coder.runtime.acceptance_model, vetter=coder.vet)
        result = coder.code(note)
    by_code = {c.code: c for c in result.codes}
    partnered = partner_quote in CKD_NOTE  # a partner whose quote is not in the note is rejected and links nothing
    assert ("COMBINATION_REQUIRED" in by_code[first].rules) is partnered
    assert (by_code["N18.31"].status == "accepted") is partnered
    if expected is None:
        assert [c.code for c in result.codes].count("I12.9") == len(also_proposed)
        return
    combined = by_code[expected]
    assert combined.status == "accepted" and combined.confidence == 0.7
    assert [e.text for e in combined.evidence] == ["Essential hypertension", "Chronic kidney disease stage 3a"]
    assert expected not in result.candidates  # retrieval's candidates: the rule derived it, nobody offered it


def test_a_note_with_no_code_at_the_threshold_gets_its_likeliest_candidate_at_the_floor(
    agent_settings: Settings,
) -> None:
    """The model's floor: nothing reaches a threshold of 0.999, so the likeliest candidate alone is proposed when
    the setting has a floor it reaches, and nothing without one (or with an explicit threshold)."""
    from importlib import resources

    from medcode.agent import AcceptanceModel
    from medcode.agent._proposers import Proposed, RetrievalProposer

    seen: list[tuple[Proposed, list[float]]] = []

    class Recording(RetrievalProposer):
        def propose(self, note, candidates, codeset) -> Proposed:  # type: ignore[no-untyped-def]
            proposed = super().propose(note, candidates, codeset)
            rows = self.feature_rows(note, candidates, codeset)
            seen.append((proposed, self.model.probability([r for _, r in rows], note.setting)))
            return proposed

    packaged = json.loads(resources.files("medcode.agent").joinpath("data/acceptance.json").read_text("utf-8"))
    unreachable = {s: 0.999 for s in packaged["thresholds"]}
    note = Note.checked(NOTE, agent_settings.max_note_chars, id="t-floor")
    with MedicalCoder(agent_settings, proposer="retrieval") as coder:
        for floors, threshold in (
            ({}, None),
            ({s: 0.0 for s in unreachable}, None),
            ({s: 0.0 for s in unreachable}, 0.999),
        ):
            model = AcceptanceModel({**packaged, "thresholds": unreachable, "floors": floors}, version="floor-test")
            coder._proposer = Recording(model, vetter=coder.vet, threshold=threshold)
            coder.code(note)
    (none, _), (floored, probabilities), (explicit, _) = seen
    assert [i.code for i in none.items if i.code not in none.blocked] == []
    assert [i.code for i in explicit.items if i.code not in explicit.blocked] == []
    chosen = [i for i in floored.items if i.code not in floored.blocked]
    assert len(chosen) == 1 and chosen[0].confidence == max(probabilities) < 0.999
    assert floored.extra["acceptance_floor"] == 0.0 and "acceptance_floor" not in none.extra


def test_retrieval_proposer_codes_the_note_and_records_it(agent_settings: Settings, codeset: ICD10CMCodeSet) -> None:
    note = Note.checked(NOTE, agent_settings.max_note_chars, id="t-1", age=58, sex="M")
    with (
        Runtime(agent_settings) as runtime,
        MedicalCoder(
            agent_settings, runtime=runtime, proposer="retrieval", recorder=QueueRecorder(agent_settings)
        ) as coder,
    ):
        result = coder.code(note)
        coder.close()
        # The runtime is the caller's: closing a coder leaves it usable for the next one.
        with MedicalCoder(agent_settings, runtime=runtime, proposer="retrieval") as second:
            assert second.code(note).accepted_codes == result.accepted_codes
            assert second.retriever() is coder.retriever()
    data = result.model_dump(mode="json")
    _check_result_integrity(data["codes"], NOTE, codeset, result.candidates)
    accepted = set(result.accepted_codes)
    assert {"E11.9", "I10"} <= accepted
    assert not any(c.startswith(("R07", "C50", "R06")) for c in accepted)  # denied / family history
    # A code the acceptance model would keep but for a rule is shown rejected, with the rule that blocked it.
    blocked = {c.code: c.rules for c in result.codes if c.status == "rejected"}
    assert blocked and all(rules for rules in blocked.values())
    assert any(code.startswith(("R07", "C50", "Z80", "R06")) for code in blocked), blocked
    assert result.routing.decision == "review"  # human-assisted by default
    assert result.versions["codeset"] == "icd10cm-2026-04" and result.versions["proposer"] == "retrieval"
    assert str(result.versions["retrieval_data"]).startswith("retrieval-data+")
    assert all(c.confidence is not None and 0 <= c.confidence <= 1 for c in result.codes)
    # Recorded: a chart in the queue and a verifiable audit chain that does not hold the note text.
    assert result.chart_id is not None
    with ReviewQueue(agent_settings) as queue:
        chart = queue.get(result.chart_id)
        assert {c.code for c in chart.codes} >= {"E11.9", "I10"}
    with AuditLog(agent_settings) as audit:
        assert audit.verify().ok
        for record in audit.records():
            assert "Mother had breast cancer" not in json.dumps(record.payload)


def test_llm_proposer_with_embedded_smollm2(agent_settings: Settings, codeset: ICD10CMCodeSet) -> None:
    note = Note.checked(NOTE, agent_settings.max_note_chars, id="t-llm")
    with MedicalCoder(agent_settings, proposer="llm") as coder:
        result = coder.code(note)
    data = result.model_dump(mode="json")
    assert not result.errors, result.errors
    assert result.versions["model"] == "smollm2-135m"
    assert str(result.versions["prompt"]).startswith("choose-v2+")
    assert result.usage.prompt_tokens > 0 and result.usage.completion_tokens > 0
    assert 0 < len(result.candidates) <= 20
    _check_result_integrity(data["codes"], NOTE, codeset, result.candidates)
    # Whatever the small model picked, the guardrails hold: nothing denied or family-history is accepted.
    assert not any(c.startswith(("R07", "C50")) for c in result.accepted_codes)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_llm_routes_to_a_human_and_keeps_the_note(agent_settings: Settings) -> None:
    settings = agent_settings.model_copy(
        update={
            "llm_base_url": f"http://127.0.0.1:{_closed_port()}/v1",
            "llm_model": "any",
            "llm_max_retries": 1,
            "llm_retry_backoff_s": 0.01,
        }
    )
    note = Note.checked(NOTE, settings.max_note_chars, id="t-down")
    with MedicalCoder(settings, proposer="llm", recorder=QueueRecorder(settings)) as coder:
        result = coder.code(note)
    assert "LLM_UNAVAILABLE" in result.routing.reasons
    assert result.routing.decision == "review"
    assert result.errors and "unavailable" in result.errors[0].lower()
    assert "E11.9" in [c.code for c in result.codes]  # the worklist is pre-filled from retrieval
    assert result.chart_id is not None


@pytest.mark.parametrize(
    ("first_line", "expected"),
    [
        ("DISCHARGE SUMMARY", ("discharge_summary", "inpatient")),
        ("## Hospital Discharge Summary:", ("discharge_summary", "inpatient")),
        ("Discharge summary - cardiology", ("discharge_summary", "inpatient")),
        ("EMERGENCY DEPARTMENT NOTE", ("ed_note", "outpatient")),
        ("ER visit (night shift)", ("ed_note", "outpatient")),
        ("Discharge summary was reviewed with the patient.", None),  # a sentence, not a title
        ("Progress note", None),
        ("EDEMA NOTE", None),
    ],
)
def test_a_title_line_names_the_note_type_and_setting(first_line: str, expected: tuple[str, str] | None) -> None:
    from medcode.agent._note import note_title

    found = note_title(f"\n  \n{first_line}\nHPI: 70 yo with heart failure.\n")
    assert (None if found is None else (found.note_type, found.setting)) == expected


def test_cli_codes_a_titled_discharge_summary_as_inpatient_unless_told_otherwise(
    agent_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    note_file = tmp_path / "note.txt"
    note_file.write_text("DISCHARGE SUMMARY\n\n" + NOTE, encoding="utf-8")
    args = ["--data-dir", str(agent_settings.data_dir), "code", str(note_file), "--proposer", "retrieval"]

    def coded(*extra: str) -> dict[str, Any]:
        assert main([*args, "--no-record", "--json", *extra]) == 0
        return dict(json.loads(capsys.readouterr().out))

    titled = coded()
    assert titled["context"]["setting"] == "inpatient" and titled["routing"]["case_type"].startswith("inpatient")
    assert coded("--setting", "outpatient")["context"]["setting"] == "outpatient"  # the flag wins
    monkeypatch.setenv("MEDCODE_SETTING", "outpatient")  # and so does a configured setting
    assert coded()["context"]["setting"] == "outpatient"
    monkeypatch.delenv("MEDCODE_SETTING")
    note_file.write_text(NOTE, encoding="utf-8")  # no title: the default
    assert coded()["context"]["setting"] == "outpatient"


def test_cli_code_json_and_bad_inputs(
    agent_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = str(agent_settings.data_dir)
    note_file = tmp_path / "note.txt"
    note_file.write_text(NOTE, encoding="utf-8")
    args = ["--data-dir", data_dir, "code", str(note_file), "--proposer", "retrieval", "--no-record"]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"note_id", "codes", "routing", "versions", "usage"}
    assert {"code", "description", "confidence", "status", "evidence", "rules", "index_term"} <= set(out["codes"][0])
    assert out["routing"]["decision"] in ("auto", "review")

    assert main(args) == 0  # table output
    assert "E11.9" in capsys.readouterr().out

    bad = {
        "empty.txt": b"   \n",
        "binary.bin": b"\x7fELF\x00\x00\x01\x02",
        "latin1.txt": "Patient f\u00fchlt sich schlecht".encode("latin-1"),
        "huge.txt": b"hypertension. " * 80_000,
    }
    expected = {"empty.txt": "empty", "binary.bin": "binary", "latin1.txt": "UTF-8", "huge.txt": "over the limit"}
    for name, content in bad.items():
        path = tmp_path / name
        path.write_bytes(content)
        assert main(["--data-dir", data_dir, "code", str(path), "--proposer", "retrieval", "--no-record"]) == 2
        assert expected[name] in capsys.readouterr().err
    assert main(["--data-dir", data_dir, "code", str(tmp_path / "missing.txt"), "--proposer", "retrieval"]) == 2
    assert "not found" in capsys.readouterr().err
    # Bad note details are a MedcodeError naming the field (exit 2), never a pydantic traceback.
    for flag, value, field in (("--age", "200", "age"), ("--age", "-1", "age"), ("--id", "x" * 300, "id")):
        assert main([*args, flag, value]) == 2
        err = capsys.readouterr().err
        assert err.startswith("medcode: error: invalid note details") and field in err
        assert "Traceback" not in err and "pydantic" not in err


def test_code_batch_records_errors_and_resumes(
    agent_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = str(agent_settings.data_dir)
    batch = tmp_path / "in.jsonl"
    rows = [
        json.dumps({"id": "a", "text": NOTE}),
        "{not json",
        json.dumps({"id": "b", "text": "   "}),
        json.dumps({"id": "c", "text": NOTE.replace("Essential hypertension", "Hyperlipidemia"), "age": 200}),
        json.dumps({"id": "d", "text": NOTE, "date_of_service": "2019-01-01"}),
    ]
    batch.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    cmd = [
        "--data-dir",
        data_dir,
        "code-batch",
        str(batch),
        "--out",
        str(out),
        "--proposer",
        "retrieval",
        "--no-record",
    ]
    assert main([*cmd, "--limit", "1"]) == 0
    assert [json.loads(x)["note_id"] for x in out.read_text().splitlines()] == ["a"]
    # Simulate a crash mid-write: a torn last line is dropped and that note redone.
    with out.open("a") as handle:
        handle.write('{"note_id": "line-2", "err')
    assert main(cmd) == 1  # some notes failed
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    by_id = {row["note_id"]: row for row in lines}
    assert [row["note_id"] for row in lines].count("a") == 1
    assert "codes" in by_id["a"]
    assert "line 2" in by_id["line-2"]["error"]["message"]
    assert "empty" in by_id["b"]["error"]["message"]
    assert by_id["c"]["error"]["type"] == "ValidationError" or "age" in by_id["c"]["error"]["message"]
    assert "no loaded ICD-10-CM release covers" in by_id["d"]["error"]["message"]
    capsys.readouterr()
    # A rerun has nothing left to do; the failed ones are not retried unless asked, but still count (exit 1).
    assert main(cmd) == 1
    assert len(out.read_text().splitlines()) == len(lines)
    assert "4 note(s) failed in all" in capsys.readouterr().err


def test_invalid_llm_output_routes_to_a_human(agent_settings: Settings) -> None:
    """A real local server that answers every chat completion with text that is not the schema."""
    import http.server
    import threading

    class Garbage(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            body = json.dumps(
                {
                    "id": "x",
                    "object": "chat.completion",
                    "created": 0,
                    "model": "garbage",
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": "I think I10?"},
                        }
                    ],
                    "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Garbage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        settings = agent_settings.model_copy(
            update={"llm_base_url": f"http://127.0.0.1:{server.server_address[1]}/v1", "llm_model": "garbage"}
        )
        note = Note.checked(NOTE, settings.max_note_chars, id="t-garbage")
        with MedicalCoder(settings, proposer="llm") as coder:
            result = coder.code(note)
    finally:
        server.shutdown()
    assert "LLM_OUTPUT_INVALID" in result.routing.reasons and result.routing.decision == "review"
    assert result.errors and "invalid" in result.errors[0]
    assert "E11.9" in [c.code for c in result.codes]
