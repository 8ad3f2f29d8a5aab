"""``HybridRetriever``: clinical text -> ranked candidate codes (dense + lexical, fused).

Candidate generation only (scispacy style): scores rank codes for one query; no threshold decides
anything here. Model and index load once per retriever (and the embedder once per process).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from medcode._memo import remember
from medcode.codesets import ICD10CMCodeSet, strip_dot
from medcode.config import Settings
from medcode.errors import InputError, NoteError
from medcode.retrieval._embedder import Embedder
from medcode.retrieval._expand import QueryExpander, default_expander, default_terms
from medcode.retrieval._index import CodeIndex, IndexUnit
from medcode.retrieval._models import Candidate, NoteCandidate, NoteCandidates, Segment, SpanHit
from medcode.retrieval._ranker import CandidateRanker, settings_ranker
from medcode.retrieval._segment import segment_note, split_mentions

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["HybridRetriever", "Mode"]

Mode = Literal["hybrid", "dense", "lexical"]

_RRF_K = 60.0
_LEXICAL_WEIGHT = 0.1
_CODE_PREFIX = re.compile(r"^[A-Z][0-9A-Z]{0,6}$")
_MEMO_SIZE = 50_000  # entries of each regex-match memo


@dataclass(frozen=True)
class _Feature:
    name: str
    suffix: re.Pattern[str]
    query: re.Pattern[str]
    default: bool


@lru_cache(maxsize=1)
def _seventh_features() -> tuple[_Feature, ...]:
    raw = resources.files("medcode.retrieval").joinpath("data/seventh_character_cues.json").read_text(encoding="utf-8")
    features = json.loads(raw)["features"]
    return tuple(
        _Feature(
            name,
            re.compile(re.escape(spec["suffix"]), re.IGNORECASE),
            re.compile(spec["query"], re.IGNORECASE),
            bool(spec.get("default", False)),
        )
        for name, spec in features.items()
    )


@dataclass(frozen=True)
class _Rule:
    id: str
    candidate: re.Pattern[str] | None
    chapters: frozenset[str]
    unless_query: re.Pattern[str] | None
    adjust: float


class _Priors:
    """Coding-default score adjustments from ``retrieval/data/ranking_priors.json``."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.rules = tuple(
            _Rule(
                rule["id"],
                re.compile(rule["candidate"], re.IGNORECASE) if rule.get("candidate") else None,
                frozenset(rule.get("chapters", [])),
                re.compile(rule["unless_query"], re.IGNORECASE) if rule.get("unless_query") else None,
                float(rule["adjust"]),
            )
            for rule in data["rules"]
        )
        self.note: dict[str, Any] = data["note"]
        lat = data["laterality"]
        self.sides = {side: re.compile(rx, re.IGNORECASE) for side, rx in lat["sides"].items()}
        self.agree = float(lat["agree"])
        self.conflict = float(lat["conflict"])
        self.unspecified_side = float(lat["unspecified_side_when_asked"])
        self.sided_not_asked = float(lat["sided_when_not_asked"])
        # Per (description, chapter): the description's regex matches, otherwise redone for every query that
        # finds the code (a note's queries find the same codes many times). Pure functions of their key.
        self._by_code: dict[tuple[str, str], tuple[tuple[_Rule, ...], frozenset[str], bool]] = {}

    def query_sides(self, query: str) -> frozenset[str]:
        return frozenset(side for side, rx in self.sides.items() if rx.search(query))

    def _described(self, description: str, chapter: str) -> tuple[tuple[_Rule, ...], frozenset[str], bool]:
        """The rules whose candidate pattern and chapters fit a code, its sides, whether it says unspecified."""
        key = (description, chapter)
        got = self._by_code.get(key)
        if got is None:
            rules = tuple(
                rule
                for rule in self.rules
                if (rule.candidate is None or rule.candidate.search(description))
                and (not rule.chapters or chapter in rule.chapters)
            )
            got = remember(
                self._by_code,
                key,
                (rules, self.query_sides(description), "unspecified" in description.lower()),
                _MEMO_SIZE,
            )
        return got

    def adjust(self, description: str, chapter: str, query: str, query_sides: frozenset[str]) -> float:
        rules, sides, unspecified = self._described(description, chapter)
        total = 0.0
        for rule in rules:
            if rule.unless_query is not None and rule.unless_query.search(query):
                continue
            total += rule.adjust
        if query_sides:
            if sides & query_sides:
                total += self.agree
            elif sides:
                total += self.conflict
            elif unspecified:
                total += self.unspecified_side
        elif sides:
            total += self.sided_not_asked
        return total


