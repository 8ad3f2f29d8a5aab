"""Fit the confidence model (logistic regression over measured features) and write its data file.

Input: JSONL rows ``{"features": {...}, "correct": bool, "dataset": name}`` (from
``evals/tune_proposer.py --features``). Rows of ``--holdout`` datasets are kept out of the fit and
used to report ECE before and after. Writes ``agent/data/confidence.json`` (or ``--out``) with
weights for the ``retrieval`` proposer and the same weights plus an ``llm_selected`` term for the
``llm`` proposer (the LLM's choice is a feature, its say-so is never a confidence).

Usage::

    python -m tools.fit_confidence /tmp/tune-features.jsonl --holdout dev/aci
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
from pathlib import Path

from medcode.evals._metrics import expected_calibration_error

FEATURES = (
    "score",
    "best_span_score",
    "log_hits",
    "diagnostic_section",
    "inverse_rank",
    "margin",
    "top_option",
    "outpatient",
)


def _predict(weights: dict[str, float], features: dict[str, float]) -> float:
    z = weights.get("bias", 0.0) + sum(weights.get(k, 0.0) * features.get(k, 0.0) for k in FEATURES)
    return 1.0 / (1.0 + math.exp(-z))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("features", type=Path)
    parser.add_argument("--holdout", action="append", default=[], help="dataset names kept out of the fit")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "agent/data/confidence.json")
    parser.add_argument("--llm-bonus", type=float, default=0.5, help="weight of llm_selected (not fitted here)")
    args = parser.parse_args(argv)

    from sklearn.linear_model import LogisticRegression

    rows = [json.loads(line) for line in args.features.read_text(encoding="utf-8").splitlines() if line.strip()]
    train = [r for r in rows if r["dataset"] not in args.holdout]
    test = [r for r in rows if r["dataset"] in args.holdout] or train
    if len({r["correct"] for r in train}) < 2:
        raise SystemExit("need both correct and incorrect examples to fit")
    model = LogisticRegression(C=1.0, max_iter=1000)
    model.fit([[r["features"].get(k, 0.0) for k in FEATURES] for r in train], [int(r["correct"]) for r in train])
    weights = {"bias": round(float(model.intercept_[0]), 4)}
    weights.update({k: round(float(w), 4) for k, w in zip(FEATURES, model.coef_[0], strict=True)})

    old = json.loads(args.out.read_text(encoding="utf-8"))["weights"]["retrieval"] if args.out.exists() else {}
    for name, subset in (("train", train), ("holdout", test)):
        labels = [bool(r["correct"]) for r in subset]
        before = expected_calibration_error([_predict(old, r["features"]) for r in subset], labels) if old else None
        after = expected_calibration_error([_predict(weights, r["features"]) for r in subset], labels)
        print(f"{name}: n={len(subset)} accuracy={sum(labels) / len(labels):.3f} ECE before={before} after={after:.4f}")

    data = {
        "version": f"confidence-{dt.date.today().isoformat()}",
        "note": (
            f"Logistic regression fitted by evals/fit_confidence.py on {len(train)} accepted codes from "
            f"{sorted({r['dataset'] for r in train})}; held out: {sorted(args.holdout)}. "
            "llm_selected is a fixed bonus, not fitted."
        ),
        "weights": {"retrieval": weights, "llm": {**weights, "llm_selected": args.llm_bonus}},
    }
    args.out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}: {weights}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
