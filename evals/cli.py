"""``medcode eval`` and ``medcode regress``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from medcode.agent.cli import add_ray_arguments

if TYPE_CHECKING:
    from medcode.cli import CommandContext

__all__ = ["DEFAULT_DATASET", "register"]

DEFAULT_DATASET = Path(__file__).resolve().parent / "data" / "gold.jsonl"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    ev = sub.add_parser(
        "eval",
        help="evaluate against a gold dataset",
        description="Code every document of a gold JSONL dataset (id, text, codes, optional spans/setting) and "
        "write DIR/predictions.jsonl (resumable), DIR/metrics.json and DIR/report.html with plots. "
        "A malformed line is reported with its line number and skipped (or stops the run with --strict).",
    )
    ev.add_argument(
        "--dataset", type=Path, default=DEFAULT_DATASET, help="gold JSONL (default: the project's gold set)"
    )
    ev.add_argument("--out", type=Path, required=True, help="output directory")
    ev.add_argument("--limit", type=int, help="first N documents only")
    ev.add_argument(
        "--proposer", choices=("llm", "retrieval"), help="proposer to evaluate (default: MEDCODE_PROPOSER, retrieval)"
    )
    ev.add_argument("--workers", type=int, default=1, help="documents coded in parallel (default 1)")
    ev.add_argument("--strict", action="store_true", help="stop at the first malformed line")
    add_ray_arguments(ev)
    ev.set_defaults(handler=_eval)

    rg = sub.add_parser(
        "regress",
        help="fail when hallucinations or F1 regress against a baseline",
        description="Run the evaluation (or read a finished one with --results) and compare it with a stored "
        "baseline. Exit 1 when hallucination_rate_accepted is above 0, when unsupported_accepted_rate or "
        "hallucination_rate_raw rises or micro_f1 falls beyond its tolerance, or when a result-changing version "
        "differs without "
        "--allow-version-change; exit 0 otherwise; 2 on bad input. --update-baseline writes the current "
        "figures as the new baseline (review and commit it).",
    )
    rg.add_argument(
        "--dataset", type=Path, default=DEFAULT_DATASET, help="gold JSONL (default: the project's gold set)"
    )
    rg.add_argument("--baseline", type=Path, required=True, help="baseline JSON (e.g. evals/baselines/gold-llm.json)")
    rg.add_argument(
        "--results", type=Path, help="read DIR/metrics.json of a finished evaluation instead of running one"
    )
    rg.add_argument("--out", type=Path, help="output directory of the evaluation run (default: a temp dir)")
    rg.add_argument("--proposer", choices=("llm", "retrieval"), help="proposer (default: the baseline's)")
    rg.add_argument("--limit", type=int, help="first N documents only")
    rg.add_argument("--tolerance", type=float, default=0.02, help="tolerance for micro_f1 and the raw rate (0.02)")
    rg.add_argument("--tolerance-f1", type=float, help="tolerance for a fall in micro_f1")
    rg.add_argument("--tolerance-raw", type=float, help="tolerance for a rise in hallucination_rate_raw")
    rg.add_argument(
        "--tolerance-unsupported",
        type=float,
        default=0.01,
        help="tolerance for a rise in unsupported_accepted_rate (0.01)",
    )
    rg.add_argument("--allow-version-change", action="store_true", help="versions may differ from the baseline")
    rg.add_argument("--update-baseline", action="store_true", help="write the current figures to --baseline")
    rg.add_argument("--json", action="store_true", help="print the comparison as JSON")
    rg.set_defaults(handler=_regress)


def _eval(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.agent.cli import ray_options
    from medcode.errors import InputError
    from medcode.evals._harness import run_eval

    if args.workers < 1 or (args.limit is not None and args.limit < 1):
        raise InputError("--workers and --limit must be positive")
    options = ray_options(args, ctx.settings)
    if options is not None and args.workers != 1:
        raise InputError("--workers is for one process; with --ray, use --ray-workers")
    metrics = run_eval(
        ctx.settings,
        args.dataset,
        args.out,
        proposer=args.proposer or ctx.settings.proposer,
        limit=args.limit,
        workers=args.workers,
        strict=args.strict,
        ray=options,
    )
    keys = (
        "n_documents",
        "micro_precision",
        "micro_recall",
        "micro_f1",
        "micro_f1_release",
        "map",
        "candidate_recall",
        "hallucination_rate_raw",
        "hallucination_rate_accepted",
        "unsupported_accepted_rate",
        "ece",
        "seconds_per_document",
    )
    for key in keys:
        print(f"{key:<30} {metrics[key]}")
    print(f"wrote {args.out / 'metrics.json'}, {args.out / 'predictions.jsonl'}, {args.out / 'report.html'}")
    return 0


def _regress(args: argparse.Namespace, ctx: CommandContext) -> int:
    import tempfile

    from medcode.errors import InputError
    from medcode.evals._harness import run_eval
    from medcode.evals._regress import compare, make_baseline, read_json

    baseline: dict[str, object] = {}
    if not args.update_baseline or args.baseline.exists():
        baseline = read_json(args.baseline, "baseline")
    if args.results is not None:
        current = read_json(args.results / "metrics.json", "metrics")
    else:
        versions = baseline.get("versions")
        proposer = (
            args.proposer or (versions.get("proposer") if isinstance(versions, dict) else None) or ctx.settings.proposer
        )
        if proposer not in ("llm", "retrieval"):
            raise InputError(f"baseline names an unknown proposer {proposer!r}")
        out = args.out or Path(tempfile.mkdtemp(prefix="medcode-regress-"))
        current = run_eval(ctx.settings, args.dataset, out, proposer=proposer, limit=args.limit)
    if args.update_baseline:
        args.baseline.parent.mkdir(parents=True, exist_ok=True)
        args.baseline.write_text(json.dumps(make_baseline(current), indent=2) + "\n", encoding="utf-8")
        print(f"baseline written to {args.baseline}")
        return 0
    comparison = compare(
        baseline,
        current,
        tolerance_f1=args.tolerance if args.tolerance_f1 is None else args.tolerance_f1,
        tolerance_raw=args.tolerance if args.tolerance_raw is None else args.tolerance_raw,
        tolerance_unsupported=args.tolerance_unsupported,
        allow_version_change=args.allow_version_change,
    )
    if args.json:
        print(
            json.dumps(
                {
                    "ok": comparison.ok,
                    "failures": comparison.failures,
                    "rows": [r.model_dump() for r in comparison.rows],
                },
                indent=2,
            )
        )
    else:
        print(comparison.table())
        for failure in comparison.failures:
            print(f"REGRESSION: {failure}", file=sys.stderr)
        print("PASS" if comparison.ok else "FAIL")
    return 0 if comparison.ok else 1
