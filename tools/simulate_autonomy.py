"""Replay a labelled dataset as a stream of charts through earned autonomy; gold labels stand in for auditors.

Every chart goes through the real machinery on a scratch review database: routing with the
``AutonomyLedger`` as the gate, the review queue, ``AuditProgram.sample`` every ``--batch`` charts,
two blind auditors who both answer the gold label (so every audit agrees), ``evaluate`` and a grant
for every eligible case type (the simulation stands in for the approver), and the automatic
suspensions. It reports how many charts went out alone, their precision against the gold labels,
and how many wrong codes reached "billing" per 1,000 charts.

The machine is either

- ``--predictions DIR/predictions.jsonl`` from ``medcode eval`` (the real pipeline's codes,
  verdicts, warnings and confidences), or
- ``--synthetic``: a made-up machine that proposes each gold code, calibrated by construction
  (confidence c ~ U(0.90, 1.00), right with probability c), which after ``--drift-after`` charts
  drifts (right with probability c - ``--drift``): it shows grants and suspensions happen.

Assumptions (printed with the results): a reviewed chart's first coder bills exactly the gold
codes (errors reach billing only through charts that went out alone); the stream is the dataset
repeated ``--passes`` times in a new random order each time (a repeated note counts as a new chart
and can be audited again, so intervals after the first pass are narrower than the data warrant);
the policy's ``review_sample`` and ``audit_rate`` govern sampling.

Usage::

    python tools/simulate_autonomy.py --dataset ../shared/benchmarks/aci/dev.jsonl \\
        --predictions runs/aci-retrieval/predictions.jsonl [--passes 20] [--batch 50] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from medcode.agent import RoutingPolicy, reason_kind
from medcode.config import load_settings
from medcode.review import CodingDecision, ReviewQueue
from medcode.review.governance import (
    AuditProgram,
    AutonomyLedger,
    AutonomyPolicy,
    Proportion,
    RiskAdjustmentCodes,
    accuracy,
    load_policy,
)
from medcode.validators import CodeVerdict, RuleResult

LLM_REASONS = {"LLM_UNAVAILABLE", "LLM_OUTPUT_INVALID", "LLM_ERROR"}
APPROVER = "simulation (stands in for the approver)"


class Chart(BaseModel):
    """One chart of the stream: the machine's verdicts and the gold label."""

    note_id: str
    note_type: str
    setting: str
    verdicts: list[CodeVerdict]
    extra_reasons: list[str] = Field(default_factory=list)
    gold: list[str]


class SimulationResult(BaseModel):
    machine: str
    assumptions: dict[str, Any]
    charts: int
    auto: int
    auto_share: float
    audits: int
    auto_accuracy: dict[str, Any] = Field(description="Charts that went out alone, against their gold labels.")
    audited_auto_claim_precision: dict[str, Any] = Field(description="The same, measured on the audited ones.")
    wrong_codes_billed_per_1000: float
    wrong_claims_billed_per_1000: float
    missed_codes_per_1000: float
    events: list[dict[str, Any]]
    final_evaluation: dict[str, Any] = Field(description="Per case type at the end of the stream.")
    auto_by_case_type: dict[str, int]
    review_reasons: dict[str, int]


def _key(code: str) -> str:
    return code.replace(".", "").upper()


def charts_from_predictions(path: Path, dataset: Path | None) -> list[Chart]:
    """Charts from ``medcode eval`` predictions (documents that failed are left out)."""
    raw_settings: dict[str, str | None] = {}
    if dataset is not None:
        for line in dataset.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                raw_settings[row["id"]] = row.get("setting")
    charts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        result = row.get("result")
        if not result:
            continue
        verdicts = [
            CodeVerdict(
                code=c["code"],
                canonical=c["code"],
                status=c["status"],
                confidence=c.get("confidence"),
                rules=c.get("rules", []),
                warnings=[
                    RuleResult(rule=w["rule"], severity="warn", reason=w["reason"], data_version="replay")
                    for w in c.get("warnings", [])
                ],
            )
            for c in result["codes"]
        ]
        extra = [r for r in result["routing"]["reasons"] if reason_kind(r) in LLM_REASONS]
        note_type = "case_report" if raw_settings.get(row["id"]) == "case-report" else "outpatient_visit"
        charts.append(
            Chart(
                note_id=row["id"],
                note_type=note_type,
                setting=row.get("setting") or "outpatient",
                verdicts=verdicts,
                extra_reasons=extra,
                gold=list(row["gold"]),
            )
        )
    return charts


