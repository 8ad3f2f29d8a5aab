"""``CandidateRanker``: a learned re-ordering of a note's candidate pool before it is cut to top K.

The hybrid note score ranks codes by their best span plus a bonus for the number of sentences that
found them; in long case reports a code the coders kept is often found by several sentences at
ranks 2-10 and loses to codes one sentence matched well. The ranker is a small gradient-boosted
tree ensemble over how retrieval found each code (scores, ranks, hit counts, which index texts,
family competition), fitted on labelled notes (``_ranker_fit``: ``tools/train_ranker.py`` for the packaged
one, ``medcode train --ranker`` for a site's). It covers only the
settings named in its file (it was fitted on case reports: inpatient). Candidate generation only:
it re-orders, it never adds a code or decides one.

The model file is JSON in the package (``retrieval/data/candidate_ranker.json``); a missing or
malformed file raises ``ConfigError``. It also holds the cross-validation fold models, each with the
hashes of the notes it was fitted without: a model trained on top of the ranker (the acceptance model)
must see, for a note the ranker learned from, the scores of a fold that never saw it
(``search_note(held_out=True)``), or it learns to trust scores that are better than they will be on
new notes (stacking leakage).

A ranker trained for a site with ``--with-priors`` also knows how often the site's
coders assign each code (``CodePriors``, two more features); each fold model carries the priors of
the notes it was fitted on, so a held-out note's priors never count its own labels.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

from medcode._trees import TreeEnsemble
from medcode.errors import ConfigError
from medcode.retrieval._priors import CodePriors

if TYPE_CHECKING:
    from pathlib import Path

    from numpy.typing import NDArray

    from medcode.config import Settings
    from medcode.retrieval._models import NoteCandidate

__all__ = [
    "PRIOR_FEATURES",
    "RANKER_FEATURES",
    "CandidateRanker",
    "default_ranker",
    "load_ranker",
    "ranker_features",
    "settings_ranker",
]

RANKER_FORMAT = 1
_KINDS = ("dictionary", "alphabetic_index", "description", "inclusion_term", "includes", "description_short")
_SOURCES = {"dense": 0.0, "lexical": 1.0, "both": 2.0}
RANKER_FEATURES: tuple[str, ...] = (
    "score",
    "log_rank",
    "hits",
    "segments",
    "best_hit_rank",
    "hits_rank1",
    "hits_top3",
    "best_segment_score",
    "second_segment_score",
    "chapter",
    "code_length",
    "category_count",
    "category_rank",
    "category_gap",
    "note_segments",
    "gap_to_cut",
    "source",
    "variants",
    *(f"any_{k}" for k in _KINDS),
    *(f"top_{k}" for k in _KINDS),
)
PRIOR_FEATURES: tuple[str, ...] = ("prior_code", "prior_category")


def ranker_features(
    candidates: Sequence[NoteCandidate],
    cut: int,
    *,
    priors: CodePriors | None = None,
    setting: str = "inpatient",
    own: Sequence[str] | None = None,
) -> NDArray[np.float64]:
    """One row per candidate (in ``RANKER_FEATURES`` order) from retrieval's own findings.

    ``cut`` is the K the pool will be cut to (``gap_to_cut`` is a code's score above the K-th). With
    ``priors``, the ``PRIOR_FEATURES`` of each code in ``setting`` follow (``own``: the note's labels,
    for a training note that is among the priors' counts).
    """
    x = _retrieval_features(candidates, cut)
    if priors is None:
        return x
    extra = np.asarray([priors.features(c.code, setting, own=own) for c in candidates], dtype=np.float64)
    return np.hstack([x, extra.reshape(len(candidates), len(PRIOR_FEATURES))])


def _retrieval_features(candidates: Sequence[NoteCandidate], cut: int) -> NDArray[np.float64]:
    per_category = Counter(c.code[:3] for c in candidates)
    category_best: dict[str, float] = {}
    for c in candidates:
        category_best.setdefault(c.code[:3], c.score)
    seen: Counter[str] = Counter()
    note_segments = len({h.segment_id for c in candidates for h in c.hits})
    kth = candidates[min(cut, len(candidates)) - 1].score if candidates else 0.0
    rows: list[list[float]] = []
    for c in candidates:
        category = c.code[:3]
        seen[category] += 1
        ranks = [h.rank for h in c.hits] or [c.rank]
        kinds = {h.matched_kind for h in c.hits}
        best: dict[int, float] = {}
        for h in c.hits:
            best[h.segment_id] = max(best.get(h.segment_id, -math.inf), h.score)
        by_segment = sorted(best.values(), reverse=True)
        rows.append(
            [
                c.score,
                math.log(c.rank),
                float(len(c.hits)),
                float(len(best)),
                float(min(ranks)),
                float(sum(r == 1 for r in ranks)),
                float(sum(r <= 3 for r in ranks)),
                by_segment[0] if by_segment else c.score,
                by_segment[1] if len(by_segment) > 1 else 0.0,
                float(c.chapter) if c.chapter.isdigit() else -1.0,
                float(len(c.code.replace(".", ""))),
                float(per_category[category]),
                float(seen[category]),
                category_best[category] - c.score,
                float(note_segments),
                c.score - kth,
                _SOURCES.get(c.source, 0.0),
                float(len(c.variants)),
                *(float(k in kinds) for k in _KINDS),
                *(float(c.matched_kind == k) for k in _KINDS),
            ]
        )
    return np.asarray(rows, dtype=np.float64).reshape(len(rows), len(RANKER_FEATURES))


class CandidateRanker:
    """A fitted candidate ranker read from its JSON file (thread-safe; a fold model is compiled on first use).

    ``settings`` are the note settings it was fitted for; ``pool`` how many candidates it re-orders
    for a cut at K (``max(pool, 2K)``). Raises ``ConfigError`` for a file that is not a ranker.
    """

    def __init__(self, data: dict[str, Any], *, version: str) -> None:
        if data.get("kind") != "medcode-candidate-ranker" or data.get("format") != RANKER_FORMAT:
            raise ConfigError(f"not a medcode candidate ranker (format {data.get('format')!r})")
        features = tuple(data.get("features", ()))
        if features not in (RANKER_FEATURES, RANKER_FEATURES + PRIOR_FEATURES):
            raise ConfigError("candidate ranker features differ from this medcode's; retrain it")
        with_priors = features != RANKER_FEATURES
        if with_priors and not isinstance(data.get("priors"), dict):
            raise ConfigError("candidate ranker uses label priors but its file has none; retrain it")
        self.priors = CodePriors(**data["priors"]) if with_priors else None
        self.version = version
        self.settings = frozenset(data["settings"])
        self.pool = int(data["pool"])
        self.provenance: dict[str, Any] = data.get("provenance", {})
        self._ensemble = TreeEnsemble(data["baseline"], data["trees"])
        self._folds: list[dict[str, Any]] = list(data.get("held_out", []))
        self._fold_of = {key: i for i, fold in enumerate(self._folds) for key in fold["notes"]}
        self._fold_ensembles: dict[int, TreeEnsemble] = {}
        self._fold_priors = [CodePriors(**f["priors"]) if with_priors else None for f in self._folds]
        self._prior_setting = min(self.settings, default="inpatient")  # the priors count one setting's notes

    @staticmethod
    def note_key(text: str) -> str:
        """The hash a note is known by in the held-out folds (never the text itself)."""
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]

    @staticmethod
    def file_version(raw: bytes) -> str:
        """The version of a ranker file: the first 12 hex digits of its SHA-256."""
        return hashlib.sha256(raw).hexdigest()[:12]

    def pool_for(self, top_k: int) -> int:
        return max(self.pool, 2 * top_k)

    def trained_on(self, key: str) -> bool:
        """Whether the note with this ``note_key`` was among the ranker's training notes."""
        return key in self._fold_of

    def scores(self, candidates: Sequence[NoteCandidate], cut: int, *, held_out: str | None = None) -> list[float]:
        """The ranker's margin (higher = likelier kept) for each candidate of one note's pool.

        ``held_out`` (a ``note_key``): when the ranker learned from that note, score with the fold
        model that was fitted without it.
        """
        if not candidates:
            return []
        ensemble, priors = self._ensemble, self.priors
        fold = self._fold_of.get(held_out) if held_out is not None else None
        if fold is not None:
            if fold not in self._fold_ensembles:
                spec = self._folds[fold]
                self._fold_ensembles[fold] = TreeEnsemble(spec["baseline"], spec["trees"])
            ensemble, priors = self._fold_ensembles[fold], self._fold_priors[fold]
        x = ranker_features(candidates, cut, priors=priors, setting=self._prior_setting)
        return [float(m) for m in ensemble.margin(x)]

    def rerank(self, pool: Sequence[NoteCandidate], top_k: int, *, held_out: str | None = None) -> list[NoteCandidate]:
        """The pool's ``top_k`` by margin (ties keep the note score's order), re-numbered, margins attached."""
        order = sorted(
            zip(self.scores(pool, top_k, held_out=held_out), pool, strict=True), key=lambda sc: (-sc[0], sc[1].rank)
        )
        return [
            cand.model_copy(update={"rank": rank, "ranker_score": round(score, 6)})
            for rank, (score, cand) in enumerate(order[:top_k], start=1)
        ]


@lru_cache(maxsize=1)
def default_ranker() -> CandidateRanker:
    """The packaged ranker. Raises ``ConfigError`` when the file is missing or malformed."""
    try:
        raw = resources.files("medcode.retrieval").joinpath("data/candidate_ranker.json").read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read the packaged candidate ranker: {exc}") from None
    return _parse(raw, "the packaged candidate ranker")


def load_ranker(path: Path | None) -> CandidateRanker:
    """The ranker file at ``path`` (a site's, written by ``medcode train --ranker``), else the packaged one.

    Raises ``ConfigError`` naming the file when it is missing, unreadable or not a ranker.
    """
    if path is None:
        return default_ranker()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read candidate ranker {path}: {exc.strerror or exc}") from None
    return _parse(raw, f"candidate ranker {path}")


def settings_ranker(settings: Settings) -> CandidateRanker | None:
    """The ranker the settings turn on (``candidate_ranker``; ``candidate_ranker_file`` or the packaged one), else None.

    Raises ``ConfigError`` like ``load_ranker``.
    """
    return load_ranker(settings.candidate_ranker_file) if settings.candidate_ranker else None


def _parse(raw: bytes, what: str) -> CandidateRanker:
    try:
        return CandidateRanker(json.loads(raw), version=CandidateRanker.file_version(raw))
    except ConfigError as exc:
        raise ConfigError(f"{what}: {exc}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read {what}: {exc}") from None
