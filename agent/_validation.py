"""Checking anyone's proposed codes: one contract for ``medcode validate`` and ``POST /v1/validate``.

``ValidationRequest`` is what both take (the CLI builds it from its flags and files); ``validate_proposal``
runs the validators and routing and returns the ``medcode validate --json`` document. Candidates are
required: the codes the proposer was offered, so that a code from outside them is rejected
NOT_A_CANDIDATE. A caller that has no candidate list says so explicitly (``no_candidates``), and the
document says the check was skipped.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from medcode.agent._note import Note
from medcode.agent._routing import RoutingPolicy
from medcode.config import Settings
from medcode.validators import (
    CodeVerdict,
    ProcedureVerdict,
    Proposal,
    ValidationContext,
    ValidationReport,
    ValidatorPipeline,
)

__all__ = ["CANDIDATES_SKIPPED", "ValidationRequest", "validate_proposal", "validation_document"]

CANDIDATES_SKIPPED = (
    "candidates not checked (no_candidates): a code the proposer was not offered is not rejected NOT_A_CANDIDATE"
)


class ValidationRequest(BaseModel):
    """``POST /v1/validate``: a note, the proposal to check, and what the rules need to know.

    ``note`` is PHI: never logged. Give ``candidates`` (the codes the proposer was offered) or set
    ``no_candidates`` to true; neither, or both, is an error.
    """

    model_config = ConfigDict(extra="forbid")

    note: str = Field(description="The clinical note, plain UTF-8 text.")
    proposal: Proposal = Field(description='The codes to check: {"codes": [{"code", "evidence", "confidence"}]}.')
    candidates: list[str] | None = Field(
        default=None,
        max_length=5_000,
        description="Codes the proposer was offered; a proposed code outside them is rejected NOT_A_CANDIDATE.",
    )
    no_candidates: bool = Field(default=False, description="Skip the candidate check, explicitly.")
    setting: Literal["outpatient", "inpatient"] | None = Field(default=None, description="Default: from settings.")
    note_type: str = Field(default="outpatient_visit", min_length=1, max_length=100, description="For routing.")
    age: int | None = Field(default=None, ge=0, le=130, description="Patient age in years (enables age edits).")
    sex: Literal["F", "M"] | None = Field(default=None, description="Patient sex (enables sex edits).")
    date_of_service: dt.date | None = Field(default=None, description="Picks the code-set release.")

    @model_validator(mode="after")
    def _candidates_or_explicitly_none(self) -> ValidationRequest:
        if self.candidates is None and not self.no_candidates:
            raise ValueError(
                "candidates are required (the codes the proposer was offered); "
                "set no_candidates to true to skip the NOT_A_CANDIDATE check"
            )
        if self.candidates is not None and self.no_candidates:
            raise ValueError("give candidates or no_candidates, not both")
        return self


def _verdict_fields(v: CodeVerdict | ProcedureVerdict) -> dict[str, Any]:
    """What a diagnosis and a procedure verdict share in the document: status, rules, reasons, evidence."""
    return {
        "status": v.status,
        "rules": v.rules,
        "reasons": [r.model_dump(mode="json") for r in v.results if r.severity == "reject"],
        "warnings": [w.model_dump(mode="json") for w in v.warnings],
        "evidence": [e.model_dump(mode="json") for e in v.evidence],
        "confidence": v.confidence,
    }


def validation_document(
    report: ValidationReport, routing: dict[str, Any], *, candidates_checked: bool
) -> dict[str, Any]:
    """The ``medcode validate --json`` document (also the ``POST /v1/validate`` response)."""
    return {
        "codes": [
            {"code": v.code, "canonical": v.canonical, "description": v.description, **_verdict_fields(v)}
            for v in report.verdicts
        ],
        "procedures": [
            {
                "code": v.code,
                "canonical": v.canonical,
                "system": v.system,
                "modifiers": v.modifiers,
                "description": v.description,
                **_verdict_fields(v),
            }
            for v in report.procedures
        ],
        "routing": routing,
        "candidates_checked": candidates_checked,
        "notes": [] if candidates_checked else [CANDIDATES_SKIPPED],
        "codeset_version": report.codeset_version,
        "rules_version": report.rules_version,
    }


def validate_proposal(
    pipeline: ValidatorPipeline, settings: Settings, request: ValidationRequest
) -> tuple[ValidationReport, dict[str, Any]]:
    """Run the validators and routing; returns the report and the ``--json`` document.

    Raises ``NoteError`` for an empty, NUL-containing or oversized note and ``DateOutOfRangeError``
    when no release covers the date of service; a bad code or quote never raises (it is rejected).
    """
    note = Note.checked(request.note, settings.max_note_chars).text
    ctx = ValidationContext(
        note_text=note,
        setting=request.setting or settings.setting,
        age=request.age,
        sex=request.sex,
        date_of_service=request.date_of_service,
        candidates=frozenset(request.candidates) if request.candidates is not None else None,
    )
    report = pipeline.validate(request.proposal, ctx)
    routing = (
        RoutingPolicy.from_settings(settings)
        .decide([*report.verdicts, *report.procedures], request.note_type)
        .model_dump(mode="json")
    )
    return report, validation_document(report, routing, candidates_checked=request.candidates is not None)
