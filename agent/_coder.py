"""``MedicalCoder``: the orchestrator. Note -> candidates -> proposer -> validators -> routing -> recorder.

Everything heavy (code set, index, embedder, ConText, the LLM server) lives in a ``Runtime``
that loads it once and is shared by every coder of the process. The coder hands each finished
run to an optional ``Recorder`` (the review stage's queue and audit log, when the caller wires
one in); the agent stage itself never writes review data. A failing LLM never loses a note: it is routed to a human with
``LLM_UNAVAILABLE`` (or ``LLM_OUTPUT_INVALID``) and the retrieval candidates are kept.
"""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import threading
import time
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from medcode import __version__
from medcode.agent._note import FHIRSource, Note
from medcode.agent._proposers import (
    LLMProposer,
    Proposed,
    ProposedItem,
    Proposer,
    ProposerName,
    RetrievalProposer,
    proposer_parameters,
)
from medcode.agent._routing import (
    LLM_UNAVAILABLE,
    PROCEDURES_UNAVAILABLE,
    ROUTING_CHECK_FAILED,
    AutonomyGate,
    RoutingCheck,
    RoutingDecision,
    RoutingPolicy,
)
from medcode.agent._runtime import Runtime
from medcode.codesets import ICD10CMCodeSet
from medcode.config import Settings
from medcode.errors import LLMError, LLMOutputError, LLMUnavailableError, MedcodeError
from medcode.retrieval import HybridRetriever, data_version
from medcode.validators import (
    SET_RULE_IDS,
    CodeVerdict,
    Evidence,
    ProcedureSystem,
    ProcedureVerdict,
    Proposal,
    ProposedCode,
    ProposedProcedure,
    ValidationContext,
    ValidatorPipeline,
)

__all__ = [
    "CodedCode",
    "CodedProcedure",
    "CodingResult",
    "CodingRun",
    "MedicalCoder",
    "NoteContext",
    "Recorder",
    "Usage",
]

log = logging.getLogger("medcode.agent.coder")

LLM_OUTPUT_INVALID = "LLM_OUTPUT_INVALID"
LLM_ERROR = "LLM_ERROR"
_SET_RULES = frozenset(SET_RULE_IDS)


class RuleNote(BaseModel):
    """Why a rule rejected or warned about a code, and the codes the rule names to report instead."""

    rule: str
    reason: str
    replace_with: list[str] = Field(
        default_factory=list,
        description="Codes the rule names to use instead (the right side, sibling, 7th character or combination "
        "code); empty when the rule names none.",
    )


class CodedCode(BaseModel):
    """One code in a result. ``rules`` lists the rule ids that rejected it."""

    code: str
    description: str | None = None
    confidence: float | None = None
    status: Literal["accepted", "rejected"]
    evidence: list[Evidence] = Field(default_factory=list)
    rejected_evidence: list[Evidence] = Field(default_factory=list, description="Spans that failed a check.")
    rules: list[str] = Field(default_factory=list)
    reasons: list[RuleNote] = Field(default_factory=list, description="Why each rejecting rule fired.")
    warnings: list[RuleNote] = Field(default_factory=list)
    chapter: str | None = None
    index_term: str | None = Field(
        default=None, description="The Alphabetic Index term the evidence names, when it is why the quote is related."
    )


class CodedProcedure(CodedCode):
    """One procedure code in a result: ``system`` is ``icd10pcs``, ``hcpcs`` or ``cpt``; ``modifiers`` the line's.

    ``confidence`` is None: no procedure confidence is calibrated yet, so an accepted procedure still routes
    the chart to review (``LOW_CONFIDENCE``).
    """

    system: ProcedureSystem | None = None
    modifiers: list[str] = Field(default_factory=list)


_COMBINATION_REQUIRED = "COMBINATION_REQUIRED"


