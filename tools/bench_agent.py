"""Benchmark the whole agent: speed, tokens and quality of the LLM proposer vs the retrieval-only one.

For each dataset it runs ``medcode eval`` with both proposers (resumable: reruns reuse finished
predictions) and prints, per dataset and proposer: micro P/R/F1, MAP, candidate recall, raw
hallucination rate, seconds per note (median, p90), prompt/completion tokens per note, and the share
of wall time spent inside the LLM call (the rest: segmentation, retrieval, validation).

Usage::

    nice -n 5 python -m tools.bench_agent --out runs/bench-agent \\
        --dataset ../shared/benchmarks/codiesp/dev.jsonl:20 --dataset evals/data/gold.jsonl:samples

A dataset is ``PATH[:N]`` (first N documents) or ``PATH:samples`` (documents whose id starts with
``sample-``). The load average before and after is printed: the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

from medcode.config import load_settings
from medcode.evals._harness import load_predictions, run_eval


def _subset(spec: str, work: Path) -> tuple[str, Path]:
    path_text, _, selector = spec.partition(":")
    path = Path(path_text)
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if selector == "samples":
        lines = [line for line in lines if json.loads(line)["id"].startswith("sample-")]
    elif selector:
        lines = lines[: int(selector)]
    name = f"{path.parent.name}-{path.stem}-{selector or 'all'}"
    out = work / f"{name}.jsonl"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return name, out


def _timing(pred_path: Path) -> dict[str, Any]:
    rows = [r for r in load_predictions(pred_path) if "result" in r]
    seconds = sorted(r["result"]["usage"]["seconds"] for r in rows)
    llm = sum(r["result"]["usage"]["llm_seconds"] for r in rows)
    total = sum(seconds)
    return {
        "notes": len(rows),
        "median_s": round(statistics.median(seconds), 2) if seconds else 0.0,
        "p90_s": round(seconds[min(len(seconds) - 1, int(0.9 * len(seconds)))], 2) if seconds else 0.0,
        "llm_share": round(llm / total, 3) if total else 0.0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", action="append", required=True, help="PATH[:N] or PATH:samples (repeatable)")
    parser.add_argument("--out", type=Path, required=True, help="directory for the evaluation runs")
    parser.add_argument("--proposers", default="retrieval,llm", help="comma-separated (default retrieval,llm)")
    args = parser.parse_args(argv)
    settings = load_settings()
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.dataset:
            name, path = _subset(spec, Path(tmp))
            for proposer in args.proposers.split(","):
                run_dir = args.out / f"{name}-{proposer}"
                metrics = run_eval(settings, path, run_dir, proposer=proposer)
                timing = _timing(run_dir / "predictions.jsonl")
                rows.append((name, proposer, metrics, timing))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    header = (
        f"{'dataset':<34} {'proposer':<9} {'n':>3} {'P':>6} {'R':>6} {'F1':>6} {'MAP':>6} {'cand_R':>6} "
        f"{'raw_h':>6} {'med_s':>7} {'p90_s':>7} {'llm%':>5} {'p_tok':>6} {'c_tok':>6}"
    )
    print(header)
    for name, proposer, m, t in rows:
        print(
            f"{name:<34} {proposer:<9} {m['n_documents']:>3} {m['micro_precision']:>6.3f} {m['micro_recall']:>6.3f} "
            f"{m['micro_f1']:>6.3f} {m['map']:>6.3f} {m['candidate_recall']:>6.3f} {m['hallucination_rate_raw']:>6.3f} "
            f"{t['median_s']:>7.2f} {t['p90_s']:>7.2f} {100 * t['llm_share']:>5.1f} "
            f"{m['prompt_tokens_per_document']:>6.0f} {m['completion_tokens_per_document']:>6.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
