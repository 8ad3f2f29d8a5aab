"""Routing policy: does a coded note go out on its own (``auto``) or to a human (``review``)?

The default is human-assisted: every note is reviewed, with the validated suggestions pre-filled.
There are two ways a note can be ``auto``.

**Earned autonomy** (what the CLI and the copilot use): the review stage's governance room
(``medcode.review.governance``) is wired in as an ``AutonomyGate`` and assesses each note: which
case type it belongs to (by note type, setting and code families), whether that case type holds a
grant earned through blinded audits (``medcode autonomy grant``), and the grant's confidence
threshold. A note is ``auto`` only when *all* of these hold:

- the caller passed no extra reason (LLM failures: ``LLM_UNAVAILABLE``, ``LLM_OUTPUT_INVALID``,
  ``LLM_ERROR`` are always reviewed), and no wired-in ``RoutingCheck`` gave one (the CLI root and
  the copilot wire monitoring's financial-impact check: a code that moves the MS-DRG or adds a
  CMS-HCC category);
- the note is not inpatient;
- it has at least one code, every code was accepted by the validators and none carries a warning;
- no code touches risk adjustment (maps to a CMS-HCC category);
- its case type holds an active grant (not suspended);
- every code's confidence is known and at or above the grant's threshold.

The legacy note-type allow-list and global threshold below are not used in this mode.

**Legacy allow-list** (no gate wired, e.g. a library caller): ``auto`` needs the note type on
``routing_autonomy_note_types`` (empty by default: everything is reviewed), every code accepted
without warnings, every confidence strictly above ``routing_auto_threshold`` and no extra reason.

Confidence never rescues a code that failed a rule: a rejected code forces review whatever
its confidence. Every reason that applies is listed (not only the first), as stable strings:

=================================  ===========================================================
``HUMAN_ASSISTED_DEFAULT``         (legacy) the allow-list is empty: everything is reviewed
``NOTE_TYPE_NOT_AUTONOMOUS``       (legacy) the note type (or a missing one) is not on the allow-list
``LOW_CONFIDENCE:<code>``          (legacy) confidence missing or not above the global threshold
``NO_CODES``                       nothing was proposed
``CODE_REJECTED:<code>:<rule>``    a validator rejected the code (one reason per rule id)
``WARNING:<code>:<rule>``          the code was accepted with a warning
``LLM_UNAVAILABLE``                (extra reason) the language model could not be used
``PROCEDURES_UNAVAILABLE``         (extra reason) procedure coding was asked for and could not run
``INPATIENT``                      (earned) inpatient notes are never autonomous
``HCC_CODE:<code>``                (earned) the code maps to a CMS-HCC category (risk adjustment)
``NO_CASE_TYPE``                   (earned) the note matches no case type of the autonomy policy
``CASE_TYPE_NOT_GRANTED:<id>``     (earned) its case type has no autonomy grant
``AUTONOMY_SUSPENDED:<id>``        (earned) its case type's grant is suspended (audits or drift)
``BELOW_CASE_THRESHOLD:<code>``    (earned) confidence missing or below the grant's threshold
``FINANCIAL_IMPACT:DRG:<code>``    (extra reason, ``RoutingCheck``) the machine's code moves the
                                   MS-DRG (a CC/MCC the grouper used; ``UNGROUPABLE`` when the
                                   claim cannot be grouped, so the impact is unknown)
``FINANCIAL_IMPACT:HCC:<code>``    (extra reason, ``RoutingCheck``) the machine's code adds a
                                   CMS-HCC payment category
``ROUTING_CHECK_FAILED:<name>``    (extra reason) a wired-in check raised; the note is reviewed
=================================  ===========================================================

A ``RoutingCheck`` is how a later stage adds reasons without the agent importing it: the agent
defines the protocol, the caller passes implementations to ``MedicalCoder(routing_checks=...)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from medcode.config import Settings
from medcode.errors import ConfigError
from medcode.validators import CodeVerdict

if TYPE_CHECKING:
    from medcode.agent._note import Note

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
    "NOTE_TYPE_NOT_AUTONOMOUS",
    "NO_CASE_TYPE",
    "NO_CODES",
    "PROCEDURES_UNAVAILABLE",
    "ROUTING_CHECK_FAILED",
    "WARNING",
    "AutonomyAssessment",
    "AutonomyGate",
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
INPATIENT = "INPATIENT"
HCC_CODE = "HCC_CODE"
NO_CASE_TYPE = "NO_CASE_TYPE"
CASE_TYPE_NOT_GRANTED = "CASE_TYPE_NOT_GRANTED"
AUTONOMY_SUSPENDED = "AUTONOMY_SUSPENDED"
BELOW_CASE_THRESHOLD = "BELOW_CASE_THRESHOLD"
FINANCIAL_IMPACT = "FINANCIAL_IMPACT"
ROUTING_CHECK_FAILED = "ROUTING_CHECK_FAILED"
PROCEDURES_UNAVAILABLE = "PROCEDURES_UNAVAILABLE"

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
    case_type: str | None = Field(default=None, description="The note's case type (earned autonomy only).")
    grant_id: int | None = Field(default=None, description="The autonomy grant that let the note go out alone.")
    autonomy_version: str | None = Field(default=None, description="Autonomy policy and HCC list versions used.")


GrantState = Literal["granted", "suspended", "not_granted", "no_case_type"]


class AutonomyAssessment(BaseModel):
    """What the governance stage says about one note, for routing (see ``AutonomyGate``).

    ``threshold`` is the grant's confidence threshold (only for ``granted``);
    ``risk_adjustment_codes`` lists the note's codes that map to a CMS-HCC category.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    case_type: str | None = None
    state: GrantState
    threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    grant_id: int | None = None
    risk_adjustment_codes: tuple[str, ...] = ()
    version: str | None = Field(default=None, description="Policy and HCC list versions the assessment used.")

    @model_validator(mode="after")
    def _consistent(self) -> AutonomyAssessment:
        if self.state == "granted" and self.threshold is None:
            raise ValueError("a granted case type needs its confidence threshold")
        if self.state != "no_case_type" and not self.case_type:
            raise ValueError(f"state {self.state!r} needs the case type")
        return self


