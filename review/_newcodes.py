"""Codes a coder adds or substitutes go through the validators, as the machine's suggestions do.

A new code (``add``, or the new code of a ``replace``) is judged against the chart's note and the
codes that will be on the claim once the change is applied (the chart's selected codes, less the
ones the change rejects or replaces, plus the ones it accepts), with ``ValidatorPipeline``:

- the code rules: CODE_MALFORMED, CODE_UNKNOWN and CODE_NOT_BILLABLE are refused outright (the
  code cannot be billed; ``MalformedCodeError``, ``UnknownCodeError``, ``InputError``), no reason
  overrides them;
- the set rules against the claim: DUPLICATE, LESS_SPECIFIC_DUPLICATE (with an evidence span: it needs the
  code's MORE_SPECIFIC_AVAILABLE warning), EXCLUDES1_CONFLICT, CODE_FIRST, COMBINATION_REQUIRED, and the
  warnings SYMPTOM_INTEGRAL and USE_ADDITIONAL;
- with an evidence span (``EvidenceSpan``: offsets into the note, a quote, or both), the evidence
  rules as for a suggestion (located, instruction, related, asserted, then the specificity rules
  on the spans that pass). Without one they are not run and the verdict carries the
  NO_EVIDENCE_GIVEN warning: coders often code from the whole chart. NOT_A_CANDIDATE never applies.

Charts keep no age or sex, so AGE_CONFLICT and SEX_CONFLICT do not run here.

A new code the validators reject is stored only with a reason (``OverrideReasonRequiredError``
otherwise), as accepting a rejected suggestion is; the verdict (``CodeCheck``) is stored with the
code and its rule ids go to the action's audit record with ``guardrail_override``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from medcode.codesets import normalize_icd10cm
from medcode.errors import InputError, OverrideReasonRequiredError
from medcode.validators import (
    CodeVerdict,
    Evidence,
    Proposal,
    ProposedCode,
    RuleResult,
    ValidationContext,
    ValidatorPipeline,
)

if TYPE_CHECKING:
    from medcode.review._queue import Chart

__all__ = ["NEW_CODE_ACTIONS", "CodeCheck", "EvidenceSpan", "NewCodes", "check_new_codes", "code_key"]

NEW_CODE_ACTIONS = frozenset({"add", "replace"})
_MAX_SPANS = 20
_STRUCTURAL = frozenset({"CODE_MALFORMED", "SEVENTH_CHARACTER", "CODE_UNKNOWN", "CODE_NOT_BILLABLE"})


def code_key(code: str) -> str:
    """A code without dot, spaces or case: how the queue matches codes."""
    return "".join(code.split()).upper().replace(".", "")


class EvidenceSpan(BaseModel):
    """A coder's evidence for a code they add or substitute: character offsets into the note (end
    exclusive), a verbatim quote, or both (then the offsets must slice to the quote)."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = Field(default=None, min_length=1, max_length=2_000)
    start: int | None = Field(default=None, ge=0)
    end: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _offsets_or_quote(self) -> EvidenceSpan:
        if (self.start is None) != (self.end is None):
            raise ValueError("give both start and end offsets, or neither")
        if self.start is None and self.text is None:
            raise ValueError("give the offsets of the evidence in the note (start, end), a quote (text), or both")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        return self

    def resolve(self, note: str) -> Evidence:
        """The validators' ``Evidence``: a span given by offsets only takes its text from the note.

        Raises ``InputError`` for offsets outside the note or a blank span.
        """
        if self.text is not None:
            return Evidence(text=self.text, start=self.start, end=self.end)
        assert self.start is not None and self.end is not None
        if self.end > len(note):
            raise InputError(f"evidence offsets {self.start}:{self.end} are outside the note ({len(note)} characters)")
        text = note[self.start : self.end]
        if not text.strip():
            raise InputError(f"evidence offsets {self.start}:{self.end} hold only whitespace")
        if len(text) > 2_000:
            raise InputError(f"evidence offsets {self.start}:{self.end} span more than 2000 characters")
        return Evidence(text=text, start=self.start, end=self.end)


class CodeCheck(BaseModel):
    """The validators' verdict on a code a coder added or substituted, as stored with the code.

    ``results`` holds every rejection and warning with its reason and data version (reasons name
    offsets, never quote the note); ``evidence`` the coder's spans that passed, ``rejected_evidence``
    those that failed; ``evidence_given`` says whether the evidence rules ran at all.
    """

    status: Literal["accepted", "rejected"]
    rules: list[str] = Field(default_factory=list, description="Rule ids that rejected the code.")
    results: list[RuleResult] = Field(default_factory=list)
    evidence: list[Evidence] = Field(default_factory=list)
    rejected_evidence: list[Evidence] = Field(default_factory=list)
    evidence_given: bool = False
    codeset_version: str
    rules_version: str
    index_term: str | None = None  # the Alphabetic Index term the coder's evidence names (CodeVerdict.index_term)

    @property
    def reasons(self) -> list[RuleResult]:
        return [r for r in self.results if r.severity == "reject"]

    @property
    def warnings(self) -> list[RuleResult]:
        return [r for r in self.results if r.severity == "warn"]

    @classmethod
    def from_verdict(
        cls, verdict: CodeVerdict, *, evidence_given: bool, codeset_version: str, rules_version: str
    ) -> CodeCheck:
        return cls(
            status=verdict.status,
            rules=list(verdict.rules),
            results=list(verdict.results),
            evidence=list(verdict.evidence),
            rejected_evidence=list(verdict.rejected_evidence),
            index_term=verdict.index_term,
            evidence_given=evidence_given,
            codeset_version=codeset_version,
            rules_version=rules_version,
        )

    def display(self, code: str) -> dict[str, Any]:
        """What a coder is shown (and ``OverrideReasonRequiredError.details`` carries): no note text."""
        return {
            "code": code,
            "status": self.status,
            "rules": list(self.rules),
            "reasons": [r.display() for r in self.reasons],
            "warnings": [r.display() for r in self.warnings],
        }


