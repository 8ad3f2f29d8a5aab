"""The review queue: charts waiting for (or finished by) a human coder, in the review database.

The queue's tables (``charts``, ``chart_codes``, ``actions``) live in the review database of the
data directory (``medcode.review._store``; SQLite by default, PostgreSQL by URL) next to the audit
log. They hold note text (PHI: a new SQLite file is created owner-only), the coding decision,
each code's pre-filled suggestion and the coder's decisions. Every change and its audit event are
written in one write transaction of that one database: a change without its audit record cannot
be committed.

Chart life cycle: ``pending`` -> ``coding`` (first coder action, or ``set_status``) <->
``in_review`` -> ``finalised`` (terminal). A chart routed ``auto`` is stored already
``finalised`` by ``auto``. Every change bumps ``version``; callers pass the version they read
(``expected_version``) and get ``ChartConflictError`` when someone else changed the chart first.

At finalisation an undecided code takes its pre-filled value: accepted when the validators
accepted it, rejected otherwise. Accepting a code the validators rejected needs a reason.

Codes a coder adds or substitutes (``replace``) go through the validators too when the queue has
them (``ReviewQueue(..., validators=pipeline)``; the CLI and the copilot do): see ``_newcodes.py``.
A rejected one needs a reason, is stored with its verdict and audited as a guardrail override.
Without validators a new code is checked for shape only, stored without a verdict, and its audit
record says ``validated: false``.
"""

from __future__ import annotations

import builtins
import datetime as dt
import json
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Literal, overload

from pydantic import BaseModel, Field
from sqlalchemy import Connection, case, func, select

from medcode.agent import NoteMetadata
from medcode.agent._routing import reason_kind
from medcode.codesets import normalize_icd10cm
from medcode.config import Settings
from medcode.errors import ChartConflictError, ChartNotFoundError, InputError, OverrideReasonRequiredError
from medcode.review._audit import (
    AuditRecord,
    CodingDecision,
    append_record,
    canonical_json,
    decision_payload,
    sha256_text,
)
from medcode.review._newcodes import NEW_CODE_ACTIONS, CodeCheck, EvidenceSpan, NewCodes, check_new_codes, code_key
from medcode.review._store import ReviewStore, actions, chart_codes, charts
from medcode.validators import Evidence, ProcedureVerdict, RuleResult, ValidatorPipeline

__all__ = [
    "CHART_STATUSES",
    "Chart",
    "ChartAction",
    "ChartCode",
    "ChartStatus",
    "ChartSummary",
    "CodeAction",
    "QueueMetrics",
    "RateGroup",
    "ReviewQueue",
]

ChartStatus = Literal["pending", "coding", "in_review", "finalised"]
CodeAction = Literal["accept", "reject", "replace", "add"]
CodeDecision = Literal["pending", "accepted", "rejected", "replaced"]
CHART_STATUSES: tuple[ChartStatus, ...] = ("pending", "coding", "in_review", "finalised")
CODE_ACTIONS: tuple[CodeAction, ...] = ("accept", "reject", "replace", "add")
AUTO_USER = "auto"
_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"coding", "in_review"}),
    "coding": frozenset({"pending", "in_review"}),
    "in_review": frozenset({"pending", "coding"}),
    "finalised": frozenset(),
}
_MAX_USER = 100
_MAX_REASON = 1_000


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def _check_user(user: object) -> str:
    if not isinstance(user, str) or not user.strip():
        raise InputError("a user name is required (who made the change)")
    cleaned = user.strip()
    if len(cleaned) > _MAX_USER or not cleaned.isprintable():
        raise InputError(f"user name must be printable and at most {_MAX_USER} characters")
    if cleaned == AUTO_USER:
        raise InputError(f"user name {AUTO_USER!r} is reserved for automatic finalisation")
    return cleaned


def _check_reason(reason: str | None) -> str | None:
    if reason is None:
        return None
    cleaned = reason.strip()
    if len(cleaned) > _MAX_REASON:
        raise InputError(f"reason is longer than {_MAX_REASON} characters")
    return cleaned or None


def _canonical_code(raw: str) -> str:
    """Canonical dotted ICD-10-CM form of a code a coder typed; ``MalformedCodeError`` (exit 2) otherwise."""
    return normalize_icd10cm(raw)


# -- models ------------------------------------------------------------------------


class ChartCode(BaseModel):
    """One code on a chart: the proposal, the validators' verdict and the coder's decision."""

    position: int
    code: str
    description: str | None = None
    chapter: str | None = None
    origin: Literal["proposed", "added"]
    proposed_status: Literal["accepted", "rejected"] | None = Field(
        default=None,
        description="The validators' verdict (on a code a coder added or substituted too); None for a coder's code "
        "that was not checked (added before checks existed, or through a queue without validators).",
    )
    confidence: float | None = None
    rules: list[str] = Field(default_factory=list, description="Rule ids that rejected the code.")
    warnings: list[str] = Field(default_factory=list, description="Rule ids that warned.")
    evidence: list[Evidence] = Field(default_factory=list)
    decision: CodeDecision = "pending"
    prefilled: bool = Field(default=False, description="The decision came from the suggestion at finalisation.")
    replaced_by: str | None = None
    replaces: str | None = None
    decided_by: str | None = None
    decided_at: str | None = None
    reason: str | None = None
    check: CodeCheck | None = Field(
        default=None,
        description="For a code a coder added or substituted: the validators' verdict with reasons and warnings "
        "(suggestions' verdicts are in the chart's decision).",
    )

    @property
    def selected(self) -> bool:
        """Would this code be billed if the chart were finalised now (explicit decision, else the suggestion)."""
        if self.decision == "pending":
            return self.proposed_status == "accepted"
        return self.decision == "accepted"


class ChartAction(BaseModel):
    """One recorded change to a chart (also written to the audit log as ``audit_seq``)."""

    action_id: int
    action: str
    code: str | None = None
    new_code: str | None = None
    user: str
    reason: str | None = None
    from_status: str | None = None
    to_status: str | None = None
    version: int = Field(description="The chart's version after the change.")
    at: str
    audit_seq: int


class ChartSummary(BaseModel):
    """A chart as listed in the queue (no note text)."""

    chart_id: int
    note_id: str | None
    note_type: str | None
    setting: str
    status: ChartStatus
    routing: Literal["auto", "review"]
    reasons: list[str]
    version: int
    n_codes: int
    n_rejected: int = Field(description="Suggestions the validators rejected.")
    assigned_to: str | None
    created_at: str
    updated_at: str
    age_seconds: float


