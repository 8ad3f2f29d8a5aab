"""Run the validators' red-team and sound sets (``evals/data/redteam.jsonl``, ``sound.jsonl``).

A red-team item passes when every target code is rejected and its rejecting rules include every
rule the item expects. A sound item passes when every code is accepted (warnings allowed).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medcode.validators import ValidationContext, ValidationReport, ValidatorPipeline, parse_proposal

__all__ = ["DATA_DIR", "ItemOutcome", "SetSummary", "load_jsonl", "load_notes", "run_items", "summarize"]

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
