"""Stage 4: the agent. Orchestrates retrieval, a proposer (the LLM or retrieval alone), the validators and routing.

``MedicalCoder`` codes a ``Note`` into a ``CodingResult``; a ``Runtime`` owns the heavy parts of
the process (code sets, embedder, retrievers, validators, the LLM); a ``Recorder`` (the review
stage provides one) receives each finished ``CodingRun``. The LLM client, the embedded llama.cpp
server and the model weights live in ``medcode.agent.llm``.
"""

from medcode.agent._acceptance import AcceptanceModel, CodePriors, load_acceptance_model
from medcode.agent._coder import CodedCode, CodedProcedure, CodingResult, CodingRun, MedicalCoder, Recorder, Usage
from medcode.agent._note import METADATA_FIELDS, Note, NoteMetadata, sha256_text
from medcode.agent._proposers import (
    Condition,
    LLMProposer,
    Proposed,
    ProposedItem,
    Proposer,
    ProposerName,
    RetrievalProposer,
    group_conditions,
)
from medcode.agent._routing import (
    AUTONOMY_SUSPENDED,
    BELOW_CASE_THRESHOLD,
    CASE_TYPE_NOT_GRANTED,
    CODE_REJECTED,
    FINANCIAL_IMPACT,
    HCC_CODE,
    HUMAN_ASSISTED_DEFAULT,
    INPATIENT,
    LLM_UNAVAILABLE,
    LOW_CONFIDENCE,
    NO_CASE_TYPE,
    NO_CODES,
    NOTE_TYPE_NOT_AUTONOMOUS,
    PROCEDURES_UNAVAILABLE,
    ROUTING_CHECK_FAILED,
    WARNING,
    AutonomyAssessment,
    AutonomyGate,
    RoutingCheck,
    RoutingDecision,
    RoutingPolicy,
    reason_kind,
)
from medcode.agent._runtime import Runtime
from medcode.agent._selection import build_choice_model
from medcode.agent._validation import ValidationRequest, validate_proposal

__all__ = [
    "AUTONOMY_SUSPENDED",
    "BELOW_CASE_THRESHOLD",
    "CASE_TYPE_NOT_GRANTED",
    "CODE_REJECTED",
    "FINANCIAL_IMPACT",
    "HCC_CODE",
    "HUMAN_ASSISTED_DEFAULT",
    "INPATIENT",
    "LLM_UNAVAILABLE",
    "LOW_CONFIDENCE",
    "METADATA_FIELDS",
    "NOTE_TYPE_NOT_AUTONOMOUS",
    "NO_CASE_TYPE",
    "NO_CODES",
    "PROCEDURES_UNAVAILABLE",
    "ROUTING_CHECK_FAILED",
    "WARNING",
    "AcceptanceModel",
    "AutonomyAssessment",
    "AutonomyGate",
    "CodePriors",
    "CodedCode",
    "CodedProcedure",
    "CodingResult",
    "CodingRun",
    "Condition",
    "LLMProposer",
    "MedicalCoder",
    "Note",
    "NoteMetadata",
    "Proposed",
    "ProposedItem",
    "Proposer",
    "ProposerName",
    "Recorder",
    "RetrievalProposer",
    "RoutingCheck",
    "RoutingDecision",
    "RoutingPolicy",
    "Runtime",
    "Usage",
    "ValidationRequest",
    "build_choice_model",
    "group_conditions",
    "load_acceptance_model",
    "reason_kind",
    "sha256_text",
    "validate_proposal",
]
