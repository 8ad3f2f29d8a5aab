"""Does the acceptance model get better at a site the more that site's coders use it?

A site's finalised charts become training data (``medcode train --from-queue``). This benchmark
measures what that buys, from the feature cache ``medcode train`` wrote (``OUT/features.jsonl``):
one dataset plays the site (ACI-Bench dev by default: outpatient visits unlike the case reports
most training notes are), the others are the generic training data the packaged model starts from.

The site's notes are split into ``--folds`` outer folds. For each outer fold, its notes are the
site's *future* charts (never trained on, never used to choose a threshold or a calibration); the
site's other notes are its coded history, shuffled, of which the first N are added to the generic
training data. Each training set goes through exactly what ``medcode train`` does (inner K-fold
cross-validation, isotonic calibration and thresholds chosen on the inner out-of-fold predictions of
``--threshold-seeds`` fold assignments, then the final fit), and the model codes the held-out fold.
Held-out predictions are pooled over the outer folds, so every site note is scored once per N, by a
model that never saw it.

Ways to learn from the site, compared at every N (``--variants``): ``default`` (what ``medcode
train`` fits: the site's charts join the training notes, and calibration and thresholds come from
every note of the setting), ``with-priors`` (``--with-priors``: also how often the training
labels, the site's included, carry a code or its category) and ``site-offset`` (what ``medcode
train --from-queue`` fits: the default model, its confidence and thresholds moved on the logit scale
so that over the codes the inner folds picked in the site's history (20 at least) the mean
confidence is the share its coders kept; no pick changes) and ``no-floor`` (the default model
without its floors: a note where no code reaches the threshold gets none, as before floors
existed). Figures are micro P/R/F1, the mean confidence of the proposed codes (beside the
precision it should match) and their ECE, each the median over ``--seeds`` (a seed shuffles the
outer folds, the history order and the inner folds), F1 and ECE with their range over the seeds:
on 67 notes ECE moves by 0.02-0.04 between seed sets.
Nothing is tuned here: every threshold and calibration comes from inner folds.

    python -m tools.bench_site_learning --features runs/train/features.jsonl --site aci/dev
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from medcode.agent._acceptance import FEATURE_NAMES, TRAINING_FEATURES, AcceptanceModel
from medcode.evals._training import (
    NoteExample,
    _with_priors,
    calibration_error,
    folds_for,
    picked,
    score_selection,
    train_model,
)
from medcode.evals.train_cli import THRESHOLD_SEEDS

VARIANTS = {
    "default": TRAINING_FEATURES,
    "with-priors": FEATURE_NAMES,
    "site-offset": TRAINING_FEATURES,
    "no-floor": TRAINING_FEATURES,
}


def _held_out(model: AcceptanceModel, test: Sequence[NoteExample]) -> tuple[list[list[str]], list[float], list[int]]:
    """The model's picks on held-out notes, and the confidence and label of every picked code."""
    picks: list[list[str]] = []
    conf: list[float] = []
    labels: list[int] = []
    for ex in test:
        pick, c, y = picked(
            ex,
            model.probability(_with_priors(ex, model.priors), ex.setting),
            model.threshold(ex.setting),
            model.floor(ex.setting),
        )
        picks.append(pick)
        conf += c
        labels += y
    return picks, conf, labels


def run(
    examples: Sequence[NoteExample],
    site: str,
    steps: Sequence[int | None],
    variants: Sequence[str],
    *,
    folds: int,
    inner: int,
    seed: int,
    threshold_seeds: int = 1,
) -> dict[tuple[int, str], dict[str, float]]:
    """Held-out figures per (history size N, variant) for one seed."""
    site_notes = [ex for ex in examples if ex.dataset == site]
    generic = [ex for ex in examples if ex.dataset != site]
    outer = folds_for(site_notes, folds, seed)
    rng = random.Random(seed)
    # (N, variant) -> picks, confidences, labels and test notes pooled over the outer folds
    pooled: dict[tuple[int, str], dict[str, list[Any]]] = {}
    jobs = [(f, n, v) for f in range(folds) for n in steps for v in variants]
    history: dict[int, list[NoteExample]] = {}
    for f in range(folds):
        rest = [ex for ex, g in zip(site_notes, outer, strict=True) if g != f]
        rng.shuffle(rest)
        history[f] = rest
    last: tuple[tuple[int, int | None, tuple[str, ...]], dict[str, Any]] | None = None
    for f, n, variant in tqdm(jobs, desc=f"seed {seed}", unit="model", file=sys.stderr):
        test = [ex for ex, g in zip(site_notes, outer, strict=True) if g == f]
        size = len(history[f]) if n is None else min(n, len(history[f]))
        train = [*generic, *history[f][:size]]
        features = tuple(VARIANTS[variant])
        if last is None or last[0] != (f, n, features):  # variants that differ only after training share the model
            content, _ = train_model(
                train,
                k=inner,
                seed=seed,
                version="bench",
                features=features,
                site=site,
                progress=False,
                threshold_seeds=threshold_seeds,
            )
            last = ((f, n, features), content)
        content = last[1]
        if variant != "site-offset":
            content = {**content, "confidence_offsets": {}}
        if variant == "no-floor":
            content = {**content, "floors": {}}
        picks, conf, labels = _held_out(AcceptanceModel(content, version="bench"), test)
        key = (-1 if n is None else n, variant)
        slot = pooled.setdefault(key, {"picks": [], "conf": [], "labels": [], "test": [], "sizes": []})
        slot["picks"] += picks
        slot["conf"] += conf
        slot["labels"] += labels
        slot["test"] += test
        slot["sizes"].append(size)
    out: dict[tuple[int, str], dict[str, float]] = {}
    for key, slot in pooled.items():
        scores = score_selection(slot["test"], slot["picks"])
        out[key] = {
            **scores,
            "ece": calibration_error(slot["conf"], slot["labels"]),
            "confidence": statistics.fmean(slot["conf"]) if slot["conf"] else 0.0,
            "history": statistics.median(slot["sizes"]),
        }
    return out


