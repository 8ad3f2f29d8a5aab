"""Stage 1: code sets. ICD-10-CM releases and ICD-10-PCS by date of service; HCPCS Level II; a seam for licensed CPT."""

from medcode.codesets._build import build_store
from medcode.codesets._cpt import CPTCodeSet, open_cpt
from medcode.codesets._hcpcs import HCPCSCodeSet, HCPCSEntry, open_hcpcs
from medcode.codesets._hcpcs_build import build_hcpcs_store, resolve_hcpcs_source
from medcode.codesets._icd10cm import BillableEntry, CodeOutline, ICD10CMCodeSet
from medcode.codesets._models import CodeKind, CodeRecord, InheritedNote, Release, ReleaseSource, SeventhCharacter
from medcode.codesets._ncci import NCCIEdits, NCCIQuarter, PTPEdit, open_ncci
from medcode.codesets._normalize import CATEGORY_SHAPE, normalize_icd10cm, strip_dot
from medcode.codesets._pcs import (
    PCS_AXES,
    PCS_SECTIONS,
    AxisCheck,
    ICD10PCSCodeSet,
    PCSAxis,
    PCSCodeRecord,
    PCSEntry,
    fiscal_year,
    normalize_pcs,
    open_pcs,
)
from medcode.codesets._proc_models import CodeLookup, CodeSystemName, HCPCSRelease, HCPCSSource, ProcedureCodeRecord
from medcode.codesets._proc_normalize import normalize_cpt, normalize_hcpcs
from medcode.codesets._registry import CodeSetRegistry, packaged_releases
from medcode.codesets._release_map import MapOutcome, ReleaseMapper
from medcode.codesets._systems import CODE_SYSTEMS, CodeSystems, normalize_code

__all__ = [
    "CATEGORY_SHAPE",
    "CODE_SYSTEMS",
    "PCS_AXES",
    "PCS_SECTIONS",
    "AxisCheck",
    "BillableEntry",
    "CPTCodeSet",
    "CodeKind",
    "CodeLookup",
    "CodeOutline",
    "CodeRecord",
    "CodeSetRegistry",
    "CodeSystemName",
    "CodeSystems",
    "HCPCSCodeSet",
    "HCPCSEntry",
    "HCPCSRelease",
    "HCPCSSource",
    "ICD10CMCodeSet",
    "ICD10PCSCodeSet",
    "InheritedNote",
    "MapOutcome",
    "NCCIEdits",
    "NCCIQuarter",
    "PCSAxis",
    "PCSCodeRecord",
    "PCSEntry",
    "PTPEdit",
    "ProcedureCodeRecord",
    "Release",
    "ReleaseMapper",
    "ReleaseSource",
    "SeventhCharacter",
    "build_hcpcs_store",
    "build_store",
    "fiscal_year",
    "normalize_code",
    "normalize_cpt",
    "normalize_hcpcs",
    "normalize_icd10cm",
    "normalize_pcs",
    "open_cpt",
    "open_hcpcs",
    "open_ncci",
    "open_pcs",
    "packaged_releases",
    "resolve_hcpcs_source",
    "strip_dot",
]
