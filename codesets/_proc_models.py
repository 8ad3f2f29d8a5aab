"""Typed records for the procedure code sets (HCPCS Level II, CPT) and the cross-system lookup."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["CodeLookup", "CodeSystemName", "HCPCSRelease", "HCPCSSource", "ProcedureCodeRecord"]

CodeSystemName = Literal["icd10cm", "icd10pcs", "hcpcs", "cpt"]
"""The names callers pass to pick a code system (CLI ``--system`` and ``CodeSystems.lookup_any``)."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HCPCSSource(_Frozen):
    """Where an HCPCS store's data came from (``pyoce``: the CMS I/OCE tables bundled in that package)."""

    kind: Literal["pyoce"] = "pyoce"
    path: str
    package_version: str | None = None
    sha256: str


class HCPCSRelease(_Frozen):
    """The HCPCS Level II data one store holds.

    ``quarter_start``/``ioce_version``: the newest quarter in the data. ``effective_from``..``effective_to``
    (both inclusive) are the dates of service the store can answer: from the oldest quarter in the data to
    the last day of the newest quarter. Later dates are refused, never silently answered from stale data.
    """

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9.\-]*$")
    system: Literal["HCPCS"] = "HCPCS"
    name: str
    quarter_start: dt.date
    ioce_version: str
    effective_from: dt.date
    effective_to: dt.date
    source: HCPCSSource

    def covers(self, day: dt.date) -> bool:
        return self.effective_from <= day <= self.effective_to


class ProcedureCodeRecord(_Frozen):
    """One HCPCS Level II or CPT code as of a date of service.

    ``valid``: the code is in force on ``as_of`` (HCPCS) or listed in the licensed file (CPT).
    ``effective_from``/``effective_to``: the unbroken span of quarters containing ``as_of`` (or, for a code
    not in force then, its nearest span); ``effective_to`` None means still in force in the newest loaded
    quarter. For codes older than the data, ``effective_from`` is the first quarter in the data. CPT files
    carry no dates, so both are None there.
    ``descriptor_withheld``: the text is under a licence medcode does not hold (CDT dental codes ``D....``
    in HCPCS); ``description`` is then empty.
    ``status_indicator``: the OPPS status indicator CMS's outpatient code editor assigns (HCPCS only).
    """

    code: str
    system: Literal["HCPCS", "CPT"]
    release: str
    description: str
    valid: bool
    billable: bool
    as_of: dt.date | None = None
    effective_from: dt.date | None = None
    effective_to: dt.date | None = None
    descriptor_withheld: bool = False
    withheld_reason: str | None = None
    status_indicator: str | None = None
    status_description: str | None = None
    min_age: int | None = None
    max_age: int | None = None


class CodeLookup(_Frozen):
    """The same few facts about a code in any system, for stages that handle codes of every kind.

    ``valid``: the code exists on the date of service (ICD-10-CM: in the release; HCPCS: in force that
    quarter; CPT: in the licensed file). ``billable``: it may go on a claim as is (ICD-10-CM headers are
    valid but not billable). ``effective_from``/``effective_to``: the ICD-10-CM release's dates, or the
    procedure code's own span (see ``ProcedureCodeRecord``).
    """

    code: str
    system: Literal["ICD-10-CM", "ICD-10-PCS", "HCPCS", "CPT"]
    release: str
    description: str
    valid: bool
    billable: bool
    effective_from: dt.date | None = None
    effective_to: dt.date | None = None
    descriptor_withheld: bool = False
