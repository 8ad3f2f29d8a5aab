"""``ICD10PCSCodeSet``: ICD-10-PCS codes by date of service, with their seven axes explained.

An ICD-10-PCS code has seven characters, each an axis whose meaning depends on the characters
before it: the section (1st) names the axes of the rest; in Medical and Surgical (``0``) they are
body system, root operation, body part, approach, device and qualifier. A table is the first three
characters; its rows say which body parts, approaches, devices and qualifiers combine. A code is
valid on a date when CMS lists it then (the MCE procedure master, see ``_pcs_build.py``), which is
the same as every axis value being allowed by a row of its table. ``axis_check`` names the first
axis whose value no valid code continues with, so a reason can say which character is wrong.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from medcode._sqlite import ReadOnlyStore
from medcode.codesets._pcs_build import (
    PCS_INSTALL_HINT,
    PCS_SCHEMA_VERSION,
    build_pcs_store,
    resolve_pcs_sources,
)
from medcode.config import Settings
from medcode.errors import CodeSetBuildError, DateOutOfRangeError, MalformedCodeError, UnknownCodeError

__all__ = [
    "PCS_ALPHABET",
    "PCS_AXES",
    "PCS_SECTIONS",
    "AxisCheck",
    "ICD10PCSCodeSet",
    "PCSAxis",
    "PCSCodeRecord",
    "PCSEntry",
    "fiscal_year",
    "normalize_pcs",
    "open_pcs",
    "pcs_store_path",
]

log = logging.getLogger(__name__)

PCS_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
"""The 34 characters ICD-10-PCS uses: digits and letters except I and O."""
_PCS_RE = re.compile(r"^[0-9A-HJ-NP-Z]{1,7}$")

PCS_SECTIONS: dict[str, str] = {
    "0": "Medical and Surgical",
    "1": "Obstetrics",
    "2": "Placement",
    "3": "Administration",
    "4": "Measurement and Monitoring",
    "5": "Extracorporeal or Systemic Assistance and Performance",
    "6": "Extracorporeal or Systemic Therapies",
    "7": "Osteopathic",
    "8": "Other Procedures",
    "9": "Chiropractic",
    "B": "Imaging",
    "C": "Nuclear Medicine",
    "D": "Radiation Therapy",
    "F": "Physical Rehabilitation and Diagnostic Audiology",
    "G": "Mental Health",
    "H": "Substance Abuse Treatment",
    "X": "New Technology",
}

_SURGICAL = ("Section", "Body System", "Root Operation", "Body Part", "Approach", "Device", "Qualifier")
PCS_AXES: dict[str, tuple[str, ...]] = {
    "0": _SURGICAL,
    "1": _SURGICAL,
    "2": ("Section", "Body System", "Root Operation", "Body Region", "Approach", "Device", "Qualifier"),
    "3": ("Section", "Body System", "Root Operation", "Body System / Region", "Approach", "Substance", "Qualifier"),
    "4": ("Section", "Body System", "Root Operation", "Body System", "Approach", "Function / Device", "Qualifier"),
    "5": ("Section", "Body System", "Root Operation", "Body System", "Duration", "Function", "Qualifier"),
    "6": ("Section", "Body System", "Root Operation", "Body System", "Duration", "Qualifier", "Qualifier"),
    "7": ("Section", "Body System", "Root Operation", "Body Region", "Approach", "Method", "Qualifier"),
    "8": ("Section", "Body System", "Root Operation", "Body Region", "Approach", "Method", "Qualifier"),
    "9": ("Section", "Body System", "Root Operation", "Body Region", "Approach", "Method", "Qualifier"),
    "B": ("Section", "Body System", "Type", "Body Part", "Contrast", "Qualifier", "Qualifier"),
    "C": ("Section", "Body System", "Type", "Body Part", "Radionuclide", "Qualifier", "Qualifier"),
    "D": ("Section", "Body System", "Modality", "Treatment Site", "Modality Qualifier", "Isotope", "Qualifier"),
    "F": ("Section", "Section Qualifier", "Type", "Body System / Region", "Type Qualifier", "Equipment", "Qualifier"),
    "G": ("Section", "Body System", "Type", "Qualifier", "Qualifier", "Qualifier", "Qualifier"),
    "H": ("Section", "Body System", "Type", "Qualifier", "Qualifier", "Qualifier", "Qualifier"),
    "X": (
        "Section",
        "Body System",
        "Root Operation",
        "Body Part",
        "Approach",
        "Device / Substance / Technology",
        "Qualifier",
    ),
}
"""The name of each of the seven axes per section (CMS ICD-10-PCS Official Guidelines, section A)."""


def fiscal_year(day: dt.date) -> int:
    """The US federal fiscal year of a date (FY2026 runs 2025-10-01 .. 2026-09-30)."""
    return day.year + 1 if day.month >= 10 else day.year


def normalize_pcs(raw: object, *, allow_partial: bool = False) -> str:
    """Canonical form of an ICD-10-PCS code (``0ft44zz`` -> ``0FT44ZZ``; dots and spaces removed).

    Raises ``MalformedCodeError`` for non-strings, characters outside the PCS alphabet (I and O are
    never used) and, unless ``allow_partial``, codes shorter than seven characters (a partial code is
    not a code: it cannot go on a claim).
    """
    if not isinstance(raw, str):
        raise MalformedCodeError(repr(raw), f"expected a string, got {type(raw).__name__}")
    if len(raw) > 64:
        raise MalformedCodeError(raw, "longer than 64 characters")
    text = "".join(raw.split()).replace(".", "").replace("-", "").upper()
    if not text:
        raise MalformedCodeError(raw, "empty code")
    if len(text) > 7:
        raise MalformedCodeError(raw, "an ICD-10-PCS code has exactly 7 characters")
    if not _PCS_RE.match(text):
        bad = sorted({c for c in text if c not in PCS_ALPHABET})
        raise MalformedCodeError(
            raw, f"characters {''.join(bad)!r} are not ICD-10-PCS characters (digits and letters except I and O)"
        )
    if len(text) < 7 and not allow_partial:
        raise MalformedCodeError(raw, f"incomplete: {len(text)} of the 7 characters an ICD-10-PCS code needs")
    return text


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PCSAxis(_Frozen):
    """One character of a code: its position (1-7), the axis name in this section, the value and its label."""

    position: int
    name: str
    value: str
    label: str | None = None


class PCSCodeRecord(_Frozen):
    """An ICD-10-PCS code as of a date of service.

    ``valid``: CMS lists the code on ``as_of``. ``effective_from``/``effective_to``: the span of
    validity containing ``as_of`` (or the nearest one). ``release``: ``icd10pcs-fy<year>`` of the date.
    ``title``: the CMS long title (empty for the few codes no installed source describes).
    ``axes``: the seven characters; labels come from the tables (Medical and Surgical, some
    Obstetrics) and are None elsewhere. ``root_operation_definition``: CMS's definition of the root
    operation, when the tables give one.
    """

    code: str
    system: Literal["ICD-10-PCS"] = "ICD-10-PCS"
    release: str
    title: str
    title_source: str | None
    valid: bool
    billable: bool
    as_of: dt.date
    effective_from: dt.date
    effective_to: dt.date | None
    section: str
    table: str
    axes: list[PCSAxis]
    root_operation_definition: str | None = None
    root_operation_explanation: str | None = None

    @property
    def description(self) -> str:
        return self.title


class PCSEntry(NamedTuple):
    """A code valid on a date, with the text an index searches (title and axis labels)."""

    code: str
    title: str
    labels: tuple[str, ...]


class AxisCheck(NamedTuple):
    """Which axis of a code no valid code continues with (``position`` 1-7), and what would be allowed."""

    position: int
    axis: str
    value: str
    allowed: list[str]


class ICD10PCSCodeSet(ReadOnlyStore):
    """ICD-10-PCS codes valid by date of service (FY2016 .. the data's last date), read-only, thread-safe.

    ``get`` raises ``MalformedCodeError`` (bad shape or partial code), ``UnknownCodeError`` (never
    listed, with near codes) and ``DateOutOfRangeError`` (a date the data does not cover). Without a
    date, the newest date the data covers is used.
    """

    def __init__(self, store: Path) -> None:
        super().__init__(
            store,
            what="ICD-10-PCS store",
            schema_version=PCS_SCHEMA_VERSION,
            error=CodeSetBuildError,
            fix="open_pcs rebuilds it from the installed packages",
        )
        try:
            info = json.loads(self._conn().execute("SELECT value FROM meta WHERE key = 'info'").fetchone()[0])
            self._roots = {
                (s, v): (n, d, e)
                for s, v, n, d, e in self._conn().execute(
                    "SELECT section, value, name, definition, explanation FROM root_operations"
                )
            }
            self._systems = {
                (s, v): n for s, v, n in self._conn().execute("SELECT section, value, name FROM body_systems")
            }
        except (sqlite3.DatabaseError, TypeError, ValueError) as exc:
            raise CodeSetBuildError(f"ICD-10-PCS store {store} is unreadable ({exc}); delete it to rebuild") from exc
        self.info: dict[str, Any] = info
        self.effective_from = dt.date.fromisoformat(info["effective_from"])
        self.effective_to = dt.date.fromisoformat(info["effective_to"])
        self._prefix_cache: dict[tuple[str, str], set[str]] = {}

    # -- dates ----------------------------------------------------------------------
    def day(self, date_of_service: dt.date | None) -> dt.date:
        """The date lookups use: the given one (checked), else the newest day of the data's current fiscal year."""
        if date_of_service is None:
            return min(self.effective_to, dt.date(fiscal_year(self.effective_to) - 1, 9, 30))
        if not self.effective_from <= date_of_service <= self.effective_to:
            raise DateOutOfRangeError(
                f"no loaded ICD-10-PCS data covers date of service {date_of_service.isoformat()}; "
                f"the data covers {self.effective_from}..{self.effective_to}"
            )
        return date_of_service

    def release_for(self, date_of_service: dt.date | None = None) -> str:
        """``icd10pcs-fy2026`` for a date in FY2026 (the newest complete fiscal year when None)."""
        return f"icd10pcs-fy{fiscal_year(self.day(date_of_service))}"

    @property
    def version(self) -> str:
        """The store's identity: the newest release and a hash of its sources."""
        return f"{self.release_for()}+{self.info['sha256'][:8]}"

    # -- lookups --------------------------------------------------------------------
    @staticmethod
    def normalize(code: object) -> str:
        return normalize_pcs(code)

    def exists(self, code: str, date_of_service: dt.date | None = None) -> bool:
        """True when the (complete) code is valid on the date. False for malformed or partial codes."""
        day = self.day(date_of_service).isoformat()
        try:
            normalized = normalize_pcs(code)
        except MalformedCodeError:
            return False
        row = (
            self._conn()
            .execute("SELECT 1 FROM spans WHERE code = ? AND date_from <= ? AND date_to >= ?", (normalized, day, day))
            .fetchone()
        )
        return row is not None

    def __contains__(self, code: object) -> bool:
        try:
            return self.exists(code)  # type: ignore[arg-type]
        except (MalformedCodeError, DateOutOfRangeError):
            return False

    def get(self, code: str, date_of_service: dt.date | None = None) -> PCSCodeRecord:
        """The code as of a date of service; see the class docstring for the errors."""
        day = self.day(date_of_service)
        normalized = normalize_pcs(code)
        conn = self._conn()
        row = conn.execute("SELECT title, title_source, labels FROM codes WHERE code = ?", (normalized,)).fetchone()
        if row is None:
            raise UnknownCodeError(normalized, self.release_for(day), self.suggest(normalized, day))
        spans = [
            (dt.date.fromisoformat(a), dt.date.fromisoformat(b))
            for a, b in conn.execute(
                "SELECT date_from, date_to FROM spans WHERE code = ? ORDER BY date_from", (normalized,)
            )
        ]
        current = next((s for s in spans if s[0] <= day <= s[1]), None)
        valid = current is not None
        if current is None:
            earlier = [s for s in spans if s[1] < day]
            current = earlier[-1] if earlier else spans[0]
        # merge adjacent spans (a code whose attributes changed is one span of validity)
        start, end = current
        for a, b in spans:
            if b == start - dt.timedelta(days=1):
                start = a
        for a, b in spans:
            if a == end + dt.timedelta(days=1):
                end = b
        title, source, labels = row
        label_list = labels.split("\t") if labels else [None] * 7
        section = normalized[0]
        names = PCS_AXES.get(section, ("Section", *(["Axis"] * 6)))
        axes = [
            PCSAxis(position=i + 1, name=names[i], value=normalized[i], label=label_list[i] or None) for i in range(7)
        ]
        if axes[0].label is None and section in PCS_SECTIONS:
            axes[0] = axes[0].model_copy(update={"label": PCS_SECTIONS[section]})
        if axes[1].label is None:
            system = self._systems.get((section, normalized[1]))
            if system:
                axes[1] = axes[1].model_copy(update={"label": system})
        root = self._roots.get((section, normalized[2]))
        if root is not None and axes[2].label is None:
            axes[2] = axes[2].model_copy(update={"label": root[0]})
        return PCSCodeRecord(
            code=normalized,
            release=self.release_for(day),
            title=title,
            title_source=source,
            valid=valid,
            billable=valid,
            as_of=day,
            effective_from=start,
            effective_to=None if end >= self.effective_to else end,
            section=section,
            table=normalized[:3],
            axes=axes,
            root_operation_definition=root[1] if root else None,
            root_operation_explanation=root[2] if root else None,
        )

    def _continuations(self, prefix: str, day: str) -> set[str]:
        key = (prefix, day)
        cached = self._prefix_cache.get(key)
        if cached is not None:
            return cached
        rows = self._conn().execute(
            "SELECT DISTINCT substr(code, ?, 1) FROM spans WHERE code >= ? AND code < ? AND date_from <= ? "
            "AND date_to >= ?",
            (len(prefix) + 1, prefix, prefix + "\x7f", day, day),
        )
        found = {r[0] for r in rows}
        if len(self._prefix_cache) > 4096:
            self._prefix_cache.clear()
        self._prefix_cache[key] = found
        return found

    def axis_check(self, code: str, date_of_service: dt.date | None = None) -> AxisCheck | None:
        """The first axis whose value no code valid on the date continues with; None when the code is valid.

        Works on partial codes too (a 4-character prefix is checked as far as it goes). Raises
        ``MalformedCodeError`` for characters outside the PCS alphabet.
        """
        day = self.day(date_of_service).isoformat()
        normalized = normalize_pcs(code, allow_partial=True)
        names = PCS_AXES.get(normalized[0], ("Section", *(["Axis"] * 6)))
        for i, char in enumerate(normalized):
            allowed = self._continuations(normalized[:i], day)
            if char not in allowed:
                return AxisCheck(i + 1, names[i], char, sorted(allowed))
        return None

    def suggest(self, code: str, date_of_service: dt.date | None = None, limit: int = 10) -> list[str]:
        """Codes valid on the date that share the longest prefix with ``code`` (at least 3 characters)."""
        day = self.day(date_of_service).isoformat()
        for length in range(min(len(code), 6), 2, -1):
            rows = (
                self._conn()
                .execute(
                    "SELECT DISTINCT code FROM spans WHERE code >= ? AND code < ? AND date_from <= ? AND date_to >= ? "
                    "ORDER BY code LIMIT ?",
                    (code[:length], code[:length] + "\x7f", day, day, limit),
                )
                .fetchall()
            )
            if rows:
                return [r[0] for r in rows]
        return []

    def iter_codes(self, date_of_service: dt.date | None = None) -> Iterator[PCSEntry]:
        """Every code valid on the date that has a title, in code order."""
        day = self.day(date_of_service).isoformat()
        rows = self._conn().execute(
            "SELECT DISTINCT c.code, c.title, c.labels FROM spans s JOIN codes c ON c.code = s.code "
            "WHERE s.date_from <= ? AND s.date_to >= ? AND c.title != '' ORDER BY c.code",
            (day, day),
        )
        for code, title, labels in rows:
            yield PCSEntry(code, title, tuple(labels.split("\t")) if labels else ())

    def mce_attributes(self, code: str, date_of_service: dt.date | None = None) -> tuple[str, ...]:
        """The MCE attributes of a code's span on the date (e.g. ``noncovered``, ``lcov``); empty when none."""
        day = self.day(date_of_service).isoformat()
        row = (
            self._conn()
            .execute(
                "SELECT attributes FROM spans WHERE code = ? AND date_from <= ? AND date_to >= ?",
                (normalize_pcs(code), day, day),
            )
            .fetchone()
        )
        return tuple(a for a in (row[0] if row else "").split(",") if a)

    def stats(self) -> dict[str, Any]:
        """Counts and provenance of the store."""
        day = self.day(None).isoformat()
        current = (
            self._conn()
            .execute("SELECT count(DISTINCT code) FROM spans WHERE date_from <= ? AND date_to >= ?", (day, day))
            .fetchone()[0]
        )
        return {
            "system": "ICD-10-PCS",
            "version": self.version,
            "release": self.release_for(),
            "effective_from": self.effective_from.isoformat(),
            "effective_to": self.effective_to.isoformat(),
            "sources": self.info["sources"],
            "built_at": self.info["built_at"],
            "codes_valid_in_release": int(current),
            **self.info["counts"],
        }


def pcs_store_path(settings: Settings) -> Path:
    """Where the ICD-10-PCS store lives: ``<data_dir>/codesets/icd10pcs.sqlite``."""
    return settings.data_dir / "codesets" / "icd10pcs.sqlite"


def open_pcs(settings: Settings) -> ICD10PCSCodeSet:
    """Open the ICD-10-PCS store, building it (a few seconds) when missing, unreadable or built from other data.

    Raises ``CodeSetBuildError`` when the packages are not installed and there is no store.
    """
    path = pcs_store_path(settings)
    sources = resolve_pcs_sources()
    codeset: ICD10PCSCodeSet | None = None
    if path.is_file():
        try:
            codeset = ICD10PCSCodeSet(path)
        except CodeSetBuildError as exc:
            log.warning("rebuilding the ICD-10-PCS store: %s", exc)
            codeset = None
        if codeset is not None and sources is not None and codeset.info.get("sources") != sources.versions:
            codeset.close()
            codeset = None
    if codeset is not None:
        return codeset
    if sources is None:
        raise CodeSetBuildError(f"no ICD-10-PCS data: {PCS_INSTALL_HINT}")
    build_pcs_store(sources, path)
    return ICD10PCSCodeSet(path)
