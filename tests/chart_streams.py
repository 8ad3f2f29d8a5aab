"""Generated chart streams with known answers for the monitoring tests (and the KPI page's screenshot).

``make_stream`` builds ``ChartRecord`` objects directly (pure, fast); ``populate_queue`` writes the
same stream through the real ``ReviewQueue`` (coding decisions, coder actions, finalisation) and
then back-dates the charts so that they spread over weeks.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence

from medcode.agent import NoteMetadata, RoutingDecision
from medcode.config import Settings
from medcode.monitoring import ChartRecord, CodeRecord
from medcode.review import CodingDecision, ReviewQueue
from medcode.review._store import charts
from medcode.validators import CodeVerdict, RuleResult

START = dt.date(2026, 4, 6)  # a Monday

# (code, description, weight): an outpatient clinic's usual mix, and the mix after a shift.
BASE_MIX = [
    ("E11.9", "Type 2 diabetes mellitus without complications", 8),
    ("I10", "Essential (primary) hypertension", 8),
    ("E78.5", "Hyperlipidemia, unspecified", 6),
    ("J06.9", "Acute upper respiratory infection, unspecified", 5),
    ("K21.9", "Gastro-esophageal reflux disease without esophagitis", 4),
    ("M17.11", "Unilateral primary osteoarthritis, right knee", 3),
    ("F32.A", "Depression, unspecified", 3),
    ("N39.0", "Urinary tract infection, site not specified", 3),
    ("J45.909", "Unspecified asthma, uncomplicated", 2),
    ("G43.909", "Migraine, unspecified, not intractable, without status migrainosus", 2),
]
SHIFTED_MIX = [
    ("J18.9", "Pneumonia, unspecified organism", 8),
    ("U07.1", "COVID-19", 6),
    ("R05.9", "Cough, unspecified", 6),
    ("I10", "Essential (primary) hypertension", 2),
]


def _pick(rng: random.Random, mix: Sequence[tuple[str, str, int]], k: int) -> list[tuple[str, str]]:
    chosen: list[tuple[str, str]] = []
    while len(chosen) < k:
        code, description, _ = rng.choices(mix, weights=[w for *_, w in mix])[0]
        if (code, description) not in chosen:
            chosen.append((code, description))
    return chosen


def make_stream(
    *,
    weeks: int = 8,
    per_week: int = 120,
    start: dt.date = START,
    seed: int = 1,
    shift_week: int | None = None,
    note_type: str = "outpatient_visit",
    setting: str = "outpatient",
    providers: Sequence[str] = ("P-1", "P-2", "P-3"),
    first_id: int = 1,
    open_last_week: int = 0,
    auto_share: float = 0.0,
) -> list[ChartRecord]:
    """A stream of human-reviewed outpatient charts, ``per_week`` a week for ``weeks`` weeks.

    Before ``shift_week`` codes come from ``BASE_MIX`` with confidence 0.75-0.99 and coders keep 92%
    of suggestions; from it on the mix is ``SHIFTED_MIX``, confidence 0.30-0.70 and coders keep 60%.
    The last ``open_last_week`` charts of the final week stay open (not finalised). A share ``auto_share`` of the
    charts whose codes the validators all accepted is routed ``auto`` (finalised by ``auto`` as coded).
    """
    rng = random.Random(seed)
    out: list[ChartRecord] = []
    chart_id = first_id
    for week in range(weeks):
        shifted = shift_week is not None and week >= shift_week
        mix = SHIFTED_MIX if shifted else BASE_MIX
        keep = 0.60 if shifted else 0.92
        for i in range(per_week):
            created = dt.datetime.combine(start + dt.timedelta(weeks=week), dt.time(0), tzinfo=dt.UTC) + dt.timedelta(
                minutes=int(i * 7 * 24 * 60 / per_week)
            )
            codes = []
            for code, description in _pick(rng, mix, rng.choice((1, 2, 2, 3))):
                confidence = rng.uniform(0.30, 0.70) if shifted else rng.uniform(0.75, 0.99)
                rejected = rng.random() < 0.05
                decision = "rejected" if rejected else ("accepted" if rng.random() < keep else "rejected")
                codes.append(
                    CodeRecord(
                        code=code,
                        description=description,
                        proposed_status="rejected" if rejected else "accepted",
                        confidence=round(confidence, 3),
                        rules=("SPAN_NEGATED",) if rejected else (),
                        decision=decision,
                    )
                )
            is_open = week == weeks - 1 and i >= per_week - open_last_week
            hours = rng.uniform(2, 30)
            if not is_open and all(c.proposed_status == "accepted" for c in codes) and rng.random() < auto_share:
                out.append(
                    ChartRecord(
                        chart_id=chart_id,
                        note_id=f"note-{chart_id}",
                        note_type=note_type,
                        setting=setting,  # type: ignore[arg-type]
                        metadata=NoteMetadata(provider_id=providers[i % len(providers)]),
                        created_at=created,
                        status="finalised",
                        routing="auto",
                        finalised_at=created,
                        finalised_by="auto",
                        codes=tuple(c.model_copy(update={"decision": "accepted"}) for c in codes),
                    )
                )
                chart_id += 1
                continue
            out.append(
                ChartRecord(
                    chart_id=chart_id,
                    note_id=f"note-{chart_id}",
                    note_type=note_type,
                    setting=setting,  # type: ignore[arg-type]
                    metadata=NoteMetadata(provider_id=providers[i % len(providers)]),
                    created_at=created,
                    status="pending" if is_open else "finalised",
                    routing="review",
                    reasons=("HUMAN_ASSISTED_DEFAULT",),
                    finalised_at=None if is_open else created + dt.timedelta(hours=hours),
                    finalised_by=None if is_open else "coder",
                    codes=tuple(c if not is_open else c.model_copy(update={"decision": "pending"}) for c in codes),
                )
            )
            chart_id += 1
    return out


# -- through the real review queue ---------------------------------------------------------------


def _verdict(code: CodeRecord) -> CodeVerdict:
    rules = list(code.rules)
    warnings = [RuleResult(rule=w, severity="warn", reason="generated", data_version="test") for w in code.warnings]
    results = [RuleResult(rule=r, severity="reject", reason="generated", data_version="test") for r in rules]
    return CodeVerdict(
        code=code.code,
        canonical=code.code,
        status=code.proposed_status or "accepted",
        description=code.description,
        confidence=code.confidence,
        rules=rules,
        results=results,
        warnings=warnings,
    )


def populate_queue(settings: Settings, records: Sequence[ChartRecord]) -> dict[int, int]:
    """Write records through the review queue (decision, coder actions, finalisation), then back-date the
    charts to the records' times. Returns record chart id -> stored chart id."""
    ids: dict[int, int] = {}
    with ReviewQueue(settings) as queue:
        for record in records:
            verdicts = [_verdict(c) for c in record.codes if c.origin == "proposed"]
            routing = RoutingDecision(decision=record.routing, reasons=list(record.reasons))
            decision = CodingDecision(
                note_text=f"generated note {record.chart_id}: " + ", ".join(c.code for c in record.codes),
                note_id=record.note_id,
                note_type=record.note_type,
                setting=record.setting,
                date_of_service=record.date_of_service,
                metadata=record.metadata,
                verdicts=verdicts,
                routing=routing,
                chapters={},
            )
            chart_id = queue.enqueue(decision, allow_duplicate=True)
            ids[record.chart_id] = chart_id
            if record.routing == "auto" or not record.finalised:
                continue
            steps: list[tuple[str, str, str | None]] = []
            for code in record.codes:
                if code.origin == "added":
                    if code.replaces is None:
                        steps.append(("add", code.code, None))
                    continue
                if code.decision == "replaced" and code.replaced_by:
                    steps.append(("replace", code.code, code.replaced_by))
                elif code.decision in ("accepted", "rejected"):
                    steps.append(("accept" if code.decision == "accepted" else "reject", code.code, None))
            queue.resolve(
                chart_id,
                user=record.finalised_by or "coder",
                expected_version=1,
                actions=steps,
                reason="generated",
                finalise=True,
                details={"".join(c.code.split(".")): (c.description, None) for c in record.codes},
            )
        with queue.store.write() as conn:
            for record in records:
                values = {"created_at": record.created_at.isoformat(timespec="microseconds")}
                if record.finalised_at is not None:
                    values["finalised_at"] = record.finalised_at.isoformat(timespec="microseconds")
                conn.execute(charts.update().where(charts.c.chart_id == ids[record.chart_id]).values(**values))
    return ids


