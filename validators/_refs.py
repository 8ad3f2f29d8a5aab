"""Code references inside tabular notes: ``(E10.-)``, ``(N18.1-N18.6)``, ``(E08-E13 with .21)``.

Excludes1, code-first and use-additional notes are free text that names codes. ``CodeRefMatcher``
parses every reference in a note into prefix ranges and answers "does this code fall under it?".

Grammar handled (dots optional, case as in the tabular list):

* a single code or header, with or without a wildcard: ``P70.2``, ``E10.-``, ``F02.81-``, ``I69.``;
  a reference matches the code and all its descendants;
* a range: ``N18.1-N18.6``, ``E08-E13``, ``O00-O9A``, ``S06.0- to S06.8-`` (both ends inclusive,
  descendants included);
* a qualifier inside the same parenthesis: ``(E08-E13 with .21)``, ``(F10-F19, with .17, .27, .97)``,
  ``(E08-E13 with .51-.52)`` expand to the named subcategories of each category in the range.
  Other qualifiers (``with fifth character 5``, ``with final characters -91``, ``with 7th character B``)
  are kept as *imprecise* references: they match the whole range, and callers that must not
  over-match (Excludes1) ignore them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from medcode.codesets import CATEGORY_SHAPE

__all__ = ["CodeRef", "CodeRefMatcher", "parse_code_refs"]

_CODE = rf"{CATEGORY_SHAPE}(?:\.[0-9A-Z]{{0,4}})?"
_ITEM = re.compile(
    rf"(?<![A-Za-z0-9.])(?P<a>{_CODE})(?:\.?-)?(?:\s*(?:-|\u2013|to)\s*(?P<b>{_CODE})(?:\.?-)?)?(?![A-Za-z0-9])"
)
_WITH = re.compile(r"\bwith\b", re.IGNORECASE)
_SUFFIX_LIST = re.compile(
    r"^with\s+(?P<body>\.[0-9A-Z]{1,4}-?(?:\s*-\s*\.[0-9A-Z]{1,4}-?)?(?:\s*,\s*\.[0-9A-Z]{1,4}-?)*)\s*$"
)
_SUFFIX_ITEM = re.compile(r"\.(?P<a>[0-9A-Z]{1,4})-?(?:\s*-\s*\.(?P<b>[0-9A-Z]{1,4})-?)?")
_GROUP = re.compile(r"\(([^()]*)\)")


def _nodot(code: str) -> str:
    return code.replace(".", "")


@dataclass(frozen=True)
class CodeRef:
    """Codes from ``lo`` to ``hi`` (no dots), descendants included; ``text`` is the source wording."""

    lo: str
    hi: str
    text: str
    precise: bool = True

    def matches(self, code: str) -> bool:
        """True when ``code`` (dotted or not) falls under this reference."""
        c = _nodot(code).upper()
        return c >= self.lo and c[: len(self.hi)] <= self.hi

    @property
    def label(self) -> str:
        """Dotted display form, e.g. ``N18.1-N18.6`` or ``E10.-``."""

        def dotted(value: str) -> str:
            return value if len(value) <= 3 else f"{value[:3]}.{value[3:]}"

        if self.lo == self.hi:
            return dotted(self.lo) + (".-" if len(self.lo) == 3 else "")
        return f"{dotted(self.lo)}-{dotted(self.hi)}"


def _categories_between(lo: str, hi: str) -> list[str] | None:
    """``E08``..``E13`` -> every numeric category between them; None when not enumerable."""
    if len(lo) != 3 or len(hi) != 3 or lo[0] != hi[0] or not (lo[1:].isdigit() and hi[1:].isdigit()):
        return None
    start, end = int(lo[1:]), int(hi[1:])
    if end < start or end - start > 100:
        return None
    return [f"{lo[0]}{n:02d}" for n in range(start, end + 1)]


def _expand_with(base: list[tuple[str, str]], qualifier: str, text: str) -> list[CodeRef]:
    """Apply a ``with .xx`` qualifier to category-level references; imprecise when not understood."""
    match = _SUFFIX_LIST.match(qualifier.strip())
    refs: list[CodeRef] = []
    for lo, hi in base:
        cats = _categories_between(lo, hi) if lo != hi else ([lo] if len(lo) == 3 else None)
        if match is None or cats is None:
            refs.append(CodeRef(lo, hi, text, precise=False))
            continue
        for item in _SUFFIX_ITEM.finditer(match.group("body")):
            a, b = item.group("a"), item.group("b") or item.group("a")
            refs.extend(CodeRef(cat + a, cat + b, text) for cat in cats)
    return refs


def _parse_segment(segment: str, text: str) -> list[CodeRef]:
    refs: list[CodeRef] = []
    with_at = None
    for hit in _WITH.finditer(segment):
        if _ITEM.search(segment, 0, hit.start()):
            with_at = hit.start()
            break
    head = segment if with_at is None else segment[:with_at]
    base: list[tuple[str, str]] = []
    for item in _ITEM.finditer(head):
        lo = _nodot(item.group("a"))
        hi = _nodot(item.group("b")) if item.group("b") else lo
        if hi < lo:
            lo, hi = hi, lo
        base.append((lo, hi))
    if with_at is None:
        refs.extend(CodeRef(lo, hi, text) for lo, hi in base)
    else:
        refs.extend(_expand_with(base, segment[with_at:], text))
        # references after the qualifier (rare) are taken as plain references
        tail = segment[with_at:]
        for item in _ITEM.finditer(tail):
            lo = _nodot(item.group("a"))
            hi = _nodot(item.group("b")) if item.group("b") else lo
            refs.append(CodeRef(min(lo, hi), max(lo, hi), text, precise=False))
    return refs


def parse_code_refs(text: str) -> list[CodeRef]:
    """Every code reference in one tabular note, in order of appearance. Never raises."""
    refs: list[CodeRef] = []
    for group in _GROUP.finditer(text):
        refs.extend(_parse_segment(group.group(1), text))
    outside = _GROUP.sub(" ", text)
    refs.extend(_parse_segment(outside, text))
    return refs


class CodeRefMatcher:
    """All references of a list of notes; ``match(code)`` returns the first reference it falls under."""

    def __init__(self, notes: list[str], *, precise_only: bool = False) -> None:
        self.refs: list[CodeRef] = []
        for note in notes:
            self.refs.extend(r for r in parse_code_refs(note) if r.precise or not precise_only)

    def __bool__(self) -> bool:
        return bool(self.refs)

    def match(self, code: str) -> CodeRef | None:
        for ref in self.refs:
            if ref.matches(code):
                return ref
        return None