def synthetic_charts(dataset: Path, rng: random.Random) -> list[Chart]:
    """Gold labels only; the synthetic machine draws its codes per chart (see ``_synthetic_verdicts``)."""
    out = []
    for line in dataset.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            setting = "outpatient" if row.get("setting") in (None, "outpatient") else "inpatient"
            out.append(
                Chart(note_id=row["id"], note_type="outpatient_visit", setting=setting, verdicts=[], gold=row["codes"])
            )
    return out


def _sibling(code: str) -> str:
    """A wrong code of the same category (so a wrong code stays in its case type's code families)."""
    category = _key(code)[:3]
    wrong = f"{category}.8" if not _key(code).endswith("8") else f"{category}.9"
    return wrong if _key(wrong) != _key(code) else f"{category}.0"


def _synthetic_verdicts(gold: Sequence[str], rng: random.Random, drift: float) -> list[CodeVerdict]:
    verdicts = []
    for code in gold:
        confidence = round(rng.uniform(0.90, 1.0), 4)
        right = rng.random() < max(0.0, confidence - drift)
        proposed = code if right else _sibling(code)
        verdicts.append(CodeVerdict(code=proposed, canonical=proposed, status="accepted", confidence=confidence))
    return verdicts


def simulate(
    charts: Sequence[Chart],
    policy: AutonomyPolicy,
    *,
    machine: str,
    passes: int = 1,
    batch: int = 50,
    seed: int = 0,
    synthetic: bool = False,
    drift_after: int | None = None,
    drift: float = 0.0,
    data_dir: Path | None = None,
) -> SimulationResult:
    """Run the stream (see the module doc) on a scratch review database under ``data_dir``."""
    rng = random.Random(seed)
    scratch = tempfile.TemporaryDirectory(prefix="medcode-sim-") if data_dir is None else None
    root = Path(scratch.name) if scratch is not None else data_dir
    assert root is not None
    settings = load_settings(data_dir=root, db_busy_timeout_s=120)
    hcc = RiskAdjustmentCodes.load()
    routing_policy = RoutingPolicy()
    stream: list[Chart] = []
    for _ in range(passes):
        order = list(charts)
        rng.shuffle(order)
        stream += order
    gold_of: dict[int, list[str]] = {}
    billed: list[tuple[list[str], list[str]]] = []
    auto_by_case: Counter[str] = Counter()
    review_reasons: Counter[str] = Counter()
    events: list[dict[str, Any]] = []
    audits = 0
    seen_grants: dict[int, str] = {}
    with (
        AutonomyLedger(settings, policy=policy, hcc=hcc) as ledger,
        AuditProgram(settings, policy=policy, hcc=hcc) as program,
        ReviewQueue(settings) as queue,
    ):
        for index, chart in enumerate(stream, start=1):
            verdicts = chart.verdicts
            if synthetic:
                drifting = drift_after is not None and index > drift_after
                verdicts = _synthetic_verdicts(chart.gold, rng, drift if drifting else 0.0)
            accepted = [v.canonical or v.code for v in verdicts if v.status == "accepted"]
            assessment = ledger.assess(chart.note_type, chart.setting, accepted)
            routing = routing_policy.decide(
                verdicts, chart.note_type, chart.extra_reasons, setting=chart.setting, autonomy=assessment
            )
            decision = CodingDecision(
                note_text=f"simulated chart {index} (note {chart.note_id})",
                note_id=chart.note_id,
                note_type=chart.note_type,
                setting=chart.setting,  # type: ignore[arg-type]
                verdicts=verdicts,
                routing=routing,
            )
            chart_id = queue.enqueue(decision)
            gold_of[chart_id] = chart.gold
            if routing.decision == "auto":
                billed.append((accepted, chart.gold))
                auto_by_case[routing.case_type or "-"] += 1
            else:
                review_reasons.update({reason_kind(r) for r in routing.reasons})
                # The first coder bills the gold codes: reject the machine's others, add the missing ones.
                gold_keys = {_key(c) for c in chart.gold}
                steps: list[tuple[str, str, str | None]] = []
                for v in verdicts:
                    code = v.canonical or v.code
                    if v.status == "accepted" and _key(code) not in gold_keys:
                        steps.append(("reject", code, None))
                    elif v.status == "rejected" and _key(code) in gold_keys:
                        steps.append(("accept", code, None))
                present = {_key(v.canonical or v.code) for v in verdicts}
                steps += [("add", c, None) for c in dict.fromkeys(chart.gold) if _key(c) not in present]
                queue.resolve(
                    chart_id,
                    user="first-coder",
                    expected_version=1,
                    actions=steps,
                    reason="simulated first coder" if steps else None,
                    finalise=True,
                )
            if index % batch == 0 or index == len(stream):
                drawn = program.sample(by="simulation", seed=rng.randrange(2**31))
                for task_id in drawn.task_ids:
                    codes = gold_of[program.detail(task_id).chart_id]
                    program.answer(task_id, "auditor-a", codes)
                    program.answer(task_id, "auditor-b", codes)
                    audits += 1
                for grant in ledger.grants():  # suspensions since the last batch
                    if grant.status != seen_grants.get(grant.grant_id):
                        if grant.status != "active":
                            events.append(
                                {
                                    "chart": index,
                                    "event": grant.status,
                                    "case_type": grant.case_type,
                                    "reasons": (grant.end or {}).get("reasons", []),
                                }
                            )
                        seen_grants[grant.grant_id] = grant.status
                for evaluation in ledger.evaluate():
                    current = {g.case_type: g for g in ledger.grants()}.get(evaluation.case_type)
                    if evaluation.eligible and (current is None or current.status != "active"):
                        grant = ledger.grant(evaluation.case_type, by=APPROVER)
                        seen_grants[grant.grant_id] = grant.status
                        events.append(
                            {
                                "chart": index,
                                "event": "granted",
                                "case_type": grant.case_type,
                                "threshold": grant.threshold,
                                "claim_precision_at_grant": evaluation.at_threshold.claim_precision.describe(),
                            }
                        )
        audited_auto = [(c.machine_codes, c.gold) for c in _audited(ledger) if c.stratum == "auto"]
        final = {
            e.case_type: {
                "audited": e.audited,
                "eligible": e.eligible,
                "reasons": e.reasons,
                "threshold": e.threshold,
                "derivation": e.derivation.reason,
                "machine_claim_precision": e.machine.claim_precision.describe(),
                "first_coder_claim_precision": e.human.claim_precision.describe(),
            }
            for e in ledger.evaluate()
            if e.audited
        }
    if scratch is not None:
        scratch.cleanup()
    auto_accuracy = accuracy(billed)
    n = len(stream)
    return SimulationResult(
        machine=machine,
        assumptions={
            "passes": passes,
            "batch": batch,
            "seed": seed,
            "policy": policy.version_label,
            "targets": {
                c.id: {
                    "claim": c.claim_precision_target,
                    "code": c.code_precision_target,
                    "min_audited": c.min_audited,
                    "audit_rate": c.audit_rate,
                    "review_sample": c.review_sample,
                }
                for c in policy.case_types
            },
            "first_coder": "bills exactly the gold codes",
            "auditors": "two, both answer the gold label",
            "drift_after": drift_after,
            "drift": drift,
        },
        charts=n,
        auto=len(billed),
        auto_share=round(len(billed) / n, 4) if n else 0.0,
        audits=audits,
        auto_accuracy=auto_accuracy.model_dump(mode="json"),
        audited_auto_claim_precision=accuracy(audited_auto).claim_precision.model_dump(mode="json"),
        wrong_codes_billed_per_1000=round(1000 * auto_accuracy.wrong_codes / n, 2) if n else 0.0,
        wrong_claims_billed_per_1000=round(
            1000 * (auto_accuracy.claim_precision.n - auto_accuracy.claim_precision.successes) / n, 2
        )
        if n
        else 0.0,
        missed_codes_per_1000=round(1000 * auto_accuracy.missed_codes / n, 2) if n else 0.0,
        events=events,
        final_evaluation=final,
        auto_by_case_type=dict(auto_by_case),
        review_reasons=dict(review_reasons.most_common(12)),
    )


