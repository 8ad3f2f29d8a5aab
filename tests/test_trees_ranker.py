"""The shared tree-ensemble evaluator and the candidate ranker's file and features (no index needed)."""

from __future__ import annotations

import json
import math
import random
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from medcode._trees import TreeEnsemble, export_trees, fit_boosting
from medcode.agent import AcceptanceModel, load_acceptance_model
from medcode.errors import ConfigError
from medcode.retrieval import NoteCandidate, SpanHit
from medcode.retrieval._priors import CodePriors
from medcode.retrieval._ranker import (
    PRIOR_FEATURES,
    RANKER_FEATURES,
    CandidateRanker,
    default_ranker,
    load_ranker,
    ranker_features,
)
from medcode.retrieval._ranker_fit import fit_ranker


def test_exported_trees_score_like_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4))
    x[rng.random(400) < 0.1, 2] = np.nan  # missing values must go the way training sent them
    y = ((np.nan_to_num(x[:, 0]) + np.nan_to_num(x[:, 2], nan=1.0)) > 0.5).astype(np.int64)
    model = fit_boosting(x, y, max_iter=20)
    baseline, trees = export_trees(model)
    ours = TreeEnsemble(baseline, json.loads(json.dumps(trees))).margin(x)
    np.testing.assert_allclose(ours, model.decision_function(x), atol=1e-6)


def test_all_trees_walked_at_once_give_the_sums_of_one_tree_at_a_time() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 5))
    x[rng.random((300, 5)) < 0.15] = np.nan
    y = ((np.nan_to_num(x[:, 0]) * np.nan_to_num(x[:, 1], nan=-1.0) + np.nan_to_num(x[:, 3])) > 0).astype(np.int64)
    baseline, trees = export_trees(fit_boosting(x, y, max_iter=30, max_depth=5))

    def one_tree(tree: dict[str, list[Any]], row: np.ndarray) -> float:
        node = 0
        while not tree["leaf"][node]:
            v = row[tree["feature"][node]]
            left = tree["missing_left"][node] if np.isnan(v) else v <= tree["threshold"][node]
            node = tree["left"][node] if left else tree["right"][node]
        return float(tree["value"][node])

    expected = []
    for row in x:
        total = baseline
        for tree in trees:  # the order the trees were added, as the ensemble sums them
            total += one_tree(tree, row)
        expected.append(total)
    ensemble = TreeEnsemble(baseline, trees)
    assert ensemble.margin(x).tolist() == expected  # to the last bit
    assert ensemble.margin(x[:0]).shape == (0,) and TreeEnsemble(0.5, []).margin(x).tolist() == [0.5] * 300
    with pytest.raises(ValueError, match="differ in length"):
        TreeEnsemble(baseline, [{**trees[0], "value": trees[0]["value"][:-1]}])


def _cand(code: str, rank: int, score: float, hits: list[tuple[int, int, float, str]]) -> NoteCandidate:
    return NoteCandidate(
        code=code,
        description="",
        chapter="9" if code.startswith("I") else "4",
        score=score,
        rank=rank,
        source="both",
        matched_text="",
        matched_kind=hits[0][3],
        hits=[
            SpanHit(segment_id=s, start=0, end=1, section="other", score=sc, rank=r, matched_kind=k)
            for s, r, sc, k in hits
        ],
    )


def test_ranker_features_describe_how_retrieval_found_a_code() -> None:
    pool = [
        _cand("I10", 1, 1.2, [(0, 1, 1.1, "dictionary"), (3, 2, 0.9, "description")]),
        _cand("I11.9", 2, 0.9, [(0, 4, 0.8, "description")]),
        _cand("E11.9", 3, 0.7, [(5, 1, 0.7, "alphabetic_index")]),
    ]
    x = ranker_features(pool, cut=2)
    assert x.shape == (3, len(RANKER_FEATURES))
    row = dict(zip(RANKER_FEATURES, x[0], strict=True))
    assert row["segments"] == 2 and row["hits_rank1"] == 1 and row["second_segment_score"] == pytest.approx(0.9)
    assert row["any_dictionary"] == 1 and row["any_description"] == 1 and row["top_dictionary"] == 1
    assert row["note_segments"] == 3 and row["gap_to_cut"] == pytest.approx(0.3)
    i11 = dict(zip(RANKER_FEATURES, x[1], strict=True))
    assert i11["code_length"] == 4 and i11["category_count"] == 1 and i11["log_rank"] == pytest.approx(math.log(2))
    assert ranker_features([], cut=5).shape == (0, len(RANKER_FEATURES))