def make_inpatient_stream(
    *, weeks: int = 8, per_week: int = 12, start: dt.date = START, seed: int = 2, first_id: int = 50_000
) -> list[ChartRecord]:
    """Discharge summaries with known money: heart failure (I50.20) with diabetes; the machine adds CKD stage 5
    (N18.6, an MCC: DRG 293 -> 291) on a third of them, and the coder rejects it on half of those (over-coding);
    on a tenth the machine misses it and the coder adds it (under-coding). Every fifth has an uncertain
    pneumonia (a SPAN_UNCERTAIN warning: a CDI query)."""
    rng = random.Random(seed)
    out: list[ChartRecord] = []
    chart_id = first_id
    for week in range(weeks):
        for i in range(per_week):
            created = dt.datetime.combine(start + dt.timedelta(weeks=week), dt.time(0), tzinfo=dt.UTC) + dt.timedelta(
                hours=int(i * 7 * 24 / per_week)
            )
            codes = [
                CodeRecord(code="I50.20", description="Unspecified systolic (congestive) heart failure", confidence=0.93, decision="accepted"),
                CodeRecord(code="E11.65", description="Type 2 diabetes mellitus with hyperglycemia", confidence=0.88, decision="accepted"),
            ]  # fmt: skip
            roll = rng.random()
            if roll < 1 / 3:
                keep = rng.random() < 0.5
                codes.append(
                    CodeRecord(
                        code="N18.6",
                        description="End stage renal disease",
                        confidence=0.61,
                        decision="accepted" if keep else "rejected",
                    )
                )
            elif roll < 1 / 3 + 0.1:
                codes.append(
                    CodeRecord(
                        code="N18.6", description="End stage renal disease", origin="added", proposed_status=None,
                        decision="accepted",
                    )
                )  # fmt: skip
            if i % 5 == 0:
                codes.append(
                    CodeRecord(
                        code="J18.9", description="Pneumonia, unspecified organism", confidence=0.7,
                        warnings=("SPAN_UNCERTAIN",), decision="accepted",
                    )
                )  # fmt: skip
            out.append(
                ChartRecord(
                    chart_id=chart_id,
                    note_id=f"dc-{chart_id}",
                    note_type="discharge_summary",
                    setting="inpatient",
                    metadata=NoteMetadata(provider_id=f"H-{1 + i % 2}", department="medicine"),
                    created_at=created,
                    status="finalised",
                    routing="review",
                    reasons=("HUMAN_ASSISTED_DEFAULT",),
                    finalised_at=created + dt.timedelta(hours=rng.uniform(6, 60)),
                    finalised_by="coder",
                    codes=tuple(codes),
                )
            )
            chart_id += 1
    return out
