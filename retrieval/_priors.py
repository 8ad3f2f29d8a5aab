"""Label priors: how often coders assign each code, per coding setting, from labelled notes.

The candidate ranker (this stage) and the acceptance model (``medcode.agent``) can both use them as
features when trained for a site with a coded history of its own. A training note's own labels must
never reach its own features (``own``): that leak teaches a model that a code the labels never saw is
never kept.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MIN_PRIOR_NOTES", "CodePriors"]

# A setting's priors are used only once the training labels hold this many of its notes: with the 124
# outpatient notes of ACI dev and the gold set, outpatient priors cost ACI dev about a point out of fold.
MIN_PRIOR_NOTES = 200


@dataclass
class CodePriors:
    """How often codes and 3-character categories are gold in the training labels, per coding setting.

    Outpatient visits and case reports bill very different mixes, so a code's prior is its share
    among the training notes of the same setting (log-scaled, smoothed). A setting with fewer than
    ``min_notes`` training notes has no priors (NaN): a few notes give noisy shares.
    """

    n_docs: dict[str, int] = field(default_factory=dict)
    codes: dict[str, dict[str, int]] = field(default_factory=dict)
    categories: dict[str, dict[str, int]] = field(default_factory=dict)
    min_notes: int = MIN_PRIOR_NOTES

    @classmethod
    def from_labels(
        cls, labelled: Iterable[tuple[str, Iterable[str]]], *, min_notes: int = MIN_PRIOR_NOTES
    ) -> CodePriors:
        """From ``(setting, gold codes)`` per training note."""
        priors = cls(min_notes=min_notes)
        for setting, labels in labelled:
            priors.n_docs[setting] = priors.n_docs.get(setting, 0) + 1
            codes = priors.codes.setdefault(setting, {})
            cats = priors.categories.setdefault(setting, {})
            for code in set(labels):
                codes[code] = codes.get(code, 0) + 1
            for cat in {_category(c) for c in labels}:
                cats[cat] = cats.get(cat, 0) + 1
        return priors

    def features(self, code: str, setting: str, *, own: Iterable[str] | None = None) -> tuple[float, float]:
        """(log share of the setting's documents with the code, log share with its category), smoothed.

        ``own`` is the gold codes of a training note that is itself among the counts: they are left out
        (leave one out), so a training row never sees its own label. Without that, every gold code of a
        training note had a prior above zero and the model learned that an unseen code is never kept.
        """
        n = self.n_docs.get(setting, 0)
        if n < self.min_notes:
            return math.nan, math.nan
        cat = _category(code)
        code_count = self.codes.get(setting, {}).get(code, 0)
        cat_count = self.categories.get(setting, {}).get(cat, 0)
        if own is not None:
            own_codes = set(own)
            n -= 1
            code_count -= code in own_codes
            cat_count -= cat in {_category(c) for c in own_codes}
        return math.log((code_count + 0.1) / (n + 1)), math.log((cat_count + 0.1) / (n + 1))

    def as_dict(self) -> dict[str, Any]:
        """The counts as plain dicts, keys sorted (the same labels always give the same bytes)."""

        def ordered(counts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
            return {s: dict(sorted(counts[s].items())) for s in sorted(counts)}

        return {
            "n_docs": dict(sorted(self.n_docs.items())),
            "codes": ordered(self.codes),
            "categories": ordered(self.categories),
            "min_notes": self.min_notes,
        }


def _category(code: str) -> str:
    return code.replace(".", "")[:3]
