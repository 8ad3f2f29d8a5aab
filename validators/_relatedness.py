"""SPAN_UNRELATED: does a quote share a clinical concept with the code it is cited for?

Two signals, both explained in ``data/relatedness.json``:

* lexical: content-word stems shared by the (abbreviation-expanded) quote and the code's texts;
  "weak" stems (pain, acute, left, ...) do not count on their own;
* semantic: the best cosine between the quote and any of the code's texts, with the project's
  sentence embedder (loaded once per process, code texts cached per code).

Decision: related when a strong stem is shared and cosine >= 0.30, or cosine >= 0.60 without one.
Tuned with ``python -m tools.bench_validators --tune`` on 324 positive pairs (sound set + gold-set
spans) and 35 hard plus 1465 mismatched negatives: 0.3% false rejection, 0% false acceptance on the
hard negatives, 1.5% on mismatched pairs (mostly same-organ codes). The values live in
``data/relatedness.json`` with the measurement.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from medcode.codesets import CATEGORY_SHAPE, CodeRecord, ICD10CMCodeSet
from medcode.validators._refs import CodeRefMatcher

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["Relatedness", "RelatednessScorer"]

_WORD = re.compile(r"[a-z0-9]+")
_CODE_LITERAL = re.compile(rf"\b{CATEGORY_SHAPE}(?:\.[0-9A-Z]{{1,4}})?\b")
_NEGATIVE_CLAUSE = re.compile(r"\b(?:without|with no|not|no)\b.*$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True)
class Relatedness:
    """Scores for one (quote, code) pair and the verdict under the configured thresholds."""

    cosine: float
    strong_overlap: tuple[str, ...]
    weak_overlap: tuple[str, ...]
    related: bool
    best_text: str


class RelatednessScorer:
    """Scores quotes against codes. ``encode`` is the embedder's ``encode`` (unit vectors).

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
        self._encode = encode
        self._expand = expand
        self._code_cache: dict[str, tuple[list[str], set[str], NDArray[np.float32]]] = {}
        self._quote_cache: dict[str, NDArray[np.float32]] = {}
        self._lock = threading.Lock()

    # -- text -> stems --------------------------------------------------------------
    def _stem(self, word: str) -> str:
        return str(self._stemmer.stem(word.lower()))

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

    # -- scoring -----------------------------------------------------------------
    def score_many(self, pairs: Sequence[tuple[str, CodeRecord]], codeset: ICD10CMCodeSet) -> list[Relatedness]:
        """Score each ``(quote, code record)`` pair; quotes are embedded in one batch."""
        if not pairs:
            return []
        quote_texts = [self.quote_text(q) for q, _ in pairs]
        with self._lock:
            missing = sorted({t or "-" for t in quote_texts} - set(self._quote_cache))
        if missing:
            encoded = self._encode(missing)
            with self._lock:
                if len(self._quote_cache) > 20_000:
                    self._quote_cache.clear()
                self._quote_cache.update(zip(missing, encoded, strict=True))
        with self._lock:
            vectors = [self._quote_cache[t or "-"] for t in quote_texts]
        out: list[Relatedness] = []
        for (_quote, record), text, vector in zip(pairs, quote_texts, vectors, strict=True):
            texts, code_stems, code_vectors = self._code_side(record, codeset)
            sims = code_vectors @ vector
            best = int(np.argmax(sims)) if len(texts) else 0
            cosine = float(sims[best]) if len(texts) else 0.0
            shared = self.stems(text) & code_stems if text else set()
            strong = tuple(sorted(shared - self._weak))
            weak = tuple(sorted(shared & self._weak))
            related = bool(text) and (cosine >= self.embed_threshold or (bool(strong) and cosine >= self.lexical_floor))
            out.append(Relatedness(cosine, strong, weak, related, texts[best] if texts else ""))
        return out
