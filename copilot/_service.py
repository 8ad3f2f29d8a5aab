"""``CopilotService``: what the HTTP app calls. One coder, one coding worker, the queue and the audit log.

Everything persists where the CLI keeps it (the review database: queue, audit log, coding jobs), so
``medcode queue ...`` and the web app see the same charts. Methods are safe to call from many
request threads at once; coding itself happens on the worker thread.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any, Literal

from medcode import __version__
from medcode.agent import MedicalCoder, Note, note_from_fhir
from medcode.config import Settings
from medcode.copilot._jobs import CodingWorker, JobStore, WorkerState
from medcode.copilot._models import CodeRequest, CodingJob, ReviewRequest, SearchHit
from medcode.errors import InputError, MalformedCodeError, UnknownCodeError
from medcode.monitoring import (
    FinancialImpactCheck,
    FinancialModel,
    GroupBy,
    Window,
    build_cdi_report,
    build_report,
    load_cdi_queries,
    load_drift_thresholds,
    load_records,
    record_alerts,
    specific_options,
    suspend_drifting_case_types,
)
from medcode.review import AuditLog, Chart, ChartSummary, EvidenceSpan, QueueRecorder, ReviewQueue
from medcode.review.governance import (
    AdjudicationTask,
    AuditBatch,
    AuditProgram,
    AuditTaskDetail,
    AutonomyLedger,
    BlindAnswer,
    BlindTask,
    BlindTaskSummary,
)
from medcode.validators import RuleResult

__all__ = ["CopilotService", "QueueFilter"]

_DECIDED = {"procedure_accept": "accepted", "procedure_reject": "rejected"}

QueueFilter = Literal["open", "all", "pending", "coding", "in_review", "finalised"]
_OPEN: tuple[Literal["pending", "coding", "in_review"], ...] = ("pending", "coding", "in_review")
_CODE_LIKE = re.compile(r"^[A-Za-z][0-9][0-9A-Za-z](\.?[0-9A-Za-z]{0,4})?$")


def _shown(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stored rule results as a coder sees them (``RuleResult.display``: rule, reason, codes to use instead).

    Not re-validated: a chart stored by an older medcode may lack fields this one added.
    """
    return [RuleResult.model_construct(**r).display() for r in results]


