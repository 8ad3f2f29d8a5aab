"""The outpatient procedure gold set: HCPCS Level II lines with traps, and how the validators and proposer score.

One record per note (``evals/data/hcpcs_gold.jsonl``, written by ``tools/make_hcpcs_gold.py``): the note, the
claim lines a coder would bill (``gold``) and ``lines``, proposed claim lines each with the verdict it must get:
``accepted`` or the rule id that must reject it (traps: an NCCI pair bundled with modifier indicator 0, a
modifier-indicator-1 pair without 59/X{EPSU}, a declined, scheduled or earlier procedure, a duplicate line) or
a warning it must carry (``NCCI_MODIFIER_BYPASS`` when the modifier is there). ``score_traps`` checks the lines
through the procedure validators; ``score_proposer`` runs the procedure proposer on each note and scores the
codes the validators then accept against ``gold``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from medcode.errors import InputError
from medcode.validators import Evidence, ProposedProcedure, ValidationContext

if TYPE_CHECKING:
    from medcode.agent._procedure_proposer import ProcedureProposer
    from medcode.validators import ProcedureValidator

__all__ = [
    "GoldProcedureLine",
    "ProcedureGoldCase",
    "ProcedureTrapLine",
    "TrapOutcome",
    "read_procedure_gold",
    "score_proposer",
    "score_traps",
]

TrapKind = Literal[
    "clean",
    "ncci_bundled",
    "ncci_modifier_required",
    "ncci_modifier_bypass",
    "declined",
    "scheduled",
    "earlier",
    "duplicate",
    "unknown_code",
]


class GoldProcedureLine(BaseModel):
    """A claim line a coder would bill for the note."""

    model_config = ConfigDict(extra="forbid")

    code: str
    modifiers: list[str] = Field(default_factory=list)


class ProcedureTrapLine(BaseModel):
    """A proposed claim line and what the validators must say: ``expect`` is ``accepted`` or a rejecting rule
    id; ``warning`` a warning rule id the line must carry. ``quote`` must occur verbatim in the note."""

    model_config = ConfigDict(extra="forbid")

    code: str
    modifiers: list[str] = Field(default_factory=list)
    quote: str = Field(min_length=1)
    expect: str = Field(min_length=1)
    warning: str | None = None


class ProcedureGoldCase(BaseModel):
    """One note of the gold set (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    trap: TrapKind
    setting: Literal["outpatient", "inpatient"] = "outpatient"
    date_of_service: dt.date
    note: str = Field(min_length=1)
    gold: list[GoldProcedureLine]
    lines: list[ProcedureTrapLine] = Field(min_length=1)

    @model_validator(mode="after")
    def _quotes_in_note(self) -> ProcedureGoldCase:
        for line in self.lines:
            if line.quote not in self.note:
                raise ValueError(f"quote of {line.code} is not in the note")
        return self

    def proposal(self) -> list[ProposedProcedure]:
        """The lines as a proposal, each quoting its sentence with offsets."""
        out = []
        for line in self.lines:
            start = self.note.index(line.quote)
            quote = Evidence(text=line.quote, start=start, end=start + len(line.quote))
            out.append(ProposedProcedure(code=line.code, system="hcpcs", modifiers=line.modifiers, evidence=[quote]))
        return out

    def context(self) -> ValidationContext:
        return ValidationContext(note_text=self.note, setting=self.setting, date_of_service=self.date_of_service)


def read_procedure_gold(path: Path) -> list[ProcedureGoldCase]:
    """The records of a gold file. Raises ``InputError`` naming the line of a bad record or a repeated id."""
    cases: list[ProcedureGoldCase] = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read the procedure gold set {path}: {exc.strerror or exc}") from None
    for lineno, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        try:
            case = ProcedureGoldCase.model_validate(json.loads(raw))
        except json.JSONDecodeError as exc:
            raise InputError(f"{path.name} line {lineno}: not JSON: {exc.msg}") from None
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(x) for x in e['loc']) or 'record'}: {e['msg']}" for e in exc.errors(include_input=False)
            )
            raise InputError(f"{path.name} line {lineno}: not a procedure gold record: {problems}") from None
        if any(c.id == case.id for c in cases):
            raise InputError(f"{path.name} line {lineno}: id {case.id!r} is repeated")
        cases.append(case)
    return cases


class TrapOutcome(BaseModel):
    """One proposed line's expected and actual verdict."""

    case: str
    trap: str
    code: str
    expect: str
    got: str
    warning: str | None
    warnings: list[str]

    @property
    def ok(self) -> bool:
        return self.got == self.expect and (self.warning is None or self.warning in self.warnings)


def score_traps(
    cases: list[ProcedureGoldCase], validator: ProcedureValidator
) -> tuple[list[TrapOutcome], dict[str, int]]:
    """Every line of every case through the validators: outcomes and figures (lines right, traps caught, clean
    lines wrongly rejected). Raises what ``ProcedureValidator.validate`` raises (data missing, date out of range).
    """
    outcomes: list[TrapOutcome] = []
    for case in cases:
        verdicts = validator.validate(case.proposal(), case.context())
        for line, verdict in zip(case.lines, verdicts, strict=True):
            got = "accepted" if verdict.status == "accepted" else ",".join(verdict.rules)
            outcomes.append(
                TrapOutcome(
                    case=case.id,
                    trap=case.trap,
                    code=line.code,
                    expect=line.expect,
                    got=got,
                    warning=line.warning,
                    warnings=[w.rule for w in verdict.warnings],
                )
            )
    traps = [o for o in outcomes if o.expect != "accepted"]
    clean = [o for o in outcomes if o.expect == "accepted"]
    figures = {
        "lines": len(outcomes),
        "lines_right": sum(o.ok for o in outcomes),
        "traps": len(traps),
        "traps_rejected_with_the_right_rule": sum(o.ok for o in traps),
        "clean_lines": len(clean),
        "clean_lines_wrongly_rejected": sum(o.got != "accepted" for o in clean),
    }
    return outcomes, figures


def score_proposer(
    cases: list[ProcedureGoldCase], proposer: ProcedureProposer, validator: ProcedureValidator
) -> dict[str, float]:
    """The proposer on each note, its codes validated; accepted codes scored against ``gold`` (codes only,
    modifiers ignored: the proposer proposes none). Micro precision, recall and F1."""
    tp = fp = fn = 0
    for case in cases:
        proposed = proposer.propose(case.note, case.setting)
        verdicts = validator.validate(proposed, case.context())
        accepted = {v.canonical or v.code for v in verdicts if v.status == "accepted"}
        gold = {g.code for g in case.gold}
        tp += len(accepted & gold)
        fp += len(accepted - gold)
        fn += len(gold - accepted)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {
        "notes": len(cases),
        "gold_codes": tp + fn,
        "accepted": tp + fp,
        "micro_precision": round(p, 3),
        "micro_recall": round(r, 3),
        "micro_f1": round(2 * p * r / (p + r), 3) if p + r else 0.0,
    }
