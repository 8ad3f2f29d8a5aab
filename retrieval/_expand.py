"""Query-side expansion: clinical abbreviations and lay terms -> code-set wording.

The table is data (``retrieval/data/synonyms.json``); this module only applies it.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources

__all__ = ["QueryExpander", "TermTable", "default_expander", "default_terms"]


def _alternation(keys: list[str]) -> str:
    ordered = sorted(keys, key=len, reverse=True)
    return "|".join(re.escape(k) for k in ordered)


class QueryExpander:
    """Replaces known abbreviations and lay phrases (whole words) by their code-set wording.

    Keys of three letters or fewer match only in the exact case of the table (``MS`` but not
    ``ms``); longer keys and lay terms match in any case.
    """

    def __init__(self, abbreviations: dict[str, str], lay_terms: dict[str, str]) -> None:
        exact: dict[str, str] = {}
        folded: dict[str, str] = {}
        for key, value in abbreviations.items():
            if len(key) <= 3 and key.isalpha():
                exact[key] = value
            else:
                folded[key.lower()] = value
        for key, value in lay_terms.items():
            folded[key.lower()] = value
        self._exact = exact
        self._folded = folded
        bound_l, bound_r = r"(?<![\w/-])", r"(?![\w/-])"
        self._exact_re = re.compile(f"{bound_l}(?:{_alternation(list(exact))}){bound_r}") if exact else None
        self._folded_re = (
            re.compile(f"{bound_l}(?:{_alternation(list(folded))}){bound_r}", re.IGNORECASE) if folded else None
        )

    @classmethod
    def from_json(cls, raw: str) -> QueryExpander:
        data = json.loads(raw)
        return cls(dict(data.get("abbreviations", {})), dict(data.get("lay_terms", {})))

    def expand(self, text: str) -> str | None:
        """The text with every known term replaced, or None when nothing matched."""
        changed = False

        def exact_sub(match: re.Match[str]) -> str:
            nonlocal changed
            changed = True
            return self._exact[match.group(0)]

        def folded_sub(match: re.Match[str]) -> str:
            nonlocal changed
            replacement = self._folded[match.group(0).lower()]
            if replacement.lower() != match.group(0).lower():
                changed = True
            return replacement

        out = text
        if self._folded_re is not None:
            out = self._folded_re.sub(folded_sub, out)
        if self._exact_re is not None:
            out = self._exact_re.sub(exact_sub, out)
        return out if changed else None


@lru_cache(maxsize=1)
def default_expander() -> QueryExpander:
    """The packaged synonym table."""
    return QueryExpander.from_json(
        resources.files("medcode.retrieval").joinpath("data/synonyms.json").read_text(encoding="utf-8")
    )


_WORDS = re.compile(r"[A-Za-z0-9]+(?:['-][A-Za-z0-9]+)*")
_AUTO_SUFFIX = re.compile(r",?\s*(?:unspecified|not elsewhere classified|NOS|unspecified site)\s*$", re.IGNORECASE)
_AUTO_PREFIX = re.compile(r"^unspecified\s+", re.IGNORECASE)
_GENERIC = frozenset(["other", "unspecified", "left", "right", "bilateral", "acute", "chronic", "disease", "disorder"])
_MAX_NGRAM = 8
_MAX_CODES_PER_TERM = 3


def _key(text: str) -> str:
    return " ".join(w.lower() for w in _WORDS.findall(text))


class TermTable:
    """Exact phrase dictionary: clinical terms -> codes, matched on word n-grams of a query.

    Three sources, in order of precedence: curated terms (``retrieval/data/index_terms.json``:
    abbreviations and lay terms the Alphabetic Index lacks, "HTN" -> I10), the Alphabetic Index's
    phrases ("Diabetes" -> E11.9, "abdominal pain" -> R10.9), and the Tabular texts with automatic
    short forms ("Shock, unspecified" -> "shock"). ``lookup(query)`` returns ``(code, term, exact)``
    for the longest non-overlapping matches; ``exact`` is True when the query is only the term.
    Curated keys of three letters or fewer written in upper case match only in upper case.
    """

    def __init__(self, terms: dict[str, str], exact_score: float, contained_score: float) -> None:
        self.exact_score = exact_score
        self.contained_score = contained_score
        self._table: dict[str, list[str]] = {}
        self._case_sensitive: set[str] = set()
        self._curated: set[str] = set()
        for term, code in terms.items():
            key = _key(term)
            if len(term) <= 3 and term.isupper():
                self._case_sensitive.add(term)
            self._table[key] = [code]
            self._curated.add(key)

    @classmethod
    def from_json(cls, raw: str) -> TermTable:
        data = json.loads(raw)
        return cls(dict(data["terms"]), float(data["exact_score"]), float(data["contained_score"]))

    def add_index_texts(self, texts: list[tuple[str, list[str], str]]) -> None:
        """Add the index's texts ``(text, codes, kind)`` and their short forms (see ``dictionary_forms``)."""
        self.add_forms(dictionary_forms(texts))

    def add_forms(self, forms: dict[str, list[str]]) -> None:
        """Add precomputed dictionary forms (``dictionary_forms``; the index stores them); curated terms win."""
        for form, codes in forms.items():
            if form not in self._curated:
                self._table[form] = codes

    def __len__(self) -> int:
        return len(self._table)

    def codes(self) -> set[str]:
        return {c for codes in self._table.values() for c in codes}

    def lookup(self, query: str) -> list[tuple[str, str, bool]]:
        words = _WORDS.findall(query)
        lowered = [w.lower() for w in words]
        used = [False] * len(words)
        found: list[tuple[str, str, bool]] = []
        seen: set[str] = set()
        for n in range(min(_MAX_NGRAM, len(words)), 0, -1):
            for i in range(len(words) - n + 1):
                if any(used[i : i + n]):
                    continue
                key = " ".join(lowered[i : i + n])
                codes = self._table.get(key)
                if codes is None:
                    continue
                if (
                    n == 1
                    and key in self._curated
                    and words[i] not in self._case_sensitive
                    and words[i].upper() in self._case_sensitive
                ):
                    continue  # "ms" is not "MS"
                for j in range(i, i + n):
                    used[j] = True
                term = " ".join(words[i : i + n])
                exact = n == len(words)
                for code in codes:
                    if code not in seen:
                        seen.add(code)
                        found.append((code, term, exact))
        return found


