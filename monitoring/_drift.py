"""Drift: is the machine's behaviour in a window of charts different from a reference, within one case type?

For each group (``case_type`` = setting/note type by default) and window (a week by default), the
window's charts are compared with the reference (``drift_thresholds.json``: the pooled ``windows``
windows before it, or a fixed baseline period) on eight metrics:

- ``code_mix_psi`` / ``code_mix_js``: population stability index and Jensen-Shannon divergence
  (bits) of the proposed codes' 3-character categories (the reference's ``top_categories`` most
  frequent, the rest pooled as ``other``);
- ``confidence_psi``: PSI of the proposed codes' confidence over fixed bins;
- ``acceptance_rate_change`` / ``override_rate_change``: the coders' rates (``RateGroup``) minus
  the reference's, over human-reviewed finalised charts;
- ``llm_fallback_rate``: the window's share of charts whose LLM step failed (a level, not a change);
- ``review_share_change``: share routed to review minus the reference's;
- ``rejection_mix_js``: JS divergence of the validators' rejection rule ids.

A metric is ``watch`` or ``alert`` when its value (absolute, for changes) reaches that threshold,
both sides hold enough items (``min_current``/``min_reference``), and the value exceeds
``noise_multiplier`` times its sampling noise: for PSI over K bins with n and m items, two-sample
noise alone gives about (K-1)(1/n + 1/m) (PSI is Jeffreys' divergence, asymptotically chi-square
over n·m/(n+m)), for JS in bits a 1/(8 ln 2) share of that, for a rate change the standard error of
the difference of two proportions. That keeps small windows from alerting on noise. Values below a
side's minimum are reported with level ``insufficient``.

Alerts (level ``alert``) carry a stable ``alert_id`` (metric, grouping, group, window, thresholds
version); ``record_alerts`` appends each new one to the audit log as a ``monitoring.drift_alert``
event, once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field

from medcode.monitoring._data import DriftMetric, DriftThresholds
from medcode.monitoring._records import ChartRecord, GroupBy, Window, category, group_key, rate_group
from medcode.review import AuditLog
from medcode.review.governance import AutonomyLedger

__all__ = [
    "ALERT_EVENT",
    "DriftAlert",
    "DriftReport",
    "DriftValue",
    "GroupDrift",
    "detect_drift",
    "jensen_shannon",
    "psi",
    "record_alerts",
    "suspend_drifting_case_types",
]

ALERT_EVENT = "monitoring.drift_alert"
Level = Literal["ok", "watch", "alert", "insufficient"]
_ORDER = {"insufficient": 0, "ok": 1, "watch": 2, "alert": 3}
OTHER = "other"


def _proportions(counts: Mapping[str, float], keys: Sequence[str], smoothing: float) -> list[float]:
    total = sum(counts.get(k, 0.0) for k in keys) + smoothing * len(keys)
    return [(counts.get(k, 0.0) + smoothing) / total for k in keys]


def psi(current: Mapping[str, float], reference: Mapping[str, float], *, smoothing: float = 0.5) -> float:
    """Population stability index sum((c - r) ln(c / r)) over the union of keys; add-``smoothing`` counts
    keep empty bins finite. 0 for identical mixes; 0.1 is a common 'watch', 0.25 an 'act' level."""
    keys = sorted(set(current) | set(reference))
    if not keys:
        return 0.0
    c = _proportions(current, keys, smoothing)
    r = _proportions(reference, keys, smoothing)
    return float(sum((a - b) * math.log(a / b) for a, b in zip(c, r, strict=True)))


def jensen_shannon(current: Mapping[str, float], reference: Mapping[str, float]) -> float:
    """Jensen-Shannon divergence in bits (0 identical .. 1 disjoint); empty bins need no smoothing."""
    keys = sorted(set(current) | set(reference))
    total_c = sum(current.get(k, 0.0) for k in keys)
    total_r = sum(reference.get(k, 0.0) for k in keys)
    if not keys or total_c <= 0 or total_r <= 0:
        return 0.0
    value = 0.0
    for k in keys:
        p, q = current.get(k, 0.0) / total_c, reference.get(k, 0.0) / total_r
        m = (p + q) / 2
        if p > 0:
            value += 0.5 * p * math.log2(p / m)
        if q > 0:
            value += 0.5 * q * math.log2(q / m)
    return max(0.0, value)


class DriftValue(BaseModel):
    """One metric of one group and window."""

    value: float | None = Field(description="None when a side has no items at all.")
    current: float | None = Field(default=None, description="The window's level (rates and shares).")
    reference: float | None = Field(default=None, description="The reference's level (rates and shares).")
    n_current: int = 0
    n_reference: int = 0
    noise: float | None = Field(default=None, description="The value sampling noise alone would give.")
    level: Level = "ok"


class GroupDrift(BaseModel):
    """Every metric of one group in one window."""

    group: str
    window_start: dt.date
    window_end: dt.date
    reference_start: dt.date | None
    reference_end: dt.date | None
    charts: int
    metrics: dict[str, DriftValue]

    @property
    def level(self) -> Level:
        levels = [v.level for v in self.metrics.values()]
        return max(levels, key=lambda x: _ORDER[x]) if levels else "insufficient"


class DriftAlert(BaseModel):
    """A metric past its alert threshold: what the audit log and the autonomy policy see."""

    alert_id: str
    metric: str
    description: str
    group_by: str
    group: str
    window_start: dt.date
    window_end: dt.date
    reference_start: dt.date | None
    reference_end: dt.date | None
    value: float
    threshold: float
    current: float | None = None
    reference: float | None = None
    n_current: int
    n_reference: int
    noise: float | None
    thresholds_version: str

    @property
    def message(self) -> str:
        level = (
            f" ({self.reference:.3f} -> {self.current:.3f})"
            if self.current is not None and self.reference is not None
            else ""
        )
        return (
            f"{self.metric} {self.value:+.3f}{level} for {self.group_by} {self.group} in the window from "
            f"{self.window_start} (threshold {self.threshold:g}, {self.n_current} vs {self.n_reference} items)"
        )


class DriftReport(BaseModel):
    """Drift per group and window, the alerts, and the latest window's status per group."""

    group_by: str
    window: str
    thresholds_version: str
    groups: list[GroupDrift]
    alerts: list[DriftAlert]

    @property
    def status(self) -> Level:
        """The worst level in the latest window of each group (``insufficient`` when nothing could be judged)."""
        latest = self.latest()
        if not latest:
            return "insufficient"
        return max((g.level for g in latest.values()), key=lambda x: _ORDER[x])

    def latest(self) -> dict[str, GroupDrift]:
        """The most recent window of each group."""
        out: dict[str, GroupDrift] = {}
        for g in self.groups:
            if g.group not in out or g.window_start > out[g.group].window_start:
                out[g.group] = g
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "group_by": self.group_by,
            "window": self.window,
            "thresholds_version": self.thresholds_version,
            "status": self.status,
            "alerts": [{**a.model_dump(mode="json"), "message": a.message} for a in self.alerts],
            "latest": {k: {**v.model_dump(mode="json"), "level": v.level} for k, v in sorted(self.latest().items())},
            "groups": [{**g.model_dump(mode="json"), "level": g.level} for g in self.groups],
        }


