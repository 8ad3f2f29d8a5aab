"""Every error a medcode user can meet, in one tree.

    MedcodeError
    ├── ConfigError                  settings or a config file are invalid
    │   └── MissingDependencyError   an optional extra is not installed (the message names it)
    ├── InputError                   bad user input (note, proposal, dataset line, query)
    │   ├── NoteError                empty, binary, non-UTF-8 or oversized note
    │   ├── FHIRError                a FHIR resource that is invalid or unusable (``path`` names the element)
    │   └── OverrideReasonRequiredError  a coder kept or added a code the validators rejected, without a reason
    ├── CodeSetError                 code-set data problems
    │   ├── MalformedCodeError       the string cannot be a code of the system asked for
    │   ├── UnknownCodeError         well-formed, but not in the release (carries suggestions)
    │   ├── DateOutOfRangeError      no loaded release covers the date of service
    │   └── CodeSetBuildError        the source package or files could not be read
    ├── RetrievalError               index problems
    │   ├── IndexNotBuiltError       no index (or a half-built one) in the data directory
    │   └── IndexMismatchError       index built for another code-set version or embedder
    ├── LLMError                     the language model layer
    │   ├── LLMUnavailableError      transport faults after retries (routes the note to a human)
    │   ├── LLMOutputError           the model's output failed validation after re-asks
    │   └── ModelWeightsError        embedded model weights missing, incomplete or failing their checksum
    ├── StoreError                   the review store (queue, audit log, coding jobs) could not be used
    │   ├── AuditTamperedError       the hash chain does not verify
    │   ├── ChartNotFoundError       no chart with that id in the review queue (also an InputError)
    │   ├── ChartConflictError       stale chart version, or the chart is already finalised
    │   ├── JobNotFoundError         no coding job with that id, or it expired (also an InputError)
    │   └── AuditTaskNotFoundError   no audit task with that id (also an InputError)
    ├── GovernanceError              earned autonomy refused an action
    │   └── NotEligibleError         a case type's audits do not meet its targets: no grant
    ├── JobQueueFullError            too many notes wait for the copilot's coding worker (HTTP 503)
    ├── DistributedError             the Ray cluster cannot be reached, or a worker failed beyond its retries
    └── PermissionDeniedError        the signed-in user's role may not do this (HTTP 403)

The CLI maps ``InputError`` and ``ConfigError`` to exit code 2 and any other
``MedcodeError`` to exit code 1. The copilot answers ``FHIRError`` with HTTP 422 and its ``path``.
"""

from __future__ import annotations

from typing import Any

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
    "StoreError",
    "UnknownCodeError",
]


class MedcodeError(Exception):
    """Base class of every error medcode raises on purpose."""


class ConfigError(MedcodeError):
    """Settings, environment variables or the config file are invalid."""


class MissingDependencyError(ConfigError):
    """A command needs an optional extra that is not installed; the message says what to install."""


class InputError(MedcodeError):
    """User input is unusable; the message names the problem."""


class NoteError(InputError):
    """A clinical note is empty, binary, not UTF-8 or larger than the configured limit."""


class FHIRError(InputError):
    """A FHIR resource given as a note is invalid (fails FHIR R4 validation) or unusable (no text/plain
    attachment, attachment data that is not base64 UTF-8 text, a reference the Bundle does not resolve, ...).

    ``path`` names the element, FHIRPath-like (``Bundle.entry[1].resource.content[0].attachment.data``); the
    message starts with it. Values are never echoed: they may be note text (PHI).
    """

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path else problem)


class OverrideReasonRequiredError(InputError):
    """A coder accepted, added or substituted a code that the validators rejected, and gave no reason.

    Overriding the validators is allowed, with a reason (it is audited as a guardrail override).
    ``rules`` maps each such code to the rule ids that rejected it; ``details`` holds, per code, what to
    show the coder (``code``, ``status``, ``rules``, and for a new code its ``reasons`` and ``warnings`` as
    ``{"rule", "reason"}``; never note text). The copilot answers HTTP 422 with both; the CLI exits 2.
    """

    def __init__(
        self, message: str, *, rules: dict[str, list[str]], details: list[dict[str, Any]] | None = None
    ) -> None:
        self.rules = rules
        self.details = list(details or [])
        super().__init__(message)