def dictionary_forms(texts: list[tuple[str, list[str], str]]) -> dict[str, list[str]]:
    """The phrase dictionary's automatic part: word-key -> codes, from index texts ``(text, codes, kind)``.

    Every text gives its key and its short form's key ("Shock, unspecified" -> "shock"). Two tiers:
    Alphabetic Index phrases (kind ``alphabetic_index``: how coders look terms up) override the
    Tabular texts' forms. Within a tier a form naming more than three codes is ambiguous and left
    out; generic words and keys under four characters never enter. Computed when the index is
    built and stored with it, so a process loads it instead of recomputing it.
    """
    tiers: dict[bool, dict[str, list[str]]] = {True: {}, False: {}}
    for text, codes, kind in texts:
        forms = {_key(text)}
        short = _AUTO_PREFIX.sub("", _AUTO_SUFFIX.sub("", text)).strip(" ,")
        forms.add(_key(short))
        bucket_tier = tiers[kind == "alphabetic_index"]
        for form in forms:
            if not form or form in _GENERIC or len(form) < 4:
                continue
            bucket = bucket_tier.setdefault(form, [])
            for code in codes:
                if code not in bucket:
                    bucket.append(code)
    out: dict[str, list[str]] = {}
    for alphabetic in (False, True):  # the Alphabetic Index overrides the automatic Tabular forms
        for form, codes in tiers[alphabetic].items():
            if len(codes) <= _MAX_CODES_PER_TERM:
                out[form] = codes
            elif alphabetic:
                out.pop(form, None)
    return out


def default_terms() -> TermTable:
    """A new table holding the packaged curated terms (``retrieval/data/index_terms.json``)."""
    return TermTable.from_json(
        resources.files("medcode.retrieval").joinpath("data/index_terms.json").read_text(encoding="utf-8")
    )
