"""Stage 4: the agent. Orchestrates retrieval, a proposer (the LLM or retrieval alone), the validators and routing.

``MedicalCoder`` codes a ``Note`` into a ``CodingResult``; a ``Runtime`` owns the heavy parts of
the process (code sets, embedder, retrievers, validators, the LLM); a ``Recorder`` (the review
stage provides one) receives each finished ``CodingRun``. The LLM client, the embedded llama.cpp
server and the model weights live in ``medcode.agent.llm``.
"""

from medcode.agent._acceptance import AcceptanceModel, CodePriors, load_acceptance_model
from medcode.agent._coder import CodedCode, CodingResult, CodingRun, MedicalCoder, Recorder, Usage
from medcode.agent._note import Note, sha256_text
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
    CODE_REJECTED,
    HUMAN_ASSISTED_DEFAULT,
    LLM_UNAVAILABLE,
    LOW_CONFIDENCE,
    NO_CODES,
    NOTE_TYPE_NOT_AUTONOMOUS,
    WARNING,
    RoutingDecision,
    RoutingPolicy,
    reason_kind,
)
from medcode.agent._runtime import Runtime
from medcode.agent._selection import build_choice_model

__all__ = [
    "CODE_REJECTED",
    "HUMAN_ASSISTED_DEFAULT",
    "LLM_UNAVAILABLE",
    "LOW_CONFIDENCE",
    "NOTE_TYPE_NOT_AUTONOMOUS",
    "NO_CODES",
    "WARNING",
    "AcceptanceModel",
    "CodePriors",
    "CodedCode",
    "CodingResult",
    "CodingRun",
    "Condition",
    "LLMProposer",
    "MedicalCoder",
    "Note",
    "Proposed",
    "ProposedItem",
    "Proposer",
    "ProposerName",
    "Recorder",
    "RetrievalProposer",
    "RoutingDecision",
    "RoutingPolicy",
    "Runtime",
    "Usage",
    "build_choice_model",
    "group_conditions",
    "load_acceptance_model",
    "reason_kind",
    "sha256_text",
]