def _spread(values: Sequence[float]) -> str:
    """A figure's range over the seeds, as the table prints it."""
    return f"{min(values):6.3f}-{max(values):.3f}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", type=Path, required=True, help="OUT/features.jsonl from `medcode train`")
    parser.add_argument("--site", default="aci/dev", help="the dataset that plays the site (default aci/dev)")
    parser.add_argument(
        "--steps", default="0,10,25,all", help="site history sizes N, comma-separated; 'all' = every other fold"
    )
    parser.add_argument("--folds", type=int, default=5, help="outer folds over the site's notes (default 5)")
    parser.add_argument("--inner", type=int, default=5, help="inner cross-validation folds (default 5)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds; figures are medians over them")
    parser.add_argument(
        "--variants",
        default="default",
        help=f"comma-separated, of {', '.join(VARIANTS)} (default: default)",
    )
    parser.add_argument(
        "--threshold-seeds",
        type=int,
        default=THRESHOLD_SEEDS,
        metavar="N",
        help="each model's calibration and thresholds over N inner fold assignments, as `medcode train "
        f"--threshold-seeds N` (default {THRESHOLD_SEEDS}, medcode train's)",
    )
    args = parser.parse_args(argv)

    if not args.features.is_file():
        parser.error(f"no feature cache at {args.features}; run `medcode train --out DIR` first")
    examples = [NoteExample.from_json(line) for line in args.features.open(encoding="utf-8") if line.strip()]
    datasets = sorted({ex.dataset for ex in examples})
    if args.site not in datasets:
        parser.error(f"--site {args.site!r} is not in the feature cache (it has {', '.join(datasets)})")
    if len(datasets) < 2:
        parser.error("the feature cache needs generic training data besides the site")
    try:
        steps = [None if s.strip() == "all" else int(s) for s in args.steps.split(",")]
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        parser.error("--steps and --seeds take comma-separated integers ('all' allowed in --steps)")
    if any(n is not None and n < 0 for n in steps):
        parser.error("--steps must be 0 or more (or 'all')")
    if args.folds < 2 or args.inner < 2:
        parser.error("--folds and --inner must be at least 2")
    if args.threshold_seeds < 1:
        parser.error("--threshold-seeds must be at least 1")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    if unknown := [v for v in variants if v not in VARIANTS]:
        parser.error(f"unknown --variants {', '.join(unknown)} (choose from {', '.join(VARIANTS)})")

    started = time.perf_counter()
    runs = [
        run(
            examples,
            args.site,
            steps,
            variants,
            folds=args.folds,
            inner=args.inner,
            seed=seed,
            threshold_seeds=args.threshold_seeds,
        )
        for seed in seeds
    ]
    n_site = sum(ex.dataset == args.site for ex in examples)
    generic = {ex.dataset for ex in examples} - {args.site}
    print(
        f"site {args.site} ({n_site} notes, {args.folds} outer folds), generic data: {', '.join(sorted(generic))}; "
        f"median over seeds {','.join(map(str, seeds))}; thresholds over {args.threshold_seeds} inner fold "
        f"assignment(s); {time.perf_counter() - started:.0f} s"
    )
    print(
        f"{'site charts N':>14} {'variant':>16} {'P':>6} {'R':>6} {'F1':>6} {'F1 min-max':>12} {'conf.':>6} {'ECE':>6} "
        f"{'ECE min-max':>12}"
    )
    for key in sorted(runs[0], key=lambda k: (k[0] if k[0] >= 0 else 10**9, k[1])):
        rows = [r[key] for r in runs]
        f1s = [r["f1"] for r in rows]
        eces = [r["ece"] for r in rows]
        label = f"{statistics.median(r['history'] for r in rows):g}" + (" (all)" if key[0] < 0 else "")
        print(
            f"{label:>14} {key[1]:>16} {statistics.median(r['precision'] for r in rows):6.3f} "
            f"{statistics.median(r['recall'] for r in rows):6.3f} {statistics.median(f1s):6.3f} "
            f"{_spread(f1s)} {statistics.median(r['confidence'] for r in rows):6.3f} "
            f"{statistics.median(eces):6.3f} {_spread(eces)}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
