"""medcode: proposes medical codes for clinical notes, with cited evidence and guardrails.

Everything installs under this one import name. The stages, in the order data flows through
them (a stage imports only the stages before it): ``medcode.codesets`` -> ``medcode.retrieval``
-> ``medcode.validators`` -> ``medcode.agent`` (proposers, the LLM in ``medcode.agent.llm``) ->
``medcode.review`` (queue, audit log) -> ``medcode.evals`` and ``medcode.monitoring`` (KPIs, drift,
dollars at risk, documentation feedback) -> ``medcode.copilot``. This package
holds what every stage shares (settings, the exception tree, ``medcode._sqlite`` for the SQLite files
the stages build and then only read) and the CLI root, which is the top layer: it wires the stages
together.
"""

from medcode.config import Settings, load_settings
from medcode.errors import (
    AuditTamperedError,
    AuditTaskNotFoundError,
    ChartConflictError,
    ChartNotFoundError,
    CodeSetBuildError,
    CodeSetError,
    ConfigError,
    DateOutOfRangeError,
    DistributedError,
    FHIRError,
    GovernanceError,
    IndexMismatchError,
    IndexNotBuiltError,
    InputError,
    JobNotFoundError,
    JobQueueFullError,
    LLMError,
    LLMOutputError,
    LLMUnavailableError,
    MalformedCodeError,
    MedcodeError,
    MissingDependencyError,
    ModelWeightsError,
    NoteError,
    NotEligibleError,
    OverrideReasonRequiredError,
    PermissionDeniedError,
    RetrievalError,
    StoreError,
    UnknownCodeError,
)

__version__ = "0.1.0"

__all__ = [
    "AuditTamperedError",
    "AuditTaskNotFoundError",
    "ChartConflictError",
    "ChartNotFoundError",
    "CodeSetBuildError",
    "CodeSetError",
    "ConfigError",
    "DateOutOfRangeError",
    "DistributedError",
    "FHIRError",
    "GovernanceError",
    "IndexMismatchError",
    "IndexNotBuiltError",
    "InputError",
    "JobNotFoundError",
    "JobQueueFullError",
    "LLMError",
    "LLMOutputError",
    "LLMUnavailableError",
    "MalformedCodeError",
    "MedcodeError",
    "MissingDependencyError",
    "ModelWeightsError",
    "NotEligibleError",
    "NoteError",
    "OverrideReasonRequiredError",
    "PermissionDeniedError",
    "RetrievalError",
    "Settings",
    "StoreError",
    "UnknownCodeError",
    "__version__",
    "load_settings",
]
