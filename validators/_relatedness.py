"""SPAN_UNRELATED: does a quote share a clinical concept with the code it is cited for?

Three signals, all explained in ``data/relatedness.json``:

* lexical: content-word stems shared by the (abbreviation-expanded) quote and the code's texts;
  "weak" stems (pain, acute, left, ...) do not count on their own;
* semantic: the best cosine between the quote and any of the code's texts, with the project's
  sentence embedder (loaded once per process, code texts cached per code).

* the Alphabetic Index: the quote names an Index term that leads to the code ("pollakiuria" for R35.0,
  "adenopathy" for R59.9): every word of the term (bar function words) within a short window of
  the quote, at least one of them not weak. A term of the coders' own index is related to its code
  by definition, whatever the embedding says.

Before scoring, ``senses`` blanks the phrases that use a code's words in another sense ("under
general anesthesia" is not R20.0's anesthesia of the skin, "cold water" not J00's common cold), and a
code whose quote must say something (R99: that the cause of death is unknown) is unrelated without it.

Decision: related when a strong stem is shared and cosine >= 0.30, or cosine >= 0.60 without one, or
an Index term of the code is in the quote.
Tuned with ``python -m tools.bench_validators --tune`` on 324 positive pairs (sound set + gold-set
spans) and 35 hard plus 1465 mismatched negatives: 0.3% false rejection, 0% false acceptance on the
hard negatives, 1.5% on mismatched pairs (mostly same-organ codes). The values live in
``data/relatedness.json`` with the measurement.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from medcode._memo import remember
from medcode.codesets import CATEGORY_SHAPE, CodeRecord, ICD10CMCodeSet
from medcode.validators._refs import CodeRefMatcher

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["Relatedness", "RelatednessScorer"]

_WORD = re.compile(r"[a-z0-9]+")
_CODE_LITERAL = re.compile(rf"\b{CATEGORY_SHAPE}(?:\.[0-9A-Z]{{1,4}})?\b")
_NEGATIVE_CLAUSE = re.compile(r"\b(?:without|with no|not|no)\b.*$", re.IGNORECASE | re.DOTALL)
# "(o)" of "Cancer(o)phobia": the flattened Index split a word, so the entry's phrase is not its term.
_SPLIT_WORD = re.compile(r"\([a-z]\)")
_STEM_CACHE = 100_000  # distinct words whose stems are kept


@dataclass(frozen=True)
class Relatedness:
    """Scores for one (quote, code) pair and the verdict under the configured thresholds."""

    cosine: float
    strong_overlap: tuple[str, ...]
    weak_overlap: tuple[str, ...]
    related: bool
    best_text: str
    index_term: str | None = None  # the Alphabetic Index term of the code that the quote names
    other_sense: str | None = None  # what the quote's words mean instead (a 'senses' entry), when unrelated


@dataclass(frozen=True)
class _Sense:
    """Words that name a code's concept in another sense (see ``senses`` in relatedness.json)."""

    codes: tuple[str, ...]
    says: str
    mask: tuple[re.Pattern[str], ...]
    require: tuple[re.Pattern[str], ...]

    def applies(self, code: str) -> bool:
        return code.startswith(self.codes)

    def masked(self, quote: str) -> str | None:
        """The quote with the other-sense phrases blanked; None when it lacks every 'require' pattern."""
        if self.require and not any(p.search(quote) for p in self.require):
            return None
        for pattern in self.mask:
            quote = pattern.sub(" ", quote)
        return quote


def parse_senses(config: dict[str, Any]) -> list[_Sense]:
    """The ``senses`` entries of a relatedness table, patterns compiled (case-insensitive).

    Raises ``ValueError`` for an entry without ``codes`` or ``says``, ``re.error`` for a bad pattern.
    """
    out = []
    for entry in config.get("senses", {}).get("entries", []):
        if not entry.get("codes") or not isinstance(entry.get("says"), str):
            raise ValueError(f"a 'senses' entry needs 'codes' and 'says': {entry!r}")
        out.append(
            _Sense(
                tuple(str(c) for c in entry["codes"]),
                entry["says"],
                tuple(re.compile(str(r), re.IGNORECASE) for r in entry.get("mask", [])),
                tuple(re.compile(str(r), re.IGNORECASE) for r in entry.get("require", [])),
            )
        )
    return out


