"""The ICD-10-CM Alphabetic Index as retrieval entries: how human coders find a code, used by retrieval.

``retrieval/data/alphabetic_index.jsonl.gz`` (written by ``tools/make_alphabetic_index.py`` from
the public-domain FY2025 CDC files: the Index to Diseases and Injuries, the Neoplasm Table, the
Table of Drugs and Chemicals and the External Cause Index; "see" references already followed)
holds every entry's term path and its FY2025 code. ``index_entries(codeset)`` turns them into
phrases ("Diabetes with hyperglycemia", "malignant neoplasm of breast", "adverse effect of
aspirin", "Fall from stairs") mapped onto the release in force by ``codesets.ReleaseMapper``:
a billable code is kept, a header steps down to its "unspecified" (or only) child or becomes a
7th-character variant group (retrieval picks the encounter from cues in the query), and the rest
(a code the release does not have, a header with no default) is dropped.

``MappingStats`` counts each case; ``medcode index status`` and the index manifest report them.
"""

from __future__ import annotations

import gzip
import json
import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from medcode.codesets import ICD10CMCodeSet, ReleaseMapper

__all__ = ["IndexEntry", "MappingStats", "dense_worthy", "index_entries", "raw_entries"]

_NEOPLASM = {
    "malignant primary": "malignant neoplasm of",
    "malignant secondary": "secondary malignant neoplasm of",
    "carcinoma in situ": "carcinoma in situ of",
    "benign": "benign neoplasm of",
    "uncertain behavior": "neoplasm of uncertain behavior of",
    "unspecified behavior": "neoplasm of unspecified behavior of",
}
_DRUG = {"poisoning": "poisoning by", "adverse effect": "adverse effect of", "underdosing": "underdosing of"}
_PARENS = re.compile(r"\s*\([^()]*\)")
_WORDS = re.compile(r"[A-Za-z0-9]+(?:['-][A-Za-z0-9]+)*")


@dataclass(frozen=True)
class IndexEntry:
    """One phrase of the Alphabetic Index with the release's billable code(s) it leads to."""

    text: str
    codes: tuple[str, ...]
    variants: bool  # codes are 7th-character variants of one code
    source: str  # index | neoplasm | drug | external
    path: tuple[str, ...]
    modifiers: tuple[str, ...] = ()
    via_see: bool = False

    @property
    def alias(self) -> str | None:
        """The natural word order of a two-level disease or cause entry ("Pain, abdominal" -> "abdominal pain")."""
        if self.source not in ("index", "external") or len(self.path) != 2:
            return None
        main, sub = _clean(self.path[0]).split(",")[0].strip(), _clean(self.path[1])
        if not main or not sub or sub.lower().startswith(("with", "without", "due to", "in ", "of ", "by ")):
            return None
        return f"{sub} {main}"


@dataclass
class MappingStats:
    """How the FY2025 entries landed on the release in force."""

    entries: int = 0
    kept: int = 0
    expanded: int = 0
    variant_groups: int = 0
    dropped_not_in_release: int = 0
    dropped_no_default: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@cache
def raw_entries() -> tuple[dict[str, Any], ...]:
    """The vendored entries as written by the generator (read once; immutable package data)."""
    raw = resources.files("medcode.retrieval").joinpath("data/alphabetic_index.jsonl.gz").read_bytes()
    return tuple(json.loads(line) for line in gzip.decompress(raw).decode("utf-8").splitlines() if line)


def _clean(term: str) -> str:
    return " ".join(_PARENS.sub("", term).replace("(s)", "").split()).strip(" ,")


def main_term(term: str) -> str:
    """A main term without its alternative forms: "Hypertension, hypertensive" -> "Hypertension", but
    "Break, retina" -> "Break retina" (a part that does not share the first form's first four letters
    qualifies it, and is kept)."""
    first, *rest = [p.strip() for p in term.split(",")]
    kept = [p for p in rest if p and p[:4].lower() != first[:4].lower()]
    return " ".join([first, *kept])


def phrase(entry: dict[str, Any]) -> str:
    """The natural phrase of a raw entry: main term (see ``main_term``) then subterms; table columns as words."""
    path = [_clean(p) for p in entry["p"]]
    source = entry["s"]
    if source == "neoplasm":
        site = " ".join(p for p in path[1:] if p)
        prefix = _NEOPLASM[entry["b"]]
        return f"{prefix} {site}" if site else prefix.removesuffix(" of")
    if source == "drug":
        return f"{_DRUG[entry['b']]} {' '.join(p for p in path if p)}"
    return " ".join(p for p in [main_term(path[0]), *path[1:]] if p)


def dense_worthy(entry: IndexEntry) -> bool:
    """Whether an entry's phrase is embedded on the dense side too (every entry is on the lexical side).

    Main terms and their first subterms (lay and clinical synonyms: "Abdominalgia", "Pain,
    abdominal"), neoplasm sites, external causes and adverse effects of drugs are; deeper
    disease paths (mostly restating a Tabular description) and poisoning/underdosing cells are
    left to the lexical side and the phrase dictionary, which keeps the index build near 10 minutes.
    """
    if entry.source == "index":
        return len(entry.path) <= 2
    if entry.source == "drug":
        return entry.text.startswith("adverse effect")
    return True


def index_entries(codeset: ICD10CMCodeSet) -> tuple[list[IndexEntry], MappingStats]:
    """Every Alphabetic Index phrase mapped onto ``codeset``'s release, and what happened to the rest.

    Raises ``CodeSetBuildError`` when the code-set store cannot be read.
    """
    stats = MappingStats()
    mapper = ReleaseMapper(codeset)
    outcomes: Counter[str] = Counter()
    out: list[IndexEntry] = []
    for entry in raw_entries():
        stats.entries += 1
        codes, variants, outcome = mapper.map(entry["c"])
        outcomes[outcome] += 1
        if not codes:
            continue
        text = phrase(entry)
        if not _WORDS.search(text):
            continue
        out.append(
            IndexEntry(
                text=text,
                codes=codes,
                variants=variants,
                source=entry["s"],
                path=tuple(entry["p"]),
                modifiers=tuple(entry.get("n", ())),
                via_see="via" in entry,
            )
        )
    stats.kept = outcomes["kept"]
    stats.expanded = outcomes["expanded"]
    stats.variant_groups = outcomes["variants"]
    stats.dropped_not_in_release = outcomes["missing"]
    stats.dropped_no_default = outcomes["no_default"]
    return out, stats
