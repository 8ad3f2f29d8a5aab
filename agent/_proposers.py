"""Proposers: turn a note's retrieval candidates into proposed codes with evidence spans.

Two proposers share one contract (``propose(note, candidates) -> Proposed``):

- ``RetrievalProposer``: no LLM; keeps the strongest candidates (one per condition).
- ``LLMProposer``: a structured-output LLM chooses among the top candidates and cites numbered
  sentences; medcode turns the cited sentences into exact character spans.

Neither asks anyone for a confidence: ``ConfidenceModel`` computes it from measured evidence
(retrieval scores, where the evidence sits, whether the LLM chose the code), with weights kept
as a versioned data file.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from agent._selection import build_selection_model
from validators import CodeRefMatcher, Evidence, ProposedCode

if TYPE_CHECKING:
    from agent._llm_client import LLMClient, LLMIdentity, LLMUsage
    from agent._note import Note
    from codesets import CodeRecord, ICD10CMCodeSet
    from retrieval import NoteCandidate, NoteCandidates, Segment, SpanHit

__all__ = [
    "ConfidenceModel",
    "LLMProposer",
    "PromptTemplate",
    "Proposed",
    "ProposedItem",
    "Proposer",
    "RetrievalProposer",
    "load_prompt",
]

ProposerName = Literal["llm", "retrieval"]

# Sections whose statements are the encounter's diagnoses.
DIAGNOSTIC_SECTIONS = frozenset(
    {"assessment_plan", "assessment", "diagnoses", "discharge_diagnoses", "impression", "chief_complaint"}
)


@dataclass
class ProposedItem:
    """One proposed code with the evidence spans the proposer points at and its measured features."""

    code: str
    evidence: list[Evidence]
    features: dict[str, float]
    confidence: float = 0.0


@dataclass
class Proposed:
    """What a proposer returns for one note."""

    items: list[ProposedItem]
    candidates_offered: list[str]
    raw_output: str | None = None
    selection: list[dict[str, Any]] | None = None
    usage: LLMUsage | None = None
    identity: LLMIdentity | None = None
    prompt_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_proposal_codes(self) -> list[ProposedCode]:
        return [ProposedCode(code=i.code, evidence=i.evidence, confidence=i.confidence) for i in self.items]


class Proposer:
    """Interface: ``propose(note, candidates, codeset) -> Proposed``."""

    name: ProposerName
    confidence: ConfidenceModel

    def propose(
        self, note: Note, candidates: NoteCandidates, codeset: ICD10CMCodeSet
    ) -> Proposed:  # pragma: no cover - interface
        raise NotImplementedError


# -- confidence -------------------------------------------------------------------------------


class ConfidenceModel:
    """Logistic model over measured features; weights in ``agent/data/confidence.json``.

    Missing features count as 0. The model never changes a verdict: the validators decide
    acceptance; confidence only ranks and feeds the routing threshold.
    """

    def __init__(self, data: dict[str, Any]) -> None:
        self.version: str = data["version"]
        self.weights: dict[str, dict[str, float]] = data["weights"]

    @classmethod
    @cache
    def default(cls) -> ConfidenceModel:
        text = resources.files("agent").joinpath("data/confidence.json").read_text(encoding="utf-8")
        return cls(json.loads(text))

    def score(self, proposer: str, features: dict[str, float]) -> float:
        weights = self.weights.get(proposer) or self.weights["retrieval"]
        z = weights.get("bias", 0.0) + sum(w * features.get(name, 0.0) for name, w in weights.items() if name != "bias")
        return round(1.0 / (1.0 + math.exp(-z)), 4)


def candidate_features(candidate: NoteCandidate, position: int) -> dict[str, float]:
    """Features measured by retrieval for one note-level candidate (position is 1-based)."""
    best = candidate.hits[0] if candidate.hits else None
    return {
        "score": candidate.score,
        "best_span_score": best.score if best else 0.0,
        "log_hits": math.log1p(len(candidate.hits)),
        "diagnostic_section": 1.0 if any(h.section in DIAGNOSTIC_SECTIONS for h in candidate.hits) else 0.0,
        "inverse_rank": 1.0 / position,
        "lexical": 1.0 if candidate.source in ("lexical", "both") else 0.0,
    }


def _span_evidence(note_text: str, hit: SpanHit) -> Evidence:
    return Evidence(text=note_text[hit.start : hit.end], start=hit.start, end=hit.end)


def _best_hit(candidate: NoteCandidate, prefer_diagnostic: bool = True) -> SpanHit | None:
    if not candidate.hits:
        return None
    if prefer_diagnostic:
        best_score = candidate.hits[0].score
        for hit in candidate.hits:  # hits are best first
            if hit.section in DIAGNOSTIC_SECTIONS and hit.score >= best_score - 0.05:
                return hit
    return candidate.hits[0]


# -- retrieval-only ---------------------------------------------------------------------------


class RetrievalProposer(Proposer):
    """The strongest candidates, one per condition, with the span that retrieved them.

    Greedy by note score: a candidate is kept when its score reaches ``min_score``, some span
    that found it is not already explaining a kept code (one mention, one code), no kept code
    shares its 3-character category (siblings describe one condition), and no kept code
    excludes it (Excludes1). At most ``max_codes`` codes. Never fails on an empty list.
    """

    name: ProposerName = "retrieval"

    def __init__(
        self,
        *,
        min_score: float = 0.62,
        max_codes: int = 8,
        claim_margin: float = 0.1,
        confidence: ConfidenceModel | None = None,
    ):
        self.min_score = min_score
        self.max_codes = max_codes
        self.claim_margin = claim_margin
        self.confidence = confidence or ConfidenceModel.default()

    def propose(self, note: Note, candidates: NoteCandidates, codeset: ICD10CMCodeSet) -> Proposed:
        items: list[ProposedItem] = []
        kept: list[CodeRecord] = []
        claimed: set[tuple[int, int]] = set()  # spans already explaining a kept code
        for position, cand in enumerate(candidates.candidates, start=1):
            if len(items) >= self.max_codes or cand.score < self.min_score:
                break
            free = [h for h in cand.hits if h.score >= self.min_score and not _claimed(h, claimed)]
            if not free or cand.code not in codeset:
                continue
            record = codeset.get(cand.code)
            if any(k.category == record.category or excludes1_conflict(k, record) for k in kept):
                continue
            kept.append(record)
            claimed.update((h.start, h.end) for h in cand.hits if h.score >= cand.hits[0].score - self.claim_margin)
            hit = _best_hit(cand) or free[0]
            features = candidate_features(cand, position)
            items.append(
                ProposedItem(
                    code=cand.code,
                    evidence=[_span_evidence(note.text, hit)],
                    features=features,
                    confidence=self.confidence.score(self.name, features),
                )
            )
        return Proposed(items=items, candidates_offered=[c.code for c in candidates.candidates])


def _claimed(hit: SpanHit, claimed: set[tuple[int, int]]) -> bool:
    """True when a claimed span covers most of the hit (or the hit covers most of it)."""
    for start, end in claimed:
        overlap = min(end, hit.end) - max(start, hit.start)
        if overlap > 0 and overlap >= 0.5 * min(end - start, hit.end - hit.start):
            return True
    return False


def excludes1_conflict(a: CodeRecord, b: CodeRecord) -> bool:
    """True when either code's Excludes1 notes (own or inherited) name the other."""
    for x, y in ((a, b), (b, a)):
        notes = [n.text for n in x.all_notes("excludes1")]
        if notes and CodeRefMatcher(notes, precise_only=True).match(y.code) is not None:
            return True
    return False


