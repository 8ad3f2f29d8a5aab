"""``AutonomyLedger``: autonomy granted by measured precision, kept honest by audits, pulled back on drift.

It is the ``AutonomyGate`` the CLI root wires into the coder (``assess``): a note's case type
goes out alone only while it holds an *active* grant made under the case type's current
definition. Grants and their ends live in ``autonomy_grants``; every change is one audit record in
the same transaction:

==========================  ===============================================================
``autonomy_evaluated``      ``medcode autonomy evaluate``: the proposals and their figures
``autonomy_granted``        a grant, with the threshold and the evidence it was made on
``autonomy_grant_refused``  a grant asked for on audits below target (nothing granted)
``autonomy_suspended``      a grant suspended: the running bound fell below target, audits of
                            auto-coded charts show it is worse, a drift alert, or by hand
``autonomy_revoked``        a grant withdrawn by hand
``drift_alert``             appended by monitoring (or ``medcode autonomy drift``): payload
                            ``{"case_type": ID or "*", "source": ..., "detail": ...}``
==========================  ===============================================================

**Suspension.** After every gold label (in the same transaction) and on ``check``, each active
grant is judged again on all gold-labelled audits of its case type that would have gone out
alone at the grant's threshold (those audited before the grant and the auto-coded ones since):
when the lower Wilson bound of claim precision (or code precision, when targeted) is below
target, the grant is suspended. Because that running bound carries the evidence the grant was
made on, a second rule watches the auto-coded charts alone: when the *upper* bound of their
claim precision is below target (the audits show with 95% confidence that what goes out alone is
worse than the target), the grant is suspended too. A ``drift_alert`` naming the case type (or
``*``) suspends it as soon as any process next routes a note or runs ``check``: routing looks
for new alerts through an index on ``audit_records(event_type, seq)`` and remembers the last one
it handled in ``meta`` (``governance.drift_seq``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Connection, select

from medcode.agent import AutonomyAssessment
from medcode.config import Settings
from medcode.errors import InputError, NotEligibleError
from medcode.review._audit import AuditRecord, append_record
from medcode.review._store import ReviewStore, audit_records, autonomy_grants, store_meta
from medcode.review.governance._hcc import RiskAdjustmentCodes
from medcode.review.governance._measure import CaseTypeEvaluation, accuracy, evaluate_case_type
from medcode.review.governance._policy import AutonomyPolicy, CaseType, load_policy
from medcode.review.governance._records import Grant, all_grants, current_grants, grant_row, load_audited, now_iso

__all__ = ["AUTOMATIC", "AutonomyLedger", "AutonomyReport", "recheck_grant"]

AUTOMATIC = "governance (automatic)"
_DRIFT_MARK = "governance.drift_seq"
_MAX_NAME = 100
_MAX_REASON = 1_000


def _check_name(name: object, what: str = "--by") -> str:
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{what} needs a name (who is responsible, recorded in the audit log)")
    cleaned = name.strip()
    if len(cleaned) > _MAX_NAME or not cleaned.isprintable() or cleaned in ("auto", AUTOMATIC):
        raise InputError(f"{what}: a printable name of at most {_MAX_NAME} characters, not a reserved one")
    return cleaned


def _check_reason(reason: str | None, *, required: bool = False) -> str | None:
    cleaned = (reason or "").strip()
    if required and not cleaned:
        raise InputError("a reason is required")
    if len(cleaned) > _MAX_REASON:
        raise InputError(f"reason is longer than {_MAX_REASON} characters")
    return cleaned or None


def _figures(evaluation: CaseTypeEvaluation) -> dict[str, Any]:
    return {
        "threshold": evaluation.threshold,
        "audited": evaluation.audited,
        "at_threshold": evaluation.at_threshold.model_dump(mode="json"),
        "autonomous": evaluation.autonomous.model_dump(mode="json"),
        "derivation": evaluation.derivation.model_dump(mode="json"),
        "eligible": evaluation.eligible,
        "reasons": evaluation.reasons,
    }


def _end_grant(
    store: ReviewStore,
    conn: Connection,
    grant: Grant,
    *,
    status: str,
    by: str,
    reasons: Sequence[str],
    details: dict[str, Any],
    allow_text: bool,
) -> AuditRecord:
    at = now_iso()
    end = {"reasons": list(reasons), **details}
    conn.execute(
        autonomy_grants.update()
        .where(autonomy_grants.c.grant_id == grant.grant_id)
        .values(status=status, ended_at=at, ended_by=by, end_json=json.dumps(end, sort_keys=True, default=str))
    )
    event = "autonomy_suspended" if status == "suspended" else "autonomy_revoked"
    payload = {
        "case_type": grant.case_type,
        "grant_id": grant.grant_id,
        "threshold": grant.threshold,
        "by": by,
        **end,
    }
    return append_record(store, conn, event, payload, chart_id=None, allow_text=allow_text)


def _model_changed(grant: Grant, model_version: str | None) -> bool:
    """Whether the grant was made under an acceptance model other than ``model_version`` (both known)."""
    granted_under = grant.evidence.get("acceptance_model")
    return bool(granted_under and model_version and granted_under != model_version)


def recheck_grant(
    store: ReviewStore,
    conn: Connection,
    policy: AutonomyPolicy,
    hcc: RiskAdjustmentCodes,
    case_type: str,
    *,
    trigger: dict[str, Any],
    allow_text: bool = False,
) -> Grant | None:
    """Inside a write transaction: judge the case type's active grant again; suspend it when below target.

    Returns the suspended grant, or None when there was no active grant or it holds.
    """
    grant = current_grants(conn).get(case_type)
    if grant is None or grant.status != "active":
        return None
    try:
        definition = policy.get(case_type)
    except InputError:
        definition = None
    if definition is None or definition.sha256 != grant.case_type_sha256:
        _end_grant(
            store,
            conn,
            grant,
            status="suspended",
            by=AUTOMATIC,
            reasons=["POLICY_CHANGED"],
            details={"trigger": trigger, "policy_version": policy.version_label},
            allow_text=allow_text,
        )
        return grant_row(conn, grant.grant_id)
    charts = load_audited(conn, case_type)
    evaluation = evaluate_case_type(charts, definition, hcc, threshold=grant.threshold)
    reasons: list[str] = []
    claims = evaluation.at_threshold.claim_precision
    if claims.low < definition.claim_precision_target:
        reasons.append(f"BOUND_BELOW_TARGET:claim:{claims.low:.3f}/{definition.claim_precision_target}")
    code_target = definition.code_precision_target
    codes = evaluation.at_threshold.code_precision
    if code_target is not None and codes.low < code_target:
        reasons.append(f"BOUND_BELOW_TARGET:code:{codes.low:.3f}/{code_target}")
    since = accuracy((c.machine_codes, c.gold) for c in charts if c.stratum == "auto" and c.grant_id == grant.grant_id)
    if since.claim_precision.n and since.claim_precision.high < definition.claim_precision_target:
        reasons.append(f"AUTO_AUDITS_BELOW_TARGET:{since.claim_precision.high:.3f}/{definition.claim_precision_target}")
    if not reasons:
        return None
    _end_grant(
        store,
        conn,
        grant,
        status="suspended",
        by=AUTOMATIC,
        reasons=reasons,
        details={
            "trigger": trigger,
            "running": _figures(evaluation),
            "auto_since_grant": since.model_dump(mode="json"),
        },
        allow_text=allow_text,
    )
    return grant_row(conn, grant.grant_id)


class CaseTypeStatus(BaseModel):
    """A case type in the report: its definition, its evaluation and its grant (if any)."""

    case_type: CaseType
    evaluation: CaseTypeEvaluation
    grant: Grant | None = None
    grant_state: str = Field(description="granted, suspended, revoked, lapsed (policy edited) or not_granted.")


class AutonomyReport(BaseModel):
    """``medcode autonomy report``: per case type, the audits' figures, the proposal and the grant."""

    generated_at: str
    policy_version: str
    policy_source: str
    hcc_version: str
    auditors_per_chart: int
    case_types: list[CaseTypeStatus]
    grants: list[Grant] = Field(description="Every grant ever made, oldest first.")


