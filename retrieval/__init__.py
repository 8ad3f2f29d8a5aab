"""Stage 2: retrieval. Clinical text -> ranked candidate codes (dense + lexical), and note segmentation.

Candidate generation only: ``HybridRetriever`` ranks codes, later stages decide. The index lives
under ``<data_dir>/retrieval/<code-set version>/`` and is built by ``medcode index build`` (or on
first use).
"""

from medcode.retrieval._alphabetic import IndexEntry, index_entries
from medcode.retrieval._data import data_version
from medcode.retrieval._embedder import Embedder
from medcode.retrieval._expand import QueryExpander, default_expander
from medcode.retrieval._index import CodeIndex, IndexUnit, build_index, index_dir, index_info
from medcode.retrieval._models import Candidate, IndexInfo, NoteCandidate, NoteCandidates, Segment, SpanHit
from medcode.retrieval._retriever import HybridRetriever, Mode
from medcode.retrieval._segment import SECTION_NAMES, section_headers, segment_note

__all__ = [
    "SECTION_NAMES",
    "Candidate",
    "CodeIndex",
    "Embedder",
    "HybridRetriever",
    "IndexEntry",
    "IndexInfo",
    "IndexUnit",
    "Mode",
    "NoteCandidate",
    "NoteCandidates",
    "QueryExpander",
    "Segment",
    "SpanHit",
    "build_index",
    "data_version",
    "default_expander",
    "index_dir",
    "index_entries",
    "index_info",
    "section_headers",
    "segment_note",
]