class Chart(ChartSummary):
    """A whole chart. ``note_text`` is None when it was not asked for."""

    note_sha256: str
    note_text: str | None = None
    date_of_service: dt.date | None = None
    metadata: NoteMetadata = Field(default_factory=NoteMetadata)
    finalised_at: str | None = None
    finalised_by: str | None = None
    codes: list[ChartCode]
    actions: list[ChartAction]
    decision: dict[str, Any] = Field(description="The coding decision (versions, candidates, raw LLM output).")

    @property
    def selected_codes(self) -> list[str]:
        """Codes that are (or would be, if finalised now) on the claim, in chart order."""
        return [c.code for c in self.codes if c.selected]

    @property
    def procedures(self) -> list[ProcedureVerdict]:
        """The procedure codes' verdicts stored with the decision (empty when procedure coding was off)."""
        return [ProcedureVerdict.model_validate(v) for v in self.decision.get("procedures", [])]

    @property
    def procedure_decisions(self) -> dict[str, ChartAction]:
        """The coder's latest decision on each proposed procedure code (``procedure_accept``/``procedure_reject``
        actions); a code without one is pending. At finalisation pending procedures are not decided for the coder."""
        out: dict[str, ChartAction] = {}
        for action in self.actions:
            if action.action in PROCEDURE_ACTIONS.values() and action.code:
                out[action.code] = action
        return out

    def to_display(self, *, show_text: bool) -> dict[str, Any]:
        """JSON-ready view; without ``show_text`` no note text, evidence quote or raw model output."""
        data = self.model_dump(mode="json")
        data["selected_codes"] = self.selected_codes
        if not show_text:
            data.pop("note_text", None)
            data["decision"].pop("raw_llm_output", None)
            checks = [c["check"] for c in data["codes"] if c.get("check")]
            procedures = data["decision"].get("procedures", [])
            for item in [*data["codes"], *data["decision"].get("verdicts", []), *procedures, *checks]:
                for key in ("evidence", "rejected_evidence"):
                    if key in item:
                        item[key] = [{"start": e["start"], "end": e["end"], "chars": len(e["text"])} for e in item[key]]
        return data


class RateGroup(BaseModel):
    """Coder-vs-machine counts over finalised, human-reviewed charts (auto charts excluded).

    acceptance_rate = kept / suggested (suggested = codes the validators accepted);
    override_rate = (rejected_by_coder + replaced + guardrail_overrides) / (suggested + proposed_rejected);
    edit_rate = edited_charts / charts (a chart is edited when any code was rejected, replaced,
    added, or accepted against the validators). For a chapter, a chart counts when it has a code
    in that chapter and is edited when one of those codes was. ``guardrail_overrides`` counts the
    codes billed against the validators: rejected suggestions the coder accepted, and codes the
    coder added or substituted although the validators rejected them (a replacement is otherwise
    counted once, on the code it replaced).
    """

    charts: int = 0
    edited_charts: int = 0
    suggested: int = 0
    kept: int = 0
    rejected_by_coder: int = 0
    replaced: int = 0
    proposed_rejected: int = 0
    guardrail_overrides: int = 0
    added: int = 0

    @property
    def acceptance_rate(self) -> float | None:
        return self.kept / self.suggested if self.suggested else None

    @property
    def override_rate(self) -> float | None:
        total = self.suggested + self.proposed_rejected
        return (self.rejected_by_coder + self.replaced + self.guardrail_overrides) / total if total else None

    @property
    def edit_rate(self) -> float | None:
        return self.edited_charts / self.charts if self.charts else None

    def as_dict(self) -> dict[str, Any]:
        data = self.model_dump()
        data.update(acceptance_rate=self.acceptance_rate, override_rate=self.override_rate, edit_rate=self.edit_rate)
        return data


class QueueMetrics(BaseModel):
    """Queue and coder metrics; see ``RateGroup`` for the rate definitions."""

    generated_at: str
    charts: int
    routing: dict[str, int] = Field(description="Charts by routing decision (auto / review).")
    open_by_status: dict[str, int]
    oldest_open_age_s: float | None
    median_open_age_s: float | None
    overall: RateGroup
    by_chapter: dict[str, RateGroup]
    by_note_type: dict[str, RateGroup]
    validator_rejections: dict[str, int] = Field(description="Rule id -> rejected proposed codes.")
    routing_reasons: dict[str, int] = Field(description="Reason kind -> charts sent to review with it.")

    @property
    def auto_share(self) -> float | None:
        total = sum(self.routing.values())
        return self.routing.get("auto", 0) / total if total else None

    @property
    def open_charts(self) -> int:
        return sum(self.open_by_status.values())

    def as_dict(self) -> dict[str, Any]:
        data = self.model_dump(exclude={"overall", "by_chapter", "by_note_type"})
        data.update(
            auto_share=self.auto_share,
            open_charts=self.open_charts,
            overall=self.overall.as_dict(),
            by_chapter={k: v.as_dict() for k, v in self.by_chapter.items()},
            by_note_type={k: v.as_dict() for k, v in self.by_note_type.items()},
        )
        return data


# -- the queue ---------------------------------------------------------------------

_k = chart_codes.alias("k")
_SUMMARY_COLUMNS = (
    charts.c.chart_id,
    charts.c.note_id,
    charts.c.note_type,
    charts.c.setting,
    charts.c.status,
    charts.c.routing,
    charts.c.reasons_json,
    charts.c.version,
    select(func.count()).where(_k.c.chart_id == charts.c.chart_id).scalar_subquery(),
    select(func.count())  # suggestions the validators rejected (not a coder's codes kept against them)
    .where(_k.c.chart_id == charts.c.chart_id, _k.c.origin == "proposed", _k.c.proposed_status == "rejected")
    .scalar_subquery(),
    charts.c.assigned_to,
    charts.c.created_at,
    charts.c.updated_at,
)
_CODE_COLUMNS = (
    chart_codes.c.position,
    chart_codes.c.code,
    chart_codes.c.description,
    chart_codes.c.chapter,
    chart_codes.c.origin,
    chart_codes.c.proposed_status,
    chart_codes.c.confidence,
    chart_codes.c.rules_json,
    chart_codes.c.warnings_json,
    chart_codes.c.evidence_json,
    chart_codes.c.decision,
    chart_codes.c.prefilled,
    chart_codes.c.replaced_by,
    chart_codes.c.replaces,
    chart_codes.c.decided_by,
    chart_codes.c.decided_at,
    chart_codes.c.reason,
    chart_codes.c.check_json,
)
_ACTION_COLUMNS = (
    actions.c.action_id,
    actions.c.action,
    actions.c.code,
    actions.c.new_code,
    actions.c.user,
    actions.c.reason,
    actions.c.from_status,
    actions.c.to_status,
    actions.c.version,
    actions.c.at,
    actions.c.audit_seq,
)


