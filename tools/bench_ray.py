"""Ray batch benchmark: notes per second for 1 and 2 Ray workers, retrieval proposer.

Run (the data dir must hold a complete index; ``--small-index`` builds the tests' fixture index into it)::

    .venv/bin/python -m tools.bench_ray --data-dir /tmp/mc-bench --small-index --notes 30 --runs 3

Starts one local Ray cluster (``--cpus``, default 2), then for each worker count and run: starts the workers
(each loads its coder once: index, embedder, validators), codes the first ``--notes`` documents of the gold set
through ``map_in_order`` exactly as ``medcode eval --ray`` does, and times the coding from the moment every
worker is loaded to the last result. Prints each run, the medians, and the ratio of the medians (2 vs 1). Also
prints the load average at start and end, since on a shared machine that decides the figures. Nothing is
recorded in a review queue. The index is never built unless ``--small-index`` asks for the small one.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from functools import partial
from pathlib import Path

from medcode.agent import RayOptions, map_in_order
from medcode.codesets import CodeSetRegistry
from medcode.config import load_settings
from medcode.evals._dataset import read_dataset
from medcode.evals._harness import _EvalCoder, _predict
from medcode.retrieval import build_index, index_info

GOLD = Path(__file__).resolve().parent.parent / "evals" / "data" / "gold.jsonl"


def _small_index_codes(codeset: object) -> list[str]:
    """The codes of the tests' small fixture index (tests/conftest.py: SMALL_INDEX_HEADERS, 120 a header)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from conftest import SMALL_INDEX_HEADERS

    codes: list[str] = []
    for header in SMALL_INDEX_HEADERS:
        codes += codeset.billable_descendants(header, limit=120)  # type: ignore[attr-defined]
    return sorted(set(codes))


def _rss_mb(pid: int) -> float:
    """Resident memory of a process in MB (Linux /proc), 0 when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, help="data dir holding the index (default: the settings')")
    parser.add_argument("--small-index", action="store_true", help="build the tests' small index there if missing")
    parser.add_argument("--dataset", type=Path, default=GOLD, help="gold JSONL whose texts are coded")
    parser.add_argument("--notes", type=int, default=30, help="documents coded per run")
    parser.add_argument("--runs", type=int, default=3, help="runs per worker count")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default 1 2)")
    parser.add_argument("--cpus", type=int, default=2, help="CPUs of the local Ray cluster")
    args = parser.parse_args()

    import ray

    settings = load_settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    codeset = CodeSetRegistry(settings).get()
    if index_info(settings, codeset.version).status != "complete":
        if not args.small_index:
            print(f"no complete index in {settings.data_dir}: build one or pass --small-index", file=sys.stderr)
            return 2
        build_index(settings, codeset, codes=_small_index_codes(codeset), progress=False)
    docs = list(read_dataset(args.dataset, limit=args.notes))
    work = partial(_predict, max_chars=settings.max_note_chars, proposer="retrieval")
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs")
    print(
        f"{len(docs)} notes ({sum(len(d.text) for d in docs)} characters) from {args.dataset.name}; index in "
        f"{settings.data_dir} ({index_info(settings, codeset.version).codes} codes)"
    )
    ray.init(num_cpus=args.cpus, include_dashboard=False, object_store_memory=128 * 1024 * 1024)
    rates: dict[int, list[float]] = {}
    try:
        for workers in args.workers:
            for run in range(args.runs):
                marks: dict[str, float] = {"start": time.monotonic()}

                pids: list[int] = []

                def ready(ready_pids: list[int], marks: dict[str, float] = marks, pids: list[int] = pids) -> None:
                    marks["ready"] = time.monotonic()
                    pids.extend(ready_pids)

                results = map_in_order(
                    settings,
                    docs,
                    work,
                    make_coder=_EvalCoder("retrieval"),
                    options=RayOptions(workers=workers),
                    on_ready=ready,
                )
                rows = []
                for row in results:
                    rows.append(row)
                    if len(rows) == len(docs):  # the workers are still alive here: read their memory
                        end = time.monotonic()
                        rss = [_rss_mb(pid) for pid in pids]
                list(results)  # lets map_in_order close the workers
                failed = sum(1 for r in rows if "error" in r)
                rate = len(rows) / (end - marks["ready"])
                rates.setdefault(workers, []).append(rate)
                print(
                    f"workers={workers} run={run + 1}: load {marks['ready'] - marks['start']:.1f} s, "
                    f"coding {end - marks['ready']:.1f} s, {rate:.2f} notes/s ({failed} failed), "
                    f"worker RSS {', '.join(f'{m:.0f}' for m in rss)} MB"
                )
    finally:
        ray.shutdown()
    medians = {w: statistics.median(r) for w, r in rates.items()}
    for workers, median in medians.items():
        print(f"median notes/s with {workers} worker(s): {median:.2f} ({median / workers:.2f} per worker)")
    if 1 in medians and 2 in medians:
        print(f"ratio 2 vs 1 workers: {medians[2] / medians[1]:.2f}")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