def _combination_items(verdicts: list[CodeVerdict], proposed: Proposed) -> list[ProposedItem]:
    """The combination codes to add: one per code rejected by COMBINATION_REQUIRED alone whose partners were accepted.

    I10 beside N18.31 is coded I12.9 (guideline I.C.9.a.2), E11.9 beside a CKD code E11.22, I11.9 beside it I13.10,
    and I12.0 (stage 5) beside N18.31 is I12.9 too: the rule names the code that fits the partners first
    (``conventions.json``, ``pick``). The new code cites the spans of the rejected code and of its partners, and
    its confidence is the lowest of theirs: it holds only when both conditions do. It is validated like any proposal (the caller runs every rule again, NOT_A_CANDIDATE aside:
    the rule derived it from accepted codes); a code already proposed, or one an assertion rule blocked, is not
    added twice.
    """
    by_code = {v.code: v for v in verdicts} | {v.canonical: v for v in verdicts if v.canonical}
    have = {i.code for i in proposed.items} | set(proposed.blocked)
    out: list[ProposedItem] = []
    for verdict in verdicts:
        if verdict.status != "rejected" or verdict.rules != [_COMBINATION_REQUIRED] or verdict.code in proposed.blocked:
            continue
        result = next(r for r in verdict.results if r.rule == _COMBINATION_REQUIRED)
        partners = [by_code.get(code) for code in result.related_codes]
        if not result.replace_with or not partners or any(p is None or p.status != "accepted" for p in partners):
            continue
        code = result.replace_with[0]
        if code in have:
            continue
        have.add(code)
        sources = [verdict, *(p for p in partners if p is not None)]
        evidence: list[Evidence] = []
        for source in sources:
            evidence += [e for e in source.evidence if e not in evidence]
        confidences = [s.confidence for s in sources if s.confidence is not None]
        out.append(
            ProposedItem(code=code, evidence=evidence, features={}, confidence=min(confidences) if confidences else 0.0)
        )
    return out


def _coded(verdict: CodeVerdict, chapter: str | None = None) -> dict[str, Any]:
    """The fields a result shows for one verdict (diagnosis or procedure)."""
    return {
        "code": verdict.canonical or verdict.code,
        "description": verdict.description,
        "confidence": verdict.confidence,
        "status": verdict.status,
        "evidence": verdict.evidence,
        "rejected_evidence": verdict.rejected_evidence,
        "rules": verdict.rules,
        "reasons": [RuleNote(**r.display()) for r in verdict.results if r.severity == "reject"],
        "warnings": [RuleNote(**w.display()) for w in verdict.warnings],
        "chapter": chapter,
        "index_term": verdict.index_term,
    }


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    llm_seconds: float = 0.0
    retrieval_seconds: float = 0.0
    validation_seconds: float = 0.0


class NoteContext(BaseModel):
    """What a note was coded as: its setting and date of service, and, for a note read from FHIR, the
    resources it came from (the FHIR output's claim and provenance cite them)."""

    setting: Literal["outpatient", "inpatient"]
    date_of_service: dt.date | None = None
    fhir: FHIRSource | None = None


class CodingResult(BaseModel):
    """What ``medcode code --json`` prints for one note."""

    note_id: str
    codes: list[CodedCode]
    routing: RoutingDecision
    versions: dict[str, str | None]
    usage: Usage
    proposer: ProposerName
    candidates: list[str] = Field(default_factory=list, description="Codes offered to the proposer, best first.")
    procedures: list[CodedProcedure] | None = Field(
        default=None, description="Procedure codes, when procedure coding is on (None: not asked for)."
    )
    chart_id: int | None = None
    errors: list[str] = Field(default_factory=list)
    context: NoteContext | None = Field(default=None, description="The note's setting, date of service and source.")

    @property
    def accepted_codes(self) -> list[str]:
        return [c.code for c in self.codes if c.status == "accepted"]


class CodingRun(BaseModel):
    """One finished run, as the coder hands it to a ``Recorder``: the note (PHI), the result, the
    validators' verdicts, the raw model output and when the run started and finished."""

    model_config = ConfigDict(frozen=True)

    note: Note
    result: CodingResult
    verdicts: list[CodeVerdict]
    procedures: list[ProcedureVerdict] = Field(default_factory=list)
    raw_llm_output: str | None = None
    started_at: dt.datetime
    finished_at: dt.datetime


class Recorder(Protocol):
    """Where finished runs go (the review stage provides one: queue + audit log).

    ``record`` returns the chart id the run was stored under (or None) and raises a
    ``MedcodeError`` when it cannot be stored; ``close`` releases the recorder's connections.
    """

    def record(self, run: CodingRun) -> int | None: ...

    def close(self) -> None: ...


