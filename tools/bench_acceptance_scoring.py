"""Milliseconds a note to score cached candidates with acceptance model files, alternated.

    python -m tools.bench_acceptance_scoring runs/train/features.jsonl MODEL.json [MODEL.json ...] [--rounds 3]

Reads a ``medcode train`` feature cache (no pipeline runs: this times the model alone), scores every note's
candidates with each model in turn, ``--rounds`` times, and prints each model's milliseconds a note per round,
their median, and each median's ratio to the first model's. Exits 2 for a missing or unreadable file.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from medcode.agent._acceptance import AcceptanceModel
from medcode.agent._results import read_result_lines
from medcode.errors import ConfigError
from medcode.evals._training import NoteExample


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache", type=Path, help="a medcode train features.jsonl")
    parser.add_argument("models", type=Path, nargs="+", help="acceptance model files (the first is the reference)")
    parser.add_argument("--rounds", type=int, default=3, help="times each model scores every note (3)")
    args = parser.parse_args(argv)
    if not args.cache.is_file():
        print(f"bench_acceptance_scoring: no feature cache at {args.cache}", file=sys.stderr)
        return 2
    try:
        examples = [NoteExample.from_dict(d) for d in read_result_lines(args.cache)]
        models = [AcceptanceModel.from_file(p) for p in args.models]
    except (OSError, ValueError, KeyError, ConfigError) as exc:
        print(f"bench_acceptance_scoring: {exc}", file=sys.stderr)
        return 2
    if not examples or args.rounds < 1:
        print("bench_acceptance_scoring: no notes in the cache, or --rounds below 1", file=sys.stderr)
        return 2
    per: list[list[float]] = [[] for _ in models]
    for _ in range(args.rounds):
        for n, model in enumerate(models):
            started = time.perf_counter()
            for ex in examples:
                model.probability(ex.rows, ex.setting)
            per[n].append((time.perf_counter() - started) / len(examples) * 1000)
    reference = statistics.median(per[0])
    print(f"{len(examples)} notes, {args.rounds} rounds; ms a note")
    for path, model, times in zip(args.models, models, per, strict=True):
        median = statistics.median(times)
        rounds = " / ".join(f"{t:.2f}" for t in times)
        print(f"{model.version:40} {rounds}  median {median:.2f}  ratio {median / reference:.2f}  ({path})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