class RelatednessScorer:
    """Scores quotes against codes. ``encode`` is the embedder's ``encode`` (unit vectors; the pipeline passes its
    cached form, which remembers recent texts, so quotes are not cached here).

    ``expand`` maps clinical abbreviations/lay terms to code-set wording (None when nothing
    changed). Thread-safe; code-side embeddings are cached.
    """

    def __init__(
        self,
        config: dict[str, Any],
        encode: Callable[[list[str]], NDArray[np.float32]],
        expand: Callable[[str], str | None],
    ) -> None:
        from nltk.stem.porter import PorterStemmer

        self._stemmer = PorterStemmer()
        # Porter stems by lower-cased word: a note's quotes and codes repeat words (stemming was about 5% of a
        # case report's profile otherwise). The stemmer is a pure function: concurrent fills write the same value.
        self._stem_cache: dict[str, str] = {}
        self.embed_threshold = float(config["embed_threshold"])
        self.lexical_floor = float(config["lexical_cosine_floor"])
        self._stop = {w.lower() for w in config["stopwords"]}
        self._equiv: dict[str, str] = {}
        for group in config["equivalents"]:
            canon = self._stem(group[0])
            for word in group:
                self._equiv[self._stem(word)] = canon
        self._weak = {self._canon(w) for w in config["weak"]}
        self._index_terms: list[tuple[CodeRefMatcher, list[str]]] = [
            (CodeRefMatcher([f"({ref})"]), [str(t) for t in terms])
            for ref, terms in config.get("index_terms", {}).items()
            if not ref.startswith("_")
        ]
        self._senses = parse_senses(config)
        index = config.get("alphabetic_index", {})
        self._index_on = bool(index.get("use", False))
        self._index_ignore = {w.lower() for w in index.get("ignore", [])}
        self._index_slack = int(index.get("window_slack", 2))
        self._index_by_release: dict[str, dict[str, list[str]]] = {}
        self._index_terms_cache: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
        self._index_build_lock = threading.Lock()
        self._encode = encode
        self._expand = expand
        self._code_cache: dict[str, tuple[list[str], set[str], NDArray[np.float32]]] = {}
        self._lock = threading.Lock()

    # -- text -> stems --------------------------------------------------------------
    def _stem(self, word: str) -> str:
        word = word.lower()
        stem = self._stem_cache.get(word)
        if stem is None:
            stem = remember(self._stem_cache, word, str(self._stemmer.stem(word)), _STEM_CACHE)
        return stem

    def _canon(self, word: str) -> str:
        stem = self._stem(word)
        return self._equiv.get(stem, stem)

    def stems(self, text: str) -> set[str]:
        """Canonical content stems of a text."""
        return {self._canon(w) for w in _WORD.findall(text.lower()) if w not in self._stop and not w.isdigit()}

    def strong_stems(self, text: str) -> set[str]:
        """Content stems of a text (abbreviations expanded) that are not 'weak' (pain, acute, left ...)."""
        return self.stems(self.quote_text(text)) - self._weak

    def quote_text(self, quote: str) -> str:
        """The quote as scored: code-like strings removed, abbreviations and lay terms expanded."""
        cleaned = " ".join(_CODE_LITERAL.sub(" ", quote).split())
        expanded = self._expand(cleaned) if cleaned else None
        return f"{cleaned} ({expanded})" if expanded and expanded != cleaned else cleaned

    # -- code side ---------------------------------------------------------------
    def code_texts(self, record: CodeRecord, codeset: ICD10CMCodeSet) -> list[str]:
        """Description, inclusion terms, includes notes from codes, and ancestor descriptions."""
        texts = [record.description, *record.inclusion_terms]
        for matcher, terms in self._index_terms:
            if matcher.match(record.code):
                texts.extend(terms)
        texts += [n.text for n in record.all_notes("includes") if not n.source.startswith(("Chapter", "("))]
        parent = record.parent
        while parent:
            try:
                ancestor = codeset.get(parent)
            except Exception:  # a broken hierarchy must not stop validation
                break
            texts.append(ancestor.description)
            texts.extend(ancestor.inclusion_terms)
            parent = ancestor.parent
        seen: set[str] = set()
        out: list[str] = []
        for text in texts:
            key = text.strip().lower()
            if key and key not in seen and len(key) < 400:
                seen.add(key)
                out.append(text.strip())
        return out

    def overlap(self, text: str, stems: set[str]) -> tuple[int, int]:
        """(strong, weak) numbers of ``text``'s stems found in ``stems``."""
        shared = self.stems(text) & stems
        return len(shared - self._weak), len(shared & self._weak)

    def positive_stems(self, record: CodeRecord) -> set[str]:
        """Stems of the code's own wording before any 'without'/'not' clause (what it asserts)."""
        stems: set[str] = set()
        for text in [record.description, *record.inclusion_terms]:
            stems |= self.stems(_NEGATIVE_CLAUSE.sub("", text))
        return stems

    def _code_side(
        self, record: CodeRecord, codeset: ICD10CMCodeSet
    ) -> tuple[list[str], set[str], NDArray[np.float32]]:
        key = f"{record.release}:{record.code}"
        with self._lock:
            cached = self._code_cache.get(key)
        if cached is not None:
            return cached
        texts = self.code_texts(record, codeset)
        stems: set[str] = set()
        for text in texts:
            stems |= self.stems(text)
        vectors = self._encode(texts)
        entry = (texts, stems, vectors)
        with self._lock:
            if len(self._code_cache) > 20_000:
                self._code_cache.clear()
            self._code_cache[key] = entry
        return entry

    def code_stems(self, record: CodeRecord, codeset: ICD10CMCodeSet) -> set[str]:
        """Canonical content stems of all the code's texts (cached with its embeddings)."""
        return self._code_side(record, codeset)[1]

    # -- the Alphabetic Index -----------------------------------------------------
    def _index_tokens(self, text: str) -> list[str]:
        """Porter stems, not the 'equivalents' groups: those join whole concepts ("insulin", "diabetes",
        "hyperglycemia"), and a term must be named, not only its concept."""
        return [self._stem(w) for w in _WORD.findall(text.lower()) if w not in self._index_ignore]

    def _index_phrases(self, codeset: ICD10CMCodeSet) -> dict[str, list[str]]:
        """The release's Index phrases per code (built once per process and release: 2-3 s on an idle
        2-core machine). Raises ``CodeSetBuildError`` when the code-set store cannot be read.

        Left out: entries whose phrase is not their term (a split word) and main terms that only refer
        elsewhere ("Pathology, see Disease"), whose code is the default of a whole other term.
        """
        with self._index_build_lock:
            built = self._index_by_release.get(codeset.version)
            if built is None:
                from medcode.retrieval import index_entries

                built = defaultdict(list)
                for entry in index_entries(codeset)[0]:
                    if (entry.via_see and len(entry.path) == 1) or any(
                        _SPLIT_WORD.fullmatch(m) for m in entry.modifiers
                    ):
                        continue
                    for code in entry.codes:
                        built[code].append(entry.text)
                self._index_by_release[codeset.version] = built
            return built

    def warm(self, codeset: ICD10CMCodeSet) -> None:
        """Build the release's Index phrases now (start-up), not on the first note that needs them."""
        if self._index_on:
            self._index_phrases(codeset)

    def index_terms(self, record: CodeRecord, codeset: ICD10CMCodeSet) -> list[tuple[str, tuple[str, ...]]]:
        """(phrase, its distinct tokens) of each Index term leading to the code that has a strong token."""
        if not self._index_on:
            return []
        key = f"{record.release}:{record.code}"
        with self._lock:
            cached = self._index_terms_cache.get(key)
        if cached is not None:
            return cached
        terms: list[tuple[str, tuple[str, ...]]] = []
        for text in self._index_phrases(codeset).get(record.code, []):
            tokens = tuple(dict.fromkeys(self._index_tokens(text)))
            if tokens and {self._equiv.get(t, t) for t in tokens} - self._weak:
                terms.append((text, tokens))
        with self._lock:
            if len(self._index_terms_cache) > 20_000:
                self._index_terms_cache.clear()
            self._index_terms_cache[key] = terms
        return terms

    def index_match(self, quote_text: str, terms: Sequence[tuple[str, tuple[str, ...]]]) -> str | None:
        """The first Index term whose every token is in the quote, each within ``2 * len + slack`` tokens
        of one occurrence of its first; None when no term is."""
        if not terms:
            return None
        positions: dict[str, list[int]] = defaultdict(list)
        for i, token in enumerate(self._index_tokens(quote_text)):
            positions[token].append(i)
        for text, tokens in terms:
            if not all(t in positions for t in tokens):
                continue
            reach = 2 * len(tokens) + self._index_slack
            for anchor in positions[tokens[0]]:
                if all(any(abs(j - anchor) <= reach for j in positions[t]) for t in tokens[1:]):
                    return text
        return None

    # -- scoring -----------------------------------------------------------------
    def score_many(self, pairs: Sequence[tuple[str, CodeRecord]], codeset: ICD10CMCodeSet) -> list[Relatedness]:
        """Score each ``(quote, code record)`` pair; quotes are embedded in one batch."""
        if not pairs:
            return []
        senses = [next((x for x in self._senses if x.applies(r.code)), None) for _, r in pairs]
        quotes = [q if sense is None else sense.masked(q) for (q, _), sense in zip(pairs, senses, strict=True)]
        quote_texts = [self.quote_text(q) if q is not None else "" for q in quotes]
        # One batch of the distinct quotes; the embedder's own cache skips those retrieval has just embedded.
        unique = sorted({t or "-" for t in quote_texts})
        encoded = dict(zip(unique, self._encode(unique), strict=True))
        vectors = [encoded[t or "-"] for t in quote_texts]
        out: list[Relatedness] = []
        for (quote, record), masked, text, vector, sense in zip(
            pairs, quotes, quote_texts, vectors, senses, strict=True
        ):
            texts, code_stems, code_vectors = self._code_side(record, codeset)
            sims = code_vectors @ vector
            best = int(np.argmax(sims)) if len(texts) else 0
            cosine = float(sims[best]) if len(texts) else 0.0
            shared = self.stems(text) & code_stems if text else set()
            strong = tuple(sorted(shared - self._weak))
            weak = tuple(sorted(shared & self._weak))
            related = bool(text) and (cosine >= self.embed_threshold or (bool(strong) and cosine >= self.lexical_floor))
            term = None
            if text and not related:
                term = self.index_match(text, self.index_terms(record, codeset))
                related = term is not None
            other = sense.says if sense is not None and not related and masked != quote else None
            out.append(Relatedness(cosine, strong, weak, related, texts[best] if texts else "", term, other))
        return out
