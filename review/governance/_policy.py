"""The autonomy policy: case types as data, each with its precision targets, audit sample and approver.

A TOML file (the packaged ``data/autonomy_policy.toml`` unless ``autonomy_policy_file`` names
another), validated by ``AutonomyPolicy``; its ``version`` string and the sha256 of its bytes go
into every audit batch and grant, and each case type carries the sha256 of its own definition, so a
grant made under one definition lapses when that definition is edited (routing then says
``CASE_TYPE_NOT_GRANTED``; grant it again on the audits).

A case type is selected by note type, setting and (optionally) code families:

- ``note_types`` / ``settings``: the note's type (compared case- and whitespace-insensitively) and
  setting must be listed; an empty list matches any. Specialties are expressed as note types
  (``cardiology_follow_up``): a note carries no other specialty field.
- ``code_families``: every one of the note's validator-accepted codes must fall in one of them,
  and there must be at least one. A family is a code prefix (``E78``, ``M17.1``) or a range of
  three-character categories (``E08-E13``). Empty: any codes.

The first case type that matches wins (file order): put specific ones before catch-alls.
Whatever the policy says, some notes are never autonomous (routing enforces it): inpatient notes,
notes with a code that touches risk adjustment (CMS-HCC), a rejected or warned code, or an LLM
failure. A case type limited to inpatient notes is measured but never eligible.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import tomllib
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from medcode.codesets import CATEGORY_SHAPE
from medcode.errors import ConfigError

__all__ = ["DEFAULT_POLICY_FILE", "AutonomyPolicy", "CaseType", "CodeFamily", "load_policy", "normalise_note_type"]

DEFAULT_POLICY_FILE = Path(__file__).resolve().parent / "data" / "autonomy_policy.toml"
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_PREFIX = re.compile(rf"^{CATEGORY_SHAPE}(\.?[0-9A-Z]{{0,4}})?$")
_CATEGORY = re.compile(rf"^{CATEGORY_SHAPE}$")


def normalise_note_type(note_type: str | None) -> str | None:
    """``" Progress  Note "`` -> ``"progress note"``; blank -> None."""
    if note_type is None:
        return None
    cleaned = " ".join(note_type.split()).lower()
    return cleaned or None


def _key(code: str) -> str:
    return "".join(code.split()).upper().replace(".", "")


class CodeFamily(BaseModel):
    """A code prefix (``E78``, ``M17.1``) or a range of categories (``E08-E13``)."""

    model_config = ConfigDict(frozen=True)

    spec: str

    @field_validator("spec")
    @classmethod
    def _shape(cls, value: str) -> str:
        spec = "".join(value.split()).upper()
        first, sep, last = spec.partition("-")
        if sep:
            if not (_CATEGORY.match(first) and _CATEGORY.match(last)) or first > last:
                raise ValueError(f"code family {value!r}: a range joins two categories in order, e.g. E08-E13")
        elif not _PREFIX.match(spec):
            raise ValueError(f"code family {value!r}: expected a code prefix such as E78 or M17.1")
        return spec

    def contains(self, code: str) -> bool:
        key = _key(code)
        first, sep, last = self.spec.partition("-")
        if sep:
            return first <= key[:3] <= last
        return key.startswith(_key(self.spec))


class CaseType(BaseModel):
    """One case type: how notes are selected, the targets its audits must meet, and who approved it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="Stable id, e.g. outpatient-chronic (lower case, digits, - _ .).")
    title: str = Field(min_length=1, max_length=200)
    note_types: tuple[str, ...] = ()
    settings: tuple[Literal["outpatient", "inpatient"], ...] = ()
    code_families: tuple[CodeFamily, ...] = ()
    claim_precision_target: float = Field(
        default=0.95, ge=0.5, le=1.0, description="Lower Wilson bound of the share of claims with no wrong code."
    )
    code_precision_target: float | None = Field(
        default=0.95, ge=0.5, le=1.0, description="Lower Wilson bound of the share of billed codes that are right."
    )
    min_audited: int = Field(default=100, ge=10, description="Audited charts needed before a grant.")
    audit_rate: float = Field(default=0.05, gt=0.0, le=1.0, description="Share of auto-coded charts audited.")
    review_sample: int = Field(default=10, ge=0, description="Reviewed charts drawn per audit batch.")
    approved_by: str = Field(min_length=1, max_length=200)
    approved_on: dt.date

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ID.match(value):
            raise ValueError("use lower-case letters, digits, '-', '_' or '.' (at most 64 characters)")
        return value

    @field_validator("note_types", mode="before")
    @classmethod
    def _note_types(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            cleaned = [normalise_note_type(v) if isinstance(v, str) else v for v in value]
            if any(v is None for v in cleaned):
                raise ValueError("note types must not be blank")
            return tuple(cleaned)
        return value

    @field_validator("code_families", mode="before")
    @classmethod
    def _families(cls, value: object) -> object:
        if isinstance(value, list | tuple):
            return tuple(CodeFamily(spec=v) if isinstance(v, str) else v for v in value)
        return value

    @cached_property
    def sha256(self) -> str:
        """Hash of the definition (selectors, targets, sampling, approval)."""
        body = self.model_dump_json()
        return hashlib.sha256(body.encode("utf-8")).hexdigest()

    @property
    def inpatient_only(self) -> bool:
        """Selects inpatient notes only: measured, never eligible."""
        return self.settings == ("inpatient",)

    def covers(self, note_type: str | None, setting: str | None) -> bool:
        """Whether notes of this type and setting can belong to the case type (whatever their codes)."""
        if self.note_types and normalise_note_type(note_type) not in self.note_types:
            return False
        return not (self.settings and setting not in self.settings)

    def matches(self, note_type: str | None, setting: str | None, codes: Sequence[str]) -> bool:
        """Whether a note with this type, setting and accepted codes belongs to the case type."""
        if self.note_types and normalise_note_type(note_type) not in self.note_types:
            return False
        if self.settings and setting not in self.settings:
            return False
        if self.code_families:
            return bool(codes) and all(any(f.contains(c) for f in self.code_families) for c in codes)
        return True


class AutonomyPolicy(BaseModel):
    """The whole policy file. ``sha256`` is the hash of the file's bytes (set by ``load_policy``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=100)
    auditors_per_chart: Literal[1, 2] = Field(
        default=2, description="Blind auditors per chart; with 2, a disagreement goes to an adjudicator."
    )
    case_types: tuple[CaseType, ...] = Field(min_length=1)
    sha256: str = Field(default="", description="sha256 of the policy file's bytes.")
    source: str = Field(default="", description="Where the policy was read from.")

    @model_validator(mode="after")
    def _unique(self) -> AutonomyPolicy:
        ids = [c.id for c in self.case_types]
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        if duplicated:
            raise ValueError(f"case type ids must be unique: {', '.join(duplicated)}")
        return self

    def get(self, case_type: str) -> CaseType:
        """The case type with this id. Raises ``InputError`` naming the known ones."""
        from medcode.errors import InputError

        for each in self.case_types:
            if each.id == case_type:
                return each
        raise InputError(
            f"no case type {case_type!r} in the autonomy policy {self.source or ''} "
            f"(it has: {', '.join(c.id for c in self.case_types)})"
        )

    def classify(self, note_type: str | None, setting: str | None, codes: Sequence[str]) -> CaseType | None:
        """The first case type that matches, or None."""
        for each in self.case_types:
            if each.matches(note_type, setting, codes):
                return each
        return None

    @property
    def version_label(self) -> str:
        """``version+sha256[:12]``: the policy version as recorded in ``versions`` and audit payloads."""
        return f"{self.version}+{self.sha256[:12]}"


def load_policy(path: Path | None = None) -> AutonomyPolicy:
    """Read and validate a policy file (default: the packaged one).

    Raises ``ConfigError`` naming the file and the bad field when it cannot be read or is invalid.
    """
    where = path or DEFAULT_POLICY_FILE
    try:
        raw = where.read_bytes()
        data = tomllib.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the autonomy policy {where}: {exc}") from None
    try:
        return AutonomyPolicy.model_validate({**data, "sha256": hashlib.sha256(raw).hexdigest(), "source": str(where)})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '?'}: {err['msg']}" for err in exc.errors())
        raise ConfigError(f"invalid autonomy policy {where} ({problems})") from None