@cache
def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


class MedicalCoder:
    """Codes notes end to end with the configured proposer.

    ``runtime`` shares the heavy parts with other users of the process (the coder then leaves it
    open on ``close``); without one the coder makes its own and closes it. ``recorder`` receives
    every finished run (the CLI wires in the review queue and audit log; the evaluation harness
    passes none). ``autonomy`` is the governance room's gate for earned autonomy (the CLI wires
    it in; without one routing follows the legacy allow-list); the coder closes both.
    ``proposer`` defaults to the ``proposer`` setting (``retrieval`` unless configured).
    ``routing_checks`` add routing reasons (the CLI root and the copilot wire in monitoring's
    financial-impact check; see ``RoutingCheck``). ``procedures`` (default: the ``procedures`` setting) also
    proposes procedure codes and validates them; their verdicts take part in routing. Raises
    ``IndexNotBuiltError``/``IndexMismatchError`` when the index cannot be opened and auto-build is off,
    ``ConfigError`` for bad settings.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        runtime: Runtime | None = None,
        proposer: ProposerName | None = None,
        recorder: Recorder | None = None,
        autonomy: AutonomyGate | None = None,
        auto_build_index: bool = True,
        retrieval_top_k: int | None = None,
        routing_checks: tuple[RoutingCheck, ...] | list[RoutingCheck] = (),
        procedures: bool | None = None,
    ) -> None:
        self.settings = settings
        self.procedures = settings.procedures if procedures is None else procedures
        self.routing_checks = tuple(routing_checks)
        self.proposer_name: ProposerName = proposer or settings.proposer
        self.recorder = recorder
        self.autonomy = autonomy
        self.retrieval_top_k = retrieval_top_k
        self._owns_runtime = runtime is None
        self.runtime = runtime if runtime is not None else Runtime(settings, auto_build_index=auto_build_index)
        self.registry = self.runtime.registry
        self.policy = RoutingPolicy.from_settings(settings)
        self._lock = threading.Lock()
        self._proposer: Proposer | None = None

    @property
    def validators(self) -> ValidatorPipeline:
        """The runtime's validator pipeline."""
        return self.runtime.validators

    def retriever(self, date_of_service: dt.date | None = None) -> HybridRetriever:
        """The runtime's hybrid retriever for the code-set release of a date of service (loaded once)."""
        return self.runtime.retriever(date_of_service)

    @property
    def proposer(self) -> Proposer:
        with self._lock:
            if self._proposer is None:
                model = self.runtime.acceptance_model
                if self.proposer_name == "llm":
                    self._proposer = LLMProposer(self.runtime.llm(), model=model, vetter=self.vet)
                else:
                    self._proposer = RetrievalProposer(model, vetter=self.vet)
            return self._proposer

    def warm_up(self) -> None:
        """Load the index, embedder, validator models and (for the LLM proposer) start the model server now."""
        self.retriever()
        _ = self.validators.assertion
        self.validators.relatedness.warm(self.registry.get())
        if self.proposer_name == "llm":
            _ = self.proposer
            llm = self.runtime.llm()
            if llm.server is not None:
                llm.server.ensure_running()

    def close(self) -> None:
        """Close the recorder and the autonomy gate, and the runtime when this coder made it."""
        if self.recorder is not None:
            self.recorder.close()
        if self.autonomy is not None:
            self.autonomy.close()
        if self._owns_runtime:
            self.runtime.close()

    def __enter__(self) -> MedicalCoder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the pipeline ------------------------------------------------------------------------
    def code(self, note: Note) -> CodingResult:
        """Code one note. Raises ``NoteError`` for unusable text, ``DateOutOfRangeError`` when no
        release covers the date of service and ``ConfigError`` when the endpoint refuses the credentials;
        other LLM failures route the note to a human (``LLM_UNAVAILABLE``, ``LLM_OUTPUT_INVALID``,
        ``LLM_ERROR``) with the retrieval proposals pre-filled."""
        started = time.monotonic()
        codeset = self.registry.get(note.date_of_service)
        retriever = self.retriever(note.date_of_service)
        proposer = self.proposer
        top_k = self.retrieval_top_k or proposer.top_k(note.setting)  # the acceptance model's K for the setting
        candidates = retriever.search_note(note.text, top_k=top_k, setting=note.setting)
        t_retrieval = time.monotonic() - started

        errors: list[str] = []
        extra_reasons: list[str] = []
        t0 = time.monotonic()
        try:
            proposed = proposer.propose(note, candidates, codeset)
        except LLMUnavailableError as exc:
            errors.append(f"LLM unavailable: {exc}")
            extra_reasons.append(LLM_UNAVAILABLE)
            proposed = self._fallback(note, candidates, codeset)
        except LLMOutputError as exc:
            errors.append(f"LLM output invalid: {exc}")
            extra_reasons.append(LLM_OUTPUT_INVALID)
            proposed = self._fallback(note, candidates, codeset)
        except LLMError as exc:  # e.g. a prompt over the endpoint's context: this note goes to a human
            errors.append(f"LLM error: {exc}")
            extra_reasons.append(LLM_ERROR)
            proposed = self._fallback(note, candidates, codeset)
        t_propose = time.monotonic() - t0

        t0 = time.monotonic()
        ctx = ValidationContext(
            note_text=note.text,
            setting=note.setting,
            age=note.age,
            sex=note.sex,
            date_of_service=note.date_of_service,
            candidates=frozenset(proposed.candidates_offered),
        )
        report = self.validators.validate(Proposal(codes=proposed.as_proposal_codes()), ctx)
        combined = _combination_items(report.verdicts, proposed) if self.settings.combination_codes else []
        if combined:  # the combination codes the rule names, judged by every rule like any proposal
            proposed.items += combined
            # a code the rule derived, not one the proposer was offered: NOT_A_CANDIDATE lets it through, and the
            # result's candidates stay retrieval's (candidate recall measures retrieval)
            if ctx.candidates is not None:
                ctx = ctx.model_copy(update={"candidates": ctx.candidates | {i.code for i in combined}})
            report = self.validators.validate(Proposal(codes=proposed.as_proposal_codes()), ctx)
        procedure_verdicts: list[ProcedureVerdict] = []
        procedure_version: str | None = None
        if self.procedures:
            try:
                procedure_verdicts, procedure_version = self._code_procedures(note, ctx)
            except MedcodeError as exc:
                log.warning("procedure coding failed (%s); the note goes to review", type(exc).__name__)
                errors.append(f"procedures unavailable: {type(exc).__name__}")
                extra_reasons.append(PROCEDURES_UNAVAILABLE)
        t_validate = time.monotonic() - t0

        verdicts = self._drop_blocked(report.verdicts, proposed.blocked)
        for check in self.routing_checks:
            try:
                extra_reasons += check.reasons(note, verdicts)
            except MedcodeError as exc:
                log.warning("routing check %s failed (%s); the note goes to review", check.name, type(exc).__name__)
                extra_reasons.append(f"{ROUTING_CHECK_FAILED}:{check.name}")
        assessment = None
        if self.autonomy is not None:  # earned autonomy: the governance room classifies the note
            accepted = [v.canonical or v.code for v in verdicts if v.status == "accepted"]
            assessment = self.autonomy.assess(
                note.note_type, note.setting, accepted, model_version=self.proposer.model.version
            )
        routing = self.policy.decide(
            [*verdicts, *procedure_verdicts],
            note.note_type,
            extra_reasons=extra_reasons,
            setting=note.setting,
            autonomy=assessment,
        )
        codes = []
        for verdict in verdicts:
            chapter = (
                codeset.get(verdict.canonical).chapter if verdict.canonical and verdict.canonical in codeset else None
            )
            codes.append(CodedCode(**_coded(verdict, chapter)))
        procedures = (
            [CodedProcedure(**_coded(v), system=v.system, modifiers=v.modifiers) for v in procedure_verdicts]
            if self.procedures
            else None
        )
        usage = Usage(
            prompt_tokens=proposed.usage.prompt_tokens if proposed.usage else 0,
            completion_tokens=proposed.usage.completion_tokens if proposed.usage else 0,
            llm_seconds=round(t_propose, 3) if self.proposer_name == "llm" else 0.0,
            retrieval_seconds=round(t_retrieval, 3),
            validation_seconds=round(t_validate, 3),
        )
        versions = self._versions(codeset.version, report.rules_version, proposed, retriever)
        if note.fhir is not None:
            versions["fhir_mappings"] = note.fhir.mappings_version  # read the setting and note type
        if procedure_version is not None:
            versions["procedure_index"] = procedure_version
        result = CodingResult(
            note_id=note.id,
            codes=codes,
            routing=routing,
            versions=versions,
            usage=usage,
            proposer=self.proposer_name,
            candidates=proposed.candidates_offered,
            procedures=procedures,
            errors=errors,
            context=NoteContext(setting=note.setting, date_of_service=note.date_of_service, fhir=note.fhir),
        )
        if self.recorder is not None:
            finished = dt.datetime.now(dt.UTC)
            run = CodingRun(
                note=note,
                result=result,
                verdicts=verdicts,
                procedures=procedure_verdicts,
                raw_llm_output=proposed.raw_output,
                started_at=finished - dt.timedelta(seconds=time.monotonic() - started),
                finished_at=finished,
            )
            result.chart_id = self.recorder.record(run)
        result.usage.seconds = round(time.monotonic() - started, 3)
        return result

    @staticmethod
    def _drop_blocked(verdicts: list[CodeVerdict], blocked: frozenset[str]) -> list[CodeVerdict]:
        """Verdicts without any accepted code that the proposer passed on only to be shown rejected.

        The vetting that blocked them is the final validators minus some rules, so they are rejected
        again; this guard keeps that true should the two ever disagree."""
        kept = [v for v in verdicts if not (v.status == "accepted" and v.code in blocked)]
        if len(kept) != len(verdicts):
            log.warning("%d code(s) blocked by an assertion rule were accepted; dropped", len(verdicts) - len(kept))
        return kept

    def _code_procedures(self, note: Note, ctx: ValidationContext) -> tuple[list[ProcedureVerdict], str]:
        """Propose procedure codes (PCS inpatient, HCPCS outpatient) and validate them; also the index version.

        Raises ``CodeSetBuildError`` when PCS/HCPCS/NCCI data is missing and ``DateOutOfRangeError`` when no
        data covers the date of service (the caller routes the note to review).
        """
        proposer = self.runtime.procedure_proposer
        proposed: list[ProposedProcedure] = proposer.propose(note.text, note.setting)
        return self.validators.procedures.validate(proposed, ctx), proposer.index.version

    def vet(self, note: Note, codes: list[ProposedCode]) -> list[list[str]]:
        """Rule ids rejecting each code on its own merits: a cheap screen of many candidates.

        Rules between codes and SPAN_UNRELATED (which embeds each code's texts) are left out; every
        code that is finally proposed still goes through the whole pipeline.
        """
        ctx = ValidationContext(
            note_text=note.text, setting=note.setting, age=note.age, sex=note.sex, date_of_service=note.date_of_service
        )
        report = self.validators.validate(Proposal(codes=codes), ctx, relatedness=False)
        return [[r for r in v.rules if r not in _SET_RULES] for v in report.verdicts]

    def _fallback(self, note: Note, candidates: Any, codeset: ICD10CMCodeSet) -> Proposed:
        """When the LLM fails, pre-fill the human's worklist with the retrieval proposer."""
        proposed = RetrievalProposer(self.runtime.acceptance_model, vetter=self.vet).propose(note, candidates, codeset)
        proposed.prompt_version = None
        return proposed

    def _versions(
        self, codeset_version: str, rules_version: str, proposed: Proposed, retriever: Any
    ) -> dict[str, str | None]:
        identity = proposed.identity
        return {
            "medcode": __version__,
            "git_commit": _git_commit(),
            "proposer": self.proposer_name,
            "model": identity.model if identity else None,
            "model_sha256": identity.weights_sha256 if identity else None,
            "endpoint": identity.endpoint if identity else None,
            "prompt": proposed.prompt_version,
            "acceptance_model": self.proposer.model.version,
            "proposer_params": proposer_parameters()["version"],
            "codeset": codeset_version,
            "rules": rules_version,
            "index": retriever.index.version,
            "retrieval_data": data_version(),
            "candidate_ranker": retriever.ranker.version if retriever.ranker is not None else None,
            "embedder": retriever.embedder.id,
        }
