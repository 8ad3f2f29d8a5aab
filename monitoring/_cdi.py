"""Clinician documentation feedback: the documentation gaps behind validator warnings and coder edits,
per provider (or note type, department, ...), written as the queries a CDI specialist would send.

Each template of ``cdi_queries.json`` names a trigger:

- ``validator``: a proposed code the validators rejected (``severity: reject``) or warned on
  (``warn``) with the rule, in the setting (an uncertain diagnosis in an outpatient note, a history
  that may be current, a manifestation without its cause, a missing associated condition);
- ``unspecified_final_code``: a billed code whose description says "unspecified" while its category
  has more specific codes (a more specific code is available if documented);
- ``coder_rejected``: a code the validators accepted but the coder did not report (its clinical
  support is in doubt);
- ``coder_replaced_with_unspecified``: the coder replaced a specific code by an unspecified one (the
  documentation did not carry the detail).

Findings are counted per (group, query, code): charts, example note ids (never note text; evidence
quotes only when ``monitoring_cdi_include_text`` is set and the records were loaded with text), and
the query with its placeholders filled in. ``write_cdi_report`` writes ``cdi.csv`` and ``cdi.html``.
"""

from __future__ import annotations

import csv
import html
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from medcode.codesets import ICD10CMCodeSet
from medcode.errors import MalformedCodeError, UnknownCodeError
from medcode.monitoring._data import CDIQueries, CDIQuery
from medcode.monitoring._records import ChartRecord, CodeRecord, GroupBy, category, group_key

__all__ = ["CDIFinding", "CDIReport", "build_cdi_report", "specific_options", "write_cdi_report"]

OptionsLookup = Callable[[str], list[str]]
_MAX_EXAMPLES = 5
_NEEDS_OPTIONS = frozenset({"unspecified_final_code", "coder_replaced_with_unspecified"})
_PLACEHOLDER = re.compile(r"\{(code|description|count|charts|options)\}")


class CDIFinding(BaseModel):
    """One documentation gap: a query for one code, in one group, with how often it arose."""

    group: str
    query_id: str
    title: str
    code: str
    description: str
    charts: int = Field(description="Charts with the gap.")
    count: int = Field(description="Occurrences (a chart may raise one code's gap more than once).")
    example_note_ids: list[str]
    query: str
    quotes: list[str] = Field(default_factory=list, description="Evidence quotes; empty unless text is configured.")


class CDIReport(BaseModel):
    """Findings per group, most frequent first, and the template version used."""

    group_by: str
    queries_version: str
    charts: int
    findings: list[CDIFinding]

    def by_group(self) -> dict[str, list[CDIFinding]]:
        out: dict[str, list[CDIFinding]] = {}
        for finding in self.findings:
            out.setdefault(finding.group, []).append(finding)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "group_by": self.group_by,
            "queries_version": self.queries_version,
            "charts": self.charts,
            "groups": {g: [f.model_dump(mode="json") for f in fs] for g, fs in self.by_group().items()},
        }


def _matches(query: CDIQuery, record: ChartRecord, code: CodeRecord, final: set[str]) -> bool:
    trigger = query.trigger
    if trigger.kind == "validator":
        if trigger.setting != "any" and trigger.setting != record.setting:
            return False
        if code.origin != "proposed":
            return False
        in_rules = trigger.rule in code.rules
        in_warnings = trigger.rule in code.warnings
        if trigger.severity == "reject":
            return in_rules
        if trigger.severity == "warn":
            return in_warnings
        return in_rules or in_warnings
    if trigger.kind == "unspecified_final_code":
        return code.code in final and code.unspecified and code.replaces is None
    if not record.human_reviewed:
        return False
    if trigger.kind == "coder_rejected":
        return code.origin == "proposed" and code.proposed_status == "accepted" and code.decision == "rejected"
    # coder_replaced_with_unspecified: the added code that replaced a specific one
    return code.origin == "added" and code.replaces is not None and code.unspecified


def specific_options(codeset: ICD10CMCodeSet, *, limit: int = 60) -> OptionsLookup:
    """The ``options`` lookup of ``build_cdi_report`` from a code set: the other billable codes under a code's
    nearest parent that has some (``I50.20`` -> ``I50.21``, ``I50.22``, ``I50.23``; ``J18.9`` -> ``J18.0`` ...)."""
    cache: dict[str, list[str]] = {}

    def under(head: str) -> list[str]:
        if head not in cache:
            try:
                cache[head] = list(codeset.billable_descendants(head, limit=limit))
            except (MalformedCodeError, UnknownCodeError):
                cache[head] = []
        return cache[head]

    def options(code: str) -> list[str]:
        key = code.replace(".", "").upper()
        for size in range(len(key) - 1, 2, -1):
            head = key[:3] + ("." + key[3:size] if size > 3 else "")
            found = [c for c in under(head) if c.replace(".", "") != key]
            if found:
                return found
        return [c for c in under(key[:3]) if c.replace(".", "") != key]

    return options


def _others(options: OptionsLookup, code: str) -> list[str]:
    return [o for o in options(code) if o.replace(".", "") != code.replace(".", "")]