@lru_cache(maxsize=1)
def _priors() -> _Priors:
    raw = resources.files("medcode.retrieval").joinpath("data/ranking_priors.json").read_text(encoding="utf-8")
    return _Priors(json.loads(raw))


def _variant_score(description: str, query: str) -> float:
    """How well a 7th-character variant's description suffix fits the query's cues."""
    features = _seventh_features()
    suffixes = _SUFFIX_HITS.get(description)
    if suffixes is None:
        suffixes = remember(
            _SUFFIX_HITS, description, tuple(f for f in features if f.suffix.search(description)), _MEMO_SIZE
        )
    asked = _QUERY_CUES.get(query)
    if asked is None:
        asked = remember(_QUERY_CUES, query, frozenset(f.name for f in features if f.query.search(query)), _MEMO_SIZE)
    score = 0.0
    for feature in suffixes:
        if feature.name in asked:
            score += 1.0
        elif not feature.default:
            score -= 0.1
    return score


# Regex matches of the 7th-character cues by description and by query (pure functions of their key).
_SUFFIX_HITS: dict[str, tuple[_Feature, ...]] = {}
_QUERY_CUES: dict[str, frozenset[str]] = {}


@dataclass
class _Hit:
    code: str
    dense: float | None = None
    dense_text: str = ""
    dense_kind: str = ""
    lexical_rank: int | None = None
    lexical_text: str = ""
    lexical_kind: str = ""
    lexical_norm: float = 0.0
    found_dense: bool = False  # the dense search found it (not only re-scored)
    term_score: float = 0.0  # from the term table (exact-match side)
    term_text: str = ""
    variants: list[str] = field(default_factory=list)


