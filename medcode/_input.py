"""Reading note text from files or stdin: the one reader every command uses (foundation, no stage imports)."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import ValidationError

from medcode.errors import NoteError

__all__ = ["describe_validation_error", "lone_surrogate_at", "read_note_text", "reject_lone_surrogates"]


def lone_surrogate_at(text: str) -> int | None:
    """The index of the first lone surrogate in ``text`` (a string no UTF-8 file or database can hold), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def reject_lone_surrogates(value: str) -> str:
    """A pydantic ``AfterValidator`` for text fields: raises ``ValueError`` (the field is named by pydantic)
    when ``value`` holds a lone surrogate (e.g. JSON ``"\\ud800"``), which would fail later when stored."""
    where = lone_surrogate_at(value)
    if where is not None:
        raise ValueError(f"is not valid Unicode (a lone surrogate at character {where})")
    return value


def describe_validation_error(exc: ValidationError, *, limit: int = 5) -> str:
    """One line naming each bad field and why (``age: Input should be less than or equal to 130``).

    Input values are not echoed: they may be note text (PHI).
    """
    parts = []
    for err in exc.errors()[:limit]:
        where = ".".join(str(p) for p in err["loc"]) or "value"
        parts.append(f"{where}: {err['msg']}")
    more = len(exc.errors()) - limit
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def read_note_text(source: str | Path) -> str:
    """Read a note file (``-`` for stdin) as UTF-8 text (a BOM is dropped).

    Raises ``NoteError`` for a missing file, a directory, binary content or invalid UTF-8,
    naming the file and the byte offset.
    """
    try:
        data = sys.stdin.buffer.read() if str(source) == "-" else Path(source).read_bytes()
    except FileNotFoundError:
        raise NoteError(f"note file not found: {source}") from None
    except IsADirectoryError:
        raise NoteError(f"note path is a directory: {source}") from None
    except OSError as exc:
        raise NoteError(f"cannot read note {source}: {exc.strerror or exc}") from None
    if b"\x00" in data[:8192]:
        raise NoteError(f"{source} looks binary (NUL bytes); expected a UTF-8 text note")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NoteError(f"{source} is not valid UTF-8 (bad byte at offset {exc.start}); re-save it as UTF-8") from None
