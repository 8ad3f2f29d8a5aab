"""Fitting a ``CandidateRanker`` from labelled notes (``medcode train --ranker``, ``tools/train_ranker.py``).

For every labelled note of the ranker's setting, retrieval merges a pool of candidates in the hybrid
note score's order (``pool_row``); a candidate is positive when it is one of the note's gold codes.
``fit_ranker`` runs K-fold cross-validation (out-of-fold candidate recall at K before and after the
re-ordering; each fold model saw none of its notes and goes into the file with the hashes of those
notes, so a model trained on top of the ranker gets held-out scores), then fits on all notes. With
``with_priors`` the ranker also learns the labels' code and category shares (``CodePriors``), leaving
each training note's own labels out of its rows. Needs scikit-learn (the ``train`` extra).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from medcode._trees import export_trees, fit_boosting
from medcode.retrieval._models import NoteCandidate
from medcode.retrieval._priors import CodePriors
from medcode.retrieval._ranker import PRIOR_FEATURES, RANKER_FEATURES, RANKER_FORMAT, CandidateRanker, ranker_features

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from medcode.retrieval._retriever import HybridRetriever

__all__ = ["RankerFit", "fit_ranker", "pool_row"]


def pool_row(
    retriever: HybridRetriever, text: str, gold: Sequence[str], *, dataset: str, doc_id: str, pool: int
) -> dict[str, Any]:
    """One note's candidate pool in the note score's order, with its billable gold codes (``fit_ranker``'s input).

    Only the note's hash (``CandidateRanker.note_key``) is kept, never its text. Raises like
    ``HybridRetriever.search_note``.
    """
    found = retriever.search_note(text, top_k=pool)  # no setting: the note score's order, never a ranker's
    codeset = retriever.codeset
    return {
        "dataset": dataset,
        "id": doc_id,
        "key": CandidateRanker.note_key(text),
        "gold": sorted({c for c in gold if c in codeset and codeset.is_billable(c)}),
        "candidates": [c.model_dump(exclude={"description", "matched_text"}) for c in found.candidates],
    }


@dataclass
class RankerFit:
    """A fitted ranker file's content (``data``) and its out-of-fold candidate recall at ``cut``."""

    data: dict[str, Any]
    cut: int
    recall_before: float
    recall_after: float
    folds: list[tuple[float, float]]


def _candidates(row: dict[str, Any]) -> list[NoteCandidate]:
    return [NoteCandidate(description="", matched_text="", **c) for c in row["candidates"]]


def _design(
    rows: Sequence[dict[str, Any]], cut: int, priors: CodePriors | None, setting: str, *, own: bool = True
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    """Features and labels; ``own``: the rows' notes are among the priors' counts (their labels left out)."""
    xs, ys = [], []
    for row in rows:
        cands = _candidates(row)
        if not cands:
            continue
        xs.append(ranker_features(cands, cut, priors=priors, setting=setting, own=row["gold"] if own else None))
        gold = set(row["gold"])
        ys.append(np.asarray([c.code in gold for c in cands], dtype=np.int64))
    if not xs:
        return np.empty((0, len(RANKER_FEATURES) + (len(PRIOR_FEATURES) if priors else 0))), np.empty(0, np.int64)
    return np.vstack(xs), np.concatenate(ys)


def _found(
    rows: Sequence[dict[str, Any]], cut: int, model: Any | None, priors: CodePriors | None, setting: str
) -> tuple[int, int]:
    found = total = 0
    for row in rows:
        codes = [c["code"] for c in row["candidates"]]
        if model is not None and codes:
            x, _ = _design([row], cut, priors, setting, own=False)
            codes = [codes[i] for i in np.argsort(-model.decision_function(x), kind="stable")]
        total += len(row["gold"])
        found += len(set(row["gold"]) & set(codes[:cut]))
    return found, total


def fit_ranker(
    rows: Sequence[dict[str, Any]],
    *,
    setting: str = "inpatient",
    pool: int = 200,
    cut: int = 100,
    cv: int = 5,
    with_priors: bool = False,
    seed: int = 0,
) -> RankerFit:
    """Cross-validate and fit a ranker on ``pool_row`` rows of one setting (default trees, nothing tuned).

    The file holds no date: the same rows and seed give the same bytes, so the same version (its hash), and
    ``medcode train --ranker`` finds its cached features again on a rerun.

    Raises ``ValueError`` when there are fewer notes than folds, or no gold code among the candidates.
    """
    if cv < 2 or len(rows) < cv:
        raise ValueError(f"a ranker needs at least {max(cv, 2)} labelled {setting} notes for {cv}-fold CV")
    if not any(set(r["gold"]) & {c["code"] for c in r["candidates"]} for r in rows):
        raise ValueError(f"no gold code is among the {setting} notes' candidates: nothing to learn from")

    def priors_of(part: Sequence[dict[str, Any]]) -> CodePriors | None:
        return CodePriors.from_labels((setting, r["gold"]) for r in part) if with_priors else None

    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    fold_of = {i: n % cv for n, i in enumerate(order)}
    before = after = total = 0
    folds: list[tuple[float, float]] = []
    held_out: list[dict[str, Any]] = []
    for f in range(cv):
        train = [r for i, r in enumerate(rows) if fold_of[i] != f]
        test = [r for i, r in enumerate(rows) if fold_of[i] == f]
        fold_priors = priors_of(train)
        model = fit_boosting(*_design(train, cut, fold_priors, setting), seed=seed)
        baseline, trees = export_trees(model)
        spec: dict[str, Any] = {"notes": sorted(r["key"] for r in test), "baseline": baseline, "trees": trees}
        held_out.append(spec | ({"priors": fold_priors.as_dict()} if fold_priors else {}))
        found, n = _found(test, cut, model, fold_priors, setting)
        base, _ = _found(test, cut, None, None, setting)
        folds.append((base / max(n, 1), found / max(n, 1)))
        after, before, total = after + found, before + base, total + n
    priors = priors_of(rows)
    x, y = _design(rows, cut, priors, setting)
    baseline, trees = export_trees(fit_boosting(x, y, seed=seed))
    datasets: dict[str, int] = {}
    for row in rows:
        datasets[row["dataset"]] = datasets.get(row["dataset"], 0) + 1
    recall_before, recall_after = round(before / max(total, 1), 4), round(after / max(total, 1), 4)
    data = {
        "kind": "medcode-candidate-ranker",
        "format": RANKER_FORMAT,
        "features": list(RANKER_FEATURES + (PRIOR_FEATURES if priors else ())),
        "settings": [setting],
        "pool": pool,
        "baseline": baseline,
        "trees": trees,
        "held_out": held_out,
        **({"priors": priors.as_dict()} if priors else {}),
        "provenance": {
            "trained_on": datasets,
            "rows": len(y),
            "positives": int(y.sum()),
            "out_of_fold": {"folds": cv, "cut": cut, "recall_before": recall_before, "recall_after": recall_after},
        },
    }
    return RankerFit(data, cut, recall_before, recall_after, folds)