def _audited(ledger: AutonomyLedger) -> list[Any]:
    from medcode.review.governance._records import load_audited

    assert ledger.store is not None
    with ledger.store.read() as conn:
        return load_audited(conn)


def _describe(result: SimulationResult) -> str:
    acc = result.auto_accuracy
    lines = [
        f"machine: {result.machine}",
        f"charts {result.charts}, audits {result.audits}, went out alone {result.auto} ({result.auto_share:.1%})",
        f"  auto charts vs gold: claim precision {Proportion(**acc['claim_precision']).describe()}, "
        f"code precision {Proportion(**acc['code_precision']).describe()}",
        f"  audited auto charts: claim precision {Proportion(**result.audited_auto_claim_precision).describe()}",
        f"  wrong codes billed per 1,000 charts: {result.wrong_codes_billed_per_1000}; wrong claims: "
        f"{result.wrong_claims_billed_per_1000}; missed codes on auto charts: {result.missed_codes_per_1000}",
        f"  auto by case type: {result.auto_by_case_type or '-'}",
        f"  review reasons (charts): {result.review_reasons}",
    ]
    lines += [f"  end: {ct}: {json.dumps(v)}" for ct, v in result.final_evaluation.items()]
    lines += [
        f"  at chart {e['chart']}: {json.dumps({k: v for k, v in e.items() if k != 'chart'})}" for e in result.events
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=Path, required=True, help="labelled JSONL (id, text, codes, setting)")
    parser.add_argument("--predictions", type=Path, help="predictions.jsonl of 'medcode eval' on that dataset")
    parser.add_argument("--synthetic", action="store_true", help="a calibrated made-up machine instead")
    parser.add_argument("--policy", type=Path, help="autonomy policy (default: the packaged example)")
    parser.add_argument("--passes", type=int, default=1, help="times the dataset is replayed (default 1)")
    parser.add_argument("--batch", type=int, default=50, help="charts between audit batches (default 50)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--drift-after", type=int, help="synthetic: chart after which the machine drifts")
    parser.add_argument("--drift", type=float, default=0.2, help="synthetic: drop in P(right) after the drift")
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    if bool(args.predictions) == bool(args.synthetic):
        parser.error("give --predictions or --synthetic")
    rng = random.Random(args.seed)
    if args.synthetic:
        charts = synthetic_charts(args.dataset, rng)
        machine = "synthetic: proposes each gold code, calibrated (c ~ U(0.90, 1), right with probability c)"
    else:
        charts = charts_from_predictions(args.predictions, args.dataset)
        proposers = {
            json.loads(line).get("proposer") for line in args.predictions.read_text().splitlines() if line.strip()
        }
        machine = (
            f"medcode eval predictions ({', '.join(sorted(p for p in proposers if p))} proposer), {args.predictions}"
        )
    result = simulate(
        charts,
        load_policy(args.policy),
        machine=machine,
        passes=args.passes,
        batch=args.batch,
        seed=args.seed,
        synthetic=args.synthetic,
        drift_after=args.drift_after,
        drift=args.drift if args.drift_after is not None else 0.0,
    )
    print(_describe(result))
    if args.json:
        args.json.write_text(result.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
