"""Turning user-typed code strings into canonical dotted ICD-10-CM form."""

from __future__ import annotations

import re

from medcode.errors import MalformedCodeError

__all__ = ["CATEGORY_SHAPE", "ICD10CM_PATTERN", "normalize_icd10cm", "strip_dot"]

# The category: a letter, then a digit and a digit or letter (E11, C4A, Z3A) or, since the April 2026
# release, a letter and a digit (QA0, neurodevelopmental disorders of genetic variants); then up to four
# characters after the dot. ``CATEGORY_SHAPE`` is the regex fragment other modules find codes in text with.
CATEGORY_SHAPE = r"[A-Z](?:[0-9][0-9A-Z]|[A-Z][0-9])"
ICD10CM_PATTERN = re.compile(rf"^{CATEGORY_SHAPE}(?:[0-9A-Z]{{1,4}})?$")
_MAX_RAW_LENGTH = 64


def strip_dot(code: str) -> str:
    """``S72.001A`` -> ``S72001A``."""
    return code.replace(".", "")


def normalize_icd10cm(raw: object) -> str:
    """Return the canonical dotted form of a code string (``s72001a`` -> ``S72.001A``).

    Accepts any case, a missing dot and surrounding or inner whitespace. This checks shape
    only, not existence. Raises ``MalformedCodeError`` for non-strings, empty strings,
    non-ASCII text, strings longer than 64 characters, a misplaced dot or a bad shape.
    """
    if not isinstance(raw, str):
        raise MalformedCodeError(repr(raw), f"expected a string, got {type(raw).__name__}")
    if len(raw) > _MAX_RAW_LENGTH:
        raise MalformedCodeError(raw, f"longer than {_MAX_RAW_LENGTH} characters")
    text = "".join(raw.split()).upper()
    if not text:
        raise MalformedCodeError(raw, "empty code")
    if not text.isascii():
        raise MalformedCodeError(raw, "contains non-ASCII characters")
    if "." in text:
        if text.count(".") > 1 or text.index(".") != 3 or text.endswith("."):
            raise MalformedCodeError(raw, "the dot must follow the third character")
        text = strip_dot(text)
    if not ICD10CM_PATTERN.match(text):
        raise MalformedCodeError(
            raw,
            "expected a letter, a digit and a digit or letter (or a letter and a digit, as in QA0), then up to "
            "4 characters (e.g. S72.001A)",
        )
    return text if len(text) == 3 else f"{text[:3]}.{text[3:]}"
