"""Learned acceptance: the probability that a coder keeps a retrieved code, from measured features.

For every (note, candidate code) pair the pipeline already measures how retrieval found the code
(scores, rank, which index texts matched, how many sentences and in which sections), what the
validators say about its best sentence (negated, family history, unrelated...), how it competes
with its siblings, and what kind of code it is. ``candidate_features`` turns that into one row of
numbers (missing values are NaN). ``AcceptanceModel`` is a gradient-boosted tree ensemble fitted
on labelled notes (``medcode train``; a setting with enough notes also gets trees of its own, and its
notes get the mean of both margins) with isotonic calibration fitted on out-of-fold
predictions, so its output is a probability: it is each code's confidence, and a per-setting
threshold chosen on out-of-fold micro-F1 decides which codes are proposed.

The model file is JSON (trees, calibration, thresholds, label-frequency priors, provenance), read
and evaluated here with numpy: no pickle, no scikit-learn at run time. Training
(``fit_acceptance``) needs scikit-learn.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medcode._trees import TreeEnsemble, export_trees, fit_boosting
from medcode.errors import ConfigError
from medcode.retrieval._priors import MIN_PRIOR_NOTES, CodePriors
from medcode.retrieval._ranker import CandidateRanker, default_ranker, load_ranker

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from medcode.codesets import ICD10CMCodeSet
    from medcode.config import Settings
    from medcode.retrieval import NoteCandidate, NoteCandidates

__all__ = [
    "ASSERTION_RULE_FEATURES",
    "FEATURE_NAMES",
    "MIN_PRIOR_NOTES",
    "PRIOR_FEATURES",
    "TRAINING_FEATURES",
    "AcceptanceModel",
    "CodePriors",
    "active_model_path",
    "candidate_features",
    "fit_acceptance",
    "load_acceptance_model",
]

MODEL_FORMAT = 1
DIAGNOSTIC = frozenset({"assessment_plan", "chief_complaint"})
_SECTION_FLAGS = {
    "sec_assessment": ("assessment_plan",),
    "sec_chief": ("chief_complaint",),
    "sec_hpi": ("hpi",),
    "sec_history": ("past_medical_history", "social_history"),
    "sec_family": ("family_history",),
    "sec_ros": ("ros",),
    "sec_exam": ("physical_exam", "vitals", "results"),
    "sec_meds": ("medications", "allergies", "procedures", "instructions"),
    "sec_other": ("other",),
}
_RULE_FLAGS = {
    "rule_negated": "SPAN_NEGATED",
    "rule_family": "SPAN_FAMILY_HISTORY",
    "rule_hypothetical": "SPAN_HYPOTHETICAL",
    "rule_uncertain": "SPAN_UNCERTAIN",
    "rule_historical": "SPAN_HISTORICAL",
}
# The wrong sibling: the sentence contradicts the code's side, encounter or distinguishing words.
_SPECIFICITY_RULES = frozenset({"SPECIFICITY_UNSUPPORTED", "LATERALITY_CONFLICT", "ENCOUNTER_CONFLICT"})
# Features that say an assertion rule (negated, family, hypothetical, uncertain, historical) rejected a code.
ASSERTION_RULE_FEATURES: tuple[str, ...] = tuple(_RULE_FLAGS)
FEATURE_NAMES: tuple[str, ...] = (
    "score",
    "best_span_score",
    "rank",
    "ranker_score",
    "log_hits",
    "n_segments",
    "first_position",
    "diagnostic_share",
    *_SECTION_FLAGS,
    "source_dense",
    "source_lexical",
    "match_alphabetic",
    "match_dictionary",
    "match_tabular",
    "category_count",
    "category_rank",
    "category_gap",
    "block_count",
    "chapter",
    "letter",
    "unspecified",
    "extension",
    "code_length",
    "outpatient",
    "note_log_chars",
    "rejected",
    *_RULE_FLAGS,
    "rule_specificity",
    "rule_other",
    "prior_code",
    "prior_category",
    "llm_selected",
    "llm_yes_logprob",
)
# What ``medcode train`` fits on by default. The label priors are left out: they describe the coding habits
# of the notes trained on, and the packaged model's inpatient notes are mostly CodiEsp's case reports. With
# them (each training note's priors leaving its own labels out), out-of-fold micro-F1 over the packaged
# model's training set rose on CodiEsp train (0.485 -> 0.505-0.508, three fold seeds) and fell on the project
# gold set's 13 inpatient notes (0.61-0.62 -> 0.54-0.56), whose coders are not CodiEsp's.
# ``medcode train --with-priors`` puts them back for a site whose own coded history is large.
PRIOR_FEATURES: tuple[str, ...] = ("prior_code", "prior_category")
TRAINING_FEATURES: tuple[str, ...] = tuple(f for f in FEATURE_NAMES if f not in PRIOR_FEATURES)


def _chapter_number(chapter: str) -> float:
    return float(chapter) if chapter.isdigit() else math.nan


def candidate_features(
    candidates: NoteCandidates,
    codeset: ICD10CMCodeSet,
    *,
    note_chars: int,
    outpatient: bool,
    rules: Mapping[str, Sequence[str]] | None = None,
    priors: CodePriors | None = None,
    llm_selected: Mapping[str, bool] | None = None,
    top_k: int | None = None,
) -> list[tuple[NoteCandidate, dict[str, float]]]:
    """One feature row per candidate (the note's top ``top_k``), in rank order.

    ``rules`` maps a code to the rule ids that rejected it on its best sentence (the validators'
    own-merit verdict); ``priors`` gives label frequencies (NaN without); ``llm_selected`` marks
    the codes an LLM chose (NaN for every code when no LLM ran). Codes missing from the code set
    are left out.
    """
    cands = [c for c in candidates.candidates[: top_k or None] if c.code in codeset]
    by_category: dict[str, list[NoteCandidate]] = {}
    by_block: dict[str, int] = {}
    records = {c.code: codeset.get(c.code) for c in cands}
    for cand in cands:
        by_category.setdefault(cand.code[:3], []).append(cand)
        block = records[cand.code].block
        by_block[block] = by_block.get(block, 0) + 1
    out: list[tuple[NoteCandidate, dict[str, float]]] = []
    for cand in cands:
        record = records[cand.code]
        hits = cand.hits
        sections = {h.section for h in hits}
        segments = {h.segment_id for h in hits}
        peers = by_category[cand.code[:3]]
        kinds = {h.matched_kind for h in hits} | {cand.matched_kind}
        row: dict[str, float] = {
            "score": cand.score,
            "best_span_score": hits[0].score if hits else math.nan,
            "rank": float(cand.rank),
            "ranker_score": math.nan if cand.ranker_score is None else cand.ranker_score,
            "log_hits": math.log1p(len(hits)),
            "n_segments": float(len(segments)),
            "first_position": min(h.start for h in hits) / max(note_chars, 1) if hits else math.nan,
            "diagnostic_share": sum(h.section in DIAGNOSTIC for h in hits) / len(hits) if hits else 0.0,
            "source_dense": 1.0 if cand.source in ("dense", "both") else 0.0,
            "source_lexical": 1.0 if cand.source in ("lexical", "both") else 0.0,
            "match_alphabetic": 1.0 if "alphabetic_index" in kinds else 0.0,
            "match_dictionary": 1.0 if "dictionary" in kinds else 0.0,
            "match_tabular": 1.0 if kinds & {"description", "inclusion_term", "description_short", "includes"} else 0.0,
            "category_count": float(len(peers)),
            "category_rank": float(1 + sum(p.score > cand.score for p in peers)),
            "category_gap": max(p.score for p in peers) - cand.score,
            "block_count": float(by_block[record.block]),
            "chapter": _chapter_number(record.chapter),
            "letter": float(ord(record.code[0]) - ord("A")),
            "unspecified": 1.0 if "unspecified" in record.description.lower() else 0.0,
            "extension": 1.0 if record.kind == "extension" else 0.0,
            "code_length": float(len(record.code.replace(".", ""))),
            "outpatient": 1.0 if outpatient else 0.0,
            "note_log_chars": math.log1p(note_chars),
        }
        for name, names in _SECTION_FLAGS.items():
            row[name] = 1.0 if sections & set(names) else 0.0
        code_rules = set(rules.get(cand.code, ())) if rules is not None else None
        row["rejected"] = math.nan if code_rules is None else float(bool(code_rules))
        for name, rule in _RULE_FLAGS.items():
            row[name] = math.nan if code_rules is None else float(rule in code_rules)
        row["rule_specificity"] = math.nan if code_rules is None else float(bool(code_rules & _SPECIFICITY_RULES))
        row["rule_other"] = math.nan if code_rules is None else float(bool(code_rules - set(_RULE_FLAGS.values())))
        setting = "outpatient" if outpatient else "inpatient"
        row["prior_code"], row["prior_category"] = (
            priors.features(cand.code, setting) if priors else (math.nan, math.nan)
        )
        row["llm_selected"] = math.nan if llm_selected is None else float(llm_selected.get(cand.code, False))
        row["llm_yes_logprob"] = math.nan
        out.append((cand, row))
    return out


def matrix(rows: Sequence[Mapping[str, float]], names: Sequence[str] = FEATURE_NAMES) -> NDArray[np.float64]:
    """Rows as a float matrix in ``names`` order (absent features are NaN)."""
    return np.array([[float(r.get(n, math.nan)) for n in names] for r in rows], dtype=np.float64).reshape(
        len(rows), len(names)
    )


def shift_confidence(p: NDArray[np.float64] | float, offset: float) -> NDArray[np.float64]:
    """``p`` moved by ``offset`` on the logit scale (monotone: the order of codes does not change)."""
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.asarray(1.0 / (1.0 + np.exp(-(np.log(q / (1 - q)) + offset))), dtype=np.float64)


class AcceptanceModel:
    """A fitted acceptance model read from its JSON file. Thread-safe (immutable after load).

    ``probability`` returns calibrated probabilities; ``threshold(setting)`` the decision
    threshold chosen on out-of-fold micro-F1, ``strict_threshold(setting)`` the one that met the
    precision target out of fold (autonomy uses it), ``floor(setting)`` (None: none) the probability at which a
    note with no code at the threshold still gets its likeliest candidate (chosen on out-of-fold micro-F1 too;
    models before 2026-12-02 have none). A model trained on a site's charts may carry
    ``confidence_offsets`` (per setting, on the logit scale): the probabilities and the thresholds
    (and floors) are all moved by it, so the confidence matches the share of codes the site's coders kept and
    no decision changes. A model trained on top of a candidate ranker (``medcode train --ranker``, or
    with the ranker on) names it (``candidate_ranker``: its version and a file beside the model, or the
    packaged one): its features are that ranker's order and scores, so it runs with that ranker
    (``candidate_ranker()``). ``path`` is the file it was read from. Raises ``ConfigError`` for a file
    that is not a medcode acceptance model.
    """

    def __init__(self, data: dict[str, Any], *, version: str, path: Path | None = None) -> None:
        if data.get("format") != MODEL_FORMAT or data.get("kind") != "medcode-acceptance":
            raise ConfigError(f"not a medcode acceptance model (format {data.get('format')!r})")
        self.data = data
        self.version = version
        self.path = path
        ranker = data.get("candidate_ranker")
        if ranker is not None and not (
            isinstance(ranker, dict)
            and isinstance(ranker.get("version"), str)
            and (ranker.get("file") is None or (isinstance(ranker["file"], str) and _bare_name(ranker["file"])))
        ):
            raise ConfigError("candidate_ranker must be {'version': str, 'file': a file name beside the model or null}")
        self.ranker_spec: dict[str, Any] | None = ranker
        self.features: tuple[str, ...] = tuple(data["features"])
        self._ensemble = TreeEnsemble(data["baseline"], data["trees"])
        self._setting_ensembles = {
            setting: TreeEnsemble(own["baseline"], own["trees"])
            for setting, own in data.get("setting_trees", {}).items()
        }
        self._calibration = {
            setting: (np.asarray(cal["x"], dtype=np.float64), np.asarray(cal["y"], dtype=np.float64))
            for setting, cal in data["calibration"].items()
        }
        # A file from before the 200-note minimum was fitted with priors for every setting it had notes of.
        self.priors = CodePriors(**{"min_notes": 1, **data["priors"]})
        self.offsets: dict[str, float] = {k: float(v) for k, v in data.get("confidence_offsets", {}).items()}
        self.thresholds: dict[str, float] = {k: self._shift(float(v), k) for k, v in data["thresholds"].items()}
        self.strict_thresholds: dict[str, float] = {
            k: self._shift(float(v), k) for k, v in data.get("strict_thresholds", {}).items()
        }
        self.floors: dict[str, float] = {k: self._shift(float(v), k) for k, v in data.get("floors", {}).items()}
        self.top_k: dict[str, int] = {k: int(v) for k, v in data.get("top_k", {}).items()}

    @classmethod
    def from_file(cls, path: Path) -> AcceptanceModel:
        """Load a model file. Raises ``ConfigError`` naming the file when it is unreadable."""
        try:
            raw = path.read_bytes()
            return cls(json.loads(raw), version=_version(raw), path=path)
        except ConfigError as exc:
            raise ConfigError(f"acceptance model {path}: {exc}") from None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(f"cannot read acceptance model {path}: {exc}") from None

    def candidate_ranker(self) -> CandidateRanker | None:
        """The candidate ranker this model was trained on (None: trained on the note score's order).

        Raises ``ConfigError`` when the ranker's file is missing or holds another ranker (a model must run
        on the candidates it learned from).
        """
        spec = self.ranker_spec
        if spec is None:
            return None
        if spec["file"] is None:
            ranker, where = default_ranker(), "the packaged candidate ranker"
        elif self.path is None:
            raise ConfigError(
                f"acceptance model {self.version} names candidate ranker file {spec['file']} but has no path"
            )
        else:
            ranker_path = self.path.parent / spec["file"]
            ranker, where = load_ranker(ranker_path), f"candidate ranker {ranker_path}"
        if ranker.version != spec["version"]:
            raise ConfigError(
                f"acceptance model {self.version} was trained on candidate ranker {spec['version']}, but {where} is "
                f"{ranker.version}: restore that ranker or retrain the model"
            )
        return ranker

    def margin(self, x: NDArray[np.float64], setting: str | None = None) -> NDArray[np.float64]:
        """Raw boosted scores (log-odds before calibration) for a feature matrix in ``features`` order: the pooled
        trees', averaged with the setting's own trees' when the model has them (``setting_trees``)."""
        pooled = self._ensemble.margin(x)
        own = self._setting_ensembles.get(setting or "")
        return pooled if own is None else (pooled + own.margin(x)) / 2

    def _shift(self, p: float, setting: str) -> float:
        """``p`` moved by the setting's confidence offset, to six decimals (unchanged without an offset)."""
        offset = self.offsets.get(setting, 0.0)
        return round(float(shift_confidence(p, offset)), 6) if offset else p

    def calibrate(self, margin: NDArray[np.float64], setting: str) -> NDArray[np.float64]:
        """The setting's isotonic map from raw scores to probabilities (clipped at the fitted range)."""
        xs, ys = self._calibration.get(setting) or self._calibration["all"]
        return np.interp(margin, xs, ys)

    def probability(self, rows: Sequence[Mapping[str, float]], setting: str) -> list[float]:
        """Calibrated probability that a coder keeps each code of a note in ``setting`` (four decimals), moved by
        the setting's confidence offset when the model has one. The offset is applied to the rounded value and
        the thresholds move with it, so every comparison with a threshold comes out as without it."""
        if not rows:
            return []
        calibrated = self.calibrate(self.margin(matrix(rows, self.features), setting), setting)
        return [self._shift(round(float(p), 4), setting) for p in calibrated]

    def threshold(self, setting: str) -> float:
        return self.thresholds.get(setting, self.thresholds.get("default", 0.5))

    def strict_threshold(self, setting: str) -> float | None:
        return self.strict_thresholds.get(setting)

    def floor(self, setting: str) -> float | None:
        return self.floors.get(setting)


def _bare_name(name: str) -> bool:
    return bool(name) and Path(name).name == name and name not in (".", "..")


def _version(raw: bytes) -> str:
    data = json.loads(raw)
    return f"{data.get('version', 'acceptance')}+{hashlib.sha256(raw).hexdigest()[:8]}"


def active_model_path(settings: Settings) -> Path:
    """Where a site's promoted model lives (``medcode train --promote`` writes it)."""
    return settings.data_dir / "models" / "acceptance" / "active.json"


def load_acceptance_model(settings: Settings | None = None) -> AcceptanceModel | None:
    """The model the settings name (``acceptance_model``), else the site's promoted model, else the
    packaged model, else None.

    Raises ``ConfigError`` when a model file is named but missing, or exists but cannot be read.
    """
    if settings is not None and settings.acceptance_model is not None:
        if not settings.acceptance_model.is_file():
            raise ConfigError(f"acceptance model not found: {settings.acceptance_model}")
        return AcceptanceModel.from_file(settings.acceptance_model)
    if settings is not None and active_model_path(settings).is_file():
        return AcceptanceModel.from_file(active_model_path(settings))
    packaged = resources.files("medcode.agent").joinpath("data/acceptance.json")
    if not packaged.is_file():
        return None
    raw = packaged.read_bytes()
    try:
        return AcceptanceModel(json.loads(raw), version=_version(raw))
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"the packaged acceptance model is unreadable: {exc}") from None


