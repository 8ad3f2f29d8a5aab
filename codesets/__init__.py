"""Stage 1: code sets. ICD-10-CM releases by date of service; HCPCS Level II; a seam for licensed CPT."""

from codesets._build import build_store
from codesets._icd10cm import BillableEntry, ICD10CMCodeSet
from codesets._models import CodeKind, CodeRecord, InheritedNote, Release, ReleaseSource, SeventhCharacter
from codesets._normalize import normalize_icd10cm, strip_dot
from codesets._registry import CodeSetRegistry, packaged_releases

__all__ = [
    "BillableEntry",
    "CodeKind",
    "CodeRecord",
    "CodeSetRegistry",
    "ICD10CMCodeSet",
    "InheritedNote",
    "Release",
    "ReleaseSource",
    "SeventhCharacter",
    "build_store",
    "normalize_icd10cm",
    "packaged_releases",
    "strip_dot",
]
