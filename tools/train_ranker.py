"""Fit the candidate ranker (``retrieval/data/candidate_ranker.json``) from labelled notes.

For every note of the given benchmark files whose coding setting is ``--setting`` (case reports
count as inpatient), retrieval merges a pool of ``--pool`` candidates in the hybrid note score's
order; a candidate is positive when it is one of the note's gold codes. A gradient-boosted model
(``medcode._trees.fit_boosting`` defaults, nothing tuned) learns to re-order the pool. The tool
prints K-fold out-of-fold candidate recall at K (pool cut at K before and after re-ordering;
every fold's model saw none of its notes), then fits on all notes and writes the model file. The fold
models go into the file too, each with the hashes of the notes it was fitted without, so that
``medcode train`` gives the acceptance model held-out ranker scores for those notes (no stacking leak).
``--with-priors`` adds how often the training labels hold each code and category (a site's ranker: the
labels are its coders'); a training note's own labels never reach its rows, and each fold model keeps the
priors of its own training notes.

    MEDCODE_DATA_DIR=/work/data-after .venv/bin/python -m tools.train_ranker \\
        --dataset ../shared/benchmarks/codiesp/train.jsonl --dataset evals/data/gold.jsonl \\
        --out retrieval/data/candidate_ranker.json --cache /tmp/ranker-pools.jsonl

Needs the full index and the ``train`` extra (scikit-learn). ``--cache`` keeps the pools, so a rerun
skips retrieval.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from tqdm import tqdm

from medcode._trees import export_trees, fit_boosting
from medcode.codesets import CodeSetRegistry
from medcode.config import load_settings
from medcode.evals._dataset import read_dataset
from medcode.retrieval import HybridRetriever, NoteCandidate
from medcode.retrieval._priors import CodePriors
from medcode.retrieval._ranker import (
    PRIOR_FEATURES,
    RANKER_FEATURES,
    RANKER_FORMAT,
    CandidateRanker,
    ranker_features,
)


def _label(path: Path) -> str:
    return path.name if path.parent.name == "" else f"{path.parent.name}/{path.stem}"


def _pools(paths: list[Path], setting: str, pool: int, cache: Path | None) -> list[dict[str, Any]]:
    if cache is not None and cache.exists():
        rows = [json.loads(line) for line in cache.open(encoding="utf-8")]
        if any("key" not in r for r in rows):  # a cache from before the held-out folds
            keys = {(_label(p), d.id): CandidateRanker.note_key(d.text) for p in paths for d in read_dataset(p)}
            for r in rows:
                r["key"] = keys[(r["dataset"], r["id"])]
        return rows
    settings = load_settings()
    codeset = CodeSetRegistry(settings).get()
    retriever = HybridRetriever(settings, codeset, auto_build=False, ranker=None)
    docs = [(p, d) for p in paths for d in read_dataset(p, strict=True) if d.coding_setting == setting]
    out: list[dict[str, Any]] = []
    for path, doc in tqdm(docs, desc="pools", unit="note", file=sys.stderr):
        found = retriever.search_note(doc.text, top_k=pool)
        gold = sorted({c for c in doc.codes if c in codeset and codeset.is_billable(c)})
        out.append(
            {
                "dataset": _label(path),
                "id": doc.id,
                "key": CandidateRanker.note_key(doc.text),
                "gold": gold,
                "candidates": [c.model_dump(exclude={"description", "matched_text"}) for c in found.candidates],
            }
        )
    if cache is not None:
        cache.write_text("".join(json.dumps(r) + "\n" for r in out), encoding="utf-8")
    return out


def _design(
    rows: list[dict[str, Any]], cut: int, priors: CodePriors | None = None, *, own: bool = True
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Features and labels; with ``priors`` (counted for one setting), ``own``: the rows' notes are among
    the priors' counts, so each row's own labels are left out."""
    xs, ys = [], []
    setting = min(priors.n_docs, default="inpatient") if priors else "inpatient"
    for row in rows:
        cands = [NoteCandidate(description="", matched_text="", **c) for c in row["candidates"]]
        if not cands:
            continue
        xs.append(ranker_features(cands, cut, priors=priors, setting=setting, own=row["gold"] if own else None))
        gold = set(row["gold"])
        ys.append(np.asarray([c.code in gold for c in cands], dtype=np.int64))
    return np.vstack(xs), np.concatenate(ys)


