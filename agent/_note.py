"""Notes coming in: plain text from a string, a file or stdin, checked before any work is done."""

from __future__ import annotations

import datetime as dt
import hashlib
import sys
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from medcode.errors import NoteError

__all__ = ["Note", "NoteType", "read_note_bytes", "sha256_text"]


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
        """Build a note after checking the text. Raises ``NoteError`` for empty or oversized text."""
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
        return cls(text=text, **fields)  # type: ignore[arg-type]


def read_note_bytes(source: str | Path) -> str:
    """Read a note file (``-`` for stdin) as UTF-8 text.

    Raises ``NoteError`` for a missing file, binary content or invalid UTF-8, naming the byte offset.
    """
    try:
        data = sys.stdin.buffer.read() if str(source) == "-" else Path(source).read_bytes()
    except FileNotFoundError:
        raise NoteError(f"note file not found: {source}") from None
    except IsADirectoryError:
        raise NoteError(f"note path is a directory: {source}") from None
    except OSError as exc:
        raise NoteError(f"cannot read note {source}: {exc.strerror}") from None
    if b"\x00" in data[:8192]:
        raise NoteError(f"{source} looks binary (NUL bytes); expected a UTF-8 text note")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NoteError(f"{source} is not valid UTF-8 (bad byte at offset {exc.start}); re-save it as UTF-8") from None
    return text
