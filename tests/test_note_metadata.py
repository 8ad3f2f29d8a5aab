"""Note metadata (provider, department, payer, encounter date) travels from the CLI, batch files and the API
to the chart; charts coded before it have none; the financial-impact routing check keeps charts away from auto."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from pathlib import Path

import pytest
from shared_data import own_data_dir

from medcode.agent import (
    FINANCIAL_IMPACT,
    ROUTING_CHECK_FAILED,
    MedicalCoder,
    Note,
    NoteMetadata,
    RoutingPolicy,
)
from medcode.cli import main
from medcode.config import Settings, load_settings
from medcode.errors import InputError, MedcodeError
from medcode.monitoring import FinancialImpactCheck
from medcode.review import CodingDecision, ReviewQueue, ReviewStore
from medcode.validators import CodeVerdict

NOTE = """ASSESSMENT AND PLAN:
1. Type 2 diabetes mellitus without complications. Continue metformin 500 mg twice daily.
2. Essential hypertension, well controlled. Continue lisinopril.
"""


def _ok(code: str, confidence: float = 0.99) -> CodeVerdict:
    return CodeVerdict(code=code, canonical=code, status="accepted", confidence=confidence)


def _decision(text: str = NOTE, metadata: NoteMetadata | None = None) -> CodingDecision:
    verdicts = [_ok("I10")]
    return CodingDecision(
        note_text=text,
        note_id="n-1",
        verdicts=verdicts,
        routing=RoutingPolicy().decide(verdicts, "progress"),
        metadata=metadata or NoteMetadata(),
    )


# -- the model ----------------------------------------------------------------------------------------


def test_metadata_is_optional_cleaned_and_checked() -> None:
    assert NoteMetadata().is_empty()
    meta = NoteMetadata(provider_id="  NPI 123 ", department="", payer="Medicare", encounter_date=dt.date(2026, 5, 4))
    assert meta.provider_id == "NPI 123" and meta.department is None and not meta.is_empty()
    with pytest.raises(InputError, match="provider_id"):
        NoteMetadata.from_fields({"provider_id": "dr\x07who"})
    with pytest.raises(InputError, match="encounter_date"):
        NoteMetadata.from_fields({"encounter_date": "yesterday"})
    note = Note.checked(NOTE, 10_000, metadata=NoteMetadata(payer="Acme"))
    assert Note.model_validate_json(note.model_dump_json()).metadata.payer == "Acme"  # the copilot's job store


def test_metadata_changes_the_result_fingerprint_only_when_given() -> None:
    plain = _decision()
    assert _decision(metadata=NoteMetadata()).result_sha256() == plain.result_sha256()
    assert _decision(metadata=NoteMetadata(provider_id="p1")).result_sha256() != plain.result_sha256()


# -- the store ----------------------------------------------------------------------------------------


def test_charts_store_metadata_and_an_older_database_is_migrated(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    with ReviewQueue(settings) as queue:
        old = queue.enqueue(_decision(NOTE + "old"))
    # Put the database back to revision 0002 (no metadata columns yet, nor 0004's check column nor 0005's users).
    path = settings.data_dir / "review.sqlite"
    conn = sqlite3.connect(path, isolation_level=None)
    for column in ("provider_id", "department", "payer", "encounter_date"):
        conn.execute(f"ALTER TABLE charts DROP COLUMN {column}")
    conn.execute("ALTER TABLE chart_codes DROP COLUMN check_json")
    conn.execute("DROP TABLE users")
    conn.execute("UPDATE alembic_version SET version_num = '0002'")
    conn.close()
    meta = NoteMetadata(
        provider_id="P-7", department="cardiology", payer="Medicare", encounter_date=dt.date(2026, 5, 4)
    )
    with ReviewQueue(settings) as queue:
        assert queue.get(old).metadata == NoteMetadata()
        new = queue.enqueue(_decision(NOTE + "new", meta))
        assert queue.get(new, include_text=False).metadata == meta
        listed = list(queue.iter_charts(batch=1))
    assert [c.chart_id for c in listed] == [old, new]
    assert listed[1].metadata == meta and listed[1].note_text is None
    with ReviewStore(settings) as store, store.read() as c:
        assert ReviewStore.revision(c) == "0005"


def test_iter_charts_takes_a_time_range(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    with ReviewQueue(settings) as queue:
        first = queue.enqueue(_decision(NOTE + "1"))
        middle = dt.datetime.now(dt.UTC)
        second = queue.enqueue(_decision(NOTE + "2"))
        assert [c.chart_id for c in queue.iter_charts(until=middle)] == [first]
        assert [c.chart_id for c in queue.iter_charts(since=middle)] == [second]
        with pytest.raises(InputError, match="timezone-aware"):
            list(queue.iter_charts(since=dt.datetime(2026, 1, 1)))


# -- the CLI and batch files ---------------------------------------------------------------------------


def test_cli_and_batch_accept_metadata(small_index_settings: Settings, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    own_data_dir(small_index_settings, data_dir, share=("codesets", "retrieval"))
    note_file = tmp_path / "note.txt"
    note_file.write_text(NOTE, encoding="utf-8")
    base = ["--data-dir", str(data_dir)]
    args = ["code", str(note_file), "--proposer", "retrieval", "--json", "--provider-id", "P-1", "--payer", "Medicare"]
    assert main([*base, *args, "--encounter-date", "2026-05-04"]) == 0
    batch = tmp_path / "in.jsonl"
    rows = [
        {"id": "flat", "text": NOTE + "\nflat", "provider_id": "P-2", "department": "ED"},
        {"id": "nested", "text": NOTE + "\nnested", "metadata": {"provider_id": "P-3", "encounter_date": "2026-05-05"}},
        {"id": "bad", "text": NOTE + "\nbad", "metadata": {"doctor": "x"}},
    ]
    batch.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main([*base, "code-batch", str(batch), "--out", str(out), "--proposer", "retrieval"]) == 1
    errors = {r["note_id"]: r.get("error") for r in map(json.loads, out.read_text().splitlines())}
    assert errors["flat"] is None and errors["nested"] is None
    assert errors["bad"] is not None and "unknown metadata field(s): doctor" in errors["bad"]["message"]
    with ReviewQueue(load_settings(data_dir=data_dir)) as queue:
        metas = {c.note_id: c.metadata for c in queue.iter_charts()}
    assert metas["flat"] == NoteMetadata(provider_id="P-2", department="ED")
    assert metas["nested"] == NoteMetadata(provider_id="P-3", encounter_date=dt.date(2026, 5, 5))
    (cli_meta,) = [m for note_id, m in metas.items() if note_id not in ("flat", "nested")]
    assert cli_meta == NoteMetadata(provider_id="P-1", payer="Medicare", encounter_date=dt.date(2026, 5, 4))


# -- the financial-impact routing check ----------------------------------------------------------------


@pytest.fixture(scope="module")
def check() -> FinancialImpactCheck:
    return FinancialImpactCheck(load_settings())


def test_a_cc_or_mcc_that_moves_the_drg_and_an_hcc_code_are_reasons(check: FinancialImpactCheck) -> None:
    inpatient = Note(id="i", text="x", setting="inpatient")
    # I50.20 alone groups to DRG 293; N18.6 (CKD stage 5, an MCC) moves it to 291. E87.1 is a CC the MCC outranks.
    reasons = check.reasons(inpatient, [_ok("I50.20"), _ok("N18.6"), _ok("E87.1")])
    assert f"{FINANCIAL_IMPACT}:DRG:N18.6" in reasons
    assert f"{FINANCIAL_IMPACT}:DRG:E87.1" not in reasons
    # HCCs: I50.20 (HCC 226) and N18.6 (HCC 326) each add one; E87.1 maps to none.
    assert f"{FINANCIAL_IMPACT}:HCC:I50.20" in reasons and f"{FINANCIAL_IMPACT}:HCC:N18.6" in reasons
    assert f"{FINANCIAL_IMPACT}:HCC:E87.1" not in reasons
    # Outpatient: no DRG; a code without an HCC gives nothing; rejected codes are not the machine's claim.
    outpatient = Note(id="o", text="x")
    assert check.reasons(outpatient, [_ok("J06.9")]) == []
    rejected = CodeVerdict(code="E11.9", canonical="E11.9", status="rejected", rules=["SPAN_NEGATED"])
    assert check.reasons(outpatient, [_ok("J06.9"), rejected]) == []
    assert check.reasons(outpatient, [_ok("E11.9")]) == [f"{FINANCIAL_IMPACT}:HCC:E11.9"]
    # A code trumped by a higher HCC in the hierarchy does not change the set: E11.9 beside E11.22.
    both = check.reasons(outpatient, [_ok("E11.22"), _ok("E11.9")])
    assert f"{FINANCIAL_IMPACT}:HCC:E11.22" in both and f"{FINANCIAL_IMPACT}:HCC:E11.9" not in both
    # An ungroupable inpatient claim (an external cause as principal) is a reason too: the impact is unknown.
    assert f"{FINANCIAL_IMPACT}:DRG:UNGROUPABLE" in check.reasons(inpatient, [_ok("W19.XXXA")])


def test_a_financial_reason_keeps_an_otherwise_autonomous_note_in_review(check: FinancialImpactCheck) -> None:
    policy = RoutingPolicy(auto_threshold=0.9, autonomy_note_types=frozenset({"progress"}))
    verdicts = [_ok("E11.9")]
    note = Note(id="o", text="x", note_type="progress")
    assert policy.decide(verdicts, "progress").decision == "auto"
    decision = policy.decide(verdicts, "progress", extra_reasons=check.reasons(note, verdicts))
    assert decision.decision == "review" and decision.reasons == [f"{FINANCIAL_IMPACT}:HCC:E11.9"]


class _Broken:
    name = "broken"

    def reasons(self, note: Note, verdicts: list[CodeVerdict]) -> list[str]:
        raise MedcodeError("grouper down")


class _Fixed:
    name = "fixed"

    def reasons(self, note: Note, verdicts: list[CodeVerdict]) -> list[str]:
        return ["FINANCIAL_IMPACT:HCC:TEST"]


def test_the_coder_adds_check_reasons_and_a_failing_check_sends_the_note_to_review(
    small_index_settings: Settings,
) -> None:
    note = Note.checked(NOTE, 10_000, id="rc", note_type="progress")
    settings = small_index_settings.model_copy(update={"routing_autonomy_note_types": ["progress"]})
    with MedicalCoder(settings, proposer="retrieval", routing_checks=[_Fixed(), _Broken()]) as coder:
        result = coder.code(note)
    assert "FINANCIAL_IMPACT:HCC:TEST" in result.routing.reasons
    assert f"{ROUTING_CHECK_FAILED}:broken" in result.routing.reasons
    assert result.routing.decision == "review"