def _recall(
    rows: list[dict[str, Any]], cut: int, model: Any | None, priors: CodePriors | None = None
) -> tuple[int, int]:
    found = total = 0
    for row in rows:
        codes = [c["code"] for c in row["candidates"]]
        if model is not None and codes:
            x, _ = _design([row], cut, priors, own=False)
            margins = model.decision_function(x)
            codes = [codes[i] for i in np.argsort(-margins, kind="stable")]
        total += len(row["gold"])
        found += len(set(row["gold"]) & set(codes[:cut]))
    return found, total


def _priors(rows: list[dict[str, Any]], setting: str) -> CodePriors:
    return CodePriors.from_labels((setting, row["gold"]) for row in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", type=Path, action="append", required=True, help="labelled JSONL (repeatable)")
    parser.add_argument("--setting", default="inpatient", choices=("inpatient", "outpatient"))
    parser.add_argument("--pool", type=int, default=200, help="candidates merged and re-ordered (default 200)")
    parser.add_argument("--cut", type=int, default=100, help="K the pool is cut to (default 100)")
    parser.add_argument("--cv", type=int, default=5, help="folds for the out-of-fold recall (default 5)")
    parser.add_argument("--out", type=Path, required=True, help="model file to write")
    parser.add_argument("--cache", type=Path, help="pool cache (JSONL); reused when it exists")
    parser.add_argument("--with-priors", action="store_true", help="also learn from the labels' code frequencies")
    args = parser.parse_args(argv)

    rows = _pools(args.dataset, args.setting, args.pool, args.cache)
    order = list(range(len(rows)))
    random.Random(0).shuffle(order)
    fold = {i: n % args.cv for n, i in enumerate(order)}
    before = after = total = 0
    held_out: list[dict[str, Any]] = []
    for f in range(args.cv):
        train = [r for i, r in enumerate(rows) if fold[i] != f]
        test = [r for i, r in enumerate(rows) if fold[i] == f]
        fold_priors = _priors(train, args.setting) if args.with_priors else None
        model = fit_boosting(*_design(train, args.cut, fold_priors))
        fold_baseline, fold_trees = export_trees(model)
        fold_spec = {"notes": sorted(r["key"] for r in test), "baseline": fold_baseline, "trees": fold_trees}
        held_out.append(fold_spec | ({"priors": fold_priors.as_dict()} if fold_priors else {}))
        found, n = _recall(test, args.cut, model, fold_priors)
        base, _ = _recall(test, args.cut, None)
        after, before, total = after + found, before + base, total + n
        print(f"fold {f + 1}/{args.cv}: recall@{args.cut} {base / n:.3f} -> {found / n:.3f}", file=sys.stderr)
    print(
        f"out of fold ({len(rows)} {args.setting} notes, {total} billable gold codes): "
        f"recall@{args.cut} {before / total:.3f} -> {after / total:.3f}"
    )
    priors = _priors(rows, args.setting) if args.with_priors else None
    x, y = _design(rows, args.cut, priors)
    baseline, trees = export_trees(fit_boosting(x, y))
    datasets: dict[str, int] = {}
    for row in rows:
        datasets[row["dataset"]] = datasets.get(row["dataset"], 0) + 1
    data = {
        "kind": "medcode-candidate-ranker",
        "format": RANKER_FORMAT,
        "features": list(RANKER_FEATURES + (PRIOR_FEATURES if priors else ())),
        "settings": [args.setting],
        "pool": args.pool,
        "baseline": baseline,
        "trees": trees,
        "held_out": held_out,
        **({"priors": priors.as_dict()} if priors else {}),
        "provenance": {
            "trained_on": datasets,
            "rows": len(y),
            "positives": int(y.sum()),
            "trained_at": dt.date.today().isoformat(),
            "out_of_fold": {
                "folds": args.cv,
                "cut": args.cut,
                "recall_before": round(before / total, 4),
                "recall_after": round(after / total, 4),
            },
        },
    }
    args.out.write_text(json.dumps(data, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
