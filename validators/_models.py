"""Typed hand-offs of the validation stage: proposals in, verdicts out.

A proposal can come from our LLM, from the retrieval-only proposer or from anyone's system
(``medcode validate``); the validators treat them all the same.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "CodeVerdict",
    "Evidence",
    "ProcedureSystem",
    "ProcedureVerdict",
    "Proposal",
    "ProposedCode",
    "ProposedProcedure",
    "RuleResult",
    "Setting",
    "Severity",
    "ValidationContext",
    "ValidationReport",
]

Setting = Literal["outpatient", "inpatient"]
ProcedureSystem = Literal["icd10pcs", "hcpcs", "cpt"]
"""Procedure code systems: ICD-10-PCS (inpatient), HCPCS Level II and CPT (outpatient)."""
Severity = Literal["reject", "warn"]


class Evidence(BaseModel):
    """A verbatim quote from the note; ``start``/``end`` are character offsets (end exclusive)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=2_000)
    start: int | None = Field(default=None, ge=0)
    end: int | None = Field(default=None, ge=0)


class ProposedCode(BaseModel):
    """One proposed code with its evidence and the proposer's confidence (0..1)."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(max_length=64)
    evidence: list[Evidence] = Field(default_factory=list, max_length=50)
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)


class ProposedProcedure(BaseModel):
    """One proposed procedure code: ``system`` is inferred from the code's shape when not given (7 characters:
    ICD-10-PCS; a letter A-V and 4 digits: HCPCS Level II; 5 characters ending in a digit, F, T, U, A or M: CPT);
    ``modifiers`` are the HCPCS/CPT modifiers on the line (e.g. ``["59"]``, ``["XS", "RT"]``)."""

    model_config = ConfigDict(extra="forbid")

    code: str = Field(max_length=64)
    system: ProcedureSystem | None = None
    modifiers: list[str] = Field(default_factory=list, max_length=4)
    evidence: list[Evidence] = Field(default_factory=list, max_length=50)
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)


class Proposal(BaseModel):
    """The file format of ``medcode validate --proposal``: diagnoses in ``codes``, procedures in ``procedures``.

    A proposal needs ``codes`` unless it gives ``procedures`` (a procedures-only proposal).
    """

    model_config = ConfigDict(extra="forbid")

    codes: list[ProposedCode] = Field(max_length=500)
    procedures: list[ProposedProcedure] = Field(default_factory=list, max_length=200)

    @model_validator(mode="before")
    @classmethod
    def _procedures_only(cls, data: object) -> object:
        if isinstance(data, dict) and "procedures" in data and "codes" not in data:
            return {**data, "codes": []}
        return data


class ValidationContext(BaseModel):
    """What the validators judge against besides the code set."""

    model_config = ConfigDict(frozen=True)

    note_text: str
    setting: Setting = "outpatient"
    age: int | None = Field(default=None, ge=0, le=130)
    sex: Literal["F", "M"] | None = None
    date_of_service: dt.date | None = None
    candidates: frozenset[str] | None = Field(
        default=None, description="Codes the proposer was offered (dotted); enables NOT_A_CANDIDATE."
    )
    claim_codes: tuple[str, ...] = Field(
        default=(),
        max_length=500,
        description="Codes already on the claim: the set rules (DUPLICATE, LESS_SPECIFIC_DUPLICATE, EXCLUDES1_CONFLICT, "
        "CODE_FIRST, COMBINATION_REQUIRED, SYMPTOM_INTEGRAL, USE_ADDITIONAL) judge the proposed codes against them; "
        "they get no verdict of their own.",
    )
    evidence_optional: bool = Field(
        default=False,
        description="A proposed code with no evidence is not judged on evidence and carries the NO_EVIDENCE_GIVEN "
        "warning instead of the SPAN_NOT_IN_NOTE rejection (for codes a coder chose; never for a model's).",
    )


# Rules whose suggestions are codes to report instead of the one judged: the right side, 7th character,
# sibling or combination code, a billable code under a header. The other rules' suggestions are not
# replacements (CODE_FIRST and USE_ADDITIONAL name codes to add beside it; NCCI names modifiers).
REPLACEMENT_RULES = frozenset(
    {
        "CODE_MALFORMED",
        "CODE_UNKNOWN",
        "CODE_NOT_BILLABLE",
        "SEVENTH_CHARACTER",
        "SPECIFICITY_UNSUPPORTED",
        "LATERALITY_CONFLICT",
        "ENCOUNTER_CONFLICT",
        "MORE_SPECIFIC_AVAILABLE",
        "COMBINATION_REQUIRED",
        "PROC_CODE_UNKNOWN",
        "PCS_INCOMPLETE",
        "PCS_AXIS_INVALID",
    }
)


class RuleResult(BaseModel):
    """One rule firing on one code. ``replace_with`` is ``suggestions`` when they are codes to use instead."""

    rule: str
    severity: Severity
    reason: str
    data_version: str
    evidence_index: int | None = None
    related_codes: list[str] = Field(default_factory=list)
    suggestions: list[str] = Field(default_factory=list)

    @property
    def replace_with(self) -> list[str]:
        return list(self.suggestions) if self.rule in REPLACEMENT_RULES else []

    def display(self) -> dict[str, Any]:
        """What a coder is shown: the rule id, its reason and the codes to use instead."""
        return {"rule": self.rule, "reason": self.reason, "replace_with": self.replace_with}


class CodeVerdict(BaseModel):
    """The outcome for one proposed code. ``rules`` lists the ids that rejected it."""

    code: str
    canonical: str | None = None
    description: str | None = None
    status: Literal["accepted", "rejected"]
    confidence: float | None = None
    rules: list[str] = Field(default_factory=list)
    warnings: list[RuleResult] = Field(default_factory=list)
    results: list[RuleResult] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list, description="Resolved spans that passed the checks.")
    rejected_evidence: list[Evidence] = Field(
        default_factory=list, description="Spans found in the note that failed a check (for reviewers to see)."
    )
    index_term: str | None = Field(
        default=None,
        description="The ICD-10-CM Alphabetic Index term that a supporting quote names, when that term (not the "
        "wording of the code's own texts) made the quote related to the code (SPAN_UNRELATED).",
    )


class ProcedureVerdict(CodeVerdict):
    """The outcome for one proposed procedure code: the system it was judged in and the line's modifiers."""

    system: ProcedureSystem | None = None
    modifiers: list[str] = Field(default_factory=list)


class ValidationReport(BaseModel):
    """Verdicts for a whole proposal, in proposal order (procedures apart from diagnoses)."""

    verdicts: list[CodeVerdict]
    codeset_version: str
    rules_version: str
    procedures: list[ProcedureVerdict] = Field(default_factory=list)

    @property
    def accepted(self) -> list[CodeVerdict]:
        return [v for v in self.verdicts if v.status == "accepted"]

    @property
    def all_accepted(self) -> bool:
        return all(v.status == "accepted" for v in [*self.verdicts, *self.procedures])
