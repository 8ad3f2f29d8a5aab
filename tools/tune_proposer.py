"""Tune the retrieval proposer's thresholds on gold data (and dump features for the confidence fit).

Retrieval runs once per document (cached in ``--cache``); then every parameter combination runs
the real ``RetrievalProposer`` and the real validators, and micro P/R/F1 of the accepted codes is
printed, best first. ``--features OUT.jsonl`` writes one line per accepted code of the chosen
setting (features, correct or not) for ``evals/fit_confidence.py``.

Usage::

    python -m tools.tune_proposer --dataset evals/data/gold.jsonl \\
        --dataset ../shared/benchmarks/codiesp/train.jsonl:200 --cache /tmp/tune-cache

Tune on training data (CodiEsp train, the project's gold set) and report on held-out data.
"""

from __future__ import annotations

import argparse
import itertools
import json
import pickle
from pathlib import Path
from typing import Any

from medcode.config import load_settings
from medcode.evals._dataset import GoldDocument, read_dataset
from medcode.evals._metrics import micro_prf


def _load(spec: str) -> tuple[str, list[GoldDocument]]:
    path_text, _, limit = spec.partition(":")
    path = Path(path_text)
    docs = list(read_dataset(path, limit=int(limit) if limit else None))
    return f"{path.parent.name}/{path.stem}", docs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", action="append", required=True, help="PATH[:N] (repeatable)")
    parser.add_argument("--cache", type=Path, required=True, help="directory for cached retrieval results")
    parser.add_argument("--min-scores", default="0.55,0.6,0.65,0.7,0.75,0.8,0.85,0.9")
    parser.add_argument("--max-codes", default="2,3,4,5,6,8,10,12")
    parser.add_argument("--diagnostic-only", default="0,1", help="restrict to diagnostic sections when present")
    parser.add_argument("--features", type=Path, help="write features of accepted codes for the best setting")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args(argv)

    from medcode.agent import MedicalCoder, Note, RetrievalProposer
    from medcode.validators import Proposal, ValidationContext

    settings = load_settings()
    args.cache.mkdir(parents=True, exist_ok=True)
    with MedicalCoder(settings, proposer="retrieval") as coder:
        coder.warm_up()
        codeset = coder.registry.get()
        for spec in args.dataset:
            name, docs = _load(spec)
            cache_path = args.cache / (name.replace("/", "_") + ".pkl")
            cached: dict[str, Any] = pickle.loads(cache_path.read_bytes()) if cache_path.exists() else {}
            for doc in docs:
                if doc.id not in cached:
                    cached[doc.id] = coder.retriever().search_note(doc.text, top_k=coder.retrieval_top_k)
            cache_path.write_bytes(pickle.dumps(cached))
            results = []
            grid = itertools.product(
                [float(x) for x in args.min_scores.split(",")],
                [int(x) for x in args.max_codes.split(",")],
                [x == "1" for x in args.diagnostic_only.split(",")],
            )
            best_rows: dict[tuple[float, int, bool], list[dict[str, Any]]] = {}
            for min_score, max_codes, diag in grid:
                proposer = RetrievalProposer(min_score=min_score, max_codes=max_codes, diagnostic_only=diag)
                gold, predicted, rows = [], [], []
                for doc in docs:
                    note = Note.checked(doc.text, settings.max_note_chars, id=doc.id, setting=doc.coding_setting)
                    proposed = proposer.propose(note, cached[doc.id], codeset)
                    ctx = ValidationContext(note_text=doc.text, setting=doc.coding_setting)
                    report = coder.validators.validate(Proposal(codes=proposed.as_proposal_codes()), ctx)
                    accepted = [v for v in report.verdicts if v.status == "accepted"]
                    gold.append(doc.codes)
                    predicted.append([v.canonical or v.code for v in accepted])
                    gold_set = set(doc.codes)
                    for item, verdict in zip(proposed.items, report.verdicts, strict=True):
                        if verdict.status == "accepted":
                            rows.append({"features": item.features, "correct": item.code in gold_set, "dataset": name})
                prf = micro_prf(gold, predicted)
                results.append((prf.f1, prf.precision, prf.recall, min_score, max_codes, diag))
                best_rows[(min_score, max_codes, diag)] = rows
            results.sort(reverse=True)
            print(f"== {name} ({len(docs)} documents)")
            print(f"{'F1':>6} {'P':>6} {'R':>6} {'min_score':>9} {'max_codes':>9} {'diag_only':>9}")
            for f1, p, r, ms, mc, dg in results[: args.top]:
                print(f"{f1:6.3f} {p:6.3f} {r:6.3f} {ms:9.2f} {mc:9d} {dg!s:>9}")
            if args.features:
                _, _, _, ms, mc, dg = results[0]
                with args.features.open("a", encoding="utf-8") as out:
                    for row in best_rows[(ms, mc, dg)]:
                        out.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