# -- LLM --------------------------------------------------------------------------------------


class PromptTemplate(BaseModel):
    """A versioned prompt (``agent/data/prompts/<id>.json``)."""

    id: str
    description: str = ""
    system: str
    user: str


@cache
def load_prompt(prompt_id: str) -> PromptTemplate:
    """Load a packaged prompt by id. Raises ``FileNotFoundError`` for an unknown id."""
    path = resources.files("agent").joinpath(f"data/prompts/{prompt_id}.json")
    return PromptTemplate.model_validate_json(path.read_text(encoding="utf-8"))


def _one_line(text: str) -> str:
    return " ".join(text.split())


class LLMProposer(Proposer):
    """The LLM chooses among the top ``max_candidates`` candidates and cites sentence numbers.

    Sentences shown are the segments that retrieved those candidates (plus diagnostic-section
    segments), in note order, within ``max_sentence_chars``. The response model only admits the
    offered codes and the shown sentence numbers. Raises ``LLMUnavailableError`` /
    ``LLMOutputError`` from the client; the orchestrator routes such notes to a human.
    """

    name: ProposerName = "llm"

    def __init__(
        self,
        client: LLMClient,
        *,
        prompt_id: str = "select-v1",
        max_candidates: int = 20,
        max_sentence_chars: int = 3_000,
        max_codes: int = 8,
        confidence: ConfidenceModel | None = None,
    ) -> None:
        self.client = client
        self.prompt = load_prompt(prompt_id)
        self.max_candidates = max_candidates
        self.max_sentence_chars = max_sentence_chars
        self.max_codes = max_codes
        self.confidence = confidence or ConfidenceModel.default()

    def _sentences(self, candidates: list[NoteCandidate], segments: list[Segment]) -> list[Segment]:
        """Segments to show, by priority (hit rank, diagnostic sections), then in note order."""
        by_id = {s.id: s for s in segments}
        priority: dict[int, float] = {}
        for cand in candidates:
            for hit in cand.hits:
                priority[hit.segment_id] = max(priority.get(hit.segment_id, 0.0), hit.score)
        for seg in segments:
            if seg.section in DIAGNOSTIC_SECTIONS:
                priority[seg.id] = priority.get(seg.id, 0.0) + 0.2
        chosen: list[int] = []
        budget = self.max_sentence_chars
        for seg_id in sorted(priority, key=lambda i: -priority[i]):
            text = _one_line(by_id[seg_id].text)
            if len(text) + 8 > budget:
                continue
            budget -= len(text) + 8
            chosen.append(seg_id)
        return [by_id[i] for i in sorted(chosen)]

    def build_messages(
        self, candidates: list[NoteCandidate], shown: list[Segment]
    ) -> tuple[list[dict[str, str]], dict[int, Segment]]:
        """Chat messages and the map from shown sentence number to segment."""
        numbered = {n: seg for n, seg in enumerate(shown, start=1)}
        sentences = "\n".join(f"{n}. {_one_line(seg.text)}" for n, seg in numbered.items())
        listing = "\n".join(f"{c.code}: {c.description}" for c in candidates)
        user = self.prompt.user.format(sentences=sentences, candidates=listing)
        return [{"role": "system", "content": self.prompt.system}, {"role": "user", "content": user}], numbered

    def propose(self, note: Note, candidates: NoteCandidates, codeset: ICD10CMCodeSet) -> Proposed:
        top = candidates.candidates[: self.max_candidates]
        offered = [c.code for c in top]
        if not top:
            return Proposed(items=[], candidates_offered=[], prompt_version=self.prompt.id)
        shown = self._sentences(top, candidates.segments)
        messages, numbered = self.build_messages(top, shown)
        model = build_selection_model(offered, list(numbered), max_codes=self.max_codes)
        result = self.client.complete(
            messages,
            model,
            validation_context={"candidate_codes": offered, "sentence_ids": list(numbered)},
        )
        by_code = {c.code: (pos, c) for pos, c in enumerate(top, start=1)}
        items: list[ProposedItem] = []
        selection: list[dict[str, Any]] = []
        seen: set[str] = set()
        for choice in result.parsed.codes:  # type: ignore[attr-defined]
            code: str = choice.code
            cited: list[int] = list(choice.sentences)
            selection.append({"code": code, "sentences": cited})
            if code in seen:
                continue
            seen.add(code)
            position, cand = by_code[code]
            evidence = self._evidence(note.text, cand, [numbered[n] for n in cited])
            features = candidate_features(cand, position) | {"llm_selected": 1.0}
            items.append(
                ProposedItem(
                    code=code,
                    evidence=evidence,
                    features=features,
                    confidence=self.confidence.score(self.name, features),
                )
            )
        return Proposed(
            items=items,
            candidates_offered=offered,
            raw_output=result.raw_text,
            selection=selection,
            usage=result.usage,
            identity=result.identity,
            prompt_version=self.prompt.id,
            extra={"sentences_shown": len(numbered)},
        )

    @staticmethod
    def _evidence(note_text: str, cand: NoteCandidate, cited: list[Segment]) -> list[Evidence]:
        """Each cited sentence becomes a span: the mention inside it that retrieved the code, else the sentence."""
        out: list[Evidence] = []
        for seg in cited:
            inside = [h for h in cand.hits if h.start >= seg.start and h.end <= seg.end]
            if inside:
                hit = max(inside, key=lambda h: h.score)
                out.append(Evidence(text=note_text[hit.start : hit.end], start=hit.start, end=hit.end))
            else:
                out.append(Evidence(text=note_text[seg.start : seg.end], start=seg.start, end=seg.end))
        return out
