"""Reading the governance tables on an open connection: gold-labelled audits and grants.

Shared by the audit program (which re-checks a grant in the transaction that writes a gold
label) and the autonomy ledger. Never returns note text.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import Connection, func, select

from medcode.agent import reason_kind
from medcode.review._store import audit_tasks, autonomy_grants, chart_codes, charts
from medcode.review.governance._measure import AuditedChart
from medcode.validators import CodeVerdict

__all__ = ["LLM_REASONS", "Grant", "current_grants", "grant_row", "load_audited", "now_iso"]

LLM_REASONS = frozenset({"LLM_UNAVAILABLE", "LLM_OUTPUT_INVALID", "LLM_ERROR"})
AUTO_USER = "auto"


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


class Grant(BaseModel):
    """One grant of earned autonomy to a case type, and how it ended (if it did)."""

    grant_id: int
    case_type: str
    status: Literal["active", "suspended", "revoked"]
    threshold: float
    case_type_sha256: str
    policy_version: str
    policy_sha256: str
    granted_by: str
    granted_at: str
    evidence: dict[str, Any] = Field(description="The evaluation the grant was made on.")
    ended_at: str | None = None
    ended_by: str | None = None
    end: dict[str, Any] | None = Field(default=None, description="Why it was suspended or revoked, with figures.")
    audit_seq: int


_GRANT_COLUMNS = (
    autonomy_grants.c.grant_id,
    autonomy_grants.c.case_type,
    autonomy_grants.c.status,
    autonomy_grants.c.threshold,
    autonomy_grants.c.case_type_sha256,
    autonomy_grants.c.policy_version,
    autonomy_grants.c.policy_sha256,
    autonomy_grants.c.granted_by,
    autonomy_grants.c.granted_at,
    autonomy_grants.c.evidence_json,
    autonomy_grants.c.ended_at,
    autonomy_grants.c.ended_by,
    autonomy_grants.c.end_json,
    autonomy_grants.c.audit_seq,
)


def _grant(row: Any) -> Grant:
    (gid, case_type, status, threshold, ct_sha, pversion, psha, by, at, evidence, ended_at, ended_by, end, seq) = row
    return Grant(
        grant_id=gid,
        case_type=case_type,
        status=status,
        threshold=threshold,
        case_type_sha256=ct_sha,
        policy_version=pversion,
        policy_sha256=psha,
        granted_by=by,
        granted_at=at,
        evidence=json.loads(evidence),
        ended_at=ended_at,
        ended_by=ended_by,
        end=json.loads(end) if end else None,
        audit_seq=seq,
    )


def grant_row(conn: Connection, grant_id: int) -> Grant:
    row = conn.execute(select(*_GRANT_COLUMNS).where(autonomy_grants.c.grant_id == grant_id)).one()
    return _grant(row)


def current_grants(conn: Connection) -> dict[str, Grant]:
    """The latest grant of every case type that ever had one (whatever its status)."""
    latest = (
        select(autonomy_grants.c.case_type, func.max(autonomy_grants.c.grant_id).label("gid"))
        .group_by(autonomy_grants.c.case_type)
        .subquery()
    )
    rows = conn.execute(select(*_GRANT_COLUMNS).join(latest, latest.c.gid == autonomy_grants.c.grant_id))
    return {g.case_type: g for g in map(_grant, rows)}


def all_grants(conn: Connection) -> list[Grant]:
    """Every grant, oldest first."""
    return [_grant(r) for r in conn.execute(select(*_GRANT_COLUMNS).order_by(autonomy_grants.c.grant_id))]


def load_audited(conn: Connection, case_type: str | None = None) -> list[AuditedChart]:
    """Gold-labelled audits (optionally of one case type), with the chart as coded and routed."""
    query = (
        select(
            audit_tasks.c.task_id,
            audit_tasks.c.chart_id,
            audit_tasks.c.case_type,
            audit_tasks.c.stratum,
            audit_tasks.c.gold_codes_json,
            audit_tasks.c.gold_source,
            charts.c.setting,
            charts.c.note_type,
            charts.c.decision_json,
            charts.c.finalised_by,
        )
        .join(charts, charts.c.chart_id == audit_tasks.c.chart_id)
        .where(audit_tasks.c.status == "gold")
        .order_by(audit_tasks.c.task_id)
    )
    if case_type is not None:
        query = query.where(audit_tasks.c.case_type == case_type)
    rows = conn.execute(query).all()
    finals: dict[int, list[str]] = {}
    if rows:
        ids = [r[1] for r in rows]
        for chart_id, code in conn.execute(
            select(chart_codes.c.chart_id, chart_codes.c.code)
            .where(chart_codes.c.chart_id.in_(ids), chart_codes.c.decision == "accepted")
            .order_by(chart_codes.c.chart_id, chart_codes.c.position)
        ):
            finals.setdefault(int(chart_id), []).append(str(code))
    out = []
    for task_id, chart_id, ctype, stratum, gold, source, setting, note_type, decision_json, finalised_by in rows:
        decision = json.loads(decision_json)
        routing = decision.get("routing") or {}
        out.append(
            AuditedChart(
                task_id=task_id,
                chart_id=chart_id,
                case_type=ctype,
                stratum=stratum,
                setting=setting,
                note_type=note_type,
                verdicts=[CodeVerdict.model_validate(v) for v in decision.get("verdicts", [])],
                extra_reasons=[r for r in routing.get("reasons", []) if reason_kind(r) in LLM_REASONS],
                grant_id=routing.get("grant_id"),
                human_codes=None if finalised_by == AUTO_USER else finals.get(int(chart_id), []),
                gold=json.loads(gold),
                gold_source=source or "agreement",
            )
        )
    return out
