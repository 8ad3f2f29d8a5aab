"""Run the validators' red-team and sound sets (``evals/data/redteam.jsonl``, ``sound.jsonl``) and the
specificity swaps made from gold (``evals/data/swaps.jsonl``, written by ``tools/make_swaps.py``).

A red-team item passes when every target code is rejected and its rejecting rules include every
rule the item expects. A sound item passes when every code is accepted (warnings allowed). A swap
record cites one code with one gold evidence span, among the note's other gold codes: a ``gold``
record (the unswapped pair) must be accepted, any other kind (``side``, ``encounter``,
``with_without``, ``axis``) rejected.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medcode.evals._dataset import GoldDocument
from medcode.validators import CodeVerdict, ValidationContext, ValidationReport, ValidatorPipeline, parse_proposal

__all__ = [
    "DATA_DIR",
    "SWAP_KINDS",
    "ItemOutcome",
    "SetSummary",
    "SwapOutcome",
    "SwapSummary",
    "load_jsonl",
    "load_notes",
    "run_items",
    "run_swaps",
    "summarize",
    "summarize_swaps",
]

DATA_DIR = Path(__file__).parent / "data"


def load_jsonl(path: Path) -> list[dict[str, Any]]:
    """One JSON object per non-empty line."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_notes(path: Path | None = None) -> dict[str, str]:
    """Note id -> text, from ``redteam_notes.jsonl``."""
    return {r["id"]: r["text"] for r in load_jsonl(path or DATA_DIR / "redteam_notes.jsonl")}


@dataclass
class ItemOutcome:
    """One item's verdicts and whether the item passed."""

    id: str
    category: str
    passed: bool
    codes: int
    accepted_codes: int
    detail: str
    seconds: float
    report: ValidationReport | None = field(default=None, repr=False)


def _context(item: dict[str, Any], note: str) -> ValidationContext:
    candidates = item.get("candidates")
    return ValidationContext(
        note_text=note,
        setting=item.get("setting", "outpatient"),
        age=item.get("age"),
        sex=item.get("sex"),
        candidates=frozenset(candidates) if candidates is not None else None,
    )


def run_items(pipeline: ValidatorPipeline, items: list[dict[str, Any]], notes: dict[str, str]) -> list[ItemOutcome]:
    """Validate every item; red-team items carry ``expect_rules``, sound items ``expect: accepted``."""
    outcomes: list[ItemOutcome] = []
    for item in items:
        note = item["note"] if isinstance(item.get("note"), str) else notes[item["note_id"]]
        proposal = parse_proposal(item["proposal"], item["id"])
        started = time.perf_counter()
        report = pipeline.validate(proposal, _context(item, note))
        seconds = time.perf_counter() - started
        verdicts = report.verdicts
        accepted = sum(v.status == "accepted" for v in verdicts)
        if "expect_rules" in item:
            problems = []
            for index in item["targets"]:
                v = verdicts[index]
                missing = [r for r in item["expect_rules"] if r not in v.rules]
                if v.status != "rejected" or missing:
                    problems.append(f"#{index} {v.code}: {v.status} {v.rules} (missing {missing})")
            passed, detail = not problems, "; ".join(problems)
        else:
            bad = [
                f"{v.code}: {v.rules} {[r.reason for r in v.results if r.severity == 'reject']}"
                for v in verdicts
                if v.status != "accepted"
            ]
            passed, detail = not bad, "; ".join(bad)
        outcomes.append(
            ItemOutcome(item["id"], item["category"], passed, len(verdicts), accepted, detail, seconds, report)
        )
    return outcomes


@dataclass
class SetSummary:
    """Pass rates per category and overall."""

    total: int
    passed: int
    by_category: dict[str, tuple[int, int]]

    @property
    def rate(self) -> float:
        return self.passed / self.total if self.total else 1.0


