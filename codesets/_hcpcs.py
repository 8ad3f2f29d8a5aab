"""``HCPCSCodeSet``: read-only HCPCS Level II lookups by date of service in the SQLite store."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

from medcode._sqlite import ReadOnlyStore
from medcode.codesets._hcpcs_build import (
    CDT_WITHHELD_REASON,
    HCPCS_SCHEMA_VERSION,
    PYOCE_INSTALL_HINT,
    build_hcpcs_store,
    file_sha256,
    resolve_hcpcs_source,
)
from medcode.codesets._proc_models import HCPCSRelease, ProcedureCodeRecord
from medcode.codesets._proc_normalize import normalize_hcpcs
from medcode.config import Settings
from medcode.errors import CodeSetBuildError, DateOutOfRangeError, MalformedCodeError, UnknownCodeError

__all__ = ["HCPCSCodeSet", "HCPCSEntry", "hcpcs_store_path", "open_hcpcs"]

log = logging.getLogger(__name__)

_SPAN_COLUMNS = "lo, hi, description, withheld, status_indicator, min_age, max_age"


class HCPCSEntry(NamedTuple):
    """An HCPCS Level II code in force in a quarter, with the text an index embeds (empty when withheld)."""

    code: str
    description: str
    status_indicator: str | None


class _Quarter(NamedTuple):
    version: int
    ioce_version: str
    date_from: dt.date
    date_to: dt.date


class HCPCSCodeSet(ReadOnlyStore):
    """HCPCS Level II codes from CMS's outpatient code editor tables, quarter by quarter.

    Thread-safe for reads. Lookups take a date of service (default: the newest quarter's first day)
    and accept any spelling ``normalize_hcpcs`` accepts. ``get`` raises ``MalformedCodeError`` for bad
    shapes (CPT codes included), ``UnknownCodeError`` for codes never in the data, and
    ``DateOutOfRangeError`` for dates outside the loaded quarters.
    """

    def __init__(self, store: Path) -> None:
        super().__init__(
            store,
            what="HCPCS store",
            schema_version=HCPCS_SCHEMA_VERSION,
            error=CodeSetBuildError,
            fix="open_hcpcs rebuilds it from the HCPCS source",
        )
        try:
            meta = dict(self._conn().execute("SELECT key, value FROM meta").fetchall())
            quarters = self._conn().execute(
                "SELECT version, ioce_version, date_from, date_to FROM quarters ORDER BY version"
            )
            self._quarters = [
                _Quarter(v, i, dt.date.fromisoformat(f), dt.date.fromisoformat(t)) for v, i, f, t in quarters
            ]
        except sqlite3.DatabaseError as exc:
            raise CodeSetBuildError(f"HCPCS store {store} is unreadable ({exc}); delete it to rebuild") from exc
        self.release = HCPCSRelease.model_validate_json(meta["release"])
        self.counts: dict[str, int] = json.loads(meta["counts"])
        self.built_at: str = meta["built_at"]
        self._newest = int(meta["newest_version"])
        self._by_version = {q.version: q for q in self._quarters}

    # -- plumbing -----------------------------------------------------------------

    def _spans(self, code: str) -> list[tuple[Any, ...]]:
        return self._conn().execute(f"SELECT {_SPAN_COLUMNS} FROM spans WHERE code = ? ORDER BY lo", (code,)).fetchall()

    def _quarter_dates(self, lo: int, hi: int) -> tuple[dt.date, dt.date | None]:
        start = self._by_version[lo].date_from
        end = None if hi >= self._newest else self._by_version[hi].date_to
        return start, end

    # -- public -------------------------------------------------------------------
    @property
    def version(self) -> str:
        """The release id, e.g. ``hcpcs-2026-04`` (the newest quarter's first month)."""
        return self.release.id

    @staticmethod
    def normalize(code: object) -> str:
        """Canonical form of an HCPCS Level II code; see ``normalize_hcpcs``."""
        return normalize_hcpcs(code)

    def quarter_for(self, date_of_service: dt.date | None = None) -> int:
        """The I/OCE quarter version covering a date (the newest quarter when None).

        Raises ``DateOutOfRangeError`` for dates outside the loaded quarters.
        """
        if date_of_service is None:
            return self._newest
        if self.release.covers(date_of_service):
            for quarter in self._quarters:
                if quarter.date_from <= date_of_service <= quarter.date_to:
                    return quarter.version
        raise DateOutOfRangeError(
            f"no loaded HCPCS quarter covers date of service {date_of_service.isoformat()}; "
            f"{self.version} covers {self.release.effective_from}..{self.release.effective_to}"
        )

    def __contains__(self, code: object) -> bool:
        try:
            return self.exists(code)  # type: ignore[arg-type]
        except (MalformedCodeError, DateOutOfRangeError):
            return False

    def exists(self, code: str, date_of_service: dt.date | None = None) -> bool:
        """True when the code is in force on the date (newest quarter when None).

        False for malformed or unknown codes; raises ``DateOutOfRangeError`` for dates outside the data.
        """
        version = self.quarter_for(date_of_service)
        try:
            normalized = normalize_hcpcs(code)
        except MalformedCodeError:
            return False
        row = (
            self._conn()
            .execute("SELECT 1 FROM spans WHERE code = ? AND lo <= ? AND hi >= ?", (normalized, version, version))
            .fetchone()
        )
        return row is not None

    def get(self, code: str, date_of_service: dt.date | None = None) -> ProcedureCodeRecord:
        """The code as of a date of service (newest quarter when None).

        A code the data knows but that is not in force that quarter (deleted, or added later) comes back
        with ``valid=False`` and the dates of its nearest span. Raises ``MalformedCodeError``,
        ``UnknownCodeError`` (with same-prefix suggestions) or ``DateOutOfRangeError``.
        """
        version = self.quarter_for(date_of_service)
        normalized = normalize_hcpcs(code)
        spans = self._spans(normalized)
        if not spans:
            raise UnknownCodeError(normalized, self.version, self.suggest(normalized))
        # Merge contiguous quarters into unbroken spans of validity.
        merged: list[list[tuple[Any, ...]]] = []
        for span in spans:
            if merged and span[0] == merged[-1][-1][1] + 1:
                merged[-1].append(span)
            else:
                merged.append([span])
        row = next((s for s in spans if s[0] <= version <= s[1]), None)
        valid = row is not None
        if row is None:
            earlier = [s for s in spans if s[1] < version]
            row = earlier[-1] if earlier else spans[0]
        group = next(g for g in merged if row in g)
        start, end = self._quarter_dates(group[0][0], group[-1][1])
        _lo, _hi, description, withheld, si, min_age, max_age = row
        as_of = date_of_service or self._by_version[self._newest].date_from
        return ProcedureCodeRecord(
            code=normalized,
            system="HCPCS",
            release=self.version,
            description=description,
            valid=valid,
            billable=valid,
            as_of=as_of,
            effective_from=start,
            effective_to=end,
            descriptor_withheld=bool(withheld),
            withheld_reason=CDT_WITHHELD_REASON if withheld else None,
            status_indicator=si,
            status_description=self.status_description(si, version if valid else row[1]),
            min_age=min_age if min_age else None,
            max_age=max_age if max_age is not None and max_age < 124 else None,
        )

    def status_description(self, status_indicator: str | None, version: int | None = None) -> str | None:
        """What an OPPS status indicator means in a quarter (newest when None); None when unknown."""
        if not status_indicator:
            return None
        version = self._newest if version is None else version
        hit = (
            self._conn()
            .execute(
                "SELECT description FROM status_indicators WHERE si = ? AND lo <= ? AND hi >= ?",
                (status_indicator, version, version),
            )
            .fetchone()
        )
        return str(hit[0]) if hit else None

    def suggest(self, code: str, limit: int = 10) -> list[str]:
        """Codes in force in the newest quarter that share the longest prefix (4, then 3 characters)."""
        for length in (4, 3):
            rows = (
                self._conn()
                .execute(
                    "SELECT DISTINCT code FROM spans WHERE code >= ? AND code < ? AND hi >= ? ORDER BY code LIMIT ?",
                    (code[:length], code[:length] + "\x7f", self._newest, limit),
                )
                .fetchall()
            )
            if rows:
                return [r[0] for r in rows]
        return []

    def iter_codes(self, date_of_service: dt.date | None = None) -> Iterator[HCPCSEntry]:
        """Every code in force on the date (newest quarter when None), in code order."""
        version = self.quarter_for(date_of_service)
        rows = self._conn().execute(
            "SELECT code, description, status_indicator FROM spans WHERE lo <= ? AND hi >= ? ORDER BY code",
            (version, version),
        )
        for code, description, si in rows:
            yield HCPCSEntry(code, description, si)

    def stats(self) -> dict[str, Any]:
        """Counts and provenance of the store."""
        return {
            "system": self.release.system,
            "version": self.version,
            "name": self.release.name,
            "ioce_version": self.release.ioce_version,
            "quarter_start": self.release.quarter_start.isoformat(),
            "effective_from": self.release.effective_from.isoformat(),
            "effective_to": self.release.effective_to.isoformat(),
            "source": self.release.source.model_dump(exclude_none=True),
            "built_at": self.built_at,
            **self.counts,
        }


def hcpcs_store_path(settings: Settings) -> Path:
    """Where the HCPCS store lives: ``<data_dir>/codesets/hcpcs.sqlite``."""
    return settings.data_dir / "codesets" / "hcpcs.sqlite"


def open_hcpcs(settings: Settings, *, progress: bool = False) -> HCPCSCodeSet:
    """Open the HCPCS store, building it first when missing, unreadable or built from other data.

    The source is ``settings.hcpcs_source`` or else the installed pyoce package. With no source but an
    existing store, the store is used as is. Raises ``ConfigError`` for a bad ``hcpcs_source`` and
    ``CodeSetBuildError`` when there is neither a store nor a source, or the build fails.
    """
    path = hcpcs_store_path(settings)
    source = resolve_hcpcs_source(settings.hcpcs_source)
    codeset: HCPCSCodeSet | None = None
    if path.is_file():
        try:
            codeset = HCPCSCodeSet(path)
        except CodeSetBuildError as exc:
            log.warning("rebuilding HCPCS store: %s", exc)
            codeset = None
        if codeset is not None and source is not None and codeset.release.source.sha256 != file_sha256(source.path):
            codeset.close()
            codeset = None
    if codeset is not None:
        return codeset
    if source is None:
        raise CodeSetBuildError(f"no HCPCS Level II data: {PYOCE_INSTALL_HINT}")
    build_hcpcs_store(source, path, progress=progress)
    return HCPCSCodeSet(path)
