"""Typed records handed out by the code sets."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CodeKind", "CodeRecord", "InheritedNote", "Release", "ReleaseSource", "SeventhCharacter"]

CodeKind = Literal["category", "subcategory", "extension"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ReleaseSource(_Frozen):
    """Where a release's data comes from.

    ``simple_icd_10_cm``: the data bundled in the installed ``simple-icd-10-cm`` package.
    ``files``: a CMS code list (``code-list-*.txt`` as that package ships it) and the
    tabular XML, for releases added as data (for example October 2026).
    """

    kind: Literal["simple_icd_10_cm", "files"]
    package_version: str | None = None
    code_list: str | None = None
    tabular_xml: str | None = None


class Release(_Frozen):
    """One ICD-10-CM release and the dates of service it covers (both ends inclusive)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-]*$")
    system: Literal["ICD-10-CM"] = "ICD-10-CM"
    name: str
    effective_from: dt.date
    effective_to: dt.date
    source: ReleaseSource

    def covers(self, day: dt.date) -> bool:
        return self.effective_from <= day <= self.effective_to


class InheritedNote(_Frozen):
    """A tabular note that applies to a code because an ancestor (``source``) carries it."""

    source: str
    text: str


class SeventhCharacter(_Frozen):
    """7th-character rules in force for a code.

    ``required``: the code itself still needs a 7th character to be billable.
    ``character``/``meaning``: the code's own 7th character, when it has one.
    ``placeholder_x``: the code pads with X to reach the 7th position.
    ``allowed``: characters valid for this code (from the release's code list).
    ``definitions``: the category-level table (``defined_at``) the code inherits.
    """

    defined_at: str
    definitions: dict[str, str]
    allowed: list[str]
    required: bool
    character: str | None = None
    meaning: str | None = None
    placeholder_x: bool = False
    note: str = ""


class CodeRecord(_Frozen):
    """Everything the release says about one ICD-10-CM code (category and below)."""

    code: str
    system: Literal["ICD-10-CM"] = "ICD-10-CM"
    release: str
    description: str
    kind: CodeKind
    billable: bool
    parent: str | None
    category: str
    block: str
    block_title: str
    chapter: str
    chapter_title: str
    children: list[str] = Field(default_factory=list)
    inclusion_terms: list[str] = Field(default_factory=list)
    includes: list[str] = Field(default_factory=list)
    excludes1: list[str] = Field(default_factory=list)
    excludes2: list[str] = Field(default_factory=list)
    code_first: list[str] = Field(default_factory=list)
    use_additional: list[str] = Field(default_factory=list)
    code_also: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    inherited: dict[str, list[InheritedNote]] = Field(
        default_factory=dict,
        description="excludes1/excludes2/includes/code_first/use_additional/code_also/notes from ancestors.",
    )
    seventh: SeventhCharacter | None = None

    def all_notes(self, field: str) -> list[InheritedNote]:
        """Own notes of ``field`` followed by those inherited from ancestors, nearest first."""
        own = [InheritedNote(source=self.code, text=t) for t in getattr(self, field)]
        return own + list(self.inherited.get(field, []))
