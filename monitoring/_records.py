"""The chart stream the reports read: one ``ChartRecord`` per chart, and the windows and groups over it.

A ``ChartRecord`` is a chart of the review queue reduced to what monitoring needs (no note text
unless asked): the machine's codes (what the validators accepted, in the proposer's order, i.e.
what an ``auto`` chart would bill), the final codes once finalised (a replacement takes the place
of the code it replaced, so the principal diagnosis stays first), every proposed code's
confidence, rules and warnings, the coder's decisions and the routing reasons. Reports are pure
functions of a list of records: tests feed them generated streams with known answers, the CLI
and the copilot read them from the review queue (``load_records``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from medcode.agent import NoteMetadata, reason_kind
from medcode.errors import InputError
from medcode.review import Chart, RateGroup, ReviewQueue

__all__ = [
    "GROUP_BY",
    "LLM_FALLBACK_REASONS",
    "ChartRecord",
    "CodeRecord",
    "GroupBy",
    "Window",
    "category",
    "group_key",
    "load_records",
    "rate_group",
    "records_from_charts",
]

LLM_FALLBACK_REASONS = frozenset({"LLM_UNAVAILABLE", "LLM_OUTPUT_INVALID", "LLM_ERROR"})
AUTO_USER = "auto"
GroupBy = Literal["case_type", "note_type", "setting", "provider_id", "department", "payer"]
GROUP_BY: tuple[GroupBy, ...] = ("case_type", "note_type", "setting", "provider_id", "department", "payer")
_UNSPECIFIED = re.compile(r"\bunspecified\b", re.IGNORECASE)


def category(code: str) -> str:
    """The 3-character ICD-10-CM category of a code (``E11.65`` -> ``E11``)."""
    return "".join(code.split()).upper().replace(".", "")[:3]


class CodeRecord(BaseModel):
    """One code on a chart, as monitoring sees it. ``quotes`` are evidence texts, empty unless loaded with text."""

    model_config = ConfigDict(frozen=True)

    code: str
    description: str | None = None
    origin: Literal["proposed", "added"] = "proposed"
    proposed_status: Literal["accepted", "rejected"] | None = "accepted"
    confidence: float | None = None
    rules: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    decision: Literal["pending", "accepted", "rejected", "replaced"] = "pending"
    replaced_by: str | None = None
    replaces: str | None = None
    quotes: tuple[str, ...] = ()

    @property
    def unspecified(self) -> bool:
        """The code's description says "unspecified" (a more specific code exists in the classification)."""
        return bool(self.description and _UNSPECIFIED.search(self.description))


class ChartRecord(BaseModel):
    """A chart reduced for the reports. ``created_at`` is when it was coded (UTC)."""

    model_config = ConfigDict(frozen=True)

    chart_id: int
    note_id: str | None = None
    note_type: str | None = None
    setting: Literal["outpatient", "inpatient"] = "outpatient"
    metadata: NoteMetadata = Field(default_factory=NoteMetadata)
    date_of_service: dt.date | None = None
    created_at: dt.datetime
    status: Literal["pending", "coding", "in_review", "finalised"] = "pending"
    routing: Literal["auto", "review"] = "review"
    reasons: tuple[str, ...] = ()
    finalised_at: dt.datetime | None = None
    finalised_by: str | None = None
    codes: tuple[CodeRecord, ...] = ()

    @property
    def finalised(self) -> bool:
        return self.status == "finalised"

    @property
    def human_reviewed(self) -> bool:
        """Finalised by a coder (not routed ``auto``)."""
        return self.finalised and self.finalised_by != AUTO_USER

    @property
    def llm_fallback(self) -> bool:
        """The LLM step failed and the retrieval proposals were used instead."""
        return any(reason_kind(r) in LLM_FALLBACK_REASONS for r in self.reasons)

    @property
    def machine_codes(self) -> list[str]:
        """The codes the validators accepted, in the proposer's order: what ``auto`` would have billed."""
        return [c.code for c in self.codes if c.origin == "proposed" and c.proposed_status == "accepted"]

    @property
    def final_codes(self) -> list[str] | None:
        """The billed codes of a finalised chart (None before): kept codes in place, a replacement where
        the code it replaced stood, codes the coder added at the end."""
        if not self.finalised:
            return None
        added = {c.code: c for c in self.codes if c.origin == "added"}
        out: list[str] = []
        for code in self.codes:
            if code.origin != "proposed":
                continue
            if code.decision == "accepted" or (code.decision == "pending" and code.proposed_status == "accepted"):
                out.append(code.code)
            elif code.decision == "replaced" and code.replaced_by and code.replaced_by in added:
                out.append(code.replaced_by)
        out += [c.code for c in added.values() if c.code not in out and c.decision == "accepted"]
        return out

    @property
    def seconds_to_finalise(self) -> float | None:
        if self.finalised_at is None or not self.human_reviewed:
            return None
        return max(0.0, (self.finalised_at - self.created_at).total_seconds())

    @property
    def time(self) -> dt.datetime:
        """The moment windows are cut by: when the chart was coded."""
        return self.created_at

    @classmethod
    def from_chart(cls, chart: Chart) -> ChartRecord:
        """A review-queue chart as a record; evidence quotes are kept only when the chart has note text."""
        with_text = chart.note_text is not None
        codes = tuple(
            CodeRecord(
                code=c.code,
                description=c.description,
                origin=c.origin,
                proposed_status=c.proposed_status,
                confidence=c.confidence,
                rules=tuple(c.rules),
                warnings=tuple(c.warnings),
                decision=c.decision,
                replaced_by=c.replaced_by,
                replaces=c.replaces,
                quotes=tuple(e.text for e in c.evidence) if with_text else (),
            )
            for c in chart.codes
        )
        return cls(
            chart_id=chart.chart_id,
            note_id=chart.note_id,
            note_type=chart.note_type,
            setting="inpatient" if chart.setting == "inpatient" else "outpatient",
            metadata=chart.metadata,
            date_of_service=chart.date_of_service,
            created_at=_utc(chart.created_at),
            status=chart.status,
            routing=chart.routing,
            reasons=tuple(chart.reasons),
            finalised_at=_utc(chart.finalised_at) if chart.finalised_at else None,
            finalised_by=chart.finalised_by,
            codes=codes,
        )


