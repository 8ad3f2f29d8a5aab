"""medcode: proposes medical codes for clinical notes, with cited evidence and guardrails.

This package holds what every stage shares (settings, the exception tree) and the CLI.
Stages live in the top-level packages ``codesets``, ``retrieval``, ``validators``,
``agent`` and ``evals``; data flows one way through them.
"""

from medcode.config import Settings, load_settings
from medcode.errors import (
    AuditError,
    AuditTamperedError,
    CodeSetBuildError,
    CodeSetError,
    ConfigError,
    DateOutOfRangeError,
    IndexMismatchError,
    IndexNotBuiltError,
    InputError,
    LLMError,
    LLMOutputError,
    LLMUnavailableError,
    MalformedCodeError,
    MedcodeError,
    NoteError,
    RetrievalError,
    UnknownCodeError,
)

__version__ = "0.1.0"

__all__ = [
    "AuditError",
    "AuditTamperedError",
    "CodeSetBuildError",
    "CodeSetError",
    "ConfigError",
    "DateOutOfRangeError",
    "IndexMismatchError",
    "IndexNotBuiltError",
    "InputError",
    "LLMError",
    "LLMOutputError",
    "LLMUnavailableError",
    "MalformedCodeError",
    "MedcodeError",
    "NoteError",
    "RetrievalError",
    "Settings",
    "UnknownCodeError",
    "__version__",
    "load_settings",
]
