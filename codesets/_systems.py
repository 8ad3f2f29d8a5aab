"""``CodeSystems``: one door to ICD-10-CM, ICD-10-PCS, HCPCS Level II and CPT for the later stages."""

from __future__ import annotations

import datetime as dt
import threading
from typing import get_args

from medcode.codesets._cpt import CPTCodeSet, open_cpt
from medcode.codesets._hcpcs import HCPCSCodeSet, open_hcpcs
from medcode.codesets._icd10cm import ICD10CMCodeSet
from medcode.codesets._ncci import NCCIEdits, open_ncci
from medcode.codesets._normalize import normalize_icd10cm
from medcode.codesets._pcs import ICD10PCSCodeSet, normalize_pcs, open_pcs
from medcode.codesets._proc_models import CodeLookup, CodeSystemName
from medcode.codesets._proc_normalize import normalize_cpt, normalize_hcpcs
from medcode.codesets._registry import CodeSetRegistry
from medcode.config import Settings
from medcode.errors import InputError, MalformedCodeError

__all__ = ["CODE_SYSTEMS", "CodeSystems", "normalize_code"]

CODE_SYSTEMS: tuple[str, ...] = get_args(CodeSystemName)


def _check_system(system: str) -> CodeSystemName:
    if system not in CODE_SYSTEMS:
        raise InputError(f"unknown code system {system!r}; expected one of {', '.join(CODE_SYSTEMS)}")
    return system  # type: ignore[return-value]


def normalize_code(code: object, system: str) -> str:
    """Canonical form of a code in a system (``icd10cm``, ``icd10pcs``, ``hcpcs`` or ``cpt``).

    Raises ``InputError`` for an unknown system and ``MalformedCodeError`` for a bad shape.
    """
    name = _check_system(system)
    if name == "icd10cm":
        return normalize_icd10cm(code)
    if name == "icd10pcs":
        return normalize_pcs(code)
    if name == "hcpcs":
        return normalize_hcpcs(code)
    return normalize_cpt(code)


class CodeSystems:
    """ICD-10-CM releases, the ICD-10-PCS and HCPCS Level II stores and the licensed CPT file behind one object.

    Each part opens on first use: the HCPCS store is built once (about a second) and the CPT file is
    read only when a CPT lookup is made, so a setup without a CPT licence works until CPT is asked for.
    Thread-safe.
    """

    def __init__(self, settings: Settings, registry: CodeSetRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry if registry is not None else CodeSetRegistry(settings)
        self._hcpcs: HCPCSCodeSet | None = None
        self._pcs: ICD10PCSCodeSet | None = None
        self._ncci: NCCIEdits | None = None
        self._lock = threading.Lock()

    def icd10cm(self, date_of_service: dt.date | None = None) -> ICD10CMCodeSet:
        """The ICD-10-CM release for a date of service (see ``CodeSetRegistry.get``)."""
        return self.registry.get(date_of_service)

    def hcpcs(self, *, progress: bool = False) -> HCPCSCodeSet:
        """The HCPCS Level II code set (built on first use). Raises ``CodeSetBuildError`` without data."""
        with self._lock:
            if self._hcpcs is None:
                self._hcpcs = open_hcpcs(self.settings, progress=progress)
            return self._hcpcs

    def icd10pcs(self) -> ICD10PCSCodeSet:
        """The ICD-10-PCS code set (built on first use). Raises ``CodeSetBuildError`` without data."""
        with self._lock:
            if self._pcs is None:
                self._pcs = open_pcs(self.settings)
            return self._pcs

    def ncci(self) -> NCCIEdits:
        """The NCCI procedure-to-procedure edits (built on first use, ~10 s). Raises ``CodeSetBuildError`` without data."""
        with self._lock:
            if self._ncci is None:
                self._ncci = open_ncci(self.settings)
            return self._ncci

    def cpt(self) -> CPTCodeSet:
        """The licensed CPT file's code set. Raises ``ConfigError`` when none is configured or it is invalid."""
        return open_cpt(self.settings)

    def normalize(self, code: object, system: str) -> str:
        """See ``normalize_code``."""
        return normalize_code(code, system)

    def lookup_any(self, code: str, system: str, date_of_service: dt.date | None = None) -> CodeLookup:
        """The same few facts about a code in any system.

        Raises ``InputError`` for an unknown system, ``MalformedCodeError``, ``UnknownCodeError``,
        ``DateOutOfRangeError``, ``ConfigError`` (CPT without a licensed file) and
        ``CodeSetBuildError`` (HCPCS without data).
        """
        name = _check_system(system)
        if name == "icd10cm":
            codeset = self.icd10cm(date_of_service)
            icd = codeset.get(code)
            return CodeLookup(
                code=icd.code,
                system="ICD-10-CM",
                release=icd.release,
                description=icd.description,
                valid=True,
                billable=icd.billable,
                effective_from=codeset.release.effective_from,
                effective_to=codeset.release.effective_to,
            )
        if name == "icd10pcs":
            pcs = self.icd10pcs().get(code, date_of_service)
            return CodeLookup(
                code=pcs.code,
                system="ICD-10-PCS",
                release=pcs.release,
                description=pcs.title,
                valid=pcs.valid,
                billable=pcs.billable,
                effective_from=pcs.effective_from,
                effective_to=pcs.effective_to,
            )
        record = self.hcpcs().get(code, date_of_service) if name == "hcpcs" else self.cpt().get(code, date_of_service)
        return CodeLookup(
            code=record.code,
            system=record.system,
            release=record.release,
            description=record.description,
            valid=record.valid,
            billable=record.billable,
            effective_from=record.effective_from,
            effective_to=record.effective_to,
            descriptor_withheld=record.descriptor_withheld,
        )

    def exists(self, code: str, system: str, date_of_service: dt.date | None = None) -> bool:
        """True when the code is valid in the system on the date. False for malformed or unknown codes.

        Still raises for problems that are not about the code: ``InputError`` (unknown system),
        ``DateOutOfRangeError``, ``ConfigError`` (no CPT file) and ``CodeSetBuildError``.
        """
        name = _check_system(system)
        if name == "icd10cm":
            return self.icd10cm(date_of_service).exists(code)
        if name == "icd10pcs":
            return self.icd10pcs().exists(code, date_of_service)
        if name == "hcpcs":
            return self.hcpcs().exists(code, date_of_service)
        cpt = self.cpt()
        try:
            return normalize_cpt(code) in cpt
        except MalformedCodeError:
            return False