def test_packaged_ranker_loads_and_bad_files_are_refused() -> None:
    ranker = default_ranker()
    assert ranker.settings == {"inpatient"} and ranker.pool_for(100) >= 200
    assert ranker.provenance["out_of_fold"]["recall_after"] > ranker.provenance["out_of_fold"]["recall_before"]
    raw = json.loads(resources.files("medcode.retrieval").joinpath("data/candidate_ranker.json").read_text())
    with pytest.raises(ConfigError, match="not a medcode candidate ranker"):
        CandidateRanker({**raw, "kind": "medcode-acceptance"}, version="x")
    with pytest.raises(ConfigError, match="retrain"):
        CandidateRanker({**raw, "features": raw["features"][:-1]}, version="x")


def test_held_out_scores_come_from_a_fold_that_never_saw_the_note() -> None:
    ranker = default_ranker()
    gold = resources.files("medcode.evals").joinpath("data/gold.jsonl").read_text(encoding="utf-8").splitlines()
    inpatient = [json.loads(line)["text"] for line in gold if json.loads(line).get("setting") == "inpatient"]
    keys = [CandidateRanker.note_key(text) for text in inpatient]
    assert keys and all(ranker.trained_on(k) for k in keys)  # the ranker learned from the gold inpatient notes
    assert not ranker.trained_on(CandidateRanker.note_key("a note nobody trained on"))
    pool = [
        _cand("I10", 1, 1.2, [(0, 1, 1.1, "dictionary"), (3, 2, 0.9, "description")]),
        _cand("I11.9", 2, 0.9, [(0, 4, 0.8, "description")]),
        _cand("E11.9", 3, 0.7, [(5, 1, 0.7, "alphabetic_index")]),
    ]
    full = ranker.scores(pool, 2)
    assert ranker.scores(pool, 2, held_out=CandidateRanker.note_key("unseen")) == full
    assert ranker.scores(pool, 2, held_out=keys[0]) != full  # a fold model, not the one fitted on every note


def _pool() -> list[NoteCandidate]:
    return [
        _cand("I10", 1, 1.2, [(0, 1, 1.1, "dictionary")]),
        _cand("E11.9", 2, 0.9, [(1, 1, 0.9, "description")]),
        _cand("R52", 3, 0.8, [(2, 1, 0.8, "alphabetic_index")]),
    ]


def test_ranker_features_add_label_priors_leaving_a_training_notes_own_labels_out() -> None:
    priors = CodePriors.from_labels([("inpatient", ["R52"]), ("inpatient", ["R52", "I10"])], min_notes=1)
    x = ranker_features(_pool(), cut=2, priors=priors)
    assert x.shape == (3, len(RANKER_FEATURES) + len(PRIOR_FEATURES))
    np.testing.assert_allclose(x[:, : len(RANKER_FEATURES)], ranker_features(_pool(), cut=2))
    assert x[2, -2] > x[0, -2] > x[1, -2]  # R52 in both notes, I10 in one, E11.9 in none
    own = ranker_features(_pool(), cut=2, priors=priors, own=["R52", "I10"])  # the second note, training on itself
    assert own[0, -2] == pytest.approx(math.log(0.1 / 2))  # I10 is unseen in the other note
    assert own[2, -2] == pytest.approx(math.log(1.1 / 2))


def test_a_sites_ranker_uses_its_priors_and_each_fold_its_own(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(600, len(RANKER_FEATURES) + len(PRIOR_FEATURES)))
    x[:, -2] = rng.uniform(-5, 0, 600)
    baseline, trees = export_trees(fit_boosting(x, (x[:, -2] > -1).astype(np.int64), max_iter=30))
    site = CodePriors.from_labels([("inpatient", ["R52"])] * 5 + [("inpatient", ["I10"])], min_notes=1)
    fold = CodePriors.from_labels([("inpatient", ["I10"])] * 5, min_notes=1)  # the notes one fold learned from
    data = {
        "kind": "medcode-candidate-ranker",
        "format": 1,
        "features": [*RANKER_FEATURES, *PRIOR_FEATURES],
        "settings": ["inpatient"],
        "pool": 200,
        "baseline": baseline,
        "trees": trees,
        "held_out": [{"notes": ["k1"], "baseline": baseline, "trees": trees, "priors": fold.as_dict()}],
        "priors": site.as_dict(),
    }
    path = tmp_path / "ranker.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    ranker = load_ranker(path)
    scores = ranker.scores(_pool(), 2)
    assert max(range(3), key=scores.__getitem__) == 2  # R52: what the site's coders assign most
    held = ranker.scores(_pool(), 2, held_out="k1")
    assert max(range(3), key=held.__getitem__) == 0  # the fold's own notes only ever coded I10
    assert [c.code for c in ranker.rerank(_pool(), 2)] == ["R52", "I10"]
    with pytest.raises(ConfigError, match="has none"):
        CandidateRanker({**data, "priors": None}, version="x")
    with pytest.raises(ConfigError, match=r"nope\.json"):
        load_ranker(tmp_path / "nope.json")
    path.write_text("{", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"cannot read candidate ranker .*ranker\.json"):
        load_ranker(path)
    path.write_text(json.dumps({**data, "kind": "other"}), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"ranker\.json: not a medcode candidate ranker"):
        load_ranker(path)
    assert load_ranker(None) is default_ranker()


