"""``medcode regress``: compare an evaluation with a stored baseline and fail on regressions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from medcode.errors import InputError

__all__ = ["BASELINE_KEYS", "VERSION_KEYS", "Comparison", "compare", "make_baseline", "read_json"]

BASELINE_KEYS = (
    "n_documents",
    "micro_precision",
    "micro_recall",
    "micro_f1",
    "hallucination_rate_raw",
    "hallucination_rate_accepted",
    "unsupported_accepted_rate",
    "candidate_recall",
    "ece",
    "review_rate",
)
# Versions that change results; medcode's own version and the git commit do not count.
VERSION_KEYS = (
    "proposer",
    "model",
    "model_sha256",
    "prompt",
    "acceptance_model",
    "proposer_params",
    "codeset",
    "rules",
    "index",
    "retrieval_data",
    "candidate_ranker",
    "embedder",
)


class Row(BaseModel):
    metric: str
    baseline: Any
    current: Any
    status: str


class Comparison(BaseModel):
    rows: list[Row]
    failures: list[str]

    @property
    def ok(self) -> bool:
        return not self.failures

    def table(self) -> str:
        width = max(len(r.metric) for r in self.rows) if self.rows else 10
        lines = [f"{'metric':<{width}}  {'baseline':>12}  {'current':>12}  status"]
        for r in self.rows:
            lines.append(f"{r.metric:<{width}}  {_fmt(r.baseline):>12}  {_fmt(r.current):>12}  {r.status}")
        return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    text = str(value)
    return text if len(text) <= 12 else text[:11] + "~"


def read_json(path: Path, what: str) -> dict[str, Any]:
    """Read a JSON object. Raises ``InputError`` naming the file when it is missing or malformed."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{what} not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read {what} {path}: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{what} {path} is not a JSON object")
    return data


def make_baseline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The part of ``metrics.json`` a baseline keeps."""
    return {
        **{k: metrics.get(k) for k in BASELINE_KEYS},
        "dataset": Path(str(metrics.get("dataset", ""))).name or None,
        "versions": {k: metrics.get("versions", {}).get(k) for k in VERSION_KEYS},
    }


def compare(
    baseline: dict[str, Any],
    current: dict[str, Any],
    *,
    tolerance_f1: float = 0.02,
    tolerance_raw: float = 0.02,
    tolerance_unsupported: float = 0.01,
    allow_version_change: bool = False,
) -> Comparison:
    """Rows of the diff table and the list of failures (empty = pass).

    Fails when ``hallucination_rate_accepted`` is above 0, when ``unsupported_accepted_rate`` or
    ``hallucination_rate_raw`` rises or ``micro_f1`` falls by more than its tolerance, or when a
    result-changing version differs (unless allowed). Raises ``InputError`` when a metric is missing
    from either side (a baseline written before ``unsupported_accepted_rate`` existed must be
    regenerated with ``--update-baseline``).
    """
    for side, data in (("baseline", baseline), ("current", current)):
        for key in ("micro_f1", "hallucination_rate_raw", "hallucination_rate_accepted", "unsupported_accepted_rate"):
            if not isinstance(data.get(key), int | float):
                raise InputError(f"{side} metrics lack a numeric {key!r}")
    rows: list[Row] = []
    failures: list[str] = []

    acc = float(current["hallucination_rate_accepted"])
    status = "FAIL (must be 0)" if acc > 0 else "ok"
    rows.append(
        Row(
            metric="hallucination_rate_accepted",
            baseline=baseline["hallucination_rate_accepted"],
            current=acc,
            status=status,
        )
    )
    if acc > 0:
        failures.append(f"hallucination_rate_accepted is {acc:.4f}; it must be 0")

    uns_b, uns_c = float(baseline["unsupported_accepted_rate"]), float(current["unsupported_accepted_rate"])
    worse = uns_c > uns_b + tolerance_unsupported
    rows.append(
        Row(
            metric="unsupported_accepted_rate",
            baseline=uns_b,
            current=uns_c,
            status=f"FAIL (+{uns_c - uns_b:.4f} > {tolerance_unsupported})"
            if worse
            else f"ok (tolerance {tolerance_unsupported})",
        )
    )
    if worse:
        failures.append(
            f"unsupported_accepted_rate rose from {uns_b:.4f} to {uns_c:.4f} (tolerance {tolerance_unsupported})"
        )

    raw_b, raw_c = float(baseline["hallucination_rate_raw"]), float(current["hallucination_rate_raw"])
    worse = raw_c > raw_b + tolerance_raw
    rows.append(
        Row(
            metric="hallucination_rate_raw",
            baseline=raw_b,
            current=raw_c,
            status=f"FAIL (+{raw_c - raw_b:.4f} > {tolerance_raw})" if worse else f"ok (tolerance {tolerance_raw})",
        )
    )
    if worse:
        failures.append(f"hallucination_rate_raw rose from {raw_b:.4f} to {raw_c:.4f} (tolerance {tolerance_raw})")

    f1_b, f1_c = float(baseline["micro_f1"]), float(current["micro_f1"])
    worse = f1_c < f1_b - tolerance_f1
    rows.append(
        Row(
            metric="micro_f1",
            baseline=f1_b,
            current=f1_c,
            status=f"FAIL ({f1_c - f1_b:.4f} < -{tolerance_f1})" if worse else f"ok (tolerance {tolerance_f1})",
        )
    )
    if worse:
        failures.append(f"micro_f1 fell from {f1_b:.4f} to {f1_c:.4f} (tolerance {tolerance_f1})")

    for key in ("micro_precision", "micro_recall", "candidate_recall", "ece", "n_documents"):
        if key in baseline or key in current:
            rows.append(Row(metric=key, baseline=baseline.get(key), current=current.get(key), status="info"))

    base_v = baseline.get("versions", {}) or {}
    cur_v = current.get("versions", {}) or {}
    for key in VERSION_KEYS:
        b, c = base_v.get(key), cur_v.get(key)
        if b == c:
            continue
        status = "changed (allowed)" if allow_version_change else "FAIL (version changed)"
        rows.append(Row(metric=f"versions.{key}", baseline=b, current=c, status=status))
        if not allow_version_change:
            failures.append(f"version {key} changed from {b!r} to {c!r} (pass --allow-version-change)")
    return Comparison(rows=rows, failures=failures)
