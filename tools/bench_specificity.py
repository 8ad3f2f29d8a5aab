"""Benchmark the specificity guardrails on swaps made from gold: catch rate by kind, false rejection on gold pairs.

    python -m tools.bench_specificity [--data-dir DIR] [--swaps FILE --dataset GOLD.jsonl] [--show N]

Defaults: the project's gold set (``evals/data/gold.jsonl``) and its swaps (``evals/data/swaps.jsonl``,
written by ``python -m tools.make_swaps``). For ACI-Bench dev, write its swaps outside the repository
first (``python -m tools.make_swaps --spanless ../shared/benchmarks/aci/dev.jsonl --data-dir DIR --out
runs/aci-swaps.jsonl``, which needs a built index to locate the spans) and pass ``--swaps
runs/aci-swaps.jsonl --dataset ../shared/benchmarks/aci/dev.jsonl``.

Prints, for each swap kind (``side``, ``encounter``, ``with_without``, ``axis``), the share of
contradicted swaps the validators reject and by which rules; the false-rejection rate on the
unswapped gold pairs (any rule, and the share due to the specificity rules); and the misses and
false rejections by record id and codes (no note text).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

from medcode.config import load_settings
from medcode.evals._dataset import read_dataset
from medcode.evals.redteam import DATA_DIR, SWAP_KINDS, load_jsonl, run_swaps, summarize_swaps
from medcode.validators import ValidatorPipeline

__all__ = ["SPECIFICITY_RULES", "main"]

SPECIFICITY_RULES = frozenset({"SPECIFICITY_UNSUPPORTED", "LATERALITY_CONFLICT", "ENCOUNTER_CONFLICT"})


def _pct(a: int, b: int) -> str:
    return f"{a}/{b} ({100 * a / b:.1f}%)" if b else "0/0"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_specificity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, help="medcode data directory (code-set store)")
    parser.add_argument("--swaps", type=Path, default=DATA_DIR / "swaps.jsonl", help="swap records (JSONL)")
    parser.add_argument("--dataset", type=Path, default=DATA_DIR / "gold.jsonl", help="the gold documents they cite")
    parser.add_argument("--show", type=int, default=40, help="misses and false rejections to list (default 40)")
    args = parser.parse_args(argv)
    settings = load_settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    records = load_jsonl(args.swaps)
    docs = {d.id: d for d in read_dataset(args.dataset)}
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs", file=sys.stderr)
    started = time.perf_counter()
    with ValidatorPipeline(settings) as pipeline:
        outcomes = run_swaps(pipeline, records, docs)
    seconds = time.perf_counter() - started
    summary = summarize_swaps(outcomes)
    rejected, total = summary.swaps
    print(f"{args.swaps.name} over {args.dataset.name}: {len(records)} records in {seconds:.0f} s")
    print(f"contradicted swaps rejected: {_pct(rejected, total)}")
    for kind in SWAP_KINDS:
        if kind not in summary.by_kind:
            continue
        r, n = summary.by_kind[kind]
        rules = Counter(rule for o in outcomes if o.kind == kind and o.rejected for rule in o.rules)
        top = ", ".join(f"{rule} {count}" for rule, count in rules.most_common(4))
        print(f"  {kind:<13} {_pct(r, n):>18}   {top}")
    gold = [o for o in outcomes if o.kind == "gold"]
    spec = sum(1 for o in gold if o.rejected and set(o.rules) & SPECIFICITY_RULES)
    print(f"gold pairs rejected (false rejections): {_pct(summary.gold[0], summary.gold[1])}")
    print(f"  of them by a specificity rule: {_pct(spec, summary.gold[1])}")
    rules = Counter(rule for o in gold if o.rejected for rule in o.rules)
    print(f"  by rule: {dict(rules.most_common())}")
    warned = Counter(w for o in gold if not o.rejected for w in set(o.warnings))
    print(f"  warnings on accepted gold pairs: {dict(warned.most_common())}")
    shown = 0
    for o in outcomes:
        if shown >= args.show:
            break
        if o.kind == "gold" and o.rejected:
            print(f"  FALSE REJECTION {o.id}: {o.rules}")
            shown += 1
        elif o.kind != "gold" and not o.rejected:
            print(f"  MISS [{o.kind}] {o.id}: accepted (warnings {o.warnings})")
            shown += 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
