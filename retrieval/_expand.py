"""Query-side expansion: clinical abbreviations and lay terms -> code-set wording.

The table is data (``retrieval/data/synonyms.json``); this module only applies it.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources

__all__ = ["QueryExpander", "default_expander"]


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
        resources.files("retrieval").joinpath("data/synonyms.json").read_text(encoding="utf-8")
    )
