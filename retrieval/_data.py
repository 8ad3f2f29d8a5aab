"""The retrieval stage's data files and their content hash.

Every file under ``retrieval/data/`` changes what retrieval returns (synonyms, the phrase
dictionary, ranking priors, 7th-character cues, section headers), so ``data_version()`` hashes
them all; it goes into every result's ``versions`` and a regression run notices any edit.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

__all__ = ["DATA_FILES", "data_version"]

DATA_FILES = (
    "alphabetic_index.jsonl.gz",
    "index_terms.json",
    "procedure_lexicon.json",
    "ranking_priors.json",
    "section_headers.json",
    "seventh_character_cues.json",
    "synonyms.json",
)


@cache
def data_version() -> str:
    """``retrieval-data+<12 hex>``: a digest of every file in ``DATA_FILES`` (name and bytes).

    Raises ``FileNotFoundError`` when a packaged data file is missing (a broken install).
    """
    digest = hashlib.sha256()
    root = resources.files("medcode.retrieval").joinpath("data")
    for name in DATA_FILES:
        digest.update(name.encode() + b"\0" + root.joinpath(name).read_bytes() + b"\0")
    return f"retrieval-data+{digest.hexdigest()[:12]}"
