"""Typed hand-offs of the retrieval stage: segments, candidates, note-level candidates."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Candidate", "IndexInfo", "NoteCandidate", "NoteCandidates", "Segment", "SpanHit"]

Source = Literal["dense", "lexical", "both"]


class Segment(BaseModel):
    """A sentence, clause or list item of a note. ``note[start:end] == text`` always holds."""

    model_config = ConfigDict(frozen=True)

    id: int = Field(ge=0, description="0-based position in the note's segment list.")
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    text: str
    section: str = Field(description="Normalised section name, e.g. 'assessment_plan', 'family_history', 'other'.")


class Candidate(BaseModel):
    """One candidate code for a query, as found by the index. No decision has been made on it."""

    code: str = Field(description="Dotted ICD-10-CM code (billable unless billable_only=False was asked).")
    description: str
    score: float = Field(
        description="Higher is better, comparable within one mode: hybrid = cosine of the best text + 0.1 x bm25 "
        "relative to the query's best, at least the phrase-dictionary score (1.05 exact, 0.95 contained), plus "
        "coding-default priors (ranking_priors.json); dense = cosine + priors; lexical = 1/(60 + lexical rank)."
    )
    matched_text: str = Field(description="The index text (description, inclusion term or synonym) that matched.")
    matched_kind: str = Field(
        default="",
        description="What the matched text is: description, inclusion_term, includes (+ _short), "
        "alphabetic_index (an Alphabetic Index phrase) or dictionary (the phrase dictionary).",
    )
    source: Source = Field(description="Which search found it: the dense side, the lexical side or both.")
    chapter: str
    rank: int = Field(ge=1)
    dense_score: float | None = Field(
        default=None, description="Cosine similarity of the best matching text (also for lexical-only finds)."
    )
    lexical_rank: int | None = Field(default=None, description="Rank on the lexical (bm25) side, 1 = best.")
    variants: list[str] = Field(
        default_factory=list,
        description="Other 7th-character variants (encounter, healing) of the same condition, best first.",
    )


class SpanHit(BaseModel):
    """A span of the note that retrieved a candidate, and how well.

    The span is a whole segment or a mention inside it (a piece split at commas, "and", "with"...);
    ``note[start:end]`` is the text that was searched.
    """

    segment_id: int
    start: int
    end: int
    section: str
    score: float
    rank: int = Field(description="The candidate's rank among that span's results.")
    matched_kind: str = Field(default="", description="What matched for this span (see ``Candidate.matched_kind``).")


class NoteCandidate(BaseModel):
    """A candidate merged over a whole note, with the segments that found it."""

    code: str
    description: str
    chapter: str
    score: float = Field(
        description="Note-level score: best span score (mentions -0.08) + 0.1 x ln(number of segments that found it)."
    )
    rank: int = Field(ge=1)
    source: Source
    matched_text: str
    matched_kind: str = ""
    variants: list[str] = Field(default_factory=list)
    hits: list[SpanHit] = Field(description="Segments that retrieved this code, best first.")
    ranker_score: float | None = Field(
        default=None, description="The candidate ranker's margin when it re-ordered the pool (higher = likelier)."
    )


class NoteCandidates(BaseModel):
    """Candidates for a whole note, ranked, plus the segmentation they refer to."""

    codeset_version: str
    segments: list[Segment]
    candidates: list[NoteCandidate]


class IndexInfo(BaseModel):
    """What ``medcode index status`` reports."""

    path: str
    status: Literal["missing", "building", "complete", "corrupt"]
    codeset_version: str | None = None
    embedder: str | None = None
    units: int | None = None
    units_done: int | None = None
    codes: int | None = None
    built_at: str | None = None
    build_seconds: float | None = None
    size_bytes: int | None = None
    alphabetic_index: dict[str, int] | None = Field(
        default=None,
        description="How the FY2025 Alphabetic Index entries mapped onto the release (kept, expanded, dropped).",
    )
    message: str = ""
