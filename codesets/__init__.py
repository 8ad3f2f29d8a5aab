"""Stage 1: code sets. ICD-10-CM releases by date of service; HCPCS Level II; a seam for licensed CPT."""

from codesets._build import build_store
from codesets._cpt import CPTCodeSet, open_cpt
from codesets._hcpcs import HCPCSCodeSet, HCPCSEntry, open_hcpcs
from codesets._hcpcs_build import build_hcpcs_store, resolve_hcpcs_source
from codesets._icd10cm import BillableEntry, ICD10CMCodeSet
from codesets._models import CodeKind, CodeRecord, InheritedNote, Release, ReleaseSource, SeventhCharacter
from codesets._normalize import normalize_icd10cm, strip_dot
from codesets._proc_models import CodeLookup, CodeSystemName, HCPCSRelease, HCPCSSource, ProcedureCodeRecord
from codesets._proc_normalize import normalize_cpt, normalize_hcpcs
from codesets._registry import CodeSetRegistry, packaged_releases
from codesets._systems import CODE_SYSTEMS, CodeSystems, normalize_code

__all__ = [
    "CODE_SYSTEMS",
    "BillableEntry",
    "CPTCodeSet",
    "CodeKind",
    "CodeLookup",
    "CodeRecord",
    "CodeSetRegistry",
    "CodeSystemName",
    "CodeSystems",
    "HCPCSCodeSet",
    "HCPCSEntry",
    "HCPCSRelease",
    "HCPCSSource",
    "ICD10CMCodeSet",
    "InheritedNote",
    "ProcedureCodeRecord",
    "Release",
    "ReleaseSource",
    "SeventhCharacter",
    "build_hcpcs_store",
    "build_store",
    "normalize_code",
    "normalize_cpt",
    "normalize_hcpcs",
    "normalize_icd10cm",
    "open_cpt",
    "open_hcpcs",
    "packaged_releases",
    "resolve_hcpcs_source",
    "strip_dot",
]
