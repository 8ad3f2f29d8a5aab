"""Typed hand-offs of the copilot's HTTP API: requests in, jobs and search hits out."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from medcode._input import reject_lone_surrogates
from medcode.agent import NoteMetadata
from medcode.review import EvidenceSpan

__all__ = [
    "AdjudicationRequest",
    "AuditAnswerRequest",
    "AuditSampleRequest",
    "CodeRequest",
    "CodingJob",
    "ErrorInfo",
    "JobStatus",
    "ProcedureReviewAction",
    "ReviewAction",
    "ReviewRequest",
    "SearchHit",
]

JobStatus = Literal["queued", "running", "done", "failed"]
UnicodeText = Annotated[str, AfterValidator(reject_lone_surrogates)]  # a lone surrogate: 422 naming the field


class CodeRequest(BaseModel):
    """``POST /v1/code``: one note to code. ``text`` is PHI: stored with the chart, never logged."""

    model_config = ConfigDict(extra="forbid")

    text: UnicodeText = Field(description="The clinical note, plain UTF-8 text.")
    id: UnicodeText | None = Field(
        default=None, min_length=1, max_length=200, description="Note id (default: a hash prefix)."
    )
    setting: Literal["outpatient", "inpatient"] | None = Field(default=None, description="Default: from settings.")
    note_type: UnicodeText = Field(default="outpatient_visit", min_length=1, max_length=100, description="For routing.")
    age: int | None = Field(default=None, ge=0, le=130, description="Patient age in years (enables age edits).")
    sex: Literal["F", "M"] | None = Field(default=None, description="Patient sex (enables sex edits).")
    date_of_service: dt.date | None = Field(default=None, description="Picks the code-set release.")
    metadata: NoteMetadata | None = Field(
        default=None,
        description="Optional provider_id, department, payer and encounter_date; the monitoring reports group by them.",
    )


class ErrorInfo(BaseModel):
    """Why a job failed: the ``medcode.errors`` class name and its message (never note text)."""

    type: str
    message: str


class CodingJob(BaseModel):
    """A note handed to the coding worker. ``result`` is the ``medcode code --json`` document once done."""

    job_id: str
    status: JobStatus
    note_id: str
    note_type: str | None = None
    proposer: str
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    position: int | None = Field(default=None, description="Jobs ahead of this one while queued (0 = next).")
    chart_id: int | None = Field(default=None, description="The review-queue chart, once coded.")
    error: ErrorInfo | None = None
    result: dict[str, Any] | None = None
    status_url: str | None = None


class ReviewAction(BaseModel):
    """One coder decision on a chart code. ``replace`` needs ``new_code``; ``add`` names the new code in ``code``.

    ``evidence`` (only for ``add`` and ``replace``): the coder's spans for the new code, as offsets into
    the note (``start``, ``end``), a verbatim quote (``text``) or both; with them the new code goes
    through the evidence rules too, without them its verdict warns NO_EVIDENCE_GIVEN.
    """

    model_config = ConfigDict(extra="forbid")

    action: Literal["accept", "reject", "replace", "add"]
    code: str = Field(min_length=1, max_length=20)
    new_code: str | None = Field(default=None, min_length=1, max_length=20)
    evidence: list[EvidenceSpan] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _new_code_only_for_replace(self) -> ReviewAction:
        if self.action == "replace" and self.new_code is None:
            raise ValueError("replace needs new_code (the code that replaces code)")
        if self.action != "replace" and self.new_code is not None:
            raise ValueError(f"new_code is only for replace, not {self.action}")
        if self.evidence and self.action not in ("add", "replace"):
            raise ValueError(f"evidence is only for the new code of add or replace, not {self.action}")
        return self

    @property
    def added_code(self) -> str | None:
        """The code this action puts on the chart (``add``'s code, ``replace``'s new code), if any."""
        return self.code if self.action == "add" else self.new_code


class ProcedureReviewAction(BaseModel):
    """A coder's decision on one of the chart's proposed procedure codes (ICD-10-PCS, HCPCS, CPT)."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["accept", "reject"]
    code: str = Field(min_length=1, max_length=20)


class ReviewRequest(BaseModel):
    """``POST /v1/charts/{id}/review``: coder decisions applied all-or-nothing, then optionally finalise.

    ``expected_version`` is the chart version the coder was looking at (optimistic locking):
    the request fails with 409 when someone changed or finalised the chart since.
    """

    model_config = ConfigDict(extra="forbid")

    user: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Deprecated: the audit log records the signed-in user. If given it must be that user (403).",
    )
    expected_version: int = Field(ge=1)
    actions: list[ReviewAction] = Field(default_factory=list, max_length=200)
    procedures: list[ProcedureReviewAction] = Field(
        default_factory=list, max_length=200, description="Accept or reject the chart's proposed procedure codes."
    )
    reason: UnicodeText | None = Field(
        default=None,
        max_length=1_000,
        description="Why; required to accept, add or substitute a code the validators rejected.",
    )
    finalise: bool = False

    @model_validator(mode="after")
    def _something_to_do(self) -> ReviewRequest:
        if not self.actions and not self.procedures and not self.finalise:
            raise ValueError("nothing to do: give at least one action or finalise=true")
        return self


class SearchHit(BaseModel):
    """A code a coder can add: an exact code match or a retrieval candidate."""

    code: str
    description: str
    chapter: str | None = None
    billable: bool = True
    score: float | None = Field(default=None, description="Retrieval score (None for an exact code match).")
    source: Literal["code", "retrieval"]


class AuditSampleRequest(BaseModel):
    """``POST /v1/audit/batches``: draw charts into a blinded audit batch."""

    model_config = ConfigDict(extra="forbid")

    by: str | None = Field(
        default=None, min_length=1, max_length=100, description="Deprecated: the signed-in user is recorded."
    )
    seed: int | None = Field(default=None, description="Random seed (default: a fresh one, recorded).")
    review_sample: int | None = Field(default=None, ge=0, le=10_000, description="Reviewed charts per case type.")


class AuditAnswerRequest(BaseModel):
    """``POST /v1/audit/tasks/{id}/answer``: an auditor's blind codes for the note (empty: nothing to code)."""

    model_config = ConfigDict(extra="forbid")

    auditor: str | None = Field(
        default=None, min_length=1, max_length=100, description="Deprecated: the signed-in user is recorded."
    )
    codes: list[str] = Field(default_factory=list, max_length=60)


class AdjudicationRequest(BaseModel):
    """``POST /v1/audit/disputes/{id}/decision``: the adjudicator's codes become the gold label."""

    model_config = ConfigDict(extra="forbid")

    adjudicator: str | None = Field(
        default=None, min_length=1, max_length=100, description="Deprecated: the signed-in user is recorded."
    )
    codes: list[str] = Field(default_factory=list, max_length=60)
    reason: str | None = Field(default=None, max_length=1_000)
