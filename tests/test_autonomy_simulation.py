"""The autonomy loop end to end on a small replayed stream (``tools/simulate_autonomy.py``).

A calibrated synthetic machine earns a grant through blinded audits, goes out alone, then drifts;
the audits of its auto-coded charts suspend the grant. Real predictions that never meet the
target never go out alone.
"""

from __future__ import annotations

import json
from pathlib import Path

from medcode.review.governance import load_policy
from tools.simulate_autonomy import charts_from_predictions, simulate, synthetic_charts

POLICY = """
version = "sim-test"
auditors_per_chart = 2

[[case_types]]
id = "chronic"
title = "Chronic follow-up"
note_types = ["outpatient_visit"]
settings = ["outpatient"]
code_families = ["I10-I16", "E78"]
claim_precision_target = 0.85
code_precision_target = 0.85
min_audited = 40
audit_rate = 0.5
review_sample = 15
approved_by = "Dana Compliance"
approved_on = 2026-11-29
"""


def _dataset(tmp_path: Path) -> Path:
    rows = [
        {"id": f"n{i}", "text": "x", "codes": [["I10"], ["E78.5"], ["E78.00"]][i % 3], "setting": "outpatient"}
        for i in range(30)
    ]
    path = tmp_path / "tiny.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_calibrated_machine_earns_autonomy_and_loses_it_when_it_drifts(tmp_path: Path) -> None:
    import random

    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(POLICY, encoding="utf-8")
    charts = synthetic_charts(_dataset(tmp_path), random.Random(0))
    result = simulate(
        charts,
        load_policy(policy_file),
        machine="synthetic",
        passes=12,
        batch=30,
        seed=3,
        synthetic=True,
        drift_after=240,
        drift=0.45,
        data_dir=tmp_path / "sim",
    )
    kinds = [(e["event"], e["chart"]) for e in result.events]
    granted = [c for k, c in kinds if k == "granted"]
    suspended = [c for k, c in kinds if k == "suspended"]
    assert granted and granted[0] < 240, kinds  # earned before the drift
    assert suspended and suspended[-1] > 240 and kinds[-1][0] == "suspended", kinds  # pulled back after it
    assert not [c for c in granted if c > suspended[-1]]  # and not granted again while it is worse
    assert result.auto > 0 and result.audits > 40
    assert result.charts == 360 and 0 < result.auto_share < 1


def test_predictions_below_target_never_go_out_alone(tmp_path: Path) -> None:
    dataset = _dataset(tmp_path)
    rows = []
    for i in range(30):
        gold = [["I10"], ["E78.5"], ["E78.00"]][i % 3]
        codes = [{"code": "I10", "status": "accepted", "confidence": 0.97, "warnings": [], "rules": []}]
        rows.append(
            {
                "id": f"n{i}",
                "gold": gold,
                "setting": "outpatient",
                "proposer": "retrieval",
                "result": {"codes": codes, "routing": {"reasons": []}},
            }
        )
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(POLICY, encoding="utf-8")
    charts = charts_from_predictions(predictions, dataset)
    result = simulate(
        charts, load_policy(policy_file), machine="fixture", passes=4, batch=30, data_dir=tmp_path / "sim"
    )
    assert result.auto == 0 and result.wrong_codes_billed_per_1000 == 0
    assert not [e for e in result.events if e["event"] == "granted"]
    assert not result.final_evaluation["chronic"]["eligible"]  # one in three right: far below 0.85
