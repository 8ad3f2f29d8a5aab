"""Cross-fitted evaluation of the acceptance model through the real pipeline.

``medcode train``'s out-of-fold figures score the acceptance model's selection against gold; the
pipeline then runs every selected code through the full validators, which reject some. To report a
figure for a dataset the model was trained on (ACI dev, the project's gold set) honestly *and* through
the whole pipeline, this script cross-fits: for each fold of ``medcode train``'s split it trains a model
on the other folds only (thresholds and calibration from their own nested cross-validation), then runs
``medcode eval`` on the fold's notes with that model. The fold results are pooled into one metrics file
per dataset. Nothing evaluated ever chose a parameter of the model that coded it.

    python tools/crossfit_eval.py --data-dir /work/data-after --features /work/train-run3/features.jsonl \\
        --dataset aci/dev=../shared/benchmarks/aci/dev.jsonl --dataset data/gold=evals/data/gold.jsonl \\
        --out /work/crossfit
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from medcode.codesets import CodeSetRegistry
from medcode.config import load_settings
from medcode.evals._harness import compute_metrics, load_predictions, run_eval
from medcode.evals._training import NoteExample, folds_for, train_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--features", type=Path, required=True, help="features.jsonl written by medcode train")
    parser.add_argument("--dataset", action="append", required=True, help="NAME=PATH of a dataset to evaluate")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cv", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    examples = [NoteExample.from_json(line) for line in args.features.read_text(encoding="utf-8").splitlines()]
    folds = folds_for(examples, args.cv, args.seed)  # the same split as medcode train's
    wanted = dict(item.split("=", 1) for item in args.dataset)
    docs: dict[str, dict[str, str]] = {}
    for name, path in wanted.items():
        docs[name] = {json.loads(line)["id"]: line for line in Path(path).read_text(encoding="utf-8").splitlines()}
    args.out.mkdir(parents=True, exist_ok=True)
    settings = load_settings(data_dir=args.data_dir)
    for fold in range(args.cv):
        train = [ex for ex, f in zip(examples, folds, strict=True) if f != fold]
        held = [ex for ex, f in zip(examples, folds, strict=True) if f == fold and ex.dataset in wanted]
        fold_dir = args.out / f"fold{fold + 1}"
        fold_dir.mkdir(exist_ok=True)
        model_path = fold_dir / "model.json"
        if not model_path.exists():
            model, _ = train_model(train, k=args.cv, seed=args.seed, version=f"crossfit-fold{fold + 1}", progress=False)
            model_path.write_text(json.dumps(model), encoding="utf-8")
        fold_settings = settings.model_copy(update={"acceptance_model": model_path})
        for name in wanted:
            lines = [docs[name][ex.doc_id] for ex in held if ex.dataset == name and ex.doc_id in docs[name]]
            if not lines:
                continue
            subset = fold_dir / f"{name.replace('/', '_')}.jsonl"
            subset.write_text("\n".join(lines) + "\n", encoding="utf-8")
            run_eval(fold_settings, subset, fold_dir / name.replace("/", "_"), proposer="retrieval", progress=False)
        print(f"fold {fold + 1}/{args.cv} done", file=sys.stderr)
    codeset = CodeSetRegistry(settings).get()
    for name in wanted:
        rows = []
        for fold in range(args.cv):
            pred = args.out / f"fold{fold + 1}" / name.replace("/", "_") / "predictions.jsonl"
            if pred.exists():
                rows += load_predictions(pred)
        texts = {json.loads(line)["id"]: json.loads(line)["text"] for line in docs[name].values()}
        metrics = compute_metrics(rows, codeset, texts=texts)
        metrics["dataset"] = name
        (args.out / f"{name.replace('/', '_')}-metrics.json").write_text(
            json.dumps(metrics, indent=2), encoding="utf-8"
        )
        keys = ("n_documents", "micro_precision", "micro_recall", "micro_f1", "map", "ece", "candidate_recall")
        print(name, {k: metrics[k] for k in keys}, metrics["error_accounting"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