# -- profiles ------------------------------------------------------------------------------------


class _Profile:
    """What drift compares, accumulated over a set of records."""

    def __init__(self, records: Iterable[ChartRecord], bins: Sequence[float]) -> None:
        self.records = list(records)
        self.categories: Counter[str] = Counter()
        self.confidence: Counter[str] = Counter()
        self.rejections: Counter[str] = Counter()
        self.charts = len(self.records)
        self.review = sum(1 for r in self.records if r.routing == "review")
        self.fallback = sum(1 for r in self.records if r.llm_fallback)
        for record in self.records:
            for code in record.codes:
                if code.origin != "proposed":
                    continue
                self.categories[category(code.code)] += 1
                if code.confidence is not None:
                    self.confidence[_bin(code.confidence, bins)] += 1
                if code.proposed_status == "rejected":
                    self.rejections.update(code.rules or ("UNSPECIFIED",))
        self.rates = rate_group(self.records)


def _bin(value: float, bins: Sequence[float]) -> str:
    for low, high in itertools.pairwise(bins):
        if value < high:
            return f"{low:.2f}"
    return f"{bins[-2]:.2f}"


def _top(current: Counter[str], reference: Counter[str], k: int) -> tuple[dict[str, float], dict[str, float]]:
    keep = {name for name, _ in reference.most_common(k)}

    def fold(counts: Counter[str]) -> dict[str, float]:
        return {
            **{n: float(v) for n, v in counts.items() if n in keep},
            OTHER: float(sum(v for n, v in counts.items() if n not in keep)),
        }

    return fold(current), fold(reference)


def _level(value: float | None, noise: float | None, n_cur: int, n_ref: int, t: Any, multiplier: float) -> Level:
    if value is None or n_cur < t.min_current or n_ref < t.min_reference:
        return "insufficient"
    size = abs(value)
    if noise is not None and size <= multiplier * noise:
        return "ok"
    if size >= t.alert:
        return "alert"
    if size >= t.watch:
        return "watch"
    return "ok"


