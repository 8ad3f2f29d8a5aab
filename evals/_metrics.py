"""Code-assignment metrics on sets and ranked lists of codes. Pure functions, no I/O.

Conventions (documented in the README):
- Codes are compared after upper-casing; duplicates within a document count once.
- ``micro_*`` pool true/false positives over all documents. When a denominator is zero
  the value is 0.0 (precision with no predictions, recall with no gold).
- ``macro_f1`` averages per-code F1 over every code that appears in the gold or the
  predictions of any document.
- ``exact_match`` is the share of documents whose predicted set equals the gold set
  (two empty sets match).
- ``map`` is the mean over documents with non-empty gold of average precision of the
  ranked predictions (CodiEsp's official metric): sum of precision@k at each relevant
  rank k, divided by the number of gold codes. Repeated codes in a ranking are skipped.
- ``category_f1`` is micro-F1 on 3-character categories (partial credit).
- The harness also reports ``map_candidates``: MAP of the whole ranked candidate list the
  proposer was offered (what a ranked submission would score), beside ``map`` of the proposed
  codes ranked by confidence.
- ``ece``: expected calibration error with equal-width bins over [0, 1].

Computed in ``_harness.py`` from the prediction rows:

- ``hallucination_rate_raw``: share of all proposed codes that a validator rejected with a
  hallucination or unsupported-evidence rule (``HALLUCINATION_RULES``).
- ``hallucination_rate_accepted`` (structural): share of accepted codes that are not billable codes
  of the release, or whose evidence offsets do not slice the note to the quoted text. It re-checks
  what the validators check first, so it is 0 unless they are broken; it cannot see a wrong code.
- ``unsupported_accepted_rate``: share of accepted codes that gold says are unsupported, by a check
  that never calls the validators (``unsupported_reason``): the code is one of the note's traps, or
  a non-gold sibling of a gold code (same category, or the twin category's same subcode), or a gold
  code whose evidence overlaps none of its gold spans. Codes unrelated to any gold code are not
  counted (they may be missing gold labels); on datasets without spans or traps only the sibling
  test applies.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "PRF",
    "average_precision",
    "category_f1",
    "exact_match",
    "expected_calibration_error",
    "macro_f1",
    "mean_average_precision",
    "micro_prf",
    "reliability_bins",
]


@dataclass(frozen=True)
class PRF:
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int


def _norm(codes: Iterable[str]) -> set[str]:
    return {c.strip().upper() for c in codes if c and c.strip()}


def _prf(tp: int, fp: int, fn: int) -> PRF:
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PRF(precision, recall, f1, tp, fp, fn)


def micro_prf(gold: Sequence[Iterable[str]], predicted: Sequence[Iterable[str]]) -> PRF:
    """Micro precision/recall/F1 over paired documents. Raises ``ValueError`` on length mismatch."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold documents but {len(predicted)} predictions")
    tp = fp = fn = 0
    for g, p in zip(gold, predicted, strict=True):
        gs, ps = _norm(g), _norm(p)
        tp += len(gs & ps)
        fp += len(ps - gs)
        fn += len(gs - ps)
    return _prf(tp, fp, fn)


def macro_f1(gold: Sequence[Iterable[str]], predicted: Sequence[Iterable[str]]) -> float:
    """Mean per-code F1 over all codes seen in gold or predictions (0.0 when there are none)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold documents but {len(predicted)} predictions")
    tp: Counter[str] = Counter()
    fp: Counter[str] = Counter()
    fn: Counter[str] = Counter()
    for g, p in zip(gold, predicted, strict=True):
        gs, ps = _norm(g), _norm(p)
        tp.update(gs & ps)
        fp.update(ps - gs)
        fn.update(gs - ps)
    labels = set(tp) | set(fp) | set(fn)
    if not labels:
        return 0.0
    return sum(_prf(tp[c], fp[c], fn[c]).f1 for c in labels) / len(labels)


def exact_match(gold: Sequence[Iterable[str]], predicted: Sequence[Iterable[str]]) -> float:
    """Share of documents whose predicted code set equals the gold set."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold documents but {len(predicted)} predictions")
    if not gold:
        return 0.0
    return sum(_norm(g) == _norm(p) for g, p in zip(gold, predicted, strict=True)) / len(gold)


def average_precision(gold: Iterable[str], ranked: Sequence[str]) -> float | None:
    """Average precision of one ranked list; None when gold is empty (undefined)."""
    gs = _norm(gold)
    if not gs:
        return None
    seen: set[str] = set()
    hits = 0
    total = 0.0
    rank = 0
    for code in ranked:
        c = code.strip().upper()
        if not c or c in seen:
            continue
        seen.add(c)
        rank += 1
        if c in gs:
            hits += 1
            total += hits / rank
    return total / len(gs)


def mean_average_precision(gold: Sequence[Iterable[str]], ranked: Sequence[Sequence[str]]) -> float:
    """MAP over documents with non-empty gold (0.0 when there are none)."""
    if len(gold) != len(ranked):
        raise ValueError(f"{len(gold)} gold documents but {len(ranked)} rankings")
    values = [ap for g, r in zip(gold, ranked, strict=True) if (ap := average_precision(g, r)) is not None]
    return sum(values) / len(values) if values else 0.0


def category_f1(gold: Sequence[Iterable[str]], predicted: Sequence[Iterable[str]]) -> PRF:
    """Micro P/R/F1 on 3-character categories."""
    return micro_prf(
        [{c.strip().upper()[:3] for c in g if c.strip()} for g in gold],
        [{c.strip().upper()[:3] for c in p if c.strip()} for p in predicted],
    )


def reliability_bins(
    confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 10
) -> list[tuple[float, float, float, int]]:
    """``(bin_low, mean_confidence, accuracy, count)`` per non-empty bin; confidence 1.0 goes in the top bin."""
    if len(confidences) != len(correct):
        raise ValueError("confidences and correctness differ in length")
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    buckets: list[list[tuple[float, bool]]] = [[] for _ in range(n_bins)]
    for conf, ok in zip(confidences, correct, strict=True):
        if not 0.0 <= conf <= 1.0:
            raise ValueError(f"confidence {conf} outside [0, 1]")
        buckets[min(int(conf * n_bins), n_bins - 1)].append((conf, ok))
    out = []
    for i, bucket in enumerate(buckets):
        if bucket:
            out.append(
                (
                    i / n_bins,
                    sum(c for c, _ in bucket) / len(bucket),
                    sum(1 for _, ok in bucket if ok) / len(bucket),
                    len(bucket),
                )
            )
    return out


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool], n_bins: int = 10) -> float:
    """Count-weighted mean |accuracy - confidence| over bins (0.0 with no predictions)."""
    total = len(confidences)
    if total == 0:
        return 0.0
    return sum(n / total * abs(acc - conf) for _, conf, acc, n in reliability_bins(confidences, correct, n_bins))
