"""Routing policy: does a coded note go out on its own (``auto``) or to a human (``review``)?

The default is human-assisted: with an empty autonomy allow-list every note is reviewed, with
the validated suggestions pre-filled. A note is ``auto`` only when *all* of these hold:

- its note type is on ``routing_autonomy_note_types``;
- it has at least one code and every code was accepted by the validators;
- no code carries a warning;
- every code's confidence is known and strictly above ``routing_auto_threshold``;
- the caller passed no extra reason (the orchestrator passes ``LLM_UNAVAILABLE`` when the model
  failed, so such notes are always reviewed, and the reasons of every ``RoutingCheck`` wired into
  the coder: the CLI root and the copilot wire monitoring's financial-impact check).

Confidence never rescues a code that failed a rule: a rejected code forces review whatever
its confidence. Every reason that applies is listed (not only the first), as stable strings:

==============================  ===========================================================
``HUMAN_ASSISTED_DEFAULT``      the allow-list is empty: everything is reviewed
``NOTE_TYPE_NOT_AUTONOMOUS``    the note type (or a missing one) is not on the allow-list
``NO_CODES``                    nothing was proposed
``CODE_REJECTED:<code>:<rule>`` a validator rejected the code (one reason per rule id)
``WARNING:<code>:<rule>``       the code was accepted with a warning
``LOW_CONFIDENCE:<code>``       confidence missing or not above the threshold
``LLM_UNAVAILABLE``             (extra reason) the language model could not be used
``FINANCIAL_IMPACT:DRG:<code>`` (extra reason, ``RoutingCheck``) the machine's code moves the
                                MS-DRG (a CC/MCC the grouper used; ``UNGROUPABLE`` when the
                                claim cannot be grouped, so the impact is unknown)
``FINANCIAL_IMPACT:HCC:<code>`` (extra reason, ``RoutingCheck``) the machine's code adds a
                                CMS-HCC payment category
``ROUTING_CHECK_FAILED:<name>`` (extra reason) a wired-in check raised; the note is reviewed
==============================  ===========================================================

A ``RoutingCheck`` is how a later stage adds reasons without the agent importing it: the agent
defines the protocol, the caller passes implementations to ``MedicalCoder(routing_checks=...)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from medcode.config import Settings
from medcode.errors import ConfigError
from medcode.validators import CodeVerdict

if TYPE_CHECKING:
    from medcode.agent._note import Note

__all__ = [
    "CODE_REJECTED",
    "FINANCIAL_IMPACT",
    "HUMAN_ASSISTED_DEFAULT",
    "LLM_UNAVAILABLE",
    "LOW_CONFIDENCE",
    "NOTE_TYPE_NOT_AUTONOMOUS",
    "NO_CODES",
    "ROUTING_CHECK_FAILED",
    "WARNING",
    "RoutingCheck",
    "RoutingDecision",
    "RoutingPolicy",
    "reason_kind",
]

HUMAN_ASSISTED_DEFAULT = "HUMAN_ASSISTED_DEFAULT"
NOTE_TYPE_NOT_AUTONOMOUS = "NOTE_TYPE_NOT_AUTONOMOUS"
NO_CODES = "NO_CODES"
CODE_REJECTED = "CODE_REJECTED"
WARNING = "WARNING"
LOW_CONFIDENCE = "LOW_CONFIDENCE"
LLM_UNAVAILABLE = "LLM_UNAVAILABLE"
FINANCIAL_IMPACT = "FINANCIAL_IMPACT"
ROUTING_CHECK_FAILED = "ROUTING_CHECK_FAILED"

Decision = Literal["auto", "review"]


def reason_kind(reason: str) -> str:
    """The stable prefix of a reason: ``CODE_REJECTED:E11.9:SPAN_NEGATED`` -> ``CODE_REJECTED``."""
    return reason.split(":", 1)[0]


def _normalise_note_type(note_type: str | None) -> str | None:
    if note_type is None:
        return None
    cleaned = " ".join(note_type.split()).lower()
    return cleaned or None


class RoutingCheck(Protocol):
    """A check a later stage contributes to routing: extra reasons to send a coded note to a human.

    ``reasons`` sees the note and the validators' verdicts and returns stable reason strings (empty
    when nothing applies); it must not change them. It may raise a ``MedcodeError``: the coder then
    routes the note to review with ``ROUTING_CHECK_FAILED:<name>``.
    """

    name: str

    def reasons(self, note: Note, verdicts: Sequence[CodeVerdict]) -> list[str]: ...


class RoutingDecision(BaseModel):
    """``auto`` or ``review``, with every reason that applied (empty only for ``auto``)."""

    model_config = ConfigDict(extra="forbid")

    decision: Decision
    reasons: list[str] = Field(default_factory=list)
    threshold: float | None = Field(default=None, description="The confidence threshold the policy used.")


class RoutingPolicy(BaseModel):
    """Immutable routing configuration; build it with ``from_settings``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    auto_threshold: float = Field(default=0.9, ge=0.0, le=1.0)
    autonomy_note_types: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> RoutingPolicy:
        """Policy from ``routing_auto_threshold`` and ``routing_autonomy_note_types``.

        Raises ``ConfigError`` when an allow-list entry is blank.
        """
        types: set[str] = set()
        for raw in settings.routing_autonomy_note_types:
            normalised = _normalise_note_type(raw)
            if normalised is None:
                raise ConfigError("routing_autonomy_note_types contains an empty note type")
            types.add(normalised)
        return cls(auto_threshold=settings.routing_auto_threshold, autonomy_note_types=frozenset(types))

    @property
    def human_assisted(self) -> bool:
        """True when the allow-list is empty, so every note is reviewed."""
        return not self.autonomy_note_types

    def decide(
        self,
        verdicts: Sequence[CodeVerdict],
        note_type: str | None,
        extra_reasons: Iterable[str] = (),
    ) -> RoutingDecision:
        """Route one note. Note types compare case- and whitespace-insensitively.

        Raises ``ValueError`` when an extra reason is blank (a programming error).
        """
        reasons: list[str] = []
        for extra in extra_reasons:
            if not isinstance(extra, str) or not extra.strip():
                raise ValueError(f"routing extra reasons must be non-empty strings, got {extra!r}")
            if extra.strip() not in reasons:
                reasons.append(extra.strip())
        if self.human_assisted:
            reasons.append(HUMAN_ASSISTED_DEFAULT)
        elif _normalise_note_type(note_type) not in self.autonomy_note_types:
            reasons.append(NOTE_TYPE_NOT_AUTONOMOUS)
        if not verdicts:
            reasons.append(NO_CODES)
        for verdict in verdicts:
            label = verdict.canonical or verdict.code
            if verdict.status != "accepted":
                for rule in verdict.rules or ["UNSPECIFIED"]:
                    reasons.append(f"{CODE_REJECTED}:{label}:{rule}")
                continue  # confidence is irrelevant for a rejected code
            for warning in verdict.warnings:
                reasons.append(f"{WARNING}:{label}:{warning.rule}")
            if verdict.confidence is None or verdict.confidence <= self.auto_threshold:
                reasons.append(f"{LOW_CONFIDENCE}:{label}")
        decision: Decision = "review" if reasons else "auto"
        return RoutingDecision(decision=decision, reasons=reasons, threshold=self.auto_threshold)
