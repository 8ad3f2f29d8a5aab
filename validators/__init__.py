"""Stage 3: deterministic validators. Nothing hallucinated or unsupported is accepted."""

from validators._models import (
    CodeVerdict,
    Evidence,
    Proposal,
    ProposedCode,
    RuleResult,
    Setting,
    Severity,
    ValidationContext,
    ValidationReport,
)

__all__ = [
    "CodeVerdict",
    "Evidence",
    "Proposal",
    "ProposedCode",
    "RuleResult",
    "Setting",
    "Severity",
    "ValidationContext",
    "ValidationReport",
]
