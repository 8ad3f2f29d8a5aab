"""Turning user-typed procedure code strings into canonical HCPCS Level II or CPT form."""

from __future__ import annotations

import re

from medcode.errors import MalformedCodeError

__all__ = ["CPT_PATTERN", "HCPCS_LEVEL2_PATTERN", "is_cpt_shaped", "normalize_cpt", "normalize_hcpcs"]

# HCPCS Level II: a letter A-V then four digits (J1100, G0008, E0601).
HCPCS_LEVEL2_PATTERN = re.compile(r"^[A-V][0-9]{4}$")
# CPT (Level I): five digits (Category I), or four digits and F (Category II), T (Category III),
# U (proprietary laboratory analyses), A (vaccine product administration) or M (MAAA administrative).
CPT_PATTERN = re.compile(r"^[0-9]{4}[0-9AFMTU]$")
_MAX_RAW_LENGTH = 64


def _clean(raw: object) -> tuple[str, str]:
    """(the raw string, the upper-cased string without whitespace); raises for unusable input."""
    if not isinstance(raw, str):
        raise MalformedCodeError(repr(raw), f"expected a string, got {type(raw).__name__}")
    if len(raw) > _MAX_RAW_LENGTH:
        raise MalformedCodeError(raw, f"longer than {_MAX_RAW_LENGTH} characters")
    text = "".join(raw.split()).upper()
    if not text:
        raise MalformedCodeError(raw, "empty code")
    if not text.isascii():
        raise MalformedCodeError(raw, "contains non-ASCII characters")
    return raw, text


def is_cpt_shaped(text: str) -> bool:
    """True when the (already upper-cased, whitespace-free) string has a CPT code's shape."""
    return CPT_PATTERN.match(text) is not None


def normalize_hcpcs(raw: object) -> str:
    """Return the canonical form of an HCPCS Level II code (``j1100`` -> ``J1100``).

    Accepts any case and surrounding or inner whitespace; checks shape only, not existence. Raises
    ``MalformedCodeError`` for non-strings, empty or non-ASCII strings, strings over 64 characters, a
    CPT-shaped code (those belong to the CPT system) and any other shape.
    """
    raw, text = _clean(raw)
    if HCPCS_LEVEL2_PATTERN.match(text):
        return text
    if is_cpt_shaped(text):
        raise MalformedCodeError(raw, "this is a CPT (Level I) code; look it up in the CPT system")
    raise MalformedCodeError(raw, "expected an HCPCS Level II code: a letter A-V then 4 digits (e.g. J1100)")


def normalize_cpt(raw: object) -> str:
    """Return the canonical form of a CPT code (``0591t`` -> ``0591T``).

    Accepts any case and surrounding or inner whitespace; checks shape only, not existence. Raises
    ``MalformedCodeError`` for non-strings, empty or non-ASCII strings, strings over 64 characters, an
    HCPCS Level II code, and any other shape.
    """
    raw, text = _clean(raw)
    if is_cpt_shaped(text):
        return text
    if HCPCS_LEVEL2_PATTERN.match(text):
        raise MalformedCodeError(raw, "this is an HCPCS Level II code; look it up in the HCPCS system")
    raise MalformedCodeError(raw, "expected a CPT code: 5 digits, or 4 digits then F, T, U, A or M (e.g. 99213)")