# -- training -----------------------------------------------------------------------------------------------


def fit_isotonic(margins: NDArray[np.float64], labels: NDArray[np.int64]) -> tuple[list[float], list[float]]:
    """Isotonic calibration points (x ascending, y non-decreasing) from out-of-fold margins."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
    iso.fit(margins, labels)
    xs = [float(v) for v in iso.X_thresholds_]
    ys = [round(float(v), 6) for v in iso.y_thresholds_]
    return xs, ys


def fit_acceptance(
    x: NDArray[np.float64],
    y: NDArray[np.int64],
    *,
    calibration: dict[str, tuple[list[float], list[float]]],
    priors: CodePriors,
    thresholds: dict[str, float],
    strict_thresholds: dict[str, float],
    top_k: dict[str, int],
    provenance: dict[str, Any],
    floors: Mapping[str, float] | None = None,
    seed: int = 0,
    weights: NDArray[np.float64] | None = None,
    params: dict[str, Any] | None = None,
    features: Sequence[str] = FEATURE_NAMES,
    confidence_offsets: dict[str, float] | None = None,
    setting_rows: Mapping[str, NDArray[np.bool_]] | None = None,
) -> dict[str, Any]:
    """The model file's content: trees fitted on all rows (columns ``features``) and, per setting of
    ``setting_rows`` (a row mask), trees fitted on its rows alone, averaged with the pooled ones at run time;
    ``calibration`` (per setting, and ``all``) fitted on out-of-fold margins by the caller;
    ``confidence_offsets`` (per setting) move probabilities, thresholds and ``floors`` alike (see
    ``AcceptanceModel``)."""
    estimator = fit_boosting(x, y, seed=seed, weights=weights, **(params or {}))
    baseline, trees = export_trees(estimator)
    setting_trees: dict[str, dict[str, Any]] = {}
    for setting, mask in (setting_rows or {}).items():
        own = fit_boosting(x[mask], y[mask], seed=seed, **(params or {}))  # one setting: nothing to balance
        own_baseline, own_trees = export_trees(own)
        setting_trees[setting] = {"baseline": own_baseline, "trees": own_trees}
    return {
        "kind": "medcode-acceptance",
        "format": MODEL_FORMAT,
        "version": provenance.get("version", "acceptance"),
        "features": list(features),
        "baseline": baseline,
        "trees": trees,
        **({"setting_trees": setting_trees} if setting_trees else {}),
        "calibration": {s: {"x": xs, "y": ys} for s, (xs, ys) in calibration.items()},
        "thresholds": thresholds,
        "strict_thresholds": strict_thresholds,
        "floors": dict(floors or {}),
        "confidence_offsets": confidence_offsets or {},
        "top_k": top_k,
        "priors": priors.as_dict(),
        "provenance": provenance,
    }
