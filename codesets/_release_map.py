"""Codes written for another ICD-10-CM release, mapped onto a release's billable codes.

Used by the Alphabetic Index import (FY2025 Index codes onto the release in force) and by the
evaluation harness (gold codes a benchmark's coders wrote for an older release). The rules, one
level at a time:

- a code that is billable in the release is kept;
- a header (a code that became one, or always was) steps down to its default: the child whose
  description says "unspecified" (the one that says it most, then the shortest), else an only child; when the children are
  7th-character extensions, all of them are kept as a variant group;
- a code written with its placeholder X's but without its 7th character ("W19.XXX") becomes the
  group of its 7th-character variants;
- anything else (a code the release does not have, a header with no default) maps to nothing.
"""

from __future__ import annotations

from typing import Literal

from medcode.codesets._icd10cm import CodeOutline, ICD10CMCodeSet
from medcode.codesets._normalize import strip_dot

__all__ = ["MapOutcome", "ReleaseMapper"]

MapOutcome = Literal["kept", "expanded", "variants", "missing", "no_default"]


def _default_order(row: CodeOutline) -> tuple[int, int, str]:
    """Most "unspecified" first ("Unspecified fracture of unspecified pubis" before "... of left
    pubis"), then the shortest description, then the code."""
    return -row.description.lower().count("unspecified"), len(row.description), row.code


class ReleaseMapper:
    """Code -> billable codes of ``codeset``'s release, walking its hierarchy (read once, ~1 s)."""

    def __init__(self, codeset: ICD10CMCodeSet) -> None:
        self.codes: dict[str, CodeOutline] = {}
        self.children: dict[str, list[CodeOutline]] = {}
        for row in codeset.outline():
            self.codes[strip_dot(row.code)] = row
            if row.parent is not None:
                self.children.setdefault(row.parent, []).append(row)
        self._memo: dict[str, tuple[tuple[str, ...], bool, MapOutcome]] = {}

    def map(self, raw_code: str) -> tuple[tuple[str, ...], bool, MapOutcome]:
        """(codes, variants, outcome): the billable codes (dotted), whether they are a 7th-character
        variant group, and which rule applied. Never raises; a malformed code is ``missing``."""
        found = self._memo.get(raw_code)
        if found is None:
            found = self._memo[raw_code] = self._map(strip_dot(raw_code.rstrip("-").strip()).upper())
        return found

    def _map(self, nodot: str) -> tuple[tuple[str, ...], bool, MapOutcome]:
        row = self.codes.get(nodot)
        if row is None:
            return self._placeholders(nodot)
        if row.billable:
            return (row.code,), False, "kept"
        for _ in range(4):  # a header: step down to its default child until a billable code
            kids = self.children.get(row.code, [])
            if kids and all(k.kind == "extension" for k in kids):
                return tuple(k.code for k in kids if k.billable), True, "variants"
            unspecified = [k for k in kids if "unspecified" in k.description.lower()]
            if unspecified:
                row = min(unspecified, key=_default_order)
            elif len(kids) == 1:
                row = kids[0]
            else:
                return (), False, "no_default"
            if row.billable:
                return (row.code,), False, "expanded"
        return (), False, "no_default"

    def _placeholders(self, nodot: str) -> tuple[tuple[str, ...], bool, MapOutcome]:
        """A code written with its placeholder X's but no 7th character ("W19.XXX"): the release's variants."""
        parent = self.codes.get(nodot.rstrip("X"))
        if len(nodot) != 6 or not nodot.endswith("X") or parent is None:
            return (), False, "missing"
        kids = self.children.get(parent.code, [])
        variants = tuple(k.code for k in kids if k.billable and len(k.code) == 8 and strip_dot(k.code)[:6] == nodot)
        return (variants, True, "variants") if variants else ((), False, "missing")
