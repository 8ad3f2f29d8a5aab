"""Notes coming in: plain text from a string, a file or stdin, checked before any work is done.

A note may carry optional ``NoteMetadata`` (provider id, department, payer, encounter date) that the
monitoring reports group by; none of it is needed to code a note, and none of it changes the codes. A note
read from FHIR (``medcode.agent.note_from_fhir``) also carries ``FHIRSource``: references to the resources
it came from, which the FHIR output cites.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from medcode._input import describe_validation_error, lone_surrogate_at, reject_lone_surrogates
from medcode.errors import InputError, NoteError

__all__ = ["METADATA_FIELDS", "FHIRReference", "FHIRSource", "Note", "NoteMetadata", "NoteType", "sha256_text"]


def sha256_text(text: str) -> str:
    """Hex sha256 of a string's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


NoteType = str  # free-form ("outpatient_visit", "ed_note", "discharge_summary", ...)
UnicodeText = Annotated[str, AfterValidator(reject_lone_surrogates)]


METADATA_FIELDS = ("provider_id", "department", "payer", "encounter_date")


class NoteMetadata(BaseModel):
    """Optional facts about a note's encounter that reports group by; all of them may be missing.

    ``provider_id`` (the documenting clinician's id, e.g. an NPI or a local id), ``department`` and
    ``payer`` are short printable labels (blank means missing); ``encounter_date`` is the day of the
    encounter (``date_of_service`` on the note still picks the code-set release). Identifiers, not
    note text: they go to the review database and the audit log.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider_id: UnicodeText | None = Field(default=None, max_length=100)
    department: UnicodeText | None = Field(default=None, max_length=100)
    payer: UnicodeText | None = Field(default=None, max_length=100)
    encounter_date: dt.date | None = None

    @field_validator("provider_id", "department", "payer", mode="after")
    @classmethod
    def _label(cls, value: str | None) -> str | None:
        if value is None:
            return None
        cleaned = " ".join(value.split())
        if not cleaned.isprintable():
            raise ValueError("must be printable text")
        return cleaned or None

    def is_empty(self) -> bool:
        """True when no field is set."""
        return all(getattr(self, name) is None for name in METADATA_FIELDS)

    @classmethod
    def from_fields(cls, fields: dict[str, object]) -> NoteMetadata:
        """Metadata from a mapping's metadata keys (others are ignored). Raises ``InputError`` naming the field."""
        picked = {k: fields[k] for k in METADATA_FIELDS if fields.get(k) is not None}
        try:
            return cls.model_validate(picked)
        except ValidationError as exc:
            raise InputError(f"invalid note metadata ({describe_validation_error(exc)})") from None


class FHIRReference(BaseModel):
    """A reference to a FHIR resource: a literal ``reference`` (``Patient/123``), a business identifier
    (``system`` and ``value``), or both. Identifiers, not note text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reference: str | None = Field(default=None, max_length=500)
    system: str | None = Field(default=None, max_length=500)
    value: str | None = Field(default=None, max_length=200)

    def to_fhir(self) -> dict[str, Any]:
        """As a FHIR ``Reference`` element."""
        out: dict[str, Any] = {}
        if self.reference:
            out["reference"] = self.reference
        if self.value:
            out["identifier"] = {"value": self.value, **({"system": self.system} if self.system else {})}
        return out


class FHIRSource(BaseModel):
    """Where a note read from FHIR came from: its DocumentReference, Patient and Encounter (each when known
    outside the input Bundle: a ``urn:uuid:`` full URL is not kept) and the Encounter's class code."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    document: FHIRReference | None = None
    patient: FHIRReference | None = None
    encounter: FHIRReference | None = None
    encounter_class: str | None = Field(default=None, max_length=50)
    mappings_version: str | None = Field(default=None, max_length=100, description="Of ``agent/data/fhir.json``.")


class Note(BaseModel):
    """A clinical note to code. ``text`` is PHI: it is never logged."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: UnicodeText = Field(min_length=1, max_length=200)
    text: UnicodeText
    setting: Literal["outpatient", "inpatient"] = "outpatient"
    note_type: UnicodeText = Field(default="outpatient_visit", min_length=1, max_length=100)
    age: int | None = Field(default=None, ge=0, le=130)
    sex: Literal["F", "M"] | None = None
    date_of_service: dt.date | None = None
    metadata: NoteMetadata = Field(default_factory=NoteMetadata)
    fhir: FHIRSource | None = None

    @property
    def sha256(self) -> str:
        return sha256_text(self.text)

    @classmethod
    def checked(cls, text: str, max_chars: int, **fields: object) -> Note:
        """Build a note after checking the text. Raises ``NoteError`` for empty or oversized text and
        ``InputError`` naming the field for bad details (an age over 130, an unknown setting, ...)."""
        if not text.strip():
            raise NoteError("the note is empty")
        if len(text) > max_chars:
            raise NoteError(
                f"the note has {len(text):,} characters, over the limit of {max_chars:,} "
                "(MEDCODE_MAX_NOTE_CHARS); split it into encounters or raise the limit"
            )
        if "\x00" in text:
            raise NoteError("the note contains NUL bytes (binary data?)")
        bad = lone_surrogate_at(text)
        if bad is not None:
            raise NoteError(f"the note text is not valid Unicode (a lone surrogate at character {bad})")
        fields.setdefault("id", sha256_text(text)[:12])
        try:
            return cls(text=text, **fields)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise InputError(f"invalid note details ({describe_validation_error(exc)})") from None


@dataclass(frozen=True)
class NoteTitle:
    """What a text note's title line says of it (``agent/data/note_titles.json``)."""

    note_type: str
    setting: Literal["outpatient", "inpatient"] | None


@cache
def _titles() -> tuple[tuple[re.Pattern[str], NoteTitle], ...]:
    raw = json.loads(resources.files("medcode.agent").joinpath("data/note_titles.json").read_text(encoding="utf-8"))
    return tuple(
        # the whole line is the title, or the title and a qualifier after a dash, colon or bracket
        (
            re.compile(rf"(?:{entry['pattern']})(?:\s*[-\u2013\u2014:(|/].*)?$", re.IGNORECASE),
            NoteTitle(entry["note_type"], entry.get("setting")),
        )
        for entry in raw["titles"]
    )


def note_title(text: str) -> NoteTitle | None:
    """The note type and setting a note's title line names ("DISCHARGE SUMMARY" -> discharge_summary, inpatient),
    or None when its first non-empty line is no title the table knows. Never fails on text."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    title = first.strip().strip("#*= \t").rstrip(":").strip()
    for pattern, found in _titles():
        if pattern.match(title):
            return found
    return None