class AutonomyLedger:
    """Earned autonomy over one review database: grants, their checks, and the routing gate.

    ``create=False`` opens an existing store only; without one the ledger knows no grants (every
    note is reviewed) and refuses to grant. Raises ``ConfigError`` for a bad policy file,
    ``StoreError`` when the database cannot be used.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        policy: AutonomyPolicy | None = None,
        hcc: RiskAdjustmentCodes | None = None,
        create: bool = True,
    ) -> None:
        self.policy = policy or load_policy(settings.autonomy_policy_file)
        self.hcc = hcc or RiskAdjustmentCodes.load()
        self.store_note_text = settings.audit_store_note_text
        self.store: ReviewStore | None
        try:
            self.store = ReviewStore(settings, create=create, what="review store")
        except InputError:
            if create:
                raise
            self.store = None

    def __enter__(self) -> AutonomyLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.store is not None:
            self.store.close()

    @property
    def version(self) -> str:
        """The autonomy policy and HCC list versions (in every routing decision)."""
        return f"{self.policy.version_label}; {self.hcc.version}"

    def _store(self) -> ReviewStore:
        if self.store is None:
            raise InputError("no review store in this data directory yet (code a note first)")
        return self.store

    # -- the routing gate ----------------------------------------------------------------------

    def assess(
        self, note_type: str | None, setting: str, codes: Sequence[str], *, model_version: str | None = None
    ) -> AutonomyAssessment:
        """Classify a note and say whether its case type may go out alone (``AutonomyGate``).

        ``model_version`` is the acceptance model that gave the codes their confidence: a grant made under
        another model is suspended here (``MODEL_CHANGED``), since its threshold is that model's confidence.
        """
        codes = list(codes)
        risk = self.hcc.among(codes)
        case_type = self.policy.classify(note_type, setting, codes)
        if case_type is None:
            return AutonomyAssessment(state="no_case_type", risk_adjustment_codes=risk, version=self.version)
        grant = None
        if self.store is not None:
            self.handle_drift_alerts()
            with self.store.read() as conn:
                grant = current_grants(conn).get(case_type.id)
            if grant is not None and grant.status == "active" and _model_changed(grant, model_version):
                grant = self._suspend_for_model(case_type.id, model_version)
        state = "not_granted"
        if grant is not None and grant.case_type_sha256 == case_type.sha256:
            state = {"active": "granted", "suspended": "suspended"}.get(grant.status, "not_granted")
        return AutonomyAssessment(
            case_type=case_type.id,
            state=state,  # type: ignore[arg-type]
            threshold=grant.threshold if grant is not None and state == "granted" else None,
            grant_id=grant.grant_id if grant is not None and state == "granted" else None,
            risk_adjustment_codes=risk,
            version=self.version,
        )

    def _suspend_for_model(self, case_type: str, model_version: str | None) -> Grant | None:
        """Suspend the case type's active grant made under another acceptance model; the grant as it is now."""
        store = self._store()
        with store.write() as conn:
            store.lock_audit_head(conn)
            grant = current_grants(conn).get(case_type)  # another process may have suspended it meanwhile
            if grant is not None and grant.status == "active" and _model_changed(grant, model_version):
                _end_grant(
                    store,
                    conn,
                    grant,
                    status="suspended",
                    by=AUTOMATIC,
                    reasons=["MODEL_CHANGED"],
                    details={"granted_under": grant.evidence.get("acceptance_model"), "now": model_version},
                    allow_text=self.store_note_text,
                )
                grant = grant_row(conn, grant.grant_id)
            return grant

    # -- drift ---------------------------------------------------------------------------------

    def raise_drift_alert(self, case_type: str, *, source: str, detail: str | None = None) -> AuditRecord:
        """Append a ``drift_alert`` for a case type (``*``: all) and suspend what it names now.

        This is the hook the monitoring room calls; any ``drift_alert`` record appended to the
        audit log some other way is handled the same on the next routed note or ``check``.
        """
        if case_type != "*":
            self.policy.get(case_type)
        source = _check_name(source, "--source")
        payload = {"case_type": case_type, "source": source, "detail": _check_reason(detail)}
        store = self._store()
        with store.write() as conn:
            record = append_record(store, conn, "drift_alert", payload, chart_id=None, allow_text=self.store_note_text)
        self.handle_drift_alerts()
        return record

    def handle_drift_alerts(self) -> list[Grant]:
        """Suspend the active grants that new ``drift_alert`` records name; returns them."""
        store = self.store
        if store is None:
            return []
        with store.read() as conn:
            mark = self._drift_mark(conn)
            pending = conn.execute(
                select(audit_records.c.seq)
                .where(audit_records.c.event_type == "drift_alert", audit_records.c.seq > mark)
                .limit(1)
            ).first()
        if pending is None:
            return []
        suspended: list[Grant] = []
        with store.write() as conn:
            store.lock_audit_head(conn)
            mark = self._drift_mark(conn)  # another process may have handled them meanwhile
            alerts = conn.execute(
                select(audit_records.c.seq, audit_records.c.payload)
                .where(audit_records.c.event_type == "drift_alert", audit_records.c.seq > mark)
                .order_by(audit_records.c.seq)
            ).all()
            for seq, payload in alerts:
                try:
                    named = str(json.loads(payload).get("case_type") or "")
                except (TypeError, ValueError, AttributeError):
                    named = ""
                for grant in current_grants(conn).values():
                    if grant.status == "active" and named in ("*", grant.case_type):
                        _end_grant(
                            store,
                            conn,
                            grant,
                            status="suspended",
                            by=AUTOMATIC,
                            reasons=[f"DRIFT_ALERT:{seq}"],
                            details={"trigger": {"drift_alert_seq": seq}},
                            allow_text=self.store_note_text,
                        )
                        suspended.append(grant_row(conn, grant.grant_id))
                mark = max(mark, int(seq))
            self._set_drift_mark(conn, mark)
        return suspended

    @staticmethod
    def _drift_mark(conn: Connection) -> int:
        value = conn.execute(select(store_meta.c.value).where(store_meta.c.key == _DRIFT_MARK)).scalar()
        return int(value) if value else 0

    @staticmethod
    def _set_drift_mark(conn: Connection, mark: int) -> None:
        updated = conn.execute(store_meta.update().where(store_meta.c.key == _DRIFT_MARK).values(value=str(mark)))
        if not updated.rowcount:
            conn.execute(store_meta.insert().values(key=_DRIFT_MARK, value=str(mark)))

    # -- evaluation and grants -----------------------------------------------------------------

    def evaluate(self, case_type: str | None = None, *, record_by: str | None = None) -> list[CaseTypeEvaluation]:
        """Evaluate every case type (or one) on its gold-labelled audits; propose grants.

        With ``record_by``, the proposals and their figures go to the audit log
        (``autonomy_evaluated``). Raises ``InputError`` for an unknown case type.
        """
        wanted = [self.policy.get(case_type)] if case_type else list(self.policy.case_types)
        store = self.store
        if store is None:
            charts = []
        else:
            with store.read() as conn:
                charts = load_audited(conn)
        results = [evaluate_case_type(charts, ct, self.hcc) for ct in wanted]
        if record_by is not None:
            by = _check_name(record_by)
            payload = {
                "by": by,
                "policy_version": self.policy.version_label,
                "proposals": {e.case_type: _figures(e) for e in results},
            }
            s = self._store()
            with s.write() as conn:
                append_record(s, conn, "autonomy_evaluated", payload, chart_id=None, allow_text=self.store_note_text)
        return results

    def grant(self, case_type: str, *, by: str, reason: str | None = None, model_version: str | None = None) -> Grant:
        """Grant autonomy to a case type whose audits meet its targets (evaluated now, in the transaction).

        ``model_version`` (the active acceptance model) is kept with the grant: routing under another model
        suspends it (see ``assess``).

        Raises ``NotEligibleError`` (and records ``autonomy_grant_refused``) when they do not,
        ``InputError`` when the case type is unknown or already holds an active grant.
        """
        definition = self.policy.get(case_type)
        by = _check_name(by)
        reason = _check_reason(reason)
        store = self._store()
        refused: CaseTypeEvaluation | None = None
        with store.write() as conn:
            store.lock_audit_head(conn)
            current = current_grants(conn).get(case_type)
            if current is not None and current.status == "active" and current.case_type_sha256 == definition.sha256:
                raise InputError(
                    f"{case_type} already holds grant {current.grant_id} (threshold {current.threshold:.3f}, "
                    f"granted by {current.granted_by} at {current.granted_at})"
                )
            evaluation = evaluate_case_type(load_audited(conn, case_type), definition, self.hcc)
            if not evaluation.eligible or evaluation.threshold is None:
                refused = evaluation
                append_record(
                    store,
                    conn,
                    "autonomy_grant_refused",
                    {"case_type": case_type, "by": by, "reason": reason, **_figures(evaluation)},
                    chart_id=None,
                    allow_text=self.store_note_text,
                )
            else:
                if current is not None and current.status == "active":  # made under an older definition
                    _end_grant(
                        store,
                        conn,
                        current,
                        status="revoked",
                        by=by,
                        reasons=["SUPERSEDED"],
                        details={},
                        allow_text=self.store_note_text,
                    )
                evidence = {
                    **_figures(evaluation),
                    "approved_by": definition.approved_by,
                    "approved_on": definition.approved_on.isoformat(),
                    "reason": reason,
                    "acceptance_model": model_version,
                }
                at = now_iso()
                result = conn.execute(
                    autonomy_grants.insert().values(
                        case_type=case_type,
                        status="active",
                        threshold=evaluation.threshold,
                        case_type_sha256=definition.sha256,
                        policy_version=self.policy.version,
                        policy_sha256=self.policy.sha256,
                        granted_by=by,
                        granted_at=at,
                        evidence_json=json.dumps(evidence, sort_keys=True, default=str),
                        audit_seq=0,
                    )
                )
                key = result.inserted_primary_key
                assert key is not None
                grant_id = int(key[0])
                record = append_record(
                    store,
                    conn,
                    "autonomy_granted",
                    {
                        "case_type": case_type,
                        "grant_id": grant_id,
                        "by": by,
                        "policy_version": self.policy.version_label,
                        "case_type_sha256": definition.sha256,
                        **evidence,
                    },
                    chart_id=None,
                    allow_text=self.store_note_text,
                )
                conn.execute(
                    autonomy_grants.update().where(autonomy_grants.c.grant_id == grant_id).values(audit_seq=record.seq)
                )
                return grant_row(conn, grant_id)
        assert refused is not None
        raise NotEligibleError(
            f"{case_type} is not eligible for autonomy: {', '.join(refused.reasons)}", reasons=refused.reasons
        )

    def suspend(self, case_type: str, *, by: str, reason: str) -> Grant:
        """Suspend a case type's active grant by hand. Raises ``InputError`` when there is none."""
        return self._end(case_type, by=by, reason=reason, status="suspended")

    def revoke(self, case_type: str, *, by: str, reason: str) -> Grant:
        """Withdraw a case type's grant (active or suspended) by hand."""
        return self._end(case_type, by=by, reason=reason, status="revoked")

    def _end(self, case_type: str, *, by: str, reason: str, status: str) -> Grant:
        self.policy.get(case_type)
        by = _check_name(by)
        cleaned = _check_reason(reason, required=True)
        store = self._store()
        with store.write() as conn:
            store.lock_audit_head(conn)
            grant = current_grants(conn).get(case_type)
            allowed = ("active",) if status == "suspended" else ("active", "suspended")
            if grant is None or grant.status not in allowed:
                raise InputError(f"{case_type} has no {' or '.join(allowed)} grant to {status.removesuffix('ed')}")
            _end_grant(
                store,
                conn,
                grant,
                status=status,
                by=by,
                reasons=["BY_HAND"],
                details={"reason": cleaned},
                allow_text=self.store_note_text,
            )
            return grant_row(conn, grant.grant_id)

    def check(self) -> list[Grant]:
        """Handle new drift alerts, then judge every active grant again; returns the grants suspended."""
        suspended = self.handle_drift_alerts()
        store = self.store
        if store is None:
            return suspended
        with store.write() as conn:
            store.lock_audit_head(conn)
            for case_type, grant in current_grants(conn).items():
                if grant.status == "active":
                    ended = recheck_grant(
                        store,
                        conn,
                        self.policy,
                        self.hcc,
                        case_type,
                        trigger={"check": True},
                        allow_text=self.store_note_text,
                    )
                    if ended is not None:
                        suspended.append(ended)
        return suspended

    # -- reading -------------------------------------------------------------------------------

    def grants(self) -> list[Grant]:
        """Every grant, oldest first."""
        if self.store is None:
            return []
        with self.store.read() as conn:
            return all_grants(conn)

    def report(self) -> AutonomyReport:
        """Per case type: the audits' figures (machine, first coder, auto-coded), the proposal, the grant."""
        evaluations = {e.case_type: e for e in self.evaluate()}
        grants = self.grants()
        latest: dict[str, Grant] = {}
        for each in grants:
            latest[each.case_type] = each
        statuses = []
        for case_type in self.policy.case_types:
            grant = latest.get(case_type.id)
            state = "not_granted"
            if grant is not None:
                state = "lapsed" if grant.case_type_sha256 != case_type.sha256 else grant.status
                state = {"active": "granted"}.get(state, state)
            evaluation = evaluations[case_type.id]
            if grant is not None and state == "granted":  # judge the live grant at its own threshold
                with self._store().read() as conn:
                    charts = load_audited(conn, case_type.id)
                evaluation = evaluate_case_type(charts, case_type, self.hcc, threshold=grant.threshold)
            statuses.append(CaseTypeStatus(case_type=case_type, evaluation=evaluation, grant=grant, grant_state=state))
        return AutonomyReport(
            generated_at=now_iso(),
            policy_version=self.policy.version_label,
            policy_source=self.policy.source,
            hcc_version=self.hcc.version,
            auditors_per_chart=self.policy.auditors_per_chart,
            case_types=statuses,
            grants=grants,
        )