class CodeSetError(MedcodeError):
    """Code-set data could not be used."""


class MalformedCodeError(CodeSetError, InputError):
    """The string is not shaped like a code of the system asked for (ICD-10-CM, HCPCS Level II or CPT)."""

    def __init__(self, raw: str, reason: str) -> None:
        self.raw = raw
        self.reason = reason
        super().__init__(f"malformed code {raw[:40]!r}: {reason}")


class UnknownCodeError(CodeSetError):
    """A well-formed code that the release does not contain."""

    def __init__(self, code: str, release: str, suggestions: list[str] | None = None) -> None:
        self.code = code
        self.release = release
        self.suggestions = list(suggestions or [])
        msg = f"unknown code {code!r} in {release}"
        if self.suggestions:
            msg += "; near matches: " + ", ".join(self.suggestions[:10])
        super().__init__(msg)


class DateOutOfRangeError(CodeSetError, InputError):
    """No loaded code-set release covers the date of service."""


class CodeSetBuildError(CodeSetError):
    """The code-set source (package or files) could not be read into the store."""


class RetrievalError(MedcodeError):
    """The candidate index could not answer."""


class IndexNotBuiltError(RetrievalError):
    """The index is missing or was left half-built; run ``medcode index build``."""


class IndexMismatchError(RetrievalError):
    """The index was built for another code-set version or embedder."""


class LLMError(MedcodeError):
    """The language-model layer failed."""


class LLMUnavailableError(LLMError):
    """The endpoint could not be reached or kept failing after retries.

    ``endpoint`` is where medcode tried; ``attempts`` how many calls were made.
    """

    def __init__(self, message: str, *, endpoint: str = "", attempts: int = 0) -> None:
        self.endpoint = endpoint
        self.attempts = attempts
        super().__init__(message)


class LLMOutputError(LLMError):
    """The model's output still failed validation after the allowed re-asks.

    ``raw_texts`` holds each attempt's completion text (may quote the note: PHI, audit use only);
    ``prompt_tokens``/``completion_tokens`` add up all attempts.
    """

    def __init__(
        self,
        message: str,
        *,
        raw_texts: list[str] | None = None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
    ) -> None:
        self.raw_texts = list(raw_texts or [])
        self.attempts = len(self.raw_texts)
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        super().__init__(message)


class ModelWeightsError(LLMError):
    """Embedded model weights are missing, incomplete or fail their checksum; the message says what to install."""


class StoreError(MedcodeError):
    """The review store (queue, audit log, coding jobs) could not be used."""


class AuditTamperedError(StoreError):
    """An audit record was edited, removed or reordered."""


class ChartNotFoundError(StoreError, InputError):
    """The review queue has no chart with that id."""


class ChartConflictError(StoreError):
    """Someone changed the chart since you read it (stale version), or it is already finalised.

    ``current_version`` is the chart's version now; re-read the chart and retry.
    """

    def __init__(self, message: str, *, chart_id: int, current_version: int | None) -> None:
        self.chart_id = chart_id
        self.current_version = current_version
        super().__init__(message)


class JobNotFoundError(StoreError, InputError):
    """No coding job with that id (or it finished longer ago than the retention time)."""


class AuditTaskNotFoundError(StoreError, InputError):
    """No audit task with that id."""


class GovernanceError(MedcodeError):
    """The governance room refused an action (e.g. an auditor coding a chart they coded before)."""


class NotEligibleError(GovernanceError):
    """A case type's blinded audits do not meet its precision targets, so autonomy is not granted."""

    def __init__(self, message: str, *, reasons: list[str] | None = None) -> None:
        self.reasons = reasons or []
        super().__init__(message)


class JobQueueFullError(MedcodeError):
    """Too many notes are waiting for the copilot's coding worker; retry later."""


class DistributedError(MedcodeError):
    """Batch work on a Ray cluster failed: the cluster cannot be reached, a worker could not start (the message
    carries its error), or a worker died more often than ``max_restarts`` allows. Results already written stay;
    a rerun resumes after them."""


class PermissionDeniedError(MedcodeError):
    """The authenticated user's role does not allow the action, or a request names another user (HTTP 403)."""