def _pool_rows(n_notes: int, seed: int) -> list[dict[str, object]]:
    """Generated pools where the kept codes are found by many sentences but score low: the note score's
    order buries them below the cut, and how retrieval found them tells them apart."""
    rng = random.Random(seed)
    rows: list[dict[str, object]] = []
    for n in range(n_notes):
        cands = []
        for i in range(30):
            kept = i >= 20 and i % 3 == 0
            hits = [(s, 2, 0.7, "description") for s in range(5)] if kept else [(0, 1, 0.9, "dictionary")]
            cands.append(_cand(f"R{10 + i}.{n % 10}", i + 1, 1.0 - i * 0.01 + rng.uniform(-0.001, 0.001), hits))
        gold = [c.code for c in cands if len(c.hits) > 1]
        rows.append(
            {
                "dataset": "generated",
                "id": f"n{n}",
                "key": CandidateRanker.note_key(f"note {n}"),
                "gold": gold,
                "candidates": [c.model_dump(exclude={"description", "matched_text"}) for c in cands],
            }
        )
    return rows


def test_fit_ranker_learns_the_kept_codes_order_holds_out_folds_and_is_reproducible() -> None:
    rows = _pool_rows(12, seed=0)
    fit = fit_ranker(rows, pool=30, cut=10, cv=3, with_priors=True)
    assert fit.recall_before == 0.0 and fit.recall_after == 1.0  # every kept code lay below the cut of 10
    ranker = CandidateRanker(fit.data, version="fitted")
    assert all(ranker.trained_on(str(r["key"])) for r in rows)
    assert sorted(k for fold in fit.data["held_out"] for k in fold["notes"]) == sorted(str(r["key"]) for r in rows)
    assert fit.data["features"] == [*RANKER_FEATURES, *PRIOR_FEATURES]
    # The same labels give the same file, byte for byte, in any process (its hash is its version): the
    # priors' counts are written in sorted order, not in the order of a set of strings (salted per process).
    counts = fit.data["priors"]["codes"]["inpatient"]
    assert len(counts) > 10 and list(counts) == sorted(counts)
    assert all(
        list(f["priors"]["categories"]["inpatient"]) == sorted(f["priors"]["categories"]["inpatient"])
        for f in fit.data["held_out"]
    )
    shuffled = [{**r, "gold": list(reversed(r["gold"]))} for r in rows]  # type: ignore[call-overload]
    again = fit_ranker(shuffled, pool=30, cut=10, cv=3, with_priors=True)
    assert json.dumps(again.data) == json.dumps(fit.data)
    assert "trained_at" not in fit.data["provenance"]  # nor a date: a rerun tomorrow finds the same version
    with pytest.raises(ValueError, match="at least 3"):
        fit_ranker(rows[:2], cv=3)
    with pytest.raises(ValueError, match="nothing to learn"):
        fit_ranker([{**r, "gold": ["Z99.9"]} for r in rows], cv=3)


def _model_naming(tmp_path: Path, spec: dict[str, object]) -> Path:
    data = json.loads(resources.files("medcode.agent").joinpath("data/acceptance.json").read_bytes())
    path = tmp_path / "model.json"
    path.write_text(json.dumps({**data, "candidate_ranker": spec}), encoding="utf-8")
    return path


def test_an_acceptance_model_runs_on_the_ranker_it_was_trained_on(tmp_path: Path) -> None:
    packaged = default_ranker()
    assert AcceptanceModel.from_file(_model_naming(tmp_path, {"version": packaged.version, "file": None})) is not None
    model = AcceptanceModel.from_file(_model_naming(tmp_path, {"version": packaged.version, "file": None}))
    assert model.candidate_ranker() is packaged
    raw = resources.files("medcode.retrieval").joinpath("data/candidate_ranker.json").read_bytes()
    (tmp_path / f"ranker-{packaged.version}.json").write_bytes(raw)
    spec = {"version": packaged.version, "file": f"ranker-{packaged.version}.json"}
    beside = AcceptanceModel.from_file(_model_naming(tmp_path, spec)).candidate_ranker()
    assert beside is not None and beside.version == packaged.version
    with pytest.raises(ConfigError, match="trained on candidate ranker 000000000000"):
        AcceptanceModel.from_file(_model_naming(tmp_path, {**spec, "version": "000000000000"})).candidate_ranker()
    with pytest.raises(ConfigError, match=r"cannot read candidate ranker .*gone\.json"):
        AcceptanceModel.from_file(_model_naming(tmp_path, {**spec, "file": "gone.json"})).candidate_ranker()
    with pytest.raises(ConfigError, match=r"model\.json: candidate_ranker must be"):
        AcceptanceModel.from_file(_model_naming(tmp_path, {**spec, "file": "../ranker.json"}))
    assert load_acceptance_model().candidate_ranker() is None  # type: ignore[union-attr]  # the packaged model
