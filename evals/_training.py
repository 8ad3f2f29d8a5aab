"""Training the acceptance model: labelled notes in, a calibrated model file and out-of-fold figures out.

Examples come from gold datasets (the benchmark JSONL format) and from the review queue's
finalised, human-reviewed charts (accepted and added codes are the label; everything else the
pipeline retrieved is a negative). For each note the real pipeline runs: segmentation, hybrid
retrieval of the setting's top K candidates, the validators on each candidate's best sentence;
``candidate_features`` makes one row per candidate. Rows are cached in ``features.jsonl`` (a
rerun reuses them; a crash loses at most the note being processed).

``cross_validate`` splits by note (never a note's rows on both sides) into K folds; label-frequency
priors are computed from the training folds only, so the held-out fold never sees its own labels,
and a training note's own rows get priors that leave its labels out (no target leak in-sample either).
The out-of-fold margins fit the isotonic calibration and choose the per-setting thresholds (micro-F1,
and the strictest one meeting a precision target). The shipped model is then fitted on every row.
Every figure this module reports is out of fold.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import statistics
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medcode._trees import fit_boosting
from medcode.agent._acceptance import (
    FEATURE_NAMES,
    TRAINING_FEATURES,
    CodePriors,
    candidate_features,
    fit_acceptance,
    fit_isotonic,
    matrix,
    shift_confidence,
)
from medcode.errors import InputError

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from medcode.agent import MedicalCoder, Note
    from medcode.retrieval import HybridRetriever

__all__ = [
    "DEFAULT_TOP_K",
    "CVResult",
    "NoteExample",
    "check_cache",
    "collect_examples",
    "cross_validate",
    "features_identity",
    "fold_seed_spread",
    "pipeline_identity",
    "retrieval_identity",
    "train_model",
]

DEFAULT_TOP_K = {"outpatient": 40, "inpatient": 100}
OWN_TREES = ("inpatient", "outpatient")  # settings that get trees of their own, given MIN_OWN_TREES_NOTES notes
MIN_OWN_TREES_NOTES = 100
_GRID = [round(0.02 * i, 2) for i in range(1, 50)]


@dataclass
class NoteExample:
    """One labelled note: its candidates' feature rows (rank order) and its gold codes."""

    doc_id: str
    dataset: str
    setting: str
    gold: list[str]
    codes: list[str]
    rows: list[dict[str, float]]
    excludes: list[list[int]] = field(default_factory=list)  # candidate index pairs in Excludes1 conflict

    @property
    def labels(self) -> list[int]:
        gold = set(self.gold)
        return [int(c in gold) for c in self.codes]

    def to_json(self) -> str:
        rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()} for r in self.rows]
        return json.dumps(
            {
                "doc_id": self.doc_id,
                "dataset": self.dataset,
                "setting": self.setting,
                "gold": self.gold,
                "codes": self.codes,
                "rows": rows,
                "excludes": self.excludes,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, line: str) -> NoteExample:
        return cls.from_dict(json.loads(line))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NoteExample:
        """Raises ``ValueError``, ``TypeError`` or ``KeyError`` for a row that is not an example."""
        data = dict(data)
        data["rows"] = [{k: (math.nan if v is None else float(v)) for k, v in r.items()} for r in data["rows"]]
        return cls(**data)


def note_example(
    coder: MedicalCoder, note: Note, *, dataset: str, gold: Sequence[str], top_k: dict[str, int] | None = None
) -> NoteExample:
    """Run retrieval and the validators on one note and return its candidates' rows (no priors yet)."""
    from medcode.agent._proposers import _evidence_for, excludes1_conflict
    from medcode.validators import ProposedCode

    k = (top_k or DEFAULT_TOP_K)[note.setting]
    codeset = coder.registry.get(note.date_of_service)
    candidates = coder.retriever(note.date_of_service).search_note(
        note.text, top_k=k, setting=note.setting, held_out=True
    )
    top = [c for c in candidates.candidates[:k] if c.code in codeset]
    proposals = [ProposedCode(code=c.code, evidence=_evidence_for(note.text, c)) for c in top]
    rules = dict(zip([c.code for c in top], coder.vet(note, proposals), strict=True)) if top else {}
    pairs = candidate_features(
        candidates,
        codeset,
        note_chars=len(note.text),
        outpatient=note.setting == "outpatient",
        rules=rules,
        top_k=k,
    )
    records = [codeset.get(c.code) for c, _ in pairs]
    excludes = [
        [i, j]
        for i in range(len(records))
        for j in range(i + 1, len(records))
        if records[i].code[:1] == records[j].code[:1] and excludes1_conflict(records[i], records[j])
    ]
    return NoteExample(
        doc_id=note.id,
        dataset=dataset,
        setting=note.setting,
        gold=sorted(set(gold)),
        codes=[c.code for c, _ in pairs],
        rows=[r for _, r in pairs],
        excludes=excludes,
    )


def retrieval_identity(retriever: HybridRetriever) -> dict[str, str | None]:
    """What a note's retrieval depends on: code set, index, retrieval data and embedder (ranker aside)."""
    from medcode.retrieval import data_version

    return {
        "codeset": retriever.codeset.version,
        "index": retriever.index.version,
        "retrieval_data": data_version(),
        "embedder": retriever.embedder.id,
    }


def features_identity() -> str:
    """A short hash of the feature names a cached row holds (a row cached before a feature was added would
    give the new model that feature as missing on every training note)."""
    return "features+" + hashlib.sha256(",".join(FEATURE_NAMES).encode()).hexdigest()[:12]


def pipeline_identity(coder: MedicalCoder) -> dict[str, str | None]:
    """What a note's cached features depend on: retrieval (``retrieval_identity``), the ranker, the rules and
    the feature set."""
    retriever = coder.retriever()
    return retrieval_identity(retriever) | {
        "candidate_ranker": retriever.ranker.version if retriever.ranker is not None else None,
        "rules": coder.validators.rules.version,
        "features": features_identity(),
    }


def check_cache(cache: Path, identity: Mapping[str, str | None]) -> None:
    """Refuse a cache made by another pipeline; record ``identity`` beside it (``CACHE.pipeline.json``).

    Raises ``InputError`` naming what changed (a new index, rules or ranker makes other features). A cache
    from before these records is taken as it is.
    """
    meta = cache.with_name(cache.name + ".pipeline.json")
    if cache.exists() and meta.exists():
        try:
            old = json.loads(meta.read_text(encoding="utf-8"))
        except ValueError:
            old = {}
        changed = [f"{k} {old.get(k)} -> {v}" for k, v in identity.items() if old.get(k) != v]
        if changed:
            raise InputError(
                f"{cache} was made by another pipeline ({'; '.join(changed)}): delete it, or use another --out"
            )
    cache.parent.mkdir(parents=True, exist_ok=True)
    meta.write_text(json.dumps(dict(identity), indent=2, sort_keys=True) + "\n", encoding="utf-8")


def collect_examples(
    coder: MedicalCoder,
    notes: Iterable[tuple[str, Note, Sequence[str]]],
    *,
    cache: Path | None = None,
    top_k: dict[str, int] | None = None,
    progress: bool = True,
    total: int | None = None,
) -> list[NoteExample]:
    """Examples for ``(dataset, note, gold codes)``; cached rows are reused, new ones appended to ``cache``.

    A note that fails (bad text, a date no release covers) is reported on stderr and skipped.
    """
    from tqdm import tqdm

    from medcode.agent._results import read_result_lines
    from medcode.errors import MedcodeError

    done: dict[tuple[str, str], NoteExample] = {}
    for row in read_result_lines(cache) if cache is not None else []:  # a torn last line is cut off the file
        try:
            ex = NoteExample.from_dict(row)
        except (ValueError, TypeError, KeyError):
            continue
        done[(ex.dataset, ex.doc_id)] = ex
    out: list[NoteExample] = []
    handle = cache.open("a", encoding="utf-8") if cache is not None else None
    try:
        for dataset, note, gold in tqdm(
            notes, total=total, desc="features", unit="note", file=sys.stderr, disable=not progress
        ):
            key = (dataset, note.id)
            if key in done:
                out.append(done[key])
                continue
            try:
                ex = note_example(coder, note, dataset=dataset, gold=gold, top_k=top_k)
            except MedcodeError as exc:
                print(f"medcode train: {dataset}:{note.id}: skipped: {exc}", file=sys.stderr)
                continue
            out.append(ex)
            if handle is not None:
                handle.write(ex.to_json() + "\n")
                handle.flush()
    finally:
        if handle is not None:
            handle.close()
    return out


def _with_priors(example: NoteExample, priors: CodePriors, *, in_priors: bool = False) -> list[dict[str, float]]:
    """The example's rows with its codes' priors; ``in_priors``: its labels are among the counts (left out)."""
    rows = []
    own = example.gold if in_priors else None
    for code, row in zip(example.codes, example.rows, strict=True):
        prior_code, prior_category = priors.features(code, example.setting, own=own)
        rows.append({**row, "prior_code": prior_code, "prior_category": prior_category})
    return rows


def _design(
    examples: Sequence[NoteExample], priors: CodePriors, features: Sequence[str]
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    rows = [r for ex in examples for r in _with_priors(ex, priors, in_priors=True)]
    labels = [y for ex in examples for y in ex.labels]
    return matrix(rows, features), np.asarray(labels, dtype=np.int64)


def own_tree_settings(examples: Sequence[NoteExample]) -> list[str]:
    """The settings of ``OWN_TREES`` with at least ``MIN_OWN_TREES_NOTES`` labelled notes: their notes' margin is
    the mean of the pooled trees' and that of trees fitted on the setting alone (the pooled fit of a setting moves
    with the other settings' rows; the setting's own trees see fewer notes), the others' the pooled trees'."""
    return [s for s in OWN_TREES if sum(ex.setting == s for ex in examples) >= MIN_OWN_TREES_NOTES]


def folds_for(examples: Sequence[NoteExample], k: int, seed: int = 0) -> list[int]:
    """A fold number per example: shuffled within each dataset, then dealt round-robin (balanced per dataset)."""
    rng = random.Random(seed)
    order: list[int] = []
    for dataset in sorted({ex.dataset for ex in examples}):
        idx = [i for i, ex in enumerate(examples) if ex.dataset == dataset]
        rng.shuffle(idx)
        order += idx
    fold = [0] * len(examples)
    for n, i in enumerate(order):
        fold[i] = n % k
    return fold


def row_weights(examples: Sequence[NoteExample], balance: bool) -> NDArray[np.float64] | None:
    """Per-row weights giving each setting the same total weight (few outpatient notes are not drowned
    out by many case reports); None without ``balance``."""
    if not balance:
        return None
    totals: dict[str, int] = {}
    for ex in examples:
        totals[ex.setting] = totals.get(ex.setting, 0) + len(ex.rows)
    mean = sum(totals.values()) / len(totals)
    return np.asarray([mean / totals[ex.setting] for ex in examples for _ in ex.rows], dtype=np.float64)


def calibrate_by_setting(
    examples: Sequence[NoteExample], margins: Sequence[NDArray[np.float64]]
) -> dict[str, tuple[list[float], list[float]]]:
    """Isotonic calibration per setting (and ``all``) from out-of-fold margins."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for setting in [*sorted({ex.setting for ex in examples}), "all"]:
        idx = [i for i, ex in enumerate(examples) if setting in ("all", ex.setting) and ex.rows]
        flat = np.concatenate([margins[i] for i in idx])
        labels = np.asarray([y for i in idx for y in examples[i].labels], dtype=np.int64)
        out[setting] = fit_isotonic(flat, labels)
    return out


@dataclass
class CVResult:
    """Out-of-fold margins per example (aligned with its rows) and the fold of each example."""

    margins: list[NDArray[np.float64]]
    folds: list[int]


def cross_validate(
    examples: Sequence[NoteExample],
    *,
    k: int = 5,
    seed: int = 0,
    features: Sequence[str] = FEATURE_NAMES,
    params: dict[str, Any] | None = None,
    balance: bool = False,
    progress: bool = True,
    own_trees: Sequence[str] = (),
) -> CVResult:
    """K-fold out-of-fold margins, grouped by note; priors from the training folds only. A note of a setting in
    ``own_trees`` gets the mean of the pooled trees' margin and that of trees fitted on its setting's training
    notes alone.

    Raises ``InputError`` with fewer notes than folds or a fold without positives to learn from.
    """
    if k < 2 or len(examples) < k:
        raise InputError(f"cross-validation needs at least {max(k, 2)} labelled notes, got {len(examples)}")
    folds = folds_for(examples, k, seed)
    margins: list[NDArray[np.float64]] = [np.zeros(len(ex.rows)) for ex in examples]
    for f in range(k):
        train = [ex for ex, g in zip(examples, folds, strict=True) if g != f]
        test = [i for i, g in enumerate(folds) if g == f]
        priors = CodePriors.from_labels((ex.setting, ex.gold) for ex in train)
        fit = partial(_fit_fold, priors=priors, features=features, seed=seed, params=params, label=f"fold {f + 1}")
        models = {"": fit(train, "training rows", weights=row_weights(train, balance))}
        for setting in own_trees:
            models[setting] = fit([ex for ex in train if ex.setting == setting], f"{setting} rows")
        for i in test:
            if examples[i].rows:
                x_test = matrix(_with_priors(examples[i], priors), features)
                margins[i] = models[""].decision_function(x_test)
                if (own := models.get(examples[i].setting)) is not None:
                    margins[i] = (margins[i] + own.decision_function(x_test)) / 2
        if progress:
            print(f"medcode train: fold {f + 1}/{k} done", file=sys.stderr)
    return CVResult(margins=margins, folds=folds)


def _fit_fold(
    notes: Sequence[NoteExample],
    rows: str,
    *,
    priors: CodePriors,
    features: Sequence[str],
    seed: int,
    params: dict[str, Any] | None,
    label: str,
    weights: NDArray[np.float64] | None = None,
) -> Any:
    """Trees fitted on ``notes``. Raises ``InputError`` when their rows hold one class only."""
    x, y = _design(notes, priors, features)
    if y.sum() == 0 or y.sum() == len(y):
        raise InputError(f"{label} has only one class among its {rows}; add labelled notes")
    return fit_boosting(x, y, seed=seed, weights=weights, **(params or {}))


def select(
    example: NoteExample,
    probabilities: Sequence[float],
    threshold: float,
    max_codes: int = 25,
    floor: float | None = None,
) -> list[str]:
    """The codes the proposer would keep: likeliest first above the threshold, Excludes1 pairs resolved; when
    none reaches the threshold, the likeliest candidate if it reaches ``floor`` (a note has a diagnosis)."""
    conflict: dict[int, set[int]] = {}
    for i, j in example.excludes:
        conflict.setdefault(i, set()).add(j)
        conflict.setdefault(j, set()).add(i)
    kept: list[int] = []
    for i in sorted(range(len(probabilities)), key=lambda i: -probabilities[i]):
        if probabilities[i] < threshold or len(kept) >= max_codes:
            break
        if conflict.get(i, set()) & set(kept):
            continue
        kept.append(i)
    if not kept and floor is not None and len(probabilities) and max(probabilities) >= floor:
        kept.append(max(range(len(probabilities)), key=lambda i: probabilities[i]))
    return [example.codes[i] for i in kept]


def picked(
    example: NoteExample, probabilities: Sequence[float], threshold: float, floor: float | None = None
) -> tuple[list[str], list[float], list[int]]:
    """The codes ``select`` keeps, and the probability and label of each (in candidate order)."""
    pick = select(example, probabilities, threshold, floor=floor)
    chosen = set(pick)
    rows = [
        (float(p), y) for code, p, y in zip(example.codes, probabilities, example.labels, strict=True) if code in chosen
    ]
    return pick, [p for p, _ in rows], [y for _, y in rows]


def score_selection(examples: Sequence[NoteExample], picks: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro precision/recall/F1 of picked codes against every gold code (candidates or not)."""
    tp = fp = fn = 0
    for ex, pick in zip(examples, picks, strict=True):
        gold, chosen = set(ex.gold), set(pick)
        tp += len(gold & chosen)
        fp += len(chosen - gold)
        fn += len(gold - chosen)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "tp": tp, "fp": fp, "fn": fn}


def calibration_error(probabilities: Sequence[float], labels: Sequence[int], n_bins: int = 10) -> float:
    """Count-weighted mean |accuracy - confidence| over equal-width bins."""
    from medcode.evals._metrics import expected_calibration_error

    return round(expected_calibration_error(list(probabilities), [bool(y) for y in labels], n_bins), 4)


def choose_thresholds(
    examples: Sequence[NoteExample], probabilities: Sequence[Sequence[float]], *, precision_target: float
) -> tuple[dict[str, float], dict[str, float]]:
    """Per setting: the threshold of best micro-F1, and the lowest one whose micro precision meets the target."""
    return choose_thresholds_over(examples, [probabilities], precision_target=precision_target)


def choose_thresholds_over(
    examples: Sequence[NoteExample], runs: Sequence[Sequence[Sequence[float]]], *, precision_target: float
) -> tuple[dict[str, float], dict[str, float]]:
    """``choose_thresholds`` on the F1 and precision curves averaged over ``runs`` (one set of out-of-fold
    probabilities per fold assignment): the threshold then moves less with the fold assignment. The strict
    threshold needs 20 true positives in every run.
    """
    best: dict[str, float] = {}
    strict: dict[str, float] = {}
    for setting in sorted({ex.setting for ex in examples}):
        idx = [i for i, ex in enumerate(examples) if ex.setting == setting]
        subset = [examples[i] for i in idx]
        curve: list[tuple[float, float, float, int]] = []
        for t in _GRID:
            scores = [score_selection(subset, [select(examples[i], probs[i], t) for i in idx]) for probs in runs]
            curve.append(
                (
                    t,
                    round(statistics.fmean(s["f1"] for s in scores), 4),
                    statistics.fmean(s["precision"] for s in scores),
                    int(min(s["tp"] for s in scores)),
                )
            )
        best[setting] = max(curve, key=lambda c: (c[1], -c[0]))[0]
        meeting = [t for t, _f1, precision, tp in curve if precision >= precision_target and tp >= 20]
        if meeting:
            strict[setting] = min(meeting)
    return best, strict


def choose_floors_over(
    examples: Sequence[NoteExample], runs: Sequence[Sequence[Sequence[float]]], thresholds: Mapping[str, float]
) -> dict[str, float]:
    """Per setting, the floor (below its threshold) that maximises the averaged micro-F1 over ``runs`` when a note
    with no code at the threshold is given its likeliest candidate if that reaches the floor. A setting where no
    floor does strictly better than none gets none. (Every encounter has a diagnosis: a note left with no code
    has missed at least one.)
    """
    floors: dict[str, float] = {}
    for setting, threshold in sorted(thresholds.items()):
        idx = [i for i, ex in enumerate(examples) if ex.setting == setting]
        best, best_f1 = None, _mean_f1(examples, runs, idx, threshold, None)
        for t in [0.0, *(t for t in _GRID if t < threshold)]:
            if (score := _mean_f1(examples, runs, idx, threshold, t)) > best_f1:
                best, best_f1 = t, score
        if best is not None:
            floors[setting] = best
    return floors


def _mean_f1(
    examples: Sequence[NoteExample],
    runs: Sequence[Sequence[Sequence[float]]],
    idx: Sequence[int],
    threshold: float,
    floor: float | None,
) -> float:
    """Micro-F1 of the notes ``idx`` at ``threshold`` and ``floor``, averaged over ``runs``."""
    subset = [examples[i] for i in idx]
    scores = (
        score_selection(subset, [select(examples[i], probs[i], threshold, floor=floor) for i in idx])["f1"]
        for probs in runs
    )
    return round(statistics.fmean(scores), 4)


def report(
    examples: Sequence[NoteExample],
    probabilities: Sequence[Sequence[float]],
    thresholds: dict[str, float],
    strict: dict[str, float],
    floors: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """Out-of-fold figures per dataset: micro P/R/F1 at the thresholds (and floors), ECE, candidate recall."""
    out: dict[str, Any] = {}
    for dataset in sorted({ex.dataset for ex in examples}):
        idx = [i for i, ex in enumerate(examples) if ex.dataset == dataset]
        subset = [examples[i] for i in idx]
        picks: list[list[str]] = []
        chosen_p: list[float] = []
        chosen_y: list[int] = []
        for i in idx:
            setting = examples[i].setting
            pick, conf, labels = picked(examples[i], probabilities[i], thresholds[setting], (floors or {}).get(setting))
            picks.append(pick)
            chosen_p += conf
            chosen_y += labels
        gold_total = sum(len(set(ex.gold)) for ex in subset)
        in_candidates = sum(len(set(ex.gold) & set(ex.codes)) for ex in subset)
        entry: dict[str, Any] = {
            "notes": len(subset),
            **score_selection(subset, picks),
            "ece_proposed": calibration_error(chosen_p, chosen_y),
            "ece_all_candidates": calibration_error(
                [float(p) for i in idx for p in probabilities[i]], [y for ex in subset for y in ex.labels]
            ),
            "candidate_recall": round(in_candidates / gold_total, 4) if gold_total else 0.0,
        }
        strict_setting = {examples[i].setting for i in idx}
        if len(strict_setting) == 1 and (s := strict.get(next(iter(strict_setting)))) is not None:
            strict_picks = [select(examples[i], probabilities[i], s) for i in idx]
            entry["at_strict_threshold"] = score_selection(subset, strict_picks)
        out[dataset] = entry
    return out


MIN_SITE_CODES = 20  # picked codes of a setting before the site's kept rate moves its confidence


def site_offset(confidences: Sequence[float], labels: Sequence[int]) -> float:
    """The logit offset that makes the mean confidence of these codes their kept rate (0 without codes).

    The maximum-likelihood intercept of a logistic recalibration with the slope fixed at 1; found by
    bisection, bounded to [-6, 6] (all kept or none kept).
    """
    if not confidences:
        return 0.0
    target = sum(labels) / len(labels)
    p = np.asarray(confidences, dtype=np.float64)
    lo, hi = -6.0, 6.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if float(shift_confidence(p, mid).mean()) < target:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def site_offsets(
    examples: Sequence[NoteExample],
    probabilities: Sequence[Sequence[float]],
    thresholds: dict[str, float],
    site: str,
    floors: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Per setting, the ``site_offset`` of the codes picked out of fold from the ``site``'s notes (settings with
    fewer than ``MIN_SITE_CODES`` such codes get none)."""
    by_setting: dict[str, tuple[list[float], list[int]]] = {}
    for ex, probs in zip(examples, probabilities, strict=True):
        if ex.dataset != site or ex.setting not in thresholds:
            continue
        _, conf, kept = picked(ex, probs, thresholds[ex.setting], (floors or {}).get(ex.setting))
        confidences, labels = by_setting.setdefault(ex.setting, ([], []))
        confidences += conf
        labels += kept
    return {
        setting: round(site_offset(conf, kept), 4)
        for setting, (conf, kept) in sorted(by_setting.items())
        if len(conf) >= MIN_SITE_CODES
    }


def _out_of_fold(
    examples: Sequence[NoteExample],
    *,
    k: int,
    seeds: Sequence[int],
    precision_target: float,
    params: dict[str, Any] | None,
    balance: bool,
    features: Sequence[str],
    progress: bool,
    own_trees: Sequence[str],
    margins: dict[int, list[NDArray[np.float64]]] | None = None,
    with_floors: bool = True,
) -> tuple[
    dict[str, tuple[list[float], list[float]]],
    list[list[float]],
    dict[str, float],
    dict[str, float],
    dict[str, float],
    dict[str, Any],
]:
    """Calibration, probabilities, thresholds, strict thresholds, floors and the report of ``seeds[0]``'s fold
    assignment.

    With several ``seeds`` (fold assignments), the calibration is fitted on their out-of-fold margins stacked
    and the thresholds and floors are chosen on their F1 curves averaged; the probabilities and the report are
    the first seed's. ``margins`` caches out-of-fold margins per seed across calls. ``with_floors=False`` chooses
    none (a note with no code at the threshold gets none).
    """
    cache = margins if margins is not None else {}
    for seed in seeds:
        if seed not in cache:
            cache[seed] = cross_validate(
                examples,
                k=k,
                seed=seed,
                features=features,
                params=params,
                balance=balance,
                progress=progress,
                own_trees=own_trees,
            ).margins
    calibration = calibrate_by_setting([ex for _ in seeds for ex in examples], [m for s in seeds for m in cache[s]])
    runs = [
        [np.interp(m, *calibration[ex.setting]).tolist() for ex, m in zip(examples, cache[s], strict=True)]
        for s in seeds
    ]
    thresholds, strict = choose_thresholds_over(examples, runs, precision_target=precision_target)
    chosen = choose_floors_over(examples, runs, thresholds) if with_floors else {}
    return calibration, runs[0], thresholds, strict, chosen, report(examples, runs[0], thresholds, strict, chosen)


SPREAD_METRICS = ("f1", "ece_proposed")


def fold_seed_spread(
    examples: Sequence[NoteExample],
    seeds: Sequence[int],
    *,
    k: int = 5,
    precision_target: float = 0.95,
    params: dict[str, Any] | None = None,
    balance: bool = False,
    features: Sequence[str] = TRAINING_FEATURES,
    progress: bool = True,
    known: Mapping[int, dict[str, Any]] | None = None,
    threshold_seeds: int = 1,
    margins: dict[int, list[NDArray[np.float64]]] | None = None,
    with_floors: bool = True,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Out-of-fold F1 and ECE per dataset at each fold seed, with their median, min and max.

    A small dataset's figures move with the fold assignment (ACI dev's 67 notes: 0.44-0.47 F1, 0.05-0.08 ECE
    across five seeds of one model), so two models are compared on medians, not on one seed's figures.
    ``known`` holds reports already computed (seed -> ``train_model``'s out-of-fold report); each seed's
    thresholds are chosen as ``train_model`` chooses them with ``threshold_seeds`` (over that seed and the
    next ones), with floors unless ``with_floors`` is False; ``margins`` caches out-of-fold margins per fold seed
    (shared with ``train_model``). Raises ``InputError`` as ``train_model`` does.
    """
    own_trees = own_tree_settings(examples)
    margins = {} if margins is None else margins
    reports = [
        (known or {}).get(seed)
        or _out_of_fold(
            examples,
            k=k,
            seeds=range(seed, seed + threshold_seeds),
            precision_target=precision_target,
            params=params,
            balance=balance,
            features=features,
            progress=progress,
            own_trees=own_trees,
            margins=margins,
            with_floors=with_floors,
        )[-1]
        for seed in seeds
    ]
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for dataset in sorted(reports[0]):
        out[dataset] = {}
        for metric in SPREAD_METRICS:
            values = [float(r[dataset][metric]) for r in reports]
            out[dataset][metric] = {
                "seeds": list(seeds),
                "values": values,
                "median": round(float(np.median(values)), 4),
                "min": min(values),
                "max": max(values),
            }
    return out


def train_model(
    examples: Sequence[NoteExample],
    *,
    k: int = 5,
    seed: int = 0,
    precision_target: float = 0.95,
    top_k: dict[str, int] | None = None,
    version: str,
    params: dict[str, Any] | None = None,
    balance: bool = False,
    features: Sequence[str] = TRAINING_FEATURES,
    progress: bool = True,
    site: str | None = None,
    threshold_seeds: int = 1,
    margins: dict[int, list[NDArray[np.float64]]] | None = None,
    with_floors: bool = True,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model file content, out-of-fold report). Raises ``InputError`` for too few or one-class examples.

    ``site`` names the dataset of the site's own charts (``queue``): per setting with at
    least ``MIN_SITE_CODES`` codes picked out of fold among them, the model gets the confidence offset that
    makes their mean confidence the share the site's coders kept (``site_offsets``); the report's figures
    are before it. With ``threshold_seeds`` N > 1 the calibration and thresholds come from N fold assignments
    (seeds ``seed`` to ``seed + N - 1``: margins stacked, F1 curves averaged); the report is ``seed``'s.
    ``margins`` caches the out-of-fold margins per fold seed, for a later ``fold_seed_spread``. ``with_floors=False``
    fits a model without floors (``choose_floors_over``), for comparison.
    """
    if threshold_seeds < 1:
        raise InputError("threshold seeds must be at least 1")
    own_trees = own_tree_settings(examples)
    calibration, probabilities, thresholds, strict, chosen, oof = _out_of_fold(
        examples,
        k=k,
        seeds=range(seed, seed + threshold_seeds),
        precision_target=precision_target,
        params=params,
        balance=balance,
        features=features,
        progress=progress,
        own_trees=own_trees,
        margins=margins,
        with_floors=with_floors,
    )
    offsets = site_offsets(examples, probabilities, thresholds, site, chosen) if site else {}
    priors = CodePriors.from_labels((ex.setting, ex.gold) for ex in examples)
    x, y = _design(examples, priors, features)
    datasets = sorted({ex.dataset for ex in examples})
    model = fit_acceptance(
        x,
        y,
        calibration=calibration,
        priors=priors,
        thresholds=thresholds,
        strict_thresholds=strict,
        floors=chosen,
        top_k=top_k or DEFAULT_TOP_K,
        provenance={
            "version": version,
            "trained_on": {d: sum(ex.dataset == d for ex in examples) for d in datasets},
            "rows": len(y),
            "positives": int(y.sum()),
            "cv_folds": k,
            "seed": seed,
            "threshold_seeds": threshold_seeds,
            "precision_target": precision_target,
            "confidence_offsets_from": site if offsets else None,
            "balanced_settings": balance,
            "setting_trees": own_trees,
            "params": params or {},
            "out_of_fold": oof,
        },
        seed=seed,
        weights=row_weights(examples, balance),
        params=params,
        features=features,
        confidence_offsets=offsets,
        setting_rows={s: np.asarray([ex.setting == s for ex in examples for _ in ex.rows]) for s in own_trees},
    )
    return model, oof
