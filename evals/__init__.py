"""Stage 6: evaluation, kept apart from the unit tests. Gold datasets in, metrics and regression verdicts out.

``run_eval`` codes every document of a gold dataset (resumable ``predictions.jsonl``) and writes
``metrics.json`` and ``report.html``; ``compare`` diffs a run against a stored baseline (what
``medcode regress`` gates on). The project's own gold set and red-team sets live in ``data/``, and the
outpatient procedure (HCPCS) gold set with NCCI and evidence traps (``score_traps``, ``score_proposer``).
"""

from medcode.evals._dataset import DatasetProblem, GoldDocument, GoldSpan, read_dataset
from medcode.evals._harness import HALLUCINATION_RULES, compute_metrics, load_predictions, run_eval
from medcode.evals._procedure_gold import (
    GoldProcedureLine,
    ProcedureGoldCase,
    ProcedureTrapLine,
    TrapOutcome,
    read_procedure_gold,
    score_proposer,
    score_traps,
)
from medcode.evals._regress import Comparison, compare, make_baseline

__all__ = [
    "HALLUCINATION_RULES",
    "Comparison",
    "DatasetProblem",
    "GoldDocument",
    "GoldProcedureLine",
    "GoldSpan",
    "ProcedureGoldCase",
    "ProcedureTrapLine",
    "TrapOutcome",
    "compare",
    "compute_metrics",
    "load_predictions",
    "make_baseline",
    "read_dataset",
    "read_procedure_gold",
    "run_eval",
    "score_proposer",
    "score_traps",
]