def summarize(outcomes: list[ItemOutcome]) -> SetSummary:
    by: dict[str, list[bool]] = defaultdict(list)
    for o in outcomes:
        by[o.category].append(o.passed)
    return SetSummary(
        total=len(outcomes),
        passed=sum(o.passed for o in outcomes),
        by_category={k: (sum(v), len(v)) for k, v in sorted(by.items())},
    )


SWAP_KINDS = ("side", "encounter", "with_without", "axis")


@dataclass
class SwapOutcome:
    """One swap record's verdict: the rules that rejected the code and the warnings it carried."""

    id: str
    kind: str
    code: str
    gold_code: str
    rejected: bool
    rules: list[str]
    warnings: list[str]


def run_swaps(
    pipeline: ValidatorPipeline, records: list[dict[str, Any]], docs: dict[str, GoldDocument]
) -> list[SwapOutcome]:
    """Validate each record in the context of its note's gold codes.

    Per document, its ``gold`` records make one proposal (a code cited by several records gets all
    their spans); each ``gold`` record gets its code's verdict. A swap replaces its gold code in that
    proposal by the swapped code with the record's evidence, and gets the swapped code's verdict. The
    note's setting, age, sex and date of service come from the gold document.
    """
    by_doc: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_doc[record["doc_id"]].append(record)
    outcomes: dict[str, SwapOutcome] = {}
    for doc_id, doc_records in by_doc.items():
        doc = docs[doc_id]
        ctx = ValidationContext(
            note_text=doc.text,
            setting=doc.coding_setting,
            age=doc.age,
            sex=doc.sex,
            date_of_service=doc.date_of_service,
        )
        gold: dict[str, list[dict[str, Any]]] = {}
        for record in doc_records:
            if record["kind"] == "gold":
                gold.setdefault(record["code"], []).extend(record["evidence"])
        codes = [{"code": code, "evidence": evidence} for code, evidence in gold.items()]
        if codes:
            report = pipeline.validate(parse_proposal({"codes": codes}, doc_id), ctx)
            verdicts = dict(zip(gold, report.verdicts, strict=True))
            for record in doc_records:
                if record["kind"] == "gold":
                    outcomes[record["id"]] = _swap_outcome(record, verdicts[record["code"]])
        for record in doc_records:
            if record["kind"] == "gold":
                continue
            others = [c for c in codes if c["code"] != record["gold_code"]]
            proposal = parse_proposal({"codes": [{"code": record["code"], "evidence": record["evidence"]}, *others]})
            outcomes[record["id"]] = _swap_outcome(record, pipeline.validate(proposal, ctx).verdicts[0])
    return [outcomes[r["id"]] for r in records]


def _swap_outcome(record: dict[str, Any], verdict: CodeVerdict) -> SwapOutcome:
    return SwapOutcome(
        id=record["id"],
        kind=record["kind"],
        code=record["code"],
        gold_code=record["gold_code"],
        rejected=verdict.status == "rejected",
        rules=list(verdict.rules),
        warnings=[w.rule for w in verdict.warnings],
    )


@dataclass
class SwapSummary:
    """Rejection rate per swap kind and on the unswapped gold pairs (the false-rejection rate)."""

    by_kind: dict[str, tuple[int, int]]
    gold: tuple[int, int]

    @property
    def swaps(self) -> tuple[int, int]:
        return sum(r for r, _ in self.by_kind.values()), sum(n for _, n in self.by_kind.values())

    @property
    def catch_rate(self) -> float:
        rejected, total = self.swaps
        return rejected / total if total else 1.0

    @property
    def false_rejection_rate(self) -> float:
        rejected, total = self.gold
        return rejected / total if total else 0.0


def summarize_swaps(outcomes: list[SwapOutcome]) -> SwapSummary:
    by: dict[str, list[bool]] = defaultdict(list)
    for o in outcomes:
        by[o.kind].append(o.rejected)
    gold = by.pop("gold", [])
    return SwapSummary(
        by_kind={k: (sum(by[k]), len(by[k])) for k in SWAP_KINDS if by.get(k)},
        gold=(sum(gold), len(gold)),
    )