class AutonomyGate(Protocol):
    """Earned autonomy, as the review stage's governance room provides it (wired by the CLI root).

    ``assess`` classifies a note by note type, setting and its validator-accepted codes and says
    whether its case type may go out on its own (``model_version``: the acceptance model that gave the
    codes their confidence); it raises ``MedcodeError`` when the grants
    cannot be read (the coder then fails the note rather than guess). ``close`` releases it.
    """

    def assess(
        self, note_type: str | None, setting: str, codes: Sequence[str], *, model_version: str | None = None
    ) -> AutonomyAssessment: ...

    def close(self) -> None: ...


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
        *,
        setting: str | None = None,
        autonomy: AutonomyAssessment | None = None,
    ) -> RoutingDecision:
        """Route one note. Note types compare case- and whitespace-insensitively.

        With ``autonomy`` (the governance gate's assessment of this note) the earned-autonomy
        rules apply and the allow-list and global threshold are ignored; without it, the legacy
        rules. Raises ``ValueError`` when an extra reason is blank (a programming error).
        """
        reasons: list[str] = []
        for extra in extra_reasons:
            if not isinstance(extra, str) or not extra.strip():
                raise ValueError(f"routing extra reasons must be non-empty strings, got {extra!r}")
            if extra.strip() not in reasons:
                reasons.append(extra.strip())
        if autonomy is not None:
            return self._earned(verdicts, setting, autonomy, reasons)
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

    @staticmethod
    def _earned(
        verdicts: Sequence[CodeVerdict], setting: str | None, autonomy: AutonomyAssessment, reasons: list[str]
    ) -> RoutingDecision:
        if setting == "inpatient":
            reasons.append(INPATIENT)
        if autonomy.state == "no_case_type":
            reasons.append(NO_CASE_TYPE)
        elif autonomy.state == "not_granted":
            reasons.append(f"{CASE_TYPE_NOT_GRANTED}:{autonomy.case_type}")
        elif autonomy.state == "suspended":
            reasons.append(f"{AUTONOMY_SUSPENDED}:{autonomy.case_type}")
        if not verdicts:
            reasons.append(NO_CODES)
        hcc = set(autonomy.risk_adjustment_codes)
        granted = autonomy.state == "granted"
        for verdict in verdicts:
            label = verdict.canonical or verdict.code
            if verdict.status != "accepted":
                for rule in verdict.rules or ["UNSPECIFIED"]:
                    reasons.append(f"{CODE_REJECTED}:{label}:{rule}")
                continue
            for warning in verdict.warnings:
                reasons.append(f"{WARNING}:{label}:{warning.rule}")
            if label in hcc or verdict.code in hcc:
                reasons.append(f"{HCC_CODE}:{label}")
            threshold = 1.0 if autonomy.threshold is None else autonomy.threshold
            if granted and (verdict.confidence is None or verdict.confidence < threshold):
                reasons.append(f"{BELOW_CASE_THRESHOLD}:{label}")
        decision: Decision = "review" if reasons or not granted else "auto"
        return RoutingDecision(
            decision=decision,
            reasons=reasons,
            threshold=autonomy.threshold if granted else None,
            case_type=autonomy.case_type,
            grant_id=autonomy.grant_id if decision == "auto" else None,
            autonomy_version=autonomy.version,
        )
