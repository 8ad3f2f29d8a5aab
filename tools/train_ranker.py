"""Fit the candidate ranker (``retrieval/data/candidate_ranker.json``) from labelled notes.

The packaged ranker's recipe (a site trains its own with ``medcode train --ranker``, which uses the same
code: ``medcode.retrieval._ranker_fit``). For every note of the given benchmark files whose coding
setting is ``--setting`` (case reports count as inpatient), retrieval merges a pool of ``--pool``
candidates in the hybrid note score's order; a candidate is positive when it is one of the note's gold
codes. The tool prints K-fold out-of-fold candidate recall at K (every fold's model saw none of its
notes), then fits on all notes and writes the model file, with the fold models and the hashes of the
notes each was fitted without. ``--with-priors`` adds the labels' code and category shares (a site's
ranker); a training note's own labels never reach its rows.

    MEDCODE_DATA_DIR=/work/data-after .venv/bin/python -m tools.train_ranker \\
        --dataset ../shared/benchmarks/codiesp/train.jsonl --dataset evals/data/gold.jsonl \\
        --out retrieval/data/candidate_ranker.json --cache /tmp/ranker-pools.jsonl

Needs the full index and the ``train`` extra (scikit-learn). ``--cache`` keeps the pools, so a rerun
skips retrieval.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tqdm import tqdm

from medcode.codesets import CodeSetRegistry
from medcode.config import load_settings
from medcode.evals._dataset import read_dataset
from medcode.retrieval import HybridRetriever
from medcode.retrieval._ranker import CandidateRanker
from medcode.retrieval._ranker_fit import fit_ranker, pool_row


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
    out = [
        pool_row(retriever, doc.text, doc.codes, dataset=_label(path), doc_id=doc.id, pool=pool)
        for path, doc in tqdm(docs, desc="pools", unit="note", file=sys.stderr)
    ]
    if cache is not None:
        cache.write_text("".join(json.dumps(r) + "\n" for r in out), encoding="utf-8")
    return out


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
    fit = fit_ranker(rows, setting=args.setting, pool=args.pool, cut=args.cut, cv=args.cv, with_priors=args.with_priors)
    for f, (before, after) in enumerate(fit.folds, start=1):
        print(f"fold {f}/{args.cv}: recall@{args.cut} {before:.3f} -> {after:.3f}", file=sys.stderr)
    total = sum(len(r["gold"]) for r in rows)
    print(
        f"out of fold ({len(rows)} {args.setting} notes, {total} billable gold codes): "
        f"recall@{args.cut} {fit.recall_before:.3f} -> {fit.recall_after:.3f}"
    )
    args.out.write_text(json.dumps(fit.data, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