def _render(template: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def build_cdi_report(
    records: Sequence[ChartRecord],
    queries: CDIQueries,
    *,
    group_by: GroupBy = "provider_id",
    options: OptionsLookup | None = None,
    include_text: bool = False,
    limit_per_group: int = 20,
) -> CDIReport:
    """Documentation gaps of the records per group, as CDI queries (see the module docstring).

    ``options(code)`` lists the more specific codes of a code's category for the ``{options}``
    placeholder (the CLI and the copilot pass the code set's billable codes; without it the
    placeholder reads "the specific type"). Findings are sorted by charts, then count, then code;
    at most ``limit_per_group`` per group.
    """
    found: dict[tuple[str, str, str], dict[str, Any]] = {}
    for record in records:
        final = set(record.final_codes or record.machine_codes)
        group = group_key(record, group_by)
        note = record.note_id or f"chart-{record.chart_id}"
        for code in record.codes:
            for query in queries.queries:
                if not _matches(query, record, code, final):
                    continue
                if query.trigger.kind in _NEEDS_OPTIONS and options is not None and not _others(options, code.code):
                    continue  # no more specific code in the category: nothing to ask for
                entry = found.setdefault(
                    (group, query.id, code.code),
                    {"query": query, "code": code, "charts": set(), "count": 0, "examples": [], "quotes": []},
                )
                entry["count"] += 1
                if record.chart_id not in entry["charts"]:
                    entry["charts"].add(record.chart_id)
                    if len(entry["examples"]) < _MAX_EXAMPLES:
                        entry["examples"].append(note)
                if include_text:
                    for quote in code.quotes:
                        if quote not in entry["quotes"] and len(entry["quotes"]) < _MAX_EXAMPLES:
                            entry["quotes"].append(quote)
    findings: list[CDIFinding] = []
    for (group, _query_id, code_id), entry in found.items():
        template: CDIQuery = entry["query"]
        first: CodeRecord = entry["code"]
        description = first.description or code_id
        specific = _others(options, code_id)[:6] if options else []
        values = {
            "code": code_id,
            "description": description,
            "count": str(entry["count"]),
            "charts": str(len(entry["charts"])),
            "options": "; ".join(specific) if specific else f"the specific type of {category(code_id)}",
        }
        findings.append(
            CDIFinding(
                group=group,
                query_id=template.id,
                title=template.title,
                code=code_id,
                description=description,
                charts=len(entry["charts"]),
                count=entry["count"],
                example_note_ids=entry["examples"],
                query=_render(template.query, values),
                quotes=entry["quotes"],
            )
        )
    findings.sort(key=lambda f: (f.group, -f.charts, -f.count, f.query_id, f.code))
    kept: list[CDIFinding] = []
    per_group: dict[str, int] = {}
    for finding in findings:
        per_group[finding.group] = per_group.get(finding.group, 0) + 1
        if per_group[finding.group] <= limit_per_group:
            kept.append(finding)
    return CDIReport(group_by=group_by, queries_version=queries.version, charts=len(records), findings=kept)


CSV_COLUMNS = (
    "group_by",
    "group",
    "query_id",
    "title",
    "code",
    "description",
    "charts",
    "count",
    "example_note_ids",
    "query",
    "quotes",
)


def write_cdi_report(report: CDIReport, out_dir: Path) -> tuple[Path, Path]:
    """Write ``cdi.csv`` (one finding a row) and ``cdi.html`` (a table per group) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, html_path = out_dir / "cdi.csv", out_dir / "cdi.html"
    with csv_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for f in report.findings:
            writer.writerow(
                [
                    report.group_by,
                    f.group,
                    f.query_id,
                    f.title,
                    f.code,
                    f.description,
                    f.charts,
                    f.count,
                    " ".join(f.example_note_ids),
                    f.query,
                    " | ".join(f.quotes),
                ]
            )
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>medcode: clinician documentation "
        "feedback</title><style>body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#0f172a}"
        "table{border-collapse:collapse;width:100%;margin:8px 0 24px}th,td{border-bottom:1px solid #e2e8f0;"
        "padding:6px 8px;text-align:left;vertical-align:top}th{color:#64748b;font-size:12px}"
        "code{font-family:ui-monospace,monospace}.q{max-width:640px}</style></head><body>",
        "<h1>Clinician documentation feedback</h1>",
        f"<p>{report.charts} charts, grouped by {html.escape(report.group_by)}; query templates "
        f"{html.escape(report.queries_version)}. Note ids only: no note text.</p>",
    ]
    for group, findings in report.by_group().items():
        parts.append(f"<h2>{html.escape(report.group_by)}: {html.escape(group)}</h2><table><thead><tr>")
        parts.append("<th>Gap</th><th>Code</th><th>Charts</th><th>Example notes</th><th>Query</th></tr></thead><tbody>")
        for f in findings:
            quotes = "".join(f"<br><q>{html.escape(q)}</q>" for q in f.quotes)
            parts.append(
                f"<tr><td>{html.escape(f.title)}</td><td><code>{html.escape(f.code)}</code><br>"
                f"{html.escape(f.description)}</td><td>{f.charts}</td>"
                f"<td>{html.escape(', '.join(f.example_note_ids))}</td><td class='q'>{html.escape(f.query)}{quotes}</td></tr>"
            )
        parts.append("</tbody></table>")
    if not report.findings:
        parts.append("<p>No documentation gaps found.</p>")
    parts.append("</body></html>")
    html_path.write_text("".join(parts), encoding="utf-8")
    return csv_path, html_path
