"""Notes coming in: plain text from a string, a file or stdin, checked before any work is done."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from medcode._input import describe_validation_error
from medcode.errors import InputError, NoteError

__all__ = ["Note", "NoteType", "sha256_text"]


def sha256_text(text: str) -> str:
    """Hex sha256 of a string's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


NoteType = str  # free-form ("outpatient_visit", "ed_note", "discharge_summary", ...)


class Note(BaseModel):
    """A clinical note to code. ``text`` is PHI: it is never logged."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    text: str
    setting: Literal["outpatient", "inpatient"] = "outpatient"
    note_type: NoteType = "outpatient_visit"
    age: int | None = Field(default=None, ge=0, le=130)
    sex: Literal["F", "M"] | None = None
    date_of_service: dt.date | None = None

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
        fields.setdefault("id", sha256_text(text)[:12])
        try:
            return cls(text=text, **fields)  # type: ignore[arg-type]
        except ValidationError as exc:
            raise InputError(f"invalid note details ({describe_validation_error(exc)})") from None
