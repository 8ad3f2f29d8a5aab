"""The evaluation harness on a tiny dataset (real pipeline, small index) and the regress exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medcode.cli import main
from medcode.config import Settings
from medcode.errors import InputError
from medcode.evals._harness import compute_metrics, run_eval
from medcode.evals._regress import compare, make_baseline

NOTE = (
    "ASSESSMENT AND PLAN:\n1. Type 2 diabetes mellitus without complications. Continue metformin.\n"
    "2. Essential hypertension. Continue lisinopril.\nHe denies chest pain.\n"
)

REQUIRED_KEYS = {
    "n_documents",
    "micro_precision",
    "micro_recall",
    "micro_f1",
    "macro_f1",
    "exact_match",
    "map",
    "category_f1",
    "candidate_recall",
    "hallucination_rate_raw",
    "hallucination_rate_accepted",
    "unsupported_accepted_rate",
    "unsupported_accepted_by_reason",
    "rejections_by_rule",
    "auto_rate",
    "review_rate",
    "ece",
    "evidence_precision",
    "seconds_per_document",
    "prompt_tokens_per_document",
    "completion_tokens_per_document",
    "versions",
}


def _dataset(tmp_path: Path) -> Path:
    start = NOTE.index("Type 2 diabetes")
    rows = [
        json.dumps(
            {
                "id": "d1",
                "text": NOTE,
                "codes": ["E11.9", "I10", "Z99.89"],
                "spans": [{"code": "E11.9", "start": start, "end": start + 46}],
                "setting": "outpatient",
            }
        ),
        '{"id": "broken", "text": ',
        json.dumps({"id": "d2", "text": "Well child visit. No complaints.", "codes": []}),
        json.dumps({"id": "d3", "text": NOTE, "codes": ["E11.9", "R51"], "setting": "case-report"}),
    ]
    path = tmp_path / "gold.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_eval_writes_metrics_predictions_and_report_and_resumes(
    small_index_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dataset = _dataset(tmp_path)
    out = tmp_path / "run"
    metrics = run_eval(small_index_settings, dataset, out, proposer="retrieval", progress=False)
    assert set(metrics) >= REQUIRED_KEYS
    assert "gold.jsonl:2: skipped: invalid JSON" in capsys.readouterr().err and metrics["n_skipped_lines"] == 1
    assert metrics["n_documents"] == 3
    assert metrics["hallucination_rate_accepted"] == 0.0
    # R51 (2018 code, now R51.9) and Z99.89 (a real code nobody predicts) are gold; R51 is reported apart.
    assert metrics["gold_codes_not_in_codeset_list"] == ["R51"]
    assert metrics["micro_recall"] < 1.0 and metrics["tp"] >= 3
    assert metrics["evidence_precision"] == 1.0
    assert metrics["rejections_by_rule"].get("SPAN_NEGATED", 0) >= 1
    assert (out / "report.html").read_text().count("<img") >= 2
    assert (out / "reliability.png").stat().st_size > 1000
    rows = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["d1", "d2", "d3"]
    assert "NOTE" not in (out / "report.html").read_text() and "metformin" not in (out / "report.html").read_text()

    # Rerun: nothing is coded again; the metrics are recomputed from the file.
    again = run_eval(small_index_settings, dataset, out, proposer="retrieval", progress=False)
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 3
    assert again["micro_f1"] == metrics["micro_f1"]
    with pytest.raises(InputError, match="another proposer"):
        run_eval(small_index_settings, dataset, out, proposer="llm", progress=False)
    with pytest.raises(InputError, match=r"gold.jsonl:2"):
        run_eval(small_index_settings, dataset, tmp_path / "strict", proposer="retrieval", strict=True, progress=False)


def _metrics(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "n_documents": 10,
        "micro_precision": 0.5,
        "micro_recall": 0.5,
        "micro_f1": 0.5,
        "hallucination_rate_raw": 0.10,
        "hallucination_rate_accepted": 0.0,
        "unsupported_accepted_rate": 0.02,
        "candidate_recall": 0.8,
        "ece": 0.1,
        "review_rate": 1.0,
        "versions": {"proposer": "llm", "model": "m1", "prompt": "p1", "codeset": "c1"},
    }
    base.update(overrides)
    return base


def test_compare_rules() -> None:
    assert compare(_metrics(), _metrics()).ok
    assert compare(_metrics(), _metrics(micro_f1=0.49)).ok  # within tolerance
    worse_f1 = compare(_metrics(), _metrics(micro_f1=0.40))
    assert not worse_f1.ok and "micro_f1" in worse_f1.failures[0]
    assert not compare(_metrics(), _metrics(hallucination_rate_raw=0.20)).ok
    assert compare(_metrics(), _metrics(hallucination_rate_raw=0.0)).ok  # improvement is fine
    accepted = compare(_metrics(), _metrics(hallucination_rate_accepted=0.001))
    assert not accepted.ok and "must be 0" in accepted.failures[0]
    assert compare(_metrics(), _metrics(unsupported_accepted_rate=0.025)).ok  # within 0.01
    unsupported = compare(_metrics(), _metrics(unsupported_accepted_rate=0.05))
    assert not unsupported.ok and "unsupported_accepted_rate rose" in unsupported.failures[0]
    assert compare(_metrics(), _metrics(unsupported_accepted_rate=0.05), tolerance_unsupported=0.05).ok
    old_baseline = {k: v for k, v in _metrics().items() if k != "unsupported_accepted_rate"}
    with pytest.raises(InputError, match="unsupported_accepted_rate"):
        compare(old_baseline, _metrics())
    changed = _metrics(versions={"proposer": "llm", "model": "m2", "prompt": "p1", "codeset": "c1"})
    assert not compare(_metrics(), changed).ok
    assert compare(_metrics(), changed, allow_version_change=True).ok
    assert "micro_f1" in compare(_metrics(), _metrics()).table()
    with pytest.raises(InputError, match="micro_f1"):
        compare({"versions": {}}, _metrics())


def _write_results(directory: Path, metrics: dict[str, object]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "metrics.json").write_text(json.dumps(metrics))
    return directory


def test_regress_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps(make_baseline(_metrics())))
    good = _write_results(tmp_path / "good", _metrics(micro_f1=0.55))
    bad = _write_results(tmp_path / "bad", _metrics(hallucination_rate_accepted=0.05))
    assert main(["regress", "--baseline", str(baseline), "--results", str(good)]) == 0
    assert "PASS" in capsys.readouterr().out
    assert main(["regress", "--baseline", str(baseline), "--results", str(bad)]) == 1
    captured = capsys.readouterr()
    assert "FAIL" in captured.out and "REGRESSION" in captured.err
    loose = _write_results(tmp_path / "loose", _metrics(micro_f1=0.45))
    assert main(["regress", "--baseline", str(baseline), "--results", str(loose)]) == 1
    assert main(["regress", "--baseline", str(baseline), "--results", str(loose), "--tolerance-f1", "0.1"]) == 0
    capsys.readouterr()
    assert main(["regress", "--baseline", str(tmp_path / "missing.json"), "--results", str(good)]) == 2
    assert "baseline not found" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    assert main(["regress", "--baseline", str(broken), "--results", str(good)]) == 2
    # Updating the baseline from a finished run, then passing against it.
    new = tmp_path / "new-baseline.json"
    assert main(["regress", "--baseline", str(new), "--results", str(good), "--update-baseline"]) == 0
    assert json.loads(new.read_text())["micro_f1"] == 0.55
    capsys.readouterr()
    assert main(["regress", "--baseline", str(new), "--results", str(good), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["failures"] == []


def _accepted(code: str, start: int, end: int) -> dict[str, object]:
    return {
        "code": code,
        "status": "accepted",
        "rules": [],
        "confidence": 0.9,
        "evidence": [{"text": NOTE[start:end], "start": start, "end": end}],
    }


def _row(codes: list[dict[str, object]], **extra: object) -> dict[str, object]:
    result = {
        "codes": codes,
        "routing": {"decision": "review"},
        "usage": {"seconds": 1.0, "prompt_tokens": 0, "completion_tokens": 0},
        "candidates": [],
        "versions": {},
    }
    return {"id": "d", "gold": ["E11.9", "I10"], "predicted": [c["code"] for c in codes], "result": result, **extra}


def test_unsupported_accepted_rate_is_computed_from_gold_not_the_validators(codeset) -> None:  # type: ignore[no-untyped-def]
    diabetes = NOTE.index("Type 2 diabetes")
    hypertension = NOTE.index("Essential hypertension")
    spans = [{"code": "E11.9", "start": diabetes, "end": diabetes + 46}]
    traps = [{"kind": "negation", "text": "He denies chest pain", "not_codes": ["R07.9"]}]
    good = _row([_accepted("E11.9", diabetes, diabetes + 46), _accepted("I10", hypertension, hypertension + 22)])
    metrics = compute_metrics([{**good, "gold_spans": spans}], codeset, texts={"d": NOTE})
    assert metrics["unsupported_accepted_rate"] == 0.0
    chest = NOTE.index("chest pain")
    wrong = _row(
        [
            _accepted("E11.65", diabetes, diabetes + 46),  # a sibling of gold E11.9: the wrong family member
            _accepted("E11.9", hypertension, hypertension + 22),  # gold code, evidence outside its gold span
            _accepted("R07.9", chest, chest + 10),  # a trap of the note
            _accepted("Z99.89", hypertension, hypertension + 22),  # unrelated to gold: not counted
        ],
        gold_spans=spans,
        gold_traps=traps,
    )
    metrics = compute_metrics([wrong], codeset, texts={"d": NOTE})
    assert metrics["unsupported_accepted_by_reason"] == {"evidence": 1, "sibling": 1, "trap": 1}
    assert metrics["unsupported_accepted_rate"] == 0.75
    assert metrics["hallucination_rate_accepted"] == 0.0  # the structural re-check sees nothing wrong
    twin = _row([_accepted("E10.9", diabetes, diabetes + 46)])
    assert compute_metrics([twin], codeset)["unsupported_accepted_by_reason"] == {"sibling": 1}


def test_committed_baselines_have_every_gated_metric() -> None:
    from medcode.evals._regress import BASELINE_KEYS, VERSION_KEYS

    baselines = sorted((Path(__file__).resolve().parents[1] / "evals" / "baselines").glob("*.json"))
    assert baselines
    for path in baselines:
        data = json.loads(path.read_text(encoding="utf-8"))
        assert set(BASELINE_KEYS) <= set(data), path.name
        assert isinstance(data["unsupported_accepted_rate"], float), path.name
        assert set(VERSION_KEYS) <= set(data["versions"]), path.name


def test_compute_metrics_handles_failed_and_empty_documents(codeset) -> None:  # type: ignore[no-untyped-def]
    rows = [
        {"id": "a", "gold": ["I10"], "error": {"type": "NoteError", "message": "empty"}},
        {"id": "b", "gold": [], "predicted": []},
    ]
    metrics = compute_metrics(rows, codeset)
    assert metrics["n_documents"] == 2 and metrics["n_failed"] == 2
    assert metrics["micro_f1"] == 0.0 and metrics["fn"] == 1
    assert metrics["hallucination_rate_accepted"] == 0.0 and metrics["ece"] == 0.0


def test_error_accounting_splits_false_positives_and_negatives(codeset) -> None:  # type: ignore[no-untyped-def]
    def code(c: str, status: str = "accepted") -> dict[str, object]:
        return {"code": c, "status": status, "rules": [] if status == "accepted" else ["SPAN_NEGATED"], "evidence": []}

    result = {
        "codes": [code("E11.65"), code("E10.9"), code("J45.909"), code("I10", "rejected"), code("R51.9")],
        "candidates": ["E11.65", "E10.9", "J45.909", "I10", "N18.30", "R51.9"],
        "routing": {"decision": "review"},
        "usage": {"seconds": 1.0, "prompt_tokens": 0, "completion_tokens": 0},
        "versions": {},
    }
    rows = [
        # gold E11.9 (sibling E11.65 accepted: wrong specificity), E78.5 (never offered), I10 (rejected),
        # N18.30 (offered, not proposed); E10.9 shares chapter 4 with E11.9; J45.909 is unrelated;
        # R51 is headache as coded before FY2021 (a header now), and R51.9 its form in the release.
        {
            "id": "a",
            "gold": ["E11.9", "E78.5", "I10", "N18.30", "R51"],
            "predicted": ["E11.65", "E10.9", "J45.909", "R51.9"],
            "result": result,
        },
        {"id": "b", "gold": ["K21.9"], "error": {"type": "NoteError", "message": "x"}},
    ]
    metrics = compute_metrics(rows, codeset)
    accounting = metrics["error_accounting"]
    assert accounting["false_positives"] == {
        "older_release_form": 1,
        "wrong_specificity": 1,
        "same_chapter": 1,
        "unrelated": 1,
    }
    # Exact match counts R51.9 wrong and R51 missed; against the release's forms it is a hit.
    assert (metrics["tp"], metrics["fp"], metrics["fn"]) == (0, 4, 6)
    assert metrics["gold_codes_in_older_form"] == 1
    assert metrics["micro_precision_release"] == 0.25 and metrics["micro_recall_release"] == round(1 / 6, 4)
    assert accounting["false_negatives"] == {
        "older_release_form": 1,
        "never_a_candidate": 2,  # E11.9 (E11.65 was offered, not E11.9) and E78.5
        "rejected_by_rule": 1,
        "below_threshold": 1,
        "failed_document": 1,
    }


def test_gold_codes_of_an_older_release_are_aligned_to_the_release(codeset) -> None:  # type: ignore[no-untyped-def]
    from medcode.evals._harness import GoldForms

    forms = GoldForms(codeset)
    assert forms.forms("M54.5") == ("M54.50",)  # a header since FY2022
    assert forms.forms("W19.XXX") == ("W19.XXXA", "W19.XXXD", "W19.XXXS")  # placeholders, no 7th character
    assert forms.forms("T81.4XX") == ()  # T81.4 was split (T81.40-T81.49): no single form
    gold = ["W19.XXX", "T14.90", "M54.5", "E11.9", "T81.4XX"]
    assert forms.align(gold, ["W19.XXXD", "E11.9"]) == ["W19.XXXD", "T14.90XA", "M54.50", "E11.9", "T81.4XX"]