class CopilotService:
    """The copilot's back end for one data directory.

    ``proposer`` defaults to ``settings.serve_proposer``; ``warm_up`` loads the index, embedder and
    LLM on the worker thread at start (``health()`` says ``warming`` meanwhile). Call ``start()``
    before use and ``close()`` at the end. Raises ``StoreError`` when the stores cannot be opened.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        proposer: Literal["llm", "retrieval"] | None = None,
        warm_up: bool = True,
    ) -> None:
        self.settings = settings
        self.proposer: Literal["llm", "retrieval"] = proposer or settings.serve_proposer
        self.queue = ReviewQueue(settings)
        self.autonomy = AutonomyLedger(settings)
        # A chart whose machine codes move the MS-DRG or add a CMS-HCC is never auto (as with the CLI).
        self.financial = FinancialModel(settings)
        self.financial_check = (
            FinancialImpactCheck(settings, model=self.financial) if settings.monitoring_financial_routing else None
        )
        self.coder = MedicalCoder(
            settings,
            proposer=self.proposer,
            recorder=QueueRecorder(settings, queue=self.queue),
            autonomy=self.autonomy,
            routing_checks=[self.financial_check] if self.financial_check is not None else [],
        )
        # Codes a coder adds or substitutes go through the coder's validators, as its suggestions do.
        self.queue.validators = self.coder.validators
        self.audit = AuditLog(settings)
        self.audits = AuditProgram(
            settings, policy=self.autonomy.policy, hcc=self.autonomy.hcc, check_code=self._check_code
        )
        self.jobs = JobStore(settings)
        self.worker = CodingWorker(self.jobs, self.coder, warm_up=warm_up)
        self._started = False

    # -- life cycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Start the coding worker (it re-queues jobs a stopped server left running)."""
        if not self._started:
            self.worker.start()
            self._started = True

    def close(self) -> None:
        """Stop the worker (waits briefly for a running job), stop the LLM server, close the stores."""
        if self._started:
            self.worker.stop()
        self.coder.close()  # closes the autonomy gate too
        self.financial.close()
        self.queue.close()
        self.audit.close()
        self.audits.close()
        self.jobs.close()

    def health(self) -> dict[str, Any]:
        """Liveness and the worker's state; no PHI."""
        counts = self.jobs.counts()
        state: WorkerState = self.worker.state
        return {
            "status": "ok",
            "version": __version__,
            "proposer": self.proposer,
            "worker": state,
            "problem": self.worker.problem,
            "jobs": {"queued": counts.get("queued", 0), "running": counts.get("running", 0)},
        }

    # -- coding ------------------------------------------------------------------------------
    def submit(self, request: CodeRequest) -> CodingJob:
        """Check the note and queue it for the worker.

        Raises ``NoteError`` for empty, NUL-containing or oversized text, ``DateOutOfRangeError``
        when no release covers the date of service, ``JobQueueFullError`` when the queue is full.
        """
        fields: dict[str, Any] = {
            "setting": request.setting or self.settings.setting,
            "note_type": request.note_type,
            "age": request.age,
            "sex": request.sex,
            "date_of_service": request.date_of_service,
        }
        if request.metadata is not None:
            fields["metadata"] = request.metadata
        if request.id is not None:
            fields["id"] = request.id
        return self._queue_note(Note.checked(request.text, self.settings.max_note_chars, **fields))

    def submit_fhir(
        self, resource: dict[str, Any], *, setting: Literal["outpatient", "inpatient"] | None = None
    ) -> CodingJob:
        """Read the note of a FHIR R4 DocumentReference (or a Bundle holding one) and queue it. ``setting``
        overrides the one the Encounter's class gives.

        Raises ``FHIRError`` naming the bad element, ``MissingDependencyError`` without the ``fhir`` extra,
        ``DateOutOfRangeError`` and ``JobQueueFullError`` as ``submit`` does.
        """
        note = note_from_fhir(
            resource, self.settings.max_note_chars, default_setting=self.settings.setting, setting=setting
        )
        return self._queue_note(note)

    def _queue_note(self, note: Note) -> CodingJob:
        self.coder.registry.get(note.date_of_service)  # fail now, not on the worker
        job = self.jobs.add(note, self.proposer, max_queued=self.settings.serve_max_queued_jobs)
        self.worker.notify()
        return job

    def job(self, job_id: str) -> CodingJob:
        """Raises ``JobNotFoundError``."""
        return self.jobs.get(job_id)

    def wait(self, job_id: str, timeout_s: float) -> CodingJob:
        """The job when finished, or as it is after ``timeout_s``."""
        return self.worker.wait_for(job_id, timeout_s)

    # -- the queue ---------------------------------------------------------------------------
    def list_charts(
        self, status: QueueFilter = "open", *, limit: int = 50, offset: int = 0, note_type: str | None = None
    ) -> list[ChartSummary]:
        """Charts oldest first; ``open`` = pending, coding (a coder is on it) and in review."""
        if status == "all":
            return self.queue.list_charts(None, limit, offset=offset, note_type=note_type)
        if status != "open":
            return self.queue.list_charts(status, limit, offset=offset, note_type=note_type)
        merged: list[ChartSummary] = []
        for each in _OPEN:
            merged += self.queue.list_charts(each, offset + limit, note_type=note_type)
        merged.sort(key=lambda c: (c.created_at, c.chart_id))
        return merged[offset : offset + limit]

    def chart(self, chart_id: int, *, include_text: bool = True) -> dict[str, Any]:
        """A chart for display: codes with their rule reasons and warnings, whether each is selected.

        The raw LLM output is left out. Raises ``ChartNotFoundError``.
        """
        chart = self.queue.get(chart_id, include_text=include_text)
        data = chart.to_display(show_text=include_text)
        decision = data["decision"]
        verdicts = decision.pop("verdicts", [])
        decision.pop("raw_llm_output", None)
        decision.pop("note_text", None)
        for code, model in zip(data["codes"], chart.codes, strict=True):
            code["selected"] = model.selected
            code["reasons"], code["warning_details"], code["rejected_evidence"] = [], [], []
            code["index_term"] = None
            position = code["position"]
            check = code.get("check")
            if code["origin"] == "added" and check:  # a coder's code: the validators' verdict stored with it
                code["reasons"] = _shown(r for r in check["results"] if r["severity"] == "reject")
                code["warning_details"] = _shown(r for r in check["results"] if r["severity"] == "warn")
                code["rejected_evidence"] = check["rejected_evidence"]
                code["index_term"] = check.get("index_term")
            elif code["origin"] == "proposed" and 0 <= position < len(verdicts):
                verdict = verdicts[position]
                code["reasons"] = _shown(r for r in verdict.get("results", []) if r.get("severity") == "reject")
                code["warning_details"] = _shown(verdict.get("warnings", []))
                code["rejected_evidence"] = verdict.get("rejected_evidence", [])
                code["index_term"] = verdict.get("index_term")
        data["procedures"] = self._procedures(chart, decision.pop("procedures", []))
        return data

    @staticmethod
    def _procedures(chart: Chart, shown: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The chart's proposed procedure codes for display, each with the coder's latest decision."""
        decided = chart.procedure_decisions
        out = []
        for item in shown:
            code = str(item.get("canonical") or item.get("code"))
            action = decided.get(code)
            out.append(
                {
                    "code": code,
                    "system": item.get("system"),
                    "modifiers": item.get("modifiers", []),
                    "description": item.get("description"),
                    "status": item.get("status"),
                    "rules": item.get("rules", []),
                    "reasons": _shown(r for r in item.get("results", []) if r.get("severity") == "reject"),
                    "warning_details": _shown(item.get("warnings", [])),
                    "evidence": item.get("evidence", []),
                    "rejected_evidence": item.get("rejected_evidence", []),
                    "decision": "pending" if action is None else _DECIDED[action.action],
                    "decided_by": None if action is None else action.user,
                }
            )
        return out

    def review(self, chart_id: int, request: ReviewRequest, *, user: str) -> dict[str, Any]:
        """Apply a coder's decisions (and maybe finalise) in one audited, all-or-nothing change.

        New codes (``add``, ``replace``) must be billable codes of the release for the chart's date
        of service, and go through the validators against the note and the chart's other codes
        (with the action's evidence spans, if any; ``ReviewQueue.resolve``). Raises
        ``ChartNotFoundError``, ``ChartConflictError`` (stale version or already finalised),
        ``OverrideReasonRequiredError`` (a code the validators rejected, without a reason),
        ``InputError``/``MalformedCodeError``/``UnknownCodeError`` for bad codes, spans or actions.
        ``user`` is the authenticated user (never a name from the request body).
        """
        evidence: dict[str, list[EvidenceSpan]] = {}
        for action in request.actions:
            if action.evidence and action.added_code:
                evidence.setdefault(action.added_code, []).extend(action.evidence)
        self.queue.resolve(
            chart_id,
            user=user,
            expected_version=request.expected_version,
            actions=[(a.action, a.code, a.new_code) for a in request.actions],
            reason=request.reason,
            finalise=request.finalise,
            evidence=evidence,
            procedure_actions=[(p.action, p.code) for p in request.procedures],
        )
        return self.chart(chart_id)

    # -- finding codes to add ----------------------------------------------------------------
    def search(self, query: str, *, top_k: int = 10, date_of_service: dt.date | None = None) -> list[SearchHit]:
        """Codes for a coder's query: the code itself when the query is a code, then retrieval hits.

        Raises ``InputError`` for an empty or over-long query, ``RetrievalError`` when the index
        cannot answer, ``DateOutOfRangeError`` for a date no release covers.
        """
        query = query.strip()
        if not query:
            raise InputError("search query is empty")
        codeset = self.coder.registry.get(date_of_service)
        hits: list[SearchHit] = []
        if _CODE_LIKE.match(query):
            try:
                record = codeset.get(query)
            except (MalformedCodeError, UnknownCodeError):
                record = None
            if record is not None:
                hits.append(
                    SearchHit(
                        code=record.code,
                        description=record.description,
                        chapter=record.chapter,
                        billable=record.billable,
                        source="code",
                    )
                )
                for child in codeset.billable_descendants(record.code, limit=top_k) if not record.billable else []:
                    entry = codeset.get(child)
                    hits.append(
                        SearchHit(code=entry.code, description=entry.description, chapter=entry.chapter, source="code")
                    )
                if hits:
                    return hits[:top_k]
        seen = {h.code for h in hits}
        for candidate in self.coder.retriever(date_of_service).search(query, top_k=top_k):
            if candidate.code not in seen:
                hits.append(
                    SearchHit(
                        code=candidate.code,
                        description=candidate.description,
                        chapter=candidate.chapter,
                        score=round(candidate.score, 4),
                        source="retrieval",
                    )
                )
        return hits[:top_k]

    # -- metrics -----------------------------------------------------------------------------
    def metrics(self, *, since: dt.datetime | None = None, note_type: str | None = None) -> dict[str, Any]:
        """``ReviewQueue.metrics`` plus chapter titles, coders' rejection reasons and the job queue.

        ``coder_rejection_reasons`` counts the reasons coders gave when rejecting or replacing
        codes, and ``rule_replacements_taken`` the replacements that were the code a rule named
        (``named_by_rule``), by rule (both from the audit log; ``since`` applies, ``note_type`` does
        not). Raises ``InputError`` for a naive ``since``.
        """
        data = self.queue.metrics(since=since, note_type=note_type).as_dict()
        codeset = self.coder.registry.get()
        data["chapter_titles"] = {ch: codeset.chapter_title(ch) for ch in data["by_chapter"] if ch != "unknown"}
        reasons: Counter[str] = Counter()
        named: Counter[str] = Counter()
        cutoff = since.astimezone(dt.UTC).isoformat() if since is not None else None
        for record in self.audit.records(event_type="code_action"):
            payload = record.payload
            if payload.get("action") not in ("reject", "replace"):
                continue
            if cutoff is not None and str(record.ts) < cutoff:
                continue
            if payload.get("named_by_rule"):
                named[str(payload["named_by_rule"])] += 1
            reason = str(payload.get("reason") or "").strip()
            reasons[reason[:120] if reason else "(no reason given)"] += 1
        data["coder_rejection_reasons"] = dict(reasons.most_common(20))
        data["rule_replacements_taken"] = dict(named.most_common())
        counts = self.jobs.counts()
        data["jobs"] = {
            "queued": counts.get("queued", 0),
            "running": counts.get("running", 0),
            "failed": counts.get("failed", 0),
        }
        return data

    # -- blinded audits and earned autonomy -----------------------------------------------------
    def _check_code(self, raw: str, date_of_service: dt.date | None) -> str:
        record = self.coder.registry.get(date_of_service).get(raw)
        if not record.billable:
            raise InputError(f"{record.code} is a header, not a billable code; pick one of its children")
        return str(record.code)

    def audit_sample(self, *, by: str, seed: int | None = None, review_sample: int | None = None) -> AuditBatch:
        """Draw an audit batch (``AuditProgram.sample``)."""
        return self.audits.sample(by=by, seed=seed, review_sample=review_sample)

    def audit_tasks(self, auditor: str) -> list[BlindTaskSummary]:
        """Open tasks this auditor can code blind: no codes, routing or case type."""
        return self.audits.tasks_for(auditor)

    def audit_task(self, task_id: int, auditor: str) -> BlindTask:
        """A task's note and metadata only. Raises ``AuditTaskNotFoundError``, ``InputError``."""
        return self.audits.blind_task(task_id, auditor)

    def audit_answer(self, task_id: int, auditor: str, codes: list[str]) -> BlindAnswer:
        """Record a blind answer (final). Raises ``InputError`` and the code-set errors for bad codes."""
        return self.audits.answer(task_id, auditor, codes)

    def disputes(self, adjudicator: str) -> list[BlindTaskSummary]:
        return self.audits.disputes_for(adjudicator)

    def dispute(self, task_id: int, adjudicator: str) -> AdjudicationTask:
        """The note and both auditors' answers (as A and B), never the machine's codes."""
        return self.audits.adjudication_task(task_id, adjudicator)

    def adjudicate(self, task_id: int, adjudicator: str, codes: list[str], reason: str | None) -> AuditTaskDetail:
        return self.audits.adjudicate(task_id, adjudicator, codes, reason=reason)

    def autonomy_report(self) -> dict[str, Any]:
        """``medcode autonomy report --json`` plus the suspension events' figures."""
        return self.autonomy.report().model_dump(mode="json")

    # -- monitoring --------------------------------------------------------------------------
    def monitor_report(
        self,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        window: str = "week",
        group_by: GroupBy = "case_type",
    ) -> dict[str, Any]:
        """The KPI report with its SVG plots (``medcode monitor report``'s document plus ``plots``).

        New drift alerts are written to the audit log once (``monitoring.drift_alert``), as the CLI does,
        so the autonomy policy sees them whichever way the report was looked at. Raises ``InputError``
        for a bad window or a naive bound.
        """
        spec = Window.parse(window)
        records = load_records(self.queue, since=since, until=until)
        report = build_report(
            records,
            thresholds=load_drift_thresholds(self.settings),
            model=self.financial,
            window=spec,
            group_by=group_by,
            since=since,
            until=until,
        )
        recorded = record_alerts(self.audit, report.drift.alerts)
        suspend_drifting_case_types(self.autonomy, recorded)  # the autonomy policy reacts to drift
        return {**report.as_dict(plots=True), "recorded_alerts": len(recorded)}

    def cdi_report(
        self,
        *,
        since: dt.datetime | None = None,
        until: dt.datetime | None = None,
        group_by: GroupBy = "provider_id",
        limit: int = 20,
    ) -> dict[str, Any]:
        """Clinician documentation feedback (``medcode monitor cdi``) as JSON; evidence quotes only when
        ``monitoring_cdi_include_text`` is set."""
        include_text = self.settings.monitoring_cdi_include_text
        records = load_records(self.queue, since=since, until=until, include_text=include_text)
        options = specific_options(self.coder.registry.get())
        report = build_cdi_report(
            records,
            load_cdi_queries(self.settings),
            group_by=group_by,
            options=options,
            include_text=include_text,
            limit_per_group=limit,
        )
        return report.as_dict()