def _rate_change(
    cur: tuple[int, int], ref: tuple[int, int]
) -> tuple[float | None, float | None, float | None, float | None]:
    """(change, current rate, reference rate, standard error of the difference) of two proportions."""
    (k1, n1), (k2, n2) = cur, ref
    if n1 == 0 or n2 == 0:
        return None, (k1 / n1 if n1 else None), (k2 / n2 if n2 else None), None
    p1, p2 = k1 / n1, k2 / n2
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(max(pooled * (1 - pooled), 1e-12) * (1 / n1 + 1 / n2))
    return p1 - p2, p1, p2, se


def _compare(cur: _Profile, ref: _Profile, thresholds: DriftThresholds) -> dict[str, DriftValue]:
    t = thresholds.metrics
    mult = thresholds.noise_multiplier
    out: dict[str, DriftValue] = {}

    def put(name: DriftMetric, value: float | None, n_cur: int, n_ref: int, noise: float | None, **levels: Any) -> None:
        if name not in t:
            return
        out[name] = DriftValue(
            value=None if value is None else round(value, 6),
            n_current=n_cur,
            n_reference=n_ref,
            noise=None if noise is None else round(noise, 6),
            level=_level(value, noise, n_cur, n_ref, t[name], mult),
            **levels,
        )

    def divergence_noise(k: int, n: int, m: int) -> float | None:
        return (k - 1) * (1 / n + 1 / m) if n and m and k > 1 else None

    n_cur, n_ref = sum(cur.categories.values()), sum(ref.categories.values())
    c, r = _top(cur.categories, ref.categories, thresholds.top_categories)
    k = len(set(c) | set(r))
    noise = divergence_noise(k, n_cur, n_ref)
    both = n_cur > 0 and n_ref > 0
    put("code_mix_psi", psi(c, r) if both else None, n_cur, n_ref, noise)
    put(
        "code_mix_js",
        jensen_shannon(c, r) if both else None,
        n_cur,
        n_ref,
        noise / (8 * math.log(2)) if noise else None,
    )

    n_cur, n_ref = sum(cur.confidence.values()), sum(ref.confidence.values())
    k = len(thresholds.confidence_bins) - 1
    value = psi(cur.confidence, ref.confidence) if n_cur and n_ref else None
    put("confidence_psi", value, n_cur, n_ref, divergence_noise(k, n_cur, n_ref))

    a, b = cur.rates, ref.rates
    change, p1, p2, se = _rate_change((a.kept, a.suggested), (b.kept, b.suggested))
    put("acceptance_rate_change", change, a.suggested, b.suggested, se, current=p1, reference=p2)
    over_a = a.rejected_by_coder + a.replaced + a.guardrail_overrides
    over_b = b.rejected_by_coder + b.replaced + b.guardrail_overrides
    change, p1, p2, se = _rate_change(
        (over_a, a.suggested + a.proposed_rejected), (over_b, b.suggested + b.proposed_rejected)
    )
    put(
        "override_rate_change",
        change,
        a.suggested + a.proposed_rejected,
        b.suggested + b.proposed_rejected,
        se,
        current=p1,
        reference=p2,
    )

    rate = cur.fallback / cur.charts if cur.charts else None
    put(
        "llm_fallback_rate",
        rate,
        cur.charts,
        ref.charts,
        None,
        current=rate,
        reference=ref.fallback / ref.charts if ref.charts else None,
    )
    change, p1, p2, se = _rate_change((cur.review, cur.charts), (ref.review, ref.charts))
    put("review_share_change", change, cur.charts, ref.charts, se, current=p1, reference=p2)

    n_cur, n_ref = sum(cur.rejections.values()), sum(ref.rejections.values())
    k = len(set(cur.rejections) | set(ref.rejections))
    noise = divergence_noise(k, n_cur, n_ref)
    value = jensen_shannon(cur.rejections, ref.rejections) if n_cur and n_ref else None
    put("rejection_mix_js", value, n_cur, n_ref, noise / (8 * math.log(2)) if noise else None)
    return out