class NewCodes(BaseModel):
    """The outcome of checking one change's new codes: per code key, the verdict and the code's details."""

    checks: dict[str, CodeCheck] = Field(default_factory=dict)
    details: dict[str, tuple[str | None, str | None]] = Field(
        default_factory=dict, description="Code key -> (description, chapter) from the code set."
    )


def _claim_after(chart: Chart, steps: Sequence[tuple[str, str, str | None]]) -> tuple[list[str], list[str]]:
    """(codes on the claim once ``steps`` are applied, without the new ones; the new codes, canonical, in order).

    Steps that name codes not on the chart are skipped here: the queue refuses them when it applies them.
    Raises ``MalformedCodeError`` for a new code that is not shaped like ICD-10-CM.
    """
    on_chart = {code_key(c.code): c.code for c in chart.codes}
    claim = {code_key(c.code): c.code for c in chart.codes if c.selected}
    new: list[str] = []
    for action, code, new_code in steps:
        if not isinstance(code, str) or not code.strip():
            continue
        if action == "add":
            new.append(normalize_icd10cm(code))
        elif action == "replace":
            claim.pop(code_key(code), None)
            if isinstance(new_code, str) and new_code.strip():
                new.append(normalize_icd10cm(new_code))
        elif action == "reject":
            claim.pop(code_key(code), None)
        elif action == "accept" and code_key(code) in on_chart:
            claim[code_key(code)] = on_chart[code_key(code)]
    new_keys = {code_key(c) for c in new}
    return [c for k, c in claim.items() if k not in new_keys], new


def check_new_codes(
    pipeline: ValidatorPipeline,
    chart: Chart,
    steps: Sequence[tuple[str, str, str | None]],
    *,
    evidence: Mapping[str, Sequence[EvidenceSpan]],
    reason: str | None,
) -> NewCodes:
    """Validate the new codes of ``steps`` on ``chart`` (read with its note text, at the version the change expects).

    Raises ``MalformedCodeError``/``UnknownCodeError``/``InputError`` for a code that cannot be billed
    (malformed, unknown in the release for the chart's date of service, a header), ``InputError`` for
    evidence given for a code the change does not add or substitute, or unusable offsets, and
    ``OverrideReasonRequiredError`` when a new code is rejected and ``reason`` is None.
    """
    if chart.note_text is None:
        raise InputError(f"chart {chart.chart_id} was read without its note text; new codes cannot be checked")
    claim, new = _claim_after(chart, steps)
    spans: dict[str, list[EvidenceSpan]] = {}
    new_keys = {code_key(c) for c in new}
    for raw, given in evidence.items():
        key = code_key(normalize_icd10cm(raw))
        if key not in new_keys:
            raise InputError(
                f"evidence given for {raw}, which this change does not add or substitute "
                f"(new codes: {', '.join(new) or 'none'})"
            )
        spans.setdefault(key, []).extend(given)
        if len(spans[key]) > _MAX_SPANS:
            raise InputError(f"at most {_MAX_SPANS} evidence spans per code")
    out = NewCodes()
    if not new:
        return out
    codeset = pipeline.registry.get(chart.date_of_service)
    for code in new:
        record = codeset.get(code)  # MalformedCodeError, UnknownCodeError (with suggestions)
        if not record.billable:
            raise InputError(f"{record.code} is a header, not a billable code; pick one of its children")
        out.details[code_key(code)] = (record.description, record.chapter)
    proposal = Proposal(
        codes=[
            ProposedCode(code=code, evidence=[s.resolve(chart.note_text) for s in spans.get(code_key(code), [])])
            for code in new
        ]
    )
    ctx = ValidationContext(
        note_text=chart.note_text,
        setting="inpatient" if chart.setting == "inpatient" else "outpatient",
        date_of_service=chart.date_of_service,
        claim_codes=tuple(claim),
        evidence_optional=True,
    )
    report = pipeline.validate(proposal, ctx)
    refused: dict[str, list[str]] = {}
    details: list[dict[str, Any]] = []
    for code, verdict in zip(new, report.verdicts, strict=True):
        check = CodeCheck.from_verdict(
            verdict,
            evidence_given=code_key(code) in spans,
            codeset_version=report.codeset_version,
            rules_version=report.rules_version,
        )
        structural = [r for r in check.rules if r in _STRUCTURAL]
        if structural:  # not expected after the code-set look-up above; never overridable
            raise InputError(f"{code} cannot be billed ({', '.join(structural)}); no reason overrides that")
        out.checks.setdefault(code_key(code), check)
        if check.status == "rejected":
            refused[code] = check.rules
            details.append(check.display(code))
    if refused and reason is None:
        said = "; ".join(
            f"{d['code']} ({', '.join(d['rules'])}: " + " / ".join(r["reason"] for r in d["reasons"]) + ")"
            for d in details
        )
        codes = ", ".join(refused)
        rules = ", ".join(dict.fromkeys(r for rs in refused.values() for r in rs))
        what = f"code {codes} is" if len(refused) == 1 else f"codes {codes} are"
        raise OverrideReasonRequiredError(
            f"{what} rejected by the validators ({rules}); adding {'it' if len(refused) == 1 else 'them'} needs a "
            f"reason. {said}",
            rules=refused,
            details=details,
        )
    return out