class HybridRetriever:
    """Dense (chromadb) + lexical (FTS5 bm25) candidate generation over one code-set release.

    ``mode`` picks the side(s): ``"hybrid"`` (reciprocal-rank fusion of both, the default),
    ``"dense"`` or ``"lexical"``. ``ranker`` re-orders a note's candidate pool for the settings
    it was fitted for (``search_note(setting=...)``); by default, when ``settings.candidate_ranker`` is on,
    the file ``settings.candidate_ranker_file`` names or the packaged one; ``None`` keeps the hybrid note
    score's order. A ranker file that cannot be read raises ``ConfigError``.
    Opening raises ``IndexNotBuiltError``/``IndexMismatchError``
    like ``CodeIndex.open``; with ``auto_build`` a missing or half-built index is built first
    (minutes, with a progress bar).
    """

    def __init__(
        self,
        settings: Settings,
        codeset: ICD10CMCodeSet,
        *,
        auto_build: bool = True,
        embedder: Embedder | None = None,
        mode: Mode = "hybrid",
        index: CodeIndex | None = None,
        expander: QueryExpander | None = None,
        fusion: Literal["score", "rrf"] = "score",
        lexical_weight: float = _LEXICAL_WEIGHT,
        use_priors: bool = True,
        ranker: CandidateRanker | Literal["settings"] | None = "settings",
    ) -> None:
        self.settings = settings
        self.codeset = codeset
        self.index = (
            index
            if index is not None
            else CodeIndex.open(settings, codeset, build_if_missing=auto_build, embedder=embedder)
        )
        self.embedder = self.index.embedder
        self.expander = expander if expander is not None else default_expander()
        self.mode: Mode = mode
        self.fusion: Literal["score", "rrf"] = fusion
        self.lexical_weight = lexical_weight
        self.use_priors = use_priors
        if ranker == "settings":
            ranker = settings_ranker(settings)
        self.ranker = ranker
        self.terms = default_terms()
        self.terms.add_forms(self.index.dictionary())
        self.use_terms = True
        note_rules = _priors().note
        self.use_mentions = True
        sections = note_rules.get("mention_sections")
        self.mention_sections: frozenset[str] | None = frozenset(sections) if sections is not None else None
        self.mention_penalty = float(note_rules["mention_penalty"])
        self.hit_bonus = float(note_rules["hit_bonus"])
        self.section_adjust: dict[str, float] = {k: float(v) for k, v in note_rules["section_adjust"].items()}
        self._descriptions: dict[str, tuple[str, str]] = {}

    # -- helpers -------------------------------------------------------------------------
    def _describe(self, codes: Sequence[str]) -> dict[str, tuple[str, str]]:
        """code -> (description, chapter) from the code set, cached."""
        missing = [c for c in set(codes) if c not in self._descriptions]
        if missing:
            self._descriptions.update(self.codeset.describe(missing))
        return {c: self._descriptions[c] for c in codes if c in self._descriptions}

    def _check_query(self, text: object) -> str:
        if not isinstance(text, str):
            raise InputError(f"search query must be text, not {type(text).__name__}")
        stripped = text.strip()
        if not stripped:
            raise InputError("search query is empty")
        if len(stripped) > self.settings.max_query_chars:
            raise InputError(
                f"search query is {len(stripped)} characters, over the limit of {self.settings.max_query_chars} "
                "(MEDCODE_MAX_QUERY_CHARS); search a whole note with search_note / `medcode search --note`"
            )
        return stripped

    @staticmethod
    def _prefixes(code_prefixes: Sequence[str] | None) -> list[str] | None:
        if code_prefixes is None:
            return None
        out: list[str] = []
        for raw in code_prefixes:
            prefix = strip_dot(str(raw).strip()).upper()
            if not _CODE_PREFIX.match(prefix):
                raise InputError(f"not an ICD-10-CM code prefix: {raw!r}")
            out.append(prefix)
        if not out:
            raise InputError("code_prefixes is empty; pass None for no filter")
        return out

    def _expand_units(
        self, units: dict[int, IndexUnit], uid: int, query: str, prefixes: list[str] | None
    ) -> list[tuple[str, list[str]]]:
        """(code, other variants) pairs a unit stands for, filtered by prefixes."""
        unit = units.get(uid)
        if unit is None:
            return []
        codes = list(unit.codes)
        if prefixes is not None:
            codes = [c for c in codes if any(strip_dot(c).startswith(p) for p in prefixes)]
            if not codes:
                return []
        if unit.variants and len(codes) > 1:
            described = self._describe(codes)
            ranked = sorted(
                codes, key=lambda c: (-_variant_score(described.get(c, ("", ""))[0], query), codes.index(c))
            )
            return [(ranked[0], ranked[1:])]
        return [(c, []) for c in codes]

    # -- public --------------------------------------------------------------------------
    def search(
        self,
        text: str,
        top_k: int = 20,
        billable_only: bool = True,
        code_prefixes: Sequence[str] | None = None,
        mode: Mode | None = None,
    ) -> list[Candidate]:
        """Ranked candidates for one phrase or sentence.

        Raises ``InputError`` for an empty or over-long query, a bad ``top_k`` or a malformed
        code prefix; ``RetrievalError`` when the index cannot answer.
        """
        return self.search_many([text], top_k, billable_only, code_prefixes, mode)[0]

    def search_many(
        self,
        texts: Sequence[str],
        top_k: int = 20,
        billable_only: bool = True,
        code_prefixes: Sequence[str] | None = None,
        mode: Mode | None = None,
    ) -> list[list[Candidate]]:
        """``search`` for many queries at once: one embedding call and one dense query for all.

        Raises like ``search``; one bad query fails the call (validate first with the same
        rules if you need per-query errors).
        """
        if isinstance(texts, str):
            raise InputError("search_many takes a list of queries, not one string")
        if not isinstance(top_k, int) or not 1 <= top_k <= 1000:
            raise InputError(f"top_k must be an integer from 1 to 1000, not {top_k!r}")
        queries = [self._check_query(t) for t in texts]
        if not queries:
            return []
        prefixes = self._prefixes(code_prefixes)
        use: Mode = mode or self.mode
        categories = sorted({p[:3] for p in prefixes}) if prefixes and all(len(p) >= 3 for p in prefixes) else None
        oversample = 4 if prefixes is None or categories is not None else 20
        n_units = min(max(top_k * oversample, 50), 2000)

        expanded = [self.expander.expand(q) for q in queries]
        # Dense: every query (and its expansion) embedded in one call.
        dense_lists: list[list[tuple[int, float]]] = [[] for _ in queries]
        query_vectors: list[list[NDArray[np.float32]]] = [[] for _ in queries]
        if use in ("hybrid", "dense"):
            variant_texts: list[str] = []
            owner: list[int] = []
            for i, (q, e) in enumerate(zip(queries, expanded, strict=True)):
                variant_texts.append(q)
                owner.append(i)
                if e is not None:
                    variant_texts.append(e)
                    owner.append(i)
            vectors = self.embedder.encode(variant_texts, cache=True)
            results = self.index.dense(vectors, n_units, categories)
            best: list[dict[int, float]] = [{} for _ in queries]
            for i, vector, hits in zip(owner, vectors, results, strict=True):
                query_vectors[i].append(vector)
                for uid, sim in hits:
                    if sim > best[i].get(uid, -2.0):
                        best[i][uid] = sim
            dense_lists = [sorted(b.items(), key=lambda kv: -kv[1]) for b in best]
        lexical_lists: list[list[tuple[int, float]]] = [[] for _ in queries]
        if use in ("hybrid", "lexical"):
            for i, (q, e) in enumerate(zip(queries, expanded, strict=True)):
                lexical_lists[i] = self.index.lexical(
                    q if e is None else f"{q} {e}", n_units, categories, billable_only=billable_only
                )
        # Hybrid: give lexical-only units a dense similarity too, so one scale ranks them all.
        extra: list[dict[int, float]] = [{} for _ in queries]
        if use == "hybrid" and self.fusion == "score":
            missing = [
                {uid for uid, _ in lexical_lists[i]} - {uid for uid, _ in dense_lists[i]} for i in range(len(queries))
            ]
            stored = self.index.vectors(set().union(*missing))
            for i, uids in enumerate(missing):
                for uid in uids:
                    if uid in stored:
                        extra[i][uid] = max(float(np.dot(stored[uid], v)) for v in query_vectors[i])
        all_ids = {uid for lst in dense_lists + lexical_lists for uid, _ in lst}
        units = self.index.units(all_ids)
        terms = [self.terms.lookup(q) if use == "hybrid" and self.use_terms else [] for q in queries]
        return [
            self._rank(q, dense_lists[i], lexical_lists[i], extra[i], terms[i], units, prefixes, top_k, use)
            for i, q in enumerate(queries)
        ]

    def _rank(
        self,
        query: str,
        dense: list[tuple[int, float]],
        lexical: list[tuple[int, float]],
        rescored: dict[int, float],
        terms: list[tuple[str, str, bool]],
        units: dict[int, IndexUnit],
        prefixes: list[str] | None,
        top_k: int,
        mode: Mode,
    ) -> list[Candidate]:
        hits: dict[str, _Hit] = {}
        dense_order: list[str] = []
        for uid, sim in dense:
            for code, variants in self._expand_units(units, uid, query, prefixes):
                hit = hits.get(code)
                if hit is None:
                    hit = hits[code] = _Hit(code, variants=variants)
                if hit.dense is None:
                    hit.dense, hit.dense_text, hit.found_dense = sim, units[uid].text, True
                    hit.dense_kind = units[uid].kind
                    dense_order.append(code)
        lexical_order: list[str] = []
        top_bm25 = lexical[0][1] if lexical else 1.0
        for uid, bm25 in lexical:
            for code, variants in self._expand_units(units, uid, query, prefixes):
                hit = hits.get(code)
                if hit is None:
                    hit = hits[code] = _Hit(code, variants=variants)
                if hit.lexical_rank is None:
                    lexical_order.append(code)
                    hit.lexical_rank, hit.lexical_text = len(lexical_order), units[uid].text
                    hit.lexical_kind = units[uid].kind
                    hit.lexical_norm = bm25 / top_bm25 if top_bm25 > 0 else 0.0
                if hit.dense is None and uid in rescored:
                    hit.dense, hit.dense_text, hit.dense_kind = rescored[uid], units[uid].text, units[uid].kind
        for code, term, exact in terms:
            if prefixes is not None and not any(strip_dot(code).startswith(p) for p in prefixes):
                continue
            hit = hits.get(code)
            if hit is None:
                hit = hits[code] = _Hit(code)
            hit.term_score = self.terms.exact_score if exact else self.terms.contained_score
            hit.term_text = term
        dense_rank = {code: r for r, code in enumerate(dense_order, start=1)}
        scored_on_cosine = mode == "dense" or (mode == "hybrid" and self.fusion == "score")
        priors = _priors() if self.use_priors and scored_on_cosine else None
        described_all = self._describe(list(hits)) if priors is not None else {}
        query_sides = priors.query_sides(query) if priors is not None else frozenset()
        scored: list[tuple[float, _Hit]] = []
        for code, hit in hits.items():
            if mode == "dense":
                if hit.dense is None:
                    continue
                score = hit.dense
            elif mode == "lexical":
                if hit.lexical_rank is None:
                    continue
                score = 1.0 / (_RRF_K + hit.lexical_rank)
            elif self.fusion == "score":
                score = (hit.dense if hit.dense is not None else 0.0) + self.lexical_weight * hit.lexical_norm
                score = max(score, hit.term_score)
            else:
                score = 0.0
                if code in dense_rank:
                    score += 1.0 / (_RRF_K + dense_rank[code])
                if hit.lexical_rank is not None:
                    score += 1.0 / (_RRF_K + hit.lexical_rank)
            if priors is not None and code in described_all:
                description, chapter = described_all[code]
                score += priors.adjust(description, chapter, query, query_sides)
            scored.append((score, hit))
        scored.sort(key=lambda sh: (-sh[0], sh[1].code))
        top = scored[:top_k]
        described = self._describe([h.code for _, h in top])
        out: list[Candidate] = []
        for rank, (score, hit) in enumerate(top, start=1):
            description, chapter = described.get(hit.code, ("", ""))
            source: Literal["dense", "lexical", "both"]
            lexical_found = hit.lexical_rank is not None or bool(hit.term_text)
            if hit.found_dense and lexical_found and mode == "hybrid":
                source = "both"
            elif hit.found_dense and mode != "lexical":
                source = "dense"
            else:
                source = "lexical"
            if hit.term_text and hit.term_score >= score - 0.05:
                matched, matched_kind = hit.term_text, "dictionary"
            elif source in ("dense", "both") and hit.dense_text:
                matched, matched_kind = hit.dense_text, hit.dense_kind
            else:
                matched = hit.lexical_text or hit.dense_text
                matched_kind = hit.lexical_kind if hit.lexical_text else hit.dense_kind
            out.append(
                Candidate(
                    code=hit.code,
                    description=description,
                    score=round(score, 6),
                    matched_text=matched,
                    matched_kind=matched_kind,
                    source=source,
                    chapter=chapter,
                    rank=rank,
                    dense_score=None if hit.dense is None else round(hit.dense, 4),
                    lexical_rank=hit.lexical_rank,
                    variants=hit.variants,
                )
            )
        return out

    def search_note(
        self,
        note_text: str,
        top_k: int = 50,
        per_segment_k: int = 10,
        skip_sections: Sequence[str] = (),
        setting: str | None = None,
        held_out: bool = False,
    ) -> NoteCandidates:
        """Candidates for a whole note: segment it, search every span at once, merge by code.

        Spans are the segments plus, in the sections named by ``ranking_priors.json`` (note ->
        mention_sections), their mentions. A code's note score is its best span score (mentions
        slightly discounted) plus a bonus growing with the number of segments that found it;
        each candidate lists the spans (offsets, section, score) that found it, best first.
        ``skip_sections`` leaves sections out (e.g. ``["family_history"]``). When the retriever's
        ranker covers ``setting`` (``"inpatient"`` for the packaged one), a larger pool is merged,
        re-ordered by the ranker and cut to ``top_k``; ``rank`` is then the ranker's order.
        ``held_out`` is for training a model on top of retrieval: a note the ranker learned from is
        re-ordered by the fold model that never saw it. Raises
        ``NoteError`` for an empty or oversized note, ``RetrievalError`` if the index fails.
        """
        if not isinstance(note_text, str) or not note_text.strip():
            raise NoteError("note is empty")
        if len(note_text) > self.settings.max_note_chars:
            raise NoteError(
                f"note is {len(note_text)} characters, over the limit of {self.settings.max_note_chars} "
                "(MEDCODE_MAX_NOTE_CHARS)"
            )
        segments = segment_note(note_text)
        limit = self.settings.max_query_chars
        # Queries: each segment, plus its mentions (pieces split at commas, "and", "with", ...).
        spans: list[tuple[Segment, int, int]] = []
        for seg in segments:
            if seg.section in skip_sections:
                continue
            spans.append((seg, seg.start, min(seg.end, seg.start + limit)))
            if self.use_mentions and (self.mention_sections is None or seg.section in self.mention_sections):
                spans += [(seg, s, e) for s, e in split_mentions(note_text, seg.start, seg.end) if e - s <= limit]
        results = self.search_many([note_text[s:e] for _, s, e in spans], per_segment_k) if spans else []
        ranker = self.ranker if self.ranker is not None and setting in self.ranker.settings else None
        if ranker is None:
            candidates = self._merge(spans, results, top_k)
        else:
            pool = self._merge(spans, results, ranker.pool_for(top_k))
            candidates = ranker.rerank(pool, top_k, held_out=ranker.note_key(note_text) if held_out else None)
        return NoteCandidates(codeset_version=self.codeset.version, segments=segments, candidates=candidates)

    def _merge(
        self, spans: Sequence[tuple[Segment, int, int]], results: Sequence[list[Candidate]], top_k: int
    ) -> list[NoteCandidate]:
        by_code: dict[str, list[tuple[tuple[Segment, int, int], Candidate]]] = {}
        for span, candidates in zip(spans, results, strict=True):
            for cand in candidates:
                by_code.setdefault(cand.code, []).append((span, cand))
        merged: list[tuple[float, str, list[tuple[tuple[Segment, int, int], Candidate]]]] = []

        def span_score(span: tuple[Segment, int, int], cand: Candidate) -> float:
            seg, start, end = span
            score = cand.score + self.section_adjust.get(seg.section, 0.0)
            if (start, end) != (seg.start, seg.end):
                score -= self.mention_penalty
            return score

        for code, found in by_code.items():
            found.sort(key=lambda sc: -span_score(*sc))
            best = span_score(*found[0])
            segments_hit = len({span[0].id for span, _ in found})
            score = best + self.hit_bonus * math.log1p(segments_hit - 1)
            merged.append((score, code, found))
        merged.sort(key=lambda m: (-m[0], m[1]))
        out: list[NoteCandidate] = []
        for rank, (score, code, found) in enumerate(merged[:top_k], start=1):
            top = found[0][1]
            sources = {c.source for _, c in found}
            source: Literal["dense", "lexical", "both"] = (
                "both" if "both" in sources or {"dense", "lexical"} <= sources else top.source
            )
            out.append(
                NoteCandidate(
                    code=code,
                    description=top.description,
                    chapter=top.chapter,
                    score=round(score, 6),
                    rank=rank,
                    source=source,
                    matched_text=top.matched_text,
                    matched_kind=top.matched_kind,
                    variants=top.variants,
                    hits=[
                        SpanHit(
                            segment_id=seg.id,
                            start=s,
                            end=e,
                            section=seg.section,
                            score=c.score,
                            rank=c.rank,
                            matched_kind=c.matched_kind,
                        )
                        for (seg, s, e), c in found
                    ],
                )
            )
        return out

    def __enter__(self) -> HybridRetriever:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the index's connections of this thread."""
        self.index.close()
