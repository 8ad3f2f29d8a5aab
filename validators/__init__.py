"""Stage 3: deterministic validators. Nothing hallucinated or unsupported is accepted.

``ValidatorPipeline(settings).validate(proposal, ctx)`` judges every proposed code with rules
that each carry a stable id (``RULE_IDS``), a reason and the data version they used.
"""

from medcode.validators._io import load_proposal, parse_proposal
from medcode.validators._models import (
    REPLACEMENT_RULES,
    CodeVerdict,
    Evidence,
    ProcedureSystem,
    ProcedureVerdict,
    Proposal,
    ProposedCode,
    ProposedProcedure,
    RuleResult,
    Setting,
    Severity,
    ValidationContext,
    ValidationReport,
)
from medcode.validators._pipeline import ValidatorPipeline
from medcode.validators._procedures import PROCEDURE_RULE_IDS, ProcedureValidator, infer_procedure_system
from medcode.validators._refs import CodeRef, CodeRefMatcher, parse_code_refs
from medcode.validators._rules import ALL_RULE_IDS as RULE_IDS
from medcode.validators._rules import SET_RULE_IDS

__all__ = [
    "PROCEDURE_RULE_IDS",
    "REPLACEMENT_RULES",
    "RULE_IDS",
    "SET_RULE_IDS",
    "CodeRef",
    "CodeRefMatcher",
    "CodeVerdict",
    "Evidence",
    "ProcedureSystem",
    "ProcedureValidator",
    "ProcedureVerdict",
    "Proposal",
    "ProposedCode",
    "ProposedProcedure",
    "RuleResult",
    "Setting",
    "Severity",
    "ValidationContext",
    "ValidationReport",
    "ValidatorPipeline",
    "infer_procedure_system",
    "load_proposal",
    "parse_code_refs",
    "parse_proposal",
]