def _utc(moment: str | dt.datetime) -> dt.datetime:
    value = dt.datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def records_from_charts(charts: Iterable[Chart]) -> list[ChartRecord]:
    """Records of review-queue charts, in their order."""
    return [ChartRecord.from_chart(chart) for chart in charts]


def load_records(
    queue: ReviewQueue,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    include_text: bool = False,
) -> list[ChartRecord]:
    """Every chart coded in ``[since, until)`` as a record, oldest first (no note text unless asked)."""
    return records_from_charts(queue.iter_charts(since=since, until=until, include_text=include_text))


def group_key(record: ChartRecord, by: GroupBy) -> str:
    """The group a record belongs to. ``case_type`` is ``<setting>/<note type>``; a missing value is ``unknown``."""
    if by == "case_type":
        return f"{record.setting}/{record.note_type or 'unknown'}"
    if by == "note_type":
        return record.note_type or "unknown"
    if by == "setting":
        return record.setting
    value = getattr(record.metadata, by)
    return str(value) if value is not None else "unknown"


class Window(BaseModel):
    """How time is cut: ``week`` (ISO weeks, Monday 00:00 UTC), ``day``, ``month``, or ``<N>d`` (N-day windows
    counted from Monday 2000-01-03)."""

    model_config = ConfigDict(frozen=True)

    spec: str = "week"

    @classmethod
    def parse(cls, spec: str) -> Window:
        """Raises ``InputError`` for anything but week, day, month or a positive ``<N>d``."""
        cleaned = spec.strip().lower()
        if cleaned in ("week", "day", "month") or re.fullmatch(r"[1-9][0-9]{0,2}d", cleaned):
            return cls(spec=cleaned)
        raise InputError(f"unknown window {spec!r}: use week, day, month or a number of days like 14d")

    def start(self, moment: dt.datetime) -> dt.date:
        """The first day of the window holding ``moment`` (taken in UTC)."""
        day = _utc(moment).date()
        if self.spec == "day":
            return day
        if self.spec == "week":
            return day - dt.timedelta(days=day.weekday())
        if self.spec == "month":
            return day.replace(day=1)
        size = int(self.spec[:-1])
        anchor = dt.date(2000, 1, 3)
        return anchor + dt.timedelta(days=((day - anchor).days // size) * size)

    def end(self, start: dt.date) -> dt.date:
        """The day after the window that starts on ``start``."""
        if self.spec == "day":
            return start + dt.timedelta(days=1)
        if self.spec == "week":
            return start + dt.timedelta(days=7)
        if self.spec == "month":
            return (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return start + dt.timedelta(days=int(self.spec[:-1]))

    def windows(self, records: Sequence[ChartRecord]) -> list[tuple[dt.date, dt.date]]:
        """Every window from the first record's to the last record's, gaps included, oldest first."""
        if not records:
            return []
        first = self.start(min(r.time for r in records))
        last = self.start(max(r.time for r in records))
        out = []
        start = first
        while start <= last:
            end = self.end(start)
            out.append((start, end))
            start = end
        return out

    def split(self, records: Iterable[ChartRecord]) -> Iterator[tuple[dt.date, list[ChartRecord]]]:
        """Records by window start, oldest window first (windows without records are left out)."""
        buckets: dict[dt.date, list[ChartRecord]] = {}
        for record in records:
            buckets.setdefault(self.start(record.time), []).append(record)
        for start in sorted(buckets):
            yield start, buckets[start]


def rate_group(records: Iterable[ChartRecord]) -> RateGroup:
    """Coder-vs-machine counts over the human-reviewed finalised records, as ``ReviewQueue.metrics`` counts them
    (``RateGroup`` defines acceptance, edit and override rates; a replacement counts once, on the code it replaced)."""
    group = RateGroup()
    for record in records:
        if not record.human_reviewed:
            continue
        edited = False
        for code in record.codes:
            if code.origin == "added":
                if code.replaces is None:
                    group.added += 1
                    edited = True
                continue
            if code.proposed_status == "accepted":
                group.suggested += 1
                if code.decision == "accepted":
                    group.kept += 1
                elif code.decision == "rejected":
                    group.rejected_by_coder += 1
                    edited = True
                elif code.decision == "replaced":
                    group.replaced += 1
                    edited = True
            else:
                group.proposed_rejected += 1
                if code.decision == "accepted":
                    group.guardrail_overrides += 1
                    edited = True
        group.charts += 1
        group.edited_charts += int(edited)
    return group
