"""Measured accuracy over gold-labelled audits, the confidence threshold per case type, and eligibility.

Definitions (codes compare exactly, dot- and case-insensitively; each chart is one claim):

- *code precision*: billed codes that are in the gold label / billed codes;
- *code recall*: gold codes that were billed / gold codes;
- *claim precision*: claims with at least one code and no wrong code / claims with at least one code
  (a claim with a wrong code is a billing error; a missed code is under-coding, counted by recall);
- *claim exact match*: claims whose codes equal the gold label / claims.

Every figure carries its Wilson 95% interval. Code-level intervals treat codes as independent,
which they are not (codes of one chart go wrong together): read them as optimistic; the gates
that grant autonomy use the claim-level bound first.

"The machine's codes" are the codes the validators accepted (what would be billed if the chart
went out alone); "the first coder's codes" are a reviewed chart's final codes.

**Threshold.** Confidence is read as a calibrated probability that the code is right, so the
expected precision of codes above a threshold ``t`` is their mean confidence, and the expected
precision of a claim is the product of its codes' confidences. ``derive_threshold`` takes the
audited charts of the case type that pass every hard routing rule (no rejected, warned or HCC
code, no LLM failure, not inpatient), and picks the smallest ``t`` (among their lowest code
confidences) such that, for ``t`` and every higher candidate, the charts whose every code is at
or above it have expected claim precision, and expected code precision, at or above the case
type's targets. It is estimated on the audited (gold-labelled) charts, the same population the
grant is judged on; the labels are not used to pick it, only to check it.

**Eligibility.** A case type is eligible for a grant only when a threshold exists, at least
``min_audited`` audited charts would have gone out alone at it, and the lower Wilson bound of
their claim precision (and of their code precision, when the case type sets a code target) is at
or above the target. A case type that selects only inpatient notes is never eligible.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from medcode.agent import AutonomyAssessment, RoutingPolicy
from medcode.review.governance._hcc import RiskAdjustmentCodes
from medcode.review.governance._policy import CaseType
from medcode.review.governance._stats import Proportion
from medcode.validators import CodeVerdict

__all__ = [
    "AuditedChart",
    "CaseTypeEvaluation",
    "CodingAccuracy",
    "ThresholdDerivation",
    "accuracy",
    "derive_threshold",
    "evaluate_case_type",
    "would_go_auto",
]

_ROUTING = RoutingPolicy()


def _key(code: str) -> str:
    return "".join(code.split()).upper().replace(".", "")


class AuditedChart(BaseModel):
    """One gold-labelled audit: the chart as it was coded and routed, and its gold label."""

    model_config = ConfigDict(frozen=True)

    task_id: int
    chart_id: int
    case_type: str | None
    stratum: Literal["auto", "review"]
    setting: str
    note_type: str | None
    verdicts: list[CodeVerdict]
    extra_reasons: list[str] = Field(default_factory=list, description="LLM failure reasons at routing.")
    grant_id: int | None = Field(default=None, description="The grant that let it out alone (auto only).")
    human_codes: list[str] | None = Field(default=None, description="The first coder's final codes (reviewed).")
    gold: list[str]
    gold_source: str = "agreement"

    @property
    def machine_codes(self) -> list[str]:
        """The codes the validators accepted, in chart order."""
        return [v.canonical or v.code for v in self.verdicts if v.status == "accepted"]


class CodingAccuracy(BaseModel):
    """Per-code and per-claim accuracy of one coder (machine or human) over some audited charts."""

    charts: int = 0
    code_precision: Proportion = Proportion.of(0, 0)
    code_recall: Proportion = Proportion.of(0, 0)
    claim_precision: Proportion = Proportion.of(0, 0)
    claim_exact: Proportion = Proportion.of(0, 0)
    wrong_codes: int = Field(default=0, description="Billed codes not in the gold label.")
    missed_codes: int = Field(default=0, description="Gold codes not billed.")


def accuracy(pairs: Iterable[tuple[Sequence[str], Sequence[str]]]) -> CodingAccuracy:
    """Accuracy of ``(billed codes, gold codes)`` pairs, one pair per claim."""
    charts = tp = fp = fn = exact = claims_with_codes = clean_claims = 0
    for billed, gold in pairs:
        predicted, truth = {_key(c) for c in billed}, {_key(c) for c in gold}
        charts += 1
        hits = len(predicted & truth)
        tp, fp, fn = tp + hits, fp + len(predicted - truth), fn + len(truth - predicted)
        exact += predicted == truth
        if predicted:
            claims_with_codes += 1
            clean_claims += not (predicted - truth)
    return CodingAccuracy(
        charts=charts,
        code_precision=Proportion.of(tp, tp + fp),
        code_recall=Proportion.of(tp, tp + fn),
        claim_precision=Proportion.of(clean_claims, claims_with_codes),
        claim_exact=Proportion.of(exact, charts),
        wrong_codes=fp,
        missed_codes=fn,
    )


def would_go_auto(chart: AuditedChart, threshold: float, hcc: RiskAdjustmentCodes) -> bool:
    """Whether the chart would have gone out alone under a grant at ``threshold`` (the real routing rules)."""
    assessment = AutonomyAssessment(
        case_type=chart.case_type or "-",
        state="granted",
        threshold=threshold,
        risk_adjustment_codes=hcc.among(chart.machine_codes),
    )
    decision = _ROUTING.decide(
        chart.verdicts, chart.note_type, chart.extra_reasons, setting=chart.setting, autonomy=assessment
    )
    return decision.decision == "auto"


class ThresholdDerivation(BaseModel):
    """The confidence threshold derived for a case type, and what it expects."""

    threshold: float | None = Field(description="None when no threshold meets the targets.")
    method: str = "calibrated: mean confidence of the codes at or above t (product per claim)"
    population: str = "gold-labelled audited charts of the case type that pass every hard routing rule"
    candidates: int = Field(default=0, description="Charts passing the hard rules (with every confidence known).")
    charts_above: int = 0
    codes_above: int = 0
    expected_claim_precision: float | None = None
    expected_code_precision: float | None = None
    reason: str | None = None


def derive_threshold(
    charts: Sequence[AuditedChart], case_type: CaseType, hcc: RiskAdjustmentCodes
) -> ThresholdDerivation:
    """The smallest robust threshold whose expected precision meets the case type's targets (see module doc)."""
    rows: list[tuple[float, list[float]]] = []
    for chart in charts:
        if not would_go_auto(chart, 0.0, hcc):
            continue
        confidences = [v.confidence for v in chart.verdicts if v.status == "accepted"]
        if any(c is None for c in confidences) or not confidences:
            continue
        known = [float(c) for c in confidences if c is not None]
        rows.append((min(known), known))
    if not rows:
        return ThresholdDerivation(threshold=None, reason="no audited chart of this case type passes the hard rules")
    rows.sort(key=lambda r: r[0], reverse=True)
    # Walk from the highest lowest-confidence down, accumulating the charts that go out at t.
    code_sum = claim_sum = 0.0
    n_codes = 0
    evaluated: list[tuple[float, int, int, float, float, bool]] = []
    for index, (low, confs) in enumerate(rows):
        code_sum += sum(confs)
        n_codes += len(confs)
        claim_sum += math.prod(confs)
        last_of_tie = index + 1 == len(rows) or rows[index + 1][0] != low
        if not last_of_tie:
            continue
        charts_above = index + 1
        exp_code, exp_claim = code_sum / n_codes, claim_sum / charts_above
        meets = exp_claim >= case_type.claim_precision_target and (
            case_type.code_precision_target is None or exp_code >= case_type.code_precision_target
        )
        evaluated.append((low, charts_above, n_codes, exp_code, exp_claim, meets))
    chosen = None
    for item in evaluated:  # highest threshold first: stop at the first that fails
        if not item[5]:
            break
        chosen = item
    if chosen is None:
        best = max(evaluated, key=lambda e: e[4])
        return ThresholdDerivation(
            threshold=None,
            candidates=len(rows),
            reason=f"calibrated confidence never reaches the target: the best expected claim precision is "
            f"{best[4]:.3f} (at t={best[0]:.3f}, {best[1]} chart(s)) against {case_type.claim_precision_target}",
        )
    low, charts_above, codes_above, exp_code, exp_claim, _ = chosen
    return ThresholdDerivation(
        threshold=round(low, 6),
        candidates=len(rows),
        charts_above=charts_above,
        codes_above=codes_above,
        expected_claim_precision=round(exp_claim, 6),
        expected_code_precision=round(exp_code, 6),
    )