def _chapter_order(chapter: str) -> tuple[int, int, str]:
    return (0, int(chapter), chapter) if chapter.isdigit() else (1, 0, chapter)


def _age(created_at: str, now: dt.datetime) -> float:
    return max(0.0, (now - dt.datetime.fromisoformat(created_at)).total_seconds())


def _summary(row: Sequence[Any], now: dt.datetime) -> dict[str, Any]:
    (
        chart_id,
        note_id,
        note_type,
        setting,
        status,
        routing,
        reasons,
        version,
        n_codes,
        n_rejected,
        assigned_to,
        created_at,
        updated_at,
    ) = row
    return {
        "chart_id": chart_id,
        "note_id": note_id,
        "note_type": note_type,
        "setting": setting,
        "status": status,
        "routing": routing,
        "reasons": json.loads(reasons),
        "version": version,
        "n_codes": n_codes,
        "n_rejected": n_rejected,
        "assigned_to": assigned_to,
        "created_at": created_at,
        "updated_at": updated_at,
        "age_seconds": _age(created_at, now),
    }


def _code(row: Sequence[Any]) -> ChartCode:
    (
        position,
        code,
        description,
        chapter,
        origin,
        proposed_status,
        confidence,
        rules,
        warnings,
        evidence,
        decision,
        prefilled,
        replaced_by,
        replaces,
        decided_by,
        decided_at,
        reason,
        check_json,
    ) = row
    return ChartCode(
        position=position,
        code=code,
        description=description,
        chapter=chapter,
        origin=origin,
        proposed_status=proposed_status,
        confidence=confidence,
        rules=json.loads(rules),
        warnings=json.loads(warnings),
        evidence=[Evidence.model_validate(e) for e in json.loads(evidence)],
        decision=decision,
        prefilled=bool(prefilled),
        replaced_by=replaced_by,
        replaces=replaces,
        decided_by=decided_by,
        decided_at=decided_at,
        reason=reason,
        check=CodeCheck.model_validate_json(check_json) if check_json else None,
    )


_METADATA_COLUMNS = (charts.c.provider_id, charts.c.department, charts.c.payer, charts.c.encounter_date)


def _codes_of(conn: Connection, chart_ids: Sequence[int]) -> dict[int, builtins.list[ChartCode]]:
    out: dict[int, builtins.list[ChartCode]] = {chart_id: [] for chart_id in chart_ids}
    query = (
        select(chart_codes.c.chart_id, *_CODE_COLUMNS)
        .where(chart_codes.c.chart_id.in_(builtins.list(chart_ids)))
        .order_by(chart_codes.c.chart_id, chart_codes.c.position)
    )
    for row in conn.execute(query):
        out[int(row[0])].append(_code(row[1:]))
    return out


def _action(r: Sequence[Any]) -> ChartAction:
    return ChartAction(
        action_id=r[0],
        action=r[1],
        code=r[2],
        new_code=r[3],
        user=r[4],
        reason=r[5],
        from_status=r[6],
        to_status=r[7],
        version=r[8],
        at=r[9],
        audit_seq=r[10],
    )


@overload
def _actions_of(conn: Connection, chart_ids: Sequence[int]) -> builtins.list[ChartAction]: ...
@overload
def _actions_of(
    conn: Connection, chart_ids: Sequence[int], *, keyed: Literal[True]
) -> builtins.list[tuple[int, ChartAction]]: ...
def _actions_of(conn: Connection, chart_ids: Sequence[int], *, keyed: bool = False) -> builtins.list[Any]:
    query = (
        select(actions.c.chart_id, *_ACTION_COLUMNS)
        .where(actions.c.chart_id.in_(builtins.list(chart_ids)))
        .order_by(actions.c.action_id)
    )
    rows = conn.execute(query).all()
    if keyed:
        return [(int(r[0]), _action(r[1:])) for r in rows]
    return [_action(r[1:]) for r in rows]


def _chart(
    row: Sequence[Any],
    now: dt.datetime,
    codes: Mapping[int, builtins.list[ChartCode]],
    chart_actions: builtins.list[ChartAction],
    *,
    include_text: bool,
) -> Chart:
    note_sha256, note_text, dos, finalised_at, finalised_by, decision_json = row[13:19]
    provider_id, department, payer, encounter_date = row[19:23]
    return Chart(
        **_summary(row[:13], now),
        note_sha256=note_sha256,
        note_text=note_text if include_text else None,
        date_of_service=dt.date.fromisoformat(dos) if dos else None,
        metadata=NoteMetadata(
            provider_id=provider_id,
            department=department,
            payer=payer,
            encounter_date=dt.date.fromisoformat(encounter_date) if encounter_date else None,
        ),
        finalised_at=finalised_at,
        finalised_by=finalised_by,
        codes=codes[int(row[0])],
        actions=chart_actions,
        decision=json.loads(decision_json),
    )


PROCEDURE_ACTIONS = {"accept": "procedure_accept", "reject": "procedure_reject"}
"""A coder's actions on a proposed procedure code and how the chart's history (and audit event
``procedure_action``) names them. Procedures are kept in the chart's decision, not in ``chart_codes``."""