def _alert_id(metric: str, group_by: str, group: str, start: dt.date, version: str) -> str:
    key = "\0".join((metric, group_by, group, start.isoformat(), version))
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def detect_drift(
    records: Sequence[ChartRecord],
    thresholds: DriftThresholds,
    *,
    window: Window | None = None,
    group_by: GroupBy = "case_type",
    include_all: bool = True,
) -> DriftReport:
    """Drift of every window of every group (and of all charts together as group ``all`` when
    ``include_all``) against its reference. Pure: the same records give the same report."""
    window = window or Window()
    groups: dict[str, list[ChartRecord]] = {}
    for record in records:
        groups.setdefault(group_key(record, group_by), []).append(record)
    if include_all and len(groups) != 1:
        groups["all"] = list(records)
    ref_cfg = thresholds.reference
    fixed = None
    if ref_cfg.mode == "fixed" and ref_cfg.start and ref_cfg.end:
        fixed = (dt.date.fromisoformat(ref_cfg.start), dt.date.fromisoformat(ref_cfg.end))
    bins = thresholds.confidence_bins
    results: list[GroupDrift] = []
    alerts: list[DriftAlert] = []
    for name, members in sorted(groups.items()):
        by_window = dict(window.split(members))
        starts = [s for s, _ in window.windows(members)]
        for i, start in enumerate(starts):
            current = by_window.get(start, [])
            if not current:
                continue
            if fixed is not None:
                if start < fixed[1]:
                    continue  # the baseline itself is not judged
                ref_start, ref_end = fixed
                reference = [r for r in members if ref_start <= r.time.date() < ref_end]
            else:
                previous = starts[max(0, i - ref_cfg.windows) : i]
                if not previous:
                    continue
                ref_start, ref_end = previous[0], start
                reference = [r for s in previous for r in by_window.get(s, [])]
            metrics = _compare(_Profile(current, bins), _Profile(reference, bins), thresholds)
            drift = GroupDrift(
                group=name,
                window_start=start,
                window_end=window.end(start),
                reference_start=ref_start,
                reference_end=ref_end,
                charts=len(current),
                metrics=metrics,
            )
            results.append(drift)
            for metric, value in metrics.items():
                if value.level != "alert" or value.value is None:
                    continue
                t = thresholds.metrics[metric]  # type: ignore[index]
                alerts.append(
                    DriftAlert(
                        alert_id=_alert_id(metric, group_by, name, start, thresholds.version),
                        metric=metric,
                        description=t.description,
                        group_by=group_by,
                        group=name,
                        window_start=start,
                        window_end=drift.window_end,
                        reference_start=ref_start,
                        reference_end=ref_end,
                        value=value.value,
                        threshold=t.alert,
                        current=value.current,
                        reference=value.reference,
                        n_current=value.n_current,
                        n_reference=value.n_reference,
                        noise=value.noise,
                        thresholds_version=thresholds.version,
                    )
                )
    return DriftReport(
        group_by=group_by, window=window.spec, thresholds_version=thresholds.version, groups=results, alerts=alerts
    )


def record_alerts(audit: AuditLog, alerts: Iterable[DriftAlert]) -> list[DriftAlert]:
    """Append each alert not yet in the audit log as a ``monitoring.drift_alert`` event; returns the new ones.

    The payload is the alert (ids, metric, group, window, value, threshold, thresholds version; no note
    text, no chart ids). Raises ``StoreError`` when the log cannot be written.
    """
    seen = {str(r.payload.get("alert_id")) for r in audit.records(event_type=ALERT_EVENT)}
    new: list[DriftAlert] = []
    for alert in alerts:
        if alert.alert_id in seen:
            continue
        audit.append(
            ALERT_EVENT, {**alert.model_dump(mode="json"), "message": alert.message, "raised_by": "monitoring"}
        )
        seen.add(alert.alert_id)
        new.append(alert)
    return new


def suspend_drifting_case_types(ledger: AutonomyLedger, alerts: Iterable[DriftAlert]) -> list[str]:
    """Hand new alerts to the autonomy policy: a ``drift_alert`` for every autonomy case type they cover.

    Only alerts grouped by case type (``<setting>/<note type>``) name notes the policy can map: each
    autonomy case type whose note types and settings include that group gets a governance
    ``drift_alert`` (which suspends an active grant). Alerts grouped by provider, payer or department
    describe people, not case types, and suspend nothing. Returns the case type ids alerted.
    """
    alerted: list[str] = []
    for alert in alerts:
        if alert.group_by != "case_type" or "/" not in alert.group:
            continue
        setting, note_type = alert.group.split("/", 1)
        for case_type in ledger.policy.case_types:
            if not case_type.covers(note_type, setting):
                continue
            ledger.raise_drift_alert(case_type.id, source="monitoring", detail=f"{alert.alert_id}: {alert.message}")
            alerted.append(case_type.id)
    return alerted