class CaseTypeEvaluation(BaseModel):
    """Everything the audits say about one case type, and whether it may be granted autonomy."""

    case_type: str
    title: str
    claim_precision_target: float
    code_precision_target: float | None
    min_audited: int
    audited: int = Field(description="Gold-labelled audits of this case type.")
    audited_by_stratum: dict[str, int]
    machine: CodingAccuracy = Field(description="The machine's accepted codes, every audited chart.")
    human: CodingAccuracy = Field(description="The first coder's final codes, audited reviewed charts.")
    autonomous: CodingAccuracy = Field(description="Audited charts that went out alone (billed = machine).")
    derivation: ThresholdDerivation
    threshold: float | None = Field(description="The threshold the gate was judged at.")
    at_threshold: CodingAccuracy = Field(description="Audited charts that would go out alone at the threshold.")
    eligible: bool
    reasons: list[str] = Field(default_factory=list, description="Why not eligible (stable prefixes).")


def evaluate_case_type(
    charts: Sequence[AuditedChart],
    case_type: CaseType,
    hcc: RiskAdjustmentCodes,
    *,
    threshold: float | None = None,
) -> CaseTypeEvaluation:
    """Measure a case type's audits and judge eligibility.

    ``threshold`` judges the gate at a given threshold (an existing grant's) instead of the
    derived one. Reasons: ``INPATIENT_ONLY``, ``NO_THRESHOLD``, ``TOO_FEW_AUDITS:<n>/<min>``,
    ``CLAIM_PRECISION_BELOW_TARGET:<low>/<target>``, ``CODE_PRECISION_BELOW_TARGET:<low>/<target>``.
    """
    mine = [c for c in charts if c.case_type == case_type.id]
    derivation = derive_threshold(mine, case_type, hcc)
    judged_at = threshold if threshold is not None else derivation.threshold
    at = [c for c in mine if judged_at is not None and would_go_auto(c, judged_at, hcc)]
    at_threshold = accuracy((c.machine_codes, c.gold) for c in at)
    reasons: list[str] = []
    if case_type.inpatient_only:
        reasons.append("INPATIENT_ONLY")
    if judged_at is None:
        reasons.append("NO_THRESHOLD")
    claims = at_threshold.claim_precision
    if claims.n < case_type.min_audited:
        reasons.append(f"TOO_FEW_AUDITS:{claims.n}/{case_type.min_audited}")
    if claims.low < case_type.claim_precision_target:
        reasons.append(f"CLAIM_PRECISION_BELOW_TARGET:{claims.low:.3f}/{case_type.claim_precision_target}")
    target = case_type.code_precision_target
    if target is not None and at_threshold.code_precision.low < target:
        reasons.append(f"CODE_PRECISION_BELOW_TARGET:{at_threshold.code_precision.low:.3f}/{target}")
    strata = {"auto": 0, "review": 0}
    for chart in mine:
        strata[chart.stratum] += 1
    return CaseTypeEvaluation(
        case_type=case_type.id,
        title=case_type.title,
        claim_precision_target=case_type.claim_precision_target,
        code_precision_target=target,
        min_audited=case_type.min_audited,
        audited=len(mine),
        audited_by_stratum=strata,
        machine=accuracy((c.machine_codes, c.gold) for c in mine),
        human=accuracy((c.human_codes, c.gold) for c in mine if c.human_codes is not None),
        autonomous=accuracy((c.machine_codes, c.gold) for c in mine if c.stratum == "auto"),
        derivation=derivation,
        threshold=judged_at,
        at_threshold=at_threshold,
        eligible=not reasons,
        reasons=reasons,
    )