class ReviewQueue:
    """The review queue of one review database. Safe across threads and processes.

    ``create=False`` raises ``InputError`` instead of creating a missing store (the CLI uses it).
    Raises ``StoreError`` for an unusable database (see ``ReviewStore``). Every mutating method
    takes the chart version the caller read and raises ``ChartConflictError`` if it is stale, or
    if the chart is already finalised; ``ChartNotFoundError`` for an unknown chart id;
    ``InputError`` for bad user names, codes or actions.

    ``validators`` (the caller's pipeline; the queue does not close it) checks the codes coders add
    or substitute against the chart's note and claim (``_newcodes.py``). Without it those codes are
    checked for shape only and stored without a verdict (their audit records say ``validated: false``),
    and evidence spans for them are refused. The attribute may be set after construction.
    """

    def __init__(self, settings: Settings, *, create: bool = True, validators: ValidatorPipeline | None = None) -> None:
        self.store = ReviewStore(settings, create=create, what="review queue")
        self.where = self.store.where
        self.store_note_text = settings.audit_store_note_text
        self.validators = validators

    def __enter__(self) -> ReviewQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the store's connections."""
        self.store.close()

    def _audit(self, conn: Connection, event: str, payload: Mapping[str, Any], chart_id: int) -> AuditRecord:
        return append_record(self.store, conn, event, payload, chart_id=chart_id, allow_text=self.store_note_text)

    # -- writing ---------------------------------------------------------------------

    def enqueue(self, decision: CodingDecision, *, allow_duplicate: bool = False) -> int:
        """Store a coded note as a chart and audit the decision (event ``coding_decision``); returns its id.

        A ``review`` decision lands ``pending``; an ``auto`` one lands ``finalised`` by ``auto``
        (event ``chart_finalised``), so metrics see every note. The same note with the same
        result (``CodingDecision.result_sha256``) returns the existing chart id unless
        ``allow_duplicate``; the repeated decision is still audited (``deduplicated: true``).
        """
        now = _now()
        at = _iso(now)
        result_sha = decision.result_sha256()
        auto = decision.routing.decision == "auto"
        with self.store.write() as conn:
            self.store.lock_audit_head(conn)  # PostgreSQL: one writer at a time, as SQLite's BEGIN IMMEDIATE
            if not allow_duplicate:
                row = conn.execute(
                    select(charts.c.chart_id)
                    .where(charts.c.note_sha256 == decision.sha256, charts.c.result_sha256 == result_sha)
                    .order_by(charts.c.chart_id)
                    .limit(1)
                ).first()
                if row is not None:
                    chart_id = int(row[0])
                    payload = decision_payload(decision, store_text=self.store_note_text, chart_id=chart_id)
                    payload["deduplicated"] = True
                    self._audit(conn, "coding_decision", payload, chart_id)
                    return chart_id
            # procedures live in the decision JSON (no column); absent when none, as before procedure coding
            stored = decision.model_dump(
                mode="json", exclude={"note_text", *(() if decision.procedures else ("procedures",))}
            )
            result = conn.execute(
                charts.insert().values(
                    note_id=decision.note_id,
                    note_sha256=decision.sha256,
                    note_text=decision.note_text,
                    note_type=decision.note_type,
                    setting=decision.setting,
                    date_of_service=decision.date_of_service.isoformat() if decision.date_of_service else None,
                    result_sha256=result_sha,
                    decision_json=canonical_json(stored),
                    routing=decision.routing.decision,
                    reasons_json=json.dumps(decision.routing.reasons),
                    status="finalised" if auto else "pending",
                    version=1,
                    created_at=at,
                    updated_at=at,
                    finalised_at=at if auto else None,
                    finalised_by=AUTO_USER if auto else None,
                    provider_id=decision.metadata.provider_id,
                    department=decision.metadata.department,
                    payer=decision.metadata.payer,
                    encounter_date=decision.metadata.encounter_date.isoformat()
                    if decision.metadata.encounter_date
                    else None,
                )
            )
            key = result.inserted_primary_key
            assert key is not None  # a single-row insert always has one
            chart_id = int(key[0])
            rows = []
            for position, verdict in enumerate(decision.verdicts):
                code = verdict.canonical or verdict.code
                rows.append(
                    {
                        "chart_id": chart_id,
                        "position": position,
                        "code": code,
                        "code_key": code_key(code),
                        "description": verdict.description,
                        "chapter": decision.chapters.get(code) or decision.chapters.get(verdict.code),
                        "origin": "proposed",
                        "proposed_status": verdict.status,
                        "confidence": verdict.confidence,
                        "rules_json": json.dumps(verdict.rules),
                        "warnings_json": json.dumps([w.rule for w in verdict.warnings]),
                        "evidence_json": json.dumps([e.model_dump(mode="json") for e in verdict.evidence]),
                        "decision": verdict.status if auto else "pending",
                        "prefilled": 1 if auto else 0,
                        "replaced_by": None,
                        "replaces": None,
                        "decided_by": None,
                        "decided_at": at if auto else None,
                        "reason": None,
                    }
                )
            if rows:
                conn.execute(chart_codes.insert(), rows)
            payload = decision_payload(decision, store_text=self.store_note_text, chart_id=chart_id)
            self._audit(conn, "coding_decision", payload, chart_id)
            if auto:
                final = [v.canonical or v.code for v in decision.verdicts if v.status == "accepted"]
                self._audit(
                    conn,
                    "chart_finalised",
                    {"chart_id": chart_id, "user": AUTO_USER, "version": 1, "final_codes": final, "prefilled": final},
                    chart_id,
                )
        return chart_id

    def _locked_chart(self, conn: Connection, chart_id: int, expected_version: int) -> tuple[str, str | None]:
        """Inside a write transaction: check existence, finalisation and version; returns (status, assigned_to).

        Takes the audit head lock first, then the chart row's (PostgreSQL), so concurrent changes
        to one chart serialise and the version check holds.
        """
        if not isinstance(expected_version, int) or isinstance(expected_version, bool) or expected_version < 1:
            raise InputError(f"expected_version must be a positive integer, got {expected_version!r}")
        self.store.lock_audit_head(conn)
        row = conn.execute(
            select(
                charts.c.status, charts.c.version, charts.c.assigned_to, charts.c.finalised_by, charts.c.finalised_at
            )
            .where(charts.c.chart_id == chart_id)
            .with_for_update()
        ).first()
        if row is None:
            raise ChartNotFoundError(f"no chart {chart_id} in the review queue")
        status, version, assigned_to, finalised_by, finalised_at = row
        if status == "finalised":
            raise ChartConflictError(
                f"chart {chart_id} was already finalised by {finalised_by} at {finalised_at}",
                chart_id=chart_id,
                current_version=version,
            )
        if version != expected_version:
            raise ChartConflictError(
                f"chart {chart_id} changed since you read it (you had version {expected_version}, it is now "
                f"{version}); re-read it and try again",
                chart_id=chart_id,
                current_version=version,
            )
        return str(status), assigned_to

    def _log_action(self, conn: Connection, chart_id: int, event: str, payload: dict[str, Any], *, at: str) -> None:
        record = self._audit(conn, event, payload, chart_id)
        conn.execute(
            actions.insert().values(
                chart_id=chart_id,
                action=payload["action"],
                code=payload.get("code"),
                new_code=payload.get("new_code"),
                user=payload["user"],
                reason=payload.get("reason"),
                from_status=payload.get("from_status"),
                to_status=payload.get("to_status"),
                version=payload["version"],
                at=at,
                audit_seq=record.seq,
            )
        )

    def _rows_for(self, conn: Connection, chart_id: int, code: str) -> builtins.list[Sequence[Any]]:
        rows: builtins.list[Sequence[Any]] = builtins.list(
            conn.execute(
                select(
                    chart_codes.c.position,
                    chart_codes.c.code,
                    chart_codes.c.proposed_status,
                    chart_codes.c.decision,
                    chart_codes.c.rules_json,
                )
                .where(chart_codes.c.chart_id == chart_id, chart_codes.c.code_key == code_key(code))
                .order_by(chart_codes.c.position)
            )
        )
        if not rows:
            present = [
                r[0]
                for r in conn.execute(
                    select(chart_codes.c.code)
                    .where(chart_codes.c.chart_id == chart_id)
                    .order_by(chart_codes.c.position)
                )
            ]
            raise InputError(f"code {code!r} is not on chart {chart_id} (its codes: {', '.join(present) or 'none'})")
        return rows

    def _insert_added(
        self,
        conn: Connection,
        chart_id: int,
        code: str,
        *,
        user: str,
        at: str,
        reason: str | None,
        replaces: str | None,
        description: str | None,
        chapter: str | None,
        check: CodeCheck | None,
    ) -> None:
        exists = conn.execute(
            select(chart_codes.c.code).where(
                chart_codes.c.chart_id == chart_id, chart_codes.c.code_key == code_key(code)
            )
        ).first()
        if exists:
            raise InputError(f"code {code} is already on chart {chart_id}; accept it instead")
        position = conn.execute(
            select(func.coalesce(func.max(chart_codes.c.position), -1) + 1).where(chart_codes.c.chart_id == chart_id)
        ).scalar_one()
        conn.execute(
            chart_codes.insert().values(
                chart_id=chart_id,
                position=position,
                code=code,
                code_key=code_key(code),
                description=description,
                chapter=chapter,
                origin="added",
                proposed_status=check.status if check is not None else None,
                confidence=None,
                rules_json=json.dumps(check.rules if check is not None else []),
                warnings_json=json.dumps([w.rule for w in check.warnings] if check is not None else []),
                evidence_json=json.dumps([e.model_dump(mode="json") for e in check.evidence] if check else []),
                check_json=check.model_dump_json() if check is not None else None,
                decision="accepted",
                prefilled=0,
                replaced_by=None,
                replaces=replaces,
                decided_by=user,
                decided_at=at,
                reason=reason,
            )
        )

    def _apply(
        self,
        conn: Connection,
        chart_id: int,
        action: str,
        code: str,
        new_code: str | None,
        *,
        user: str,
        reason: str | None,
        at: str,
        description: str | None,
        chapter: str | None,
        checks: Mapping[str, CodeCheck],
    ) -> dict[str, Any]:
        """Apply one code action; returns the audit payload (without version)."""
        if action not in CODE_ACTIONS:
            raise InputError(f"unknown action {action!r}; expected one of {', '.join(CODE_ACTIONS)}")
        if not isinstance(code, str) or not code.strip():
            raise InputError(f"action {action!r} needs a code")
        payload: dict[str, Any] = {"chart_id": chart_id, "action": action, "user": user, "reason": reason}
        if action == "add":
            canonical = _canonical_code(code)
            check = checks.get(code_key(canonical))
            self._insert_added(
                conn,
                chart_id,
                canonical,
                user=user,
                at=at,
                reason=reason,
                replaces=None,
                description=description,
                chapter=chapter,
                check=check,
            )
            payload["code"] = canonical
            payload.update(self._check_payload(check))
            return payload
        rows = self._rows_for(conn, chart_id, code)
        payload["code"] = rows[0][1]
        if action == "accept":
            overridden = [r for r in rows if r[2] == "rejected" and r[3] != "accepted"]
            if overridden and reason is None:
                rule_ids = json.loads(overridden[0][4])
                rules = ", ".join(rule_ids) or "a validator rule"
                raise OverrideReasonRequiredError(
                    f"code {rows[0][1]} was rejected by the validators ({rules}); accepting it needs a reason",
                    rules={rows[0][1]: rule_ids},
                    details=[{"code": rows[0][1], "status": "rejected", "rules": rule_ids}],
                )
            payload["guardrail_override"] = bool(overridden)
            decision, replaced_by = "accepted", None
        elif action == "reject":
            decision, replaced_by = "rejected", None
        else:  # replace
            if new_code is None or not new_code.strip():
                raise InputError("replace needs the new code (OLD=NEW)")
            replacement = _canonical_code(new_code)
            if code_key(replacement) == code_key(code):
                raise InputError(f"cannot replace {code} with itself")
            check = checks.get(code_key(replacement))
            self._insert_added(
                conn,
                chart_id,
                replacement,
                user=user,
                at=at,
                reason=reason,
                replaces=rows[0][1],
                description=description,
                chapter=chapter,
                check=check,
            )
            payload["new_code"] = replacement
            payload.update(self._check_payload(check))
            named = self._named_by(conn, chart_id, int(rows[0][0]), rows[0][1], replacement)
            if named is not None:
                payload["named_by_rule"] = named
            decision, replaced_by = "replaced", replacement
        conn.execute(
            chart_codes.update()
            .where(chart_codes.c.chart_id == chart_id, chart_codes.c.code_key == code_key(code))
            .values(
                decision=decision, replaced_by=replaced_by, prefilled=0, decided_by=user, decided_at=at, reason=reason
            )
        )
        return payload

    def _check_payload(self, check: CodeCheck | None) -> dict[str, Any]:
        """The audit fields of a coder's new code: its verdict (evidence as offsets and digests unless note text
        may be stored), ``guardrail_override`` and the rejecting rule ids; ``validated: false`` without one."""
        if check is None:
            return {"validated": False}
        verdict = check.model_dump(mode="json")
        if not self.store_note_text:
            for key in ("evidence", "rejected_evidence"):
                verdict[key] = [
                    {"start": e.start, "end": e.end, "chars": len(e.text), "sha256": sha256_text(e.text)}
                    for e in getattr(check, key)
                ]
        return {
            "validated": True,
            "guardrail_override": check.status == "rejected",
            "rules": list(check.rules),
            "warnings": [w.rule for w in check.warnings],
            "check": verdict,
        }

    def _bump(self, conn: Connection, chart_id: int, *, status: str, assigned_to: str | None, at: str) -> int:
        conn.execute(
            charts.update()
            .where(charts.c.chart_id == chart_id)
            .values(status=status, assigned_to=assigned_to, version=charts.c.version + 1, updated_at=at)
        )
        return int(conn.execute(select(charts.c.version).where(charts.c.chart_id == chart_id)).scalar_one())

    def record_action(
        self,
        chart_id: int,
        action: CodeAction,
        code: str,
        *,
        user: str,
        expected_version: int,
        new_code: str | None = None,
        reason: str | None = None,
        description: str | None = None,
        chapter: str | None = None,
        evidence: Sequence[EvidenceSpan] = (),
    ) -> Chart:
        """Record one coder action and audit it (event ``code_action``); returns the updated chart.

        ``accept``/``reject``/``replace`` name a code on the chart (any spelling); ``replace``
        and ``add`` take the new code (``new_code`` for replace, ``code`` for add), which the
        queue's validators check (see ``resolve``); without validators it is checked for shape only
        and ``description``/``chapter`` describe it. ``evidence`` are the coder's spans for the new
        code. A ``pending`` chart moves to ``coding`` and is assigned to the user.
        """
        new = new_code if action == "replace" else code
        return self.resolve(
            chart_id,
            user=user,
            expected_version=expected_version,
            actions=[(action, code, new_code)],
            reason=reason,
            details={code_key(new_code or code): (description, chapter)},
            evidence={new: evidence} if evidence and new else None,
        )

    def resolve(
        self,
        chart_id: int,
        *,
        user: str,
        expected_version: int,
        actions: Iterable[tuple[str, str, str | None]] = (),
        reason: str | None = None,
        finalise: bool = False,
        details: Mapping[str, tuple[str | None, str | None]] | None = None,
        evidence: Mapping[str, Sequence[EvidenceSpan]] | None = None,
        procedure_actions: Iterable[tuple[str, str]] = (),
    ) -> Chart:
        """Apply several ``(action, code, new_code)`` in order, then optionally finalise; one transaction.

        ``procedure_actions`` are ``(accept|reject, code)`` on the chart's proposed procedure codes, in the same
        transaction (event ``procedure_action``): ``InputError`` for a code the chart did not propose or another
        action, ``OverrideReasonRequiredError`` to accept a procedure the validators rejected without ``reason``.

        The whole call bumps the version once and all-or-nothing: a bad action leaves the chart
        unchanged. With validators, the new codes (``add``, and ``replace``'s new code) are checked
        first against the note and the claim this change leaves (``check_new_codes``), with the
        coder's ``evidence`` spans (new code, any spelling -> spans) when given: a code that cannot be
        billed raises ``MalformedCodeError``/``UnknownCodeError``/``InputError``, a rejected one without
        ``reason`` raises ``OverrideReasonRequiredError``; with a reason it is stored with its verdict
        and audited as a guardrail override. Without validators, ``details`` maps a new code (no dot,
        upper case) to ``(description, chapter)`` and ``evidence`` is refused. Raises ``InputError``
        when there is nothing to do.
        """
        user = _check_user(user)
        reason = _check_reason(reason)
        steps = builtins.list(actions)
        procedure_steps = builtins.list(procedure_actions)
        if not steps and not procedure_steps and not finalise:
            raise InputError("nothing to do: give at least one action or finalise")
        details = dict(details or {})
        new_codes = self._check_new_codes(chart_id, expected_version, steps, evidence or {}, reason)
        details.update(new_codes.details)
        at = _iso(_now())
        with self.store.write() as conn:
            status, assigned_to = self._locked_chart(conn, chart_id, expected_version)
            payloads = []
            for action, code, new_code in steps:
                description, chapter = details.get(code_key(new_code or code), (None, None))
                payloads.append(
                    self._apply(
                        conn,
                        chart_id,
                        action,
                        code,
                        new_code,
                        user=user,
                        reason=reason,
                        at=at,
                        description=description,
                        chapter=chapter,
                        checks=new_codes.checks,
                    )
                )
            procedure_payloads = self._procedure_payloads(conn, chart_id, procedure_steps, user=user, reason=reason)
            new_status = "coding" if (steps or procedure_steps) and status == "pending" else status
            version = self._bump(conn, chart_id, status=new_status, assigned_to=assigned_to or user, at=at)
            for payload in payloads:
                self._log_action(conn, chart_id, "code_action", {**payload, "version": version}, at=at)
            for payload in procedure_payloads:
                self._log_action(conn, chart_id, "procedure_action", {**payload, "version": version}, at=at)
            if new_status != status:
                self._log_action(
                    conn,
                    chart_id,
                    "chart_status",
                    {
                        "chart_id": chart_id,
                        "action": "status",
                        "user": user,
                        "from_status": status,
                        "to_status": new_status,
                        "version": version,
                    },
                    at=at,
                )
            if finalise:
                self._finalise_locked(conn, chart_id, user=user, status=new_status, version=version, at=at)
        return self.get(chart_id)

    @staticmethod
    def _named_by(conn: Connection, chart_id: int, position: int, code: str, replacement: str) -> str | None:
        """The rule of the proposed code's verdict that named ``replacement`` to use instead, if one did
        (``RuleResult.replace_with``): the audit log then shows which replacements coders take from the rules."""
        row = conn.execute(select(charts.c.decision_json).where(charts.c.chart_id == chart_id)).first()
        verdicts = json.loads(row[0]).get("verdicts", []) if row else []
        if (
            not 0 <= position < len(verdicts)
            or (verdicts[position].get("canonical") or verdicts[position].get("code")) != code
        ):
            return None  # a code a coder added: its check named no replacement the machine offered
        verdict = verdicts[position]
        for result in [*verdict.get("results", []), *verdict.get("warnings", [])]:
            if replacement in RuleResult.model_construct(**result).replace_with:
                return str(result["rule"])
        return None

    @staticmethod
    def _procedure_payloads(
        conn: Connection, chart_id: int, steps: Sequence[tuple[str, str]], *, user: str, reason: str | None
    ) -> builtins.list[dict[str, Any]]:
        """Inside the write transaction: check each procedure action against the chart's proposed procedures."""
        if not steps:
            return []
        row = conn.execute(select(charts.c.decision_json).where(charts.c.chart_id == chart_id)).first()
        proposed = {
            str(v.get("canonical") or v.get("code")): v
            for v in (json.loads(row[0]).get("procedures", []) if row else [])
        }
        payloads = []
        for action, raw in steps:
            if action not in PROCEDURE_ACTIONS:
                raise InputError(f"unknown procedure action {action!r} (accept or reject)")
            code = "".join(str(raw).split()).replace(".", "").upper()
            verdict = proposed.get(code)
            if verdict is None:
                known = ", ".join(sorted(proposed)) or "none"
                raise InputError(f"{code} is not a procedure this chart proposed (proposed: {known})")
            rules = [str(r) for r in verdict.get("rules", [])]
            if action == "accept" and verdict.get("status") != "accepted" and reason is None:
                raise OverrideReasonRequiredError(
                    f"give a reason to accept {code}: the validators rejected it ({', '.join(rules)})",
                    rules={code: rules},
                )
            payloads.append(
                {
                    "chart_id": chart_id,
                    "action": PROCEDURE_ACTIONS[action],
                    "code": code,
                    "system": verdict.get("system"),
                    "user": user,
                    "reason": reason,
                    "proposed_status": verdict.get("status"),
                    "rules": rules,
                    "guardrail_override": action == "accept" and verdict.get("status") != "accepted",
                }
            )
        return payloads

    def _check_new_codes(
        self,
        chart_id: int,
        expected_version: int,
        steps: Sequence[tuple[str, str, str | None]],
        evidence: Mapping[str, Sequence[EvidenceSpan]],
        reason: str | None,
    ) -> NewCodes:
        """The validators' verdicts on the change's new codes, judged on the chart as the caller read it.

        Runs before the write transaction (the validators may take a while). The chart is read at
        ``expected_version``; the write transaction then refuses the change if the chart moved on, so
        the verdicts are about the state the change applies to. A chart that is already at another
        version, or finalised, is not checked: the write transaction reports the conflict.
        """
        if not any(action in NEW_CODE_ACTIONS for action, _, _ in steps):
            if evidence:
                raise InputError("evidence spans are only for codes the change adds or substitutes")
            return NewCodes()
        if self.validators is None:
            if evidence:
                raise InputError(
                    "this review queue has no validators to check evidence spans with "
                    "(open it with ReviewQueue(settings, validators=ValidatorPipeline(settings)))"
                )
            return NewCodes()
        chart = self.get(chart_id)
        if chart.status == "finalised" or chart.version != expected_version:
            return NewCodes()
        return check_new_codes(self.validators, chart, steps, evidence=evidence, reason=reason)

    def _finalise_locked(
        self, conn: Connection, chart_id: int, *, user: str, status: str, version: int, at: str
    ) -> None:
        prefilled = [
            r[0]
            for r in conn.execute(
                select(chart_codes.c.code)
                .where(
                    chart_codes.c.chart_id == chart_id,
                    chart_codes.c.decision == "pending",
                    chart_codes.c.proposed_status == "accepted",
                )
                .order_by(chart_codes.c.position)
            )
        ]
        conn.execute(
            chart_codes.update()
            .where(chart_codes.c.chart_id == chart_id, chart_codes.c.decision == "pending")
            .values(
                decision=case((chart_codes.c.proposed_status == "accepted", "accepted"), else_="rejected"),
                prefilled=1,
            )
        )
        conn.execute(
            charts.update()
            .where(charts.c.chart_id == chart_id)
            .values(status="finalised", finalised_at=at, finalised_by=user, updated_at=at)
        )
        final = [
            r[0]
            for r in conn.execute(
                select(chart_codes.c.code)
                .where(chart_codes.c.chart_id == chart_id, chart_codes.c.decision == "accepted")
                .order_by(chart_codes.c.position)
            )
        ]
        self._log_action(
            conn,
            chart_id,
            "chart_finalised",
            {
                "chart_id": chart_id,
                "action": "finalise",
                "user": user,
                "from_status": status,
                "to_status": "finalised",
                "version": version,
                "final_codes": final,
                "prefilled": prefilled,
            },
            at=at,
        )

    def finalise(self, chart_id: int, *, user: str, expected_version: int) -> Chart:
        """Finalise a chart (undecided codes take their suggestion); audited as ``chart_finalised``.

        Raises ``ChartConflictError`` when it is already finalised or the version is stale.
        """
        user = _check_user(user)
        at = _iso(_now())
        with self.store.write() as conn:
            status, assigned_to = self._locked_chart(conn, chart_id, expected_version)
            version = self._bump(conn, chart_id, status=status, assigned_to=assigned_to or user, at=at)
            self._finalise_locked(conn, chart_id, user=user, status=status, version=version, at=at)
        return self.get(chart_id)

    def set_status(self, chart_id: int, status: ChartStatus, *, user: str, expected_version: int) -> Chart:
        """Move a chart between ``pending``, ``coding`` and ``in_review`` (use ``finalise`` to finish).

        Moving to ``coding`` assigns the chart to the user, to ``pending`` unassigns it.
        Raises ``InputError`` for a transition that is not allowed.
        """
        user = _check_user(user)
        if status not in CHART_STATUSES or status == "finalised":
            raise InputError(f"cannot set status {status!r}; use one of pending, coding, in_review (or finalise)")
        at = _iso(_now())
        with self.store.write() as conn:
            current, assigned_to = self._locked_chart(conn, chart_id, expected_version)
            if status not in _TRANSITIONS[current]:
                raise InputError(f"chart {chart_id} is {current}; it cannot move to {status}")
            assignee = user if status == "coding" else (None if status == "pending" else assigned_to)
            version = self._bump(conn, chart_id, status=status, assigned_to=assignee, at=at)
            self._log_action(
                conn,
                chart_id,
                "chart_status",
                {
                    "chart_id": chart_id,
                    "action": "status",
                    "user": user,
                    "from_status": current,
                    "to_status": status,
                    "version": version,
                },
                at=at,
            )
        return self.get(chart_id)

    # -- reading ---------------------------------------------------------------------

    def get(self, chart_id: int, *, include_text: bool = True) -> Chart:
        """One chart with its codes and actions. Raises ``ChartNotFoundError``."""
        now = _now()
        with self.store.read() as conn:
            row = conn.execute(
                select(
                    *_SUMMARY_COLUMNS,
                    charts.c.note_sha256,
                    charts.c.note_text,
                    charts.c.date_of_service,
                    charts.c.finalised_at,
                    charts.c.finalised_by,
                    charts.c.decision_json,
                    *_METADATA_COLUMNS,
                ).where(charts.c.chart_id == chart_id)
            ).first()
            if row is None:
                raise ChartNotFoundError(f"no chart {chart_id} in the review queue")
            codes = {chart_id: _codes_of(conn, [chart_id])[chart_id]}
            chart_actions = _actions_of(conn, [chart_id])
        return _chart(row, now, codes, chart_actions, include_text=include_text)

    def iter_charts(
        self,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        include_text: bool = False,
        batch: int = 500,
    ) -> Iterator[Chart]:
        """Every chart created in ``[since, until)`` (timezone-aware; both optional), oldest first.

        For reports: charts come in batches of ``batch`` (one read transaction each) with their codes
        and actions, without note text unless ``include_text``. Raises ``InputError`` for a naive bound.
        """
        filters = []
        for bound, op in ((since, "ge"), (until, "lt")):
            if bound is None:
                continue
            if bound.tzinfo is None:
                raise InputError("since and until must be timezone-aware")
            value = _iso(bound.astimezone(dt.UTC))
            filters.append(charts.c.created_at >= value if op == "ge" else charts.c.created_at < value)
        after = 0
        while True:
            now = _now()
            with self.store.read() as conn:
                rows = conn.execute(
                    select(
                        *_SUMMARY_COLUMNS,
                        charts.c.note_sha256,
                        charts.c.note_text,
                        charts.c.date_of_service,
                        charts.c.finalised_at,
                        charts.c.finalised_by,
                        charts.c.decision_json,
                        *_METADATA_COLUMNS,
                    )
                    .where(charts.c.chart_id > after, *filters)
                    .order_by(charts.c.chart_id)
                    .limit(batch)
                ).all()
                if not rows:
                    return
                ids = [int(r[0]) for r in rows]
                codes = _codes_of(conn, ids)
                by_chart: defaultdict[int, builtins.list[ChartAction]] = defaultdict(builtins.list)
                for action in _actions_of(conn, ids, keyed=True):
                    by_chart[action[0]].append(action[1])
            for row in rows:
                yield _chart(row, now, codes, by_chart[int(row[0])], include_text=include_text)
            after = ids[-1]

    def list_charts(
        self,
        status: ChartStatus | None = None,
        limit: int = 100,
        *,
        offset: int = 0,
        note_type: str | None = None,
        routing: Literal["auto", "review"] | None = None,
    ) -> builtins.list[ChartSummary]:
        """Charts, oldest first, without note text. Raises ``InputError`` for a bad filter."""
        if status is not None and status not in CHART_STATUSES:
            raise InputError(f"unknown status {status!r}; expected one of {', '.join(CHART_STATUSES)}")
        if limit < 1 or offset < 0:
            raise InputError("limit must be at least 1 and offset not negative")
        query = select(*_SUMMARY_COLUMNS)
        for column, value in (("status", status), ("note_type", note_type), ("routing", routing)):
            if value is not None:
                query = query.where(charts.c[column] == value)
        query = query.order_by(charts.c.created_at, charts.c.chart_id).limit(limit).offset(offset)
        now = _now()
        with self.store.read() as conn:
            return [ChartSummary(**_summary(row, now)) for row in conn.execute(query)]

    def find(self, note_sha256: str) -> builtins.list[int]:
        """Chart ids for a note's sha256, oldest first."""
        query = select(charts.c.chart_id).where(charts.c.note_sha256 == note_sha256.lower()).order_by(charts.c.chart_id)
        with self.store.read() as conn:
            return [int(r[0]) for r in conn.execute(query)]

    # -- metrics ---------------------------------------------------------------------

    def metrics(self, *, since: dt.datetime | None = None, note_type: str | None = None) -> QueueMetrics:
        """Routing share, queue size and age, coder acceptance/edit/override rates, rejection reasons.

        ``since`` (timezone-aware) restricts to charts created then or later.
        Raises ``InputError`` for a naive ``since``.
        """
        if since is not None and since.tzinfo is None:
            raise InputError("since must be timezone-aware")
        filters = []
        if since is not None:
            filters.append(charts.c.created_at >= _iso(since.astimezone(dt.UTC)))
        if note_type is not None:
            filters.append(charts.c.note_type == note_type)
        now = _now()
        with self.store.read() as conn:
            chart_rows = conn.execute(
                select(
                    charts.c.chart_id,
                    charts.c.routing,
                    charts.c.status,
                    charts.c.note_type,
                    charts.c.reasons_json,
                    charts.c.created_at,
                    charts.c.finalised_by,
                ).where(*filters)
            ).all()
            code_rows = conn.execute(
                select(
                    chart_codes.c.chart_id,
                    chart_codes.c.chapter,
                    chart_codes.c.origin,
                    chart_codes.c.proposed_status,
                    chart_codes.c.decision,
                    chart_codes.c.replaces,
                    chart_codes.c.rules_json,
                )
                .join(charts, charts.c.chart_id == chart_codes.c.chart_id)
                .where(*filters)
            ).all()
        routing: Counter[str] = Counter()
        open_by_status: Counter[str] = Counter()
        ages: builtins.list[float] = []
        reasons: Counter[str] = Counter()
        reviewed: dict[int, str] = {}
        for chart_id, route, status, ntype, reasons_json, created_at, finalised_by in chart_rows:
            routing[route] += 1
            if route == "review":
                reasons.update({reason_kind(r) for r in json.loads(reasons_json)})
            if status != "finalised":
                open_by_status[status] += 1
                ages.append(_age(created_at, now))
            elif finalised_by != AUTO_USER:
                reviewed[chart_id] = ntype or "unknown"
        rejections: Counter[str] = Counter()
        overall = RateGroup()
        by_chapter: defaultdict[str, RateGroup] = defaultdict(RateGroup)
        by_type: defaultdict[str, RateGroup] = defaultdict(RateGroup)
        chart_groups: dict[tuple[str, int], bool] = {}  # (group key, chart) -> edited
        for chart_id, chapter, origin, proposed, decision, replaces, rules_json in code_rows:
            if origin == "proposed" and proposed == "rejected":
                rejections.update(json.loads(rules_json) or ["UNSPECIFIED"])
            overriding = origin == "added" and proposed == "rejected" and decision == "accepted"
            if chart_id not in reviewed or (origin == "added" and replaces is not None and not overriding):
                continue  # a replacement is counted once, on the code it replaced (unless it overrode the validators)
            edited = False
            targets = (overall, by_chapter[chapter or "unknown"], by_type[reviewed[chart_id]])
            for group in targets:
                if origin == "added":
                    group.added += int(replaces is None)
                    group.guardrail_overrides += int(overriding)
                    edited = True
                elif proposed == "accepted":
                    group.suggested += 1
                    if decision == "accepted":
                        group.kept += 1
                    elif decision == "rejected":
                        group.rejected_by_coder += 1
                        edited = True
                    elif decision == "replaced":
                        group.replaced += 1
                        edited = True
                else:
                    group.proposed_rejected += 1
                    if decision == "accepted":
                        group.guardrail_overrides += 1
                        edited = True
            for key in ("overall", f"chapter:{chapter or 'unknown'}", f"type:{reviewed[chart_id]}"):
                chart_groups[(key, chart_id)] = chart_groups.get((key, chart_id), False) or edited
        for chart_id in reviewed:  # charts with no codes still count overall
            chart_groups.setdefault(("overall", chart_id), False)
            chart_groups.setdefault((f"type:{reviewed[chart_id]}", chart_id), False)
        for (key, _chart), edited in chart_groups.items():
            if key == "overall":
                group = overall
            elif key.startswith("chapter:"):
                group = by_chapter[key.removeprefix("chapter:")]
            else:
                group = by_type[key.removeprefix("type:")]
            group.charts += 1
            group.edited_charts += int(edited)
        return QueueMetrics(
            generated_at=_iso(now),
            charts=len(chart_rows),
            routing=dict(routing),
            open_by_status=dict(open_by_status),
            oldest_open_age_s=max(ages) if ages else None,
            median_open_age_s=statistics.median(ages) if ages else None,
            overall=overall,
            by_chapter=dict(sorted(by_chapter.items(), key=lambda kv: _chapter_order(kv[0]))),
            by_note_type=dict(sorted(by_type.items())),
            validator_rejections=dict(rejections.most_common()),
            routing_reasons=dict(reasons.most_common()),
        )
