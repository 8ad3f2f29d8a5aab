"""``medcode train``: features from the real pipeline, out-of-fold training, the model file, the promotion gate."""

from __future__ import annotations

import json
import math
import random
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from shared_data import own_data_dir

import medcode.evals._training as training
from medcode.agent import AcceptanceModel, MedicalCoder, Note, Runtime, load_acceptance_model
from medcode.agent._acceptance import FEATURE_NAMES, CodePriors, active_model_path, matrix
from medcode.cli import main
from medcode.config import Settings
from medcode.errors import ConfigError, InputError
from medcode.evals import read_dataset
from medcode.evals._harness import note_for
from medcode.evals._training import (
    NoteExample,
    calibrate_by_setting,
    choose_thresholds,
    choose_thresholds_over,
    collect_examples,
    cross_validate,
    features_identity,
    fold_seed_spread,
    folds_for,
    own_tree_settings,
    select,
    site_offset,
    train_model,
)
from medcode.evals.train_cli import queue_notes
from medcode.review import AuditLog, CodingDecision, ReviewQueue

pytestmark = pytest.mark.slow

GOLD = Path(__file__).resolve().parents[1] / "evals" / "data" / "gold.jsonl"


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 14 notes of the project's gold set (both settings)."""
    path = tmp_path_factory.mktemp("train") / "small.jsonl"
    lines = GOLD.read_text(encoding="utf-8").splitlines()
    picked = [line for line in lines if '"outpatient"' in line][:10] + [
        line for line in lines if '"inpatient"' in line
    ][:4]
    path.write_text("\n".join(picked) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def examples(
    small_index_settings: Settings, labelled: Path, tmp_path_factory: pytest.TempPathFactory
) -> list[NoteExample]:
    cache = tmp_path_factory.mktemp("cache") / "features.jsonl"
    docs = list(read_dataset(labelled))
    notes = [("small", note_for(d, small_index_settings.max_note_chars), d.codes) for d in docs]
    with MedicalCoder(small_index_settings, proposer="retrieval") as coder:
        found = collect_examples(coder, notes, cache=cache, progress=False)
        # A rerun reads the cache instead of running the pipeline again.
        cached_lines = cache.read_text(encoding="utf-8").count("\n")
        again = collect_examples(coder, notes, cache=cache, progress=False)
        assert cache.read_text(encoding="utf-8").count("\n") == cached_lines
        # A crash mid-write leaves a torn last line: it is cut off, so the next append starts on a line of its own.
        whole = cache.read_bytes()
        cache.write_bytes(whole + b'{"doc_id":"torn","rows":[{"score":')
        assert [e.codes for e in collect_examples(coder, notes, cache=cache, progress=False)] == [
            e.codes for e in found
        ]
        assert cache.read_bytes() == whole
    assert [e.codes for e in again] == [e.codes for e in found]
    return found


def test_examples_hold_the_pipelines_measurements(examples: list[NoteExample]) -> None:
    assert len(examples) == 14 and {e.setting for e in examples} == {"outpatient", "inpatient"}
    for ex in examples:
        assert len(ex.rows) == len(ex.codes) > 0
        assert all(set(r) <= set(FEATURE_NAMES) for r in ex.rows)
        assert [r["rank"] for r in ex.rows] == sorted(r["rank"] for r in ex.rows)
        assert all(not math.isnan(r["rejected"]) for r in ex.rows)  # the validators ran on every candidate
        assert all(math.isnan(r["prior_code"]) for r in ex.rows)  # priors come later, per fold
    # The pipeline finds some gold codes: positives exist to learn from.
    assert sum(sum(e.labels) for e in examples) >= 10
    # A negated or family-history code is flagged by the validators on some candidate.
    assert any(r["rule_negated"] == 1.0 or r["rule_family"] == 1.0 for e in examples for r in e.rows)


def test_folds_keep_notes_whole_and_balance_datasets(examples: list[NoteExample]) -> None:
    folds = folds_for(examples, 3, seed=1)
    assert len(folds) == len(examples) and set(folds) == {0, 1, 2}
    assert folds == folds_for(examples, 3, seed=1)  # deterministic


def test_train_writes_a_calibrated_model_that_loads_and_predicts(examples: list[NoteExample], tmp_path: Path) -> None:
    model_data, oof = train_model(examples, k=3, version="acceptance-test", progress=False)
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model_data), encoding="utf-8")
    model = AcceptanceModel.from_file(path)
    assert model.version.startswith("acceptance-test+")
    assert set(model.thresholds) == {"outpatient", "inpatient"}
    assert all(0.0 < t < 1.0 for t in model.thresholds.values())
    for xs, ys in model._calibration.values():  # isotonic, per setting and overall: non-decreasing
        assert list(ys) == sorted(ys) and list(xs) == sorted(xs)
    assert set(model._calibration) == {"outpatient", "inpatient", "all"}
    # By default the label priors are left out (they push codes the labels never saw down); the rules stay.
    assert "prior_code" not in model.features and "rule_negated" in model.features
    probs = model.probability([dict(r, prior_code=-3.0, prior_category=-2.0) for r in examples[0].rows], "outpatient")
    assert len(probs) == len(examples[0].rows) and all(0.0 <= p <= 1.0 for p in probs)
    assert oof["small"]["notes"] == 14 and 0.0 <= oof["small"]["f1"] <= 1.0
    # Another seed changes the file and therefore the version.
    other, other_oof = train_model(examples, k=3, seed=7, version="acceptance-test", progress=False)
    # The spread over fold seeds: seed 0's report is reused, seed 7's computed again, the same as train_model's.
    spread = fold_seed_spread(examples, [0, 7], k=3, known={0: oof}, progress=False)["small"]
    assert spread["f1"]["values"] == [oof["small"]["f1"], other_oof["small"]["f1"]]
    assert spread["ece_proposed"]["values"][1] == other_oof["small"]["ece_proposed"]
    assert spread["f1"]["min"] <= spread["f1"]["median"] <= spread["f1"]["max"] and spread["f1"]["seeds"] == [0, 7]
    path2 = tmp_path / "model2.json"
    path2.write_text(json.dumps(other), encoding="utf-8")
    assert AcceptanceModel.from_file(path2).version != model.version


def test_a_setting_with_enough_notes_gets_trees_of_its_own(
    examples: list[NoteExample], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert own_tree_settings(examples) == []  # 10 outpatient and 4 inpatient notes, under the minimum
    pooled_data, _ = train_model(examples, k=3, version="pooled", progress=False)
    assert "setting_trees" not in pooled_data and pooled_data["provenance"]["setting_trees"] == []
    monkeypatch.setattr(training, "MIN_OWN_TREES_NOTES", 10)
    assert own_tree_settings(examples) == ["outpatient"]
    # Out of fold: an outpatient note's margin is the mean of the pooled trees' and the outpatient trees'; the
    # case reports keep the pooled margin.
    pooled = cross_validate(examples, k=3, progress=False)
    own = cross_validate(examples, k=3, progress=False, own_trees=["outpatient"])
    for ex, a, b in zip(examples, pooled.margins, own.margins, strict=True):
        if ex.setting == "inpatient":
            assert np.array_equal(a, b)
    assert any(
        not np.allclose(a, b)
        for ex, a, b in zip(examples, pooled.margins, own.margins, strict=True)
        if ex.setting == "outpatient"
    )
    data, _ = train_model(examples, k=3, version="own-trees", progress=False)
    assert set(data["setting_trees"]) == {"outpatient"} and data["provenance"]["setting_trees"] == ["outpatient"]
    assert data["trees"] == pooled_data["trees"]  # the pooled trees are the same fit
    path = tmp_path / "own.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    model = AcceptanceModel.from_file(path)
    rows = next(ex for ex in examples if ex.setting == "outpatient").rows
    x = matrix(rows, model.features)
    pooled_margin = model.margin(x)
    assert np.array_equal(model.margin(x, "inpatient"), pooled_margin)  # no trees of its own: the pooled ones
    own_data = {**data, "trees": data["setting_trees"]["outpatient"]["trees"]}
    own_data["baseline"] = data["setting_trees"]["outpatient"]["baseline"]
    del own_data["setting_trees"]
    own_margin = AcceptanceModel(own_data, version="own").margin(x)
    assert not np.allclose(own_margin, pooled_margin)
    assert np.allclose(model.margin(x, "outpatient"), (pooled_margin + own_margin) / 2)
    expected = [round(float(p), 4) for p in model.calibrate(model.margin(x, "outpatient"), "outpatient")]
    assert model.probability(rows, "outpatient") == expected


def test_thresholds_over_several_fold_assignments_follow_the_averaged_f1_curve() -> None:
    ex = NoteExample("d", "x", "outpatient", ["a", "b"], ["a", "b", "c", "d"], [{}, {}, {}, {}])
    first = [[0.9, 0.5, 0.6, 0.1]]  # best F1 0.8 (a, b, c) from 0.12 to 0.50
    second = [[0.9, 0.3, 0.2, 0.1]]  # best F1 1.0 (a, b) from 0.22 to 0.30
    assert choose_thresholds([ex], first, precision_target=0.95)[0] == {"outpatient": 0.12}
    assert choose_thresholds([ex], second, precision_target=0.95)[0] == {"outpatient": 0.22}
    assert choose_thresholds_over([ex], [first], precision_target=0.95) == choose_thresholds(
        [ex], first, precision_target=0.95
    )
    # Averaged: 0.8 below 0.22, 0.9 from 0.22 to 0.30 (0.8 and 1.0), 0.73 above; the lowest of the best wins.
    best, strict = choose_thresholds_over([ex], [first, second], precision_target=0.95)
    assert best == {"outpatient": 0.22} and strict == {}  # a strict threshold needs 20 true positives


def test_calibration_and_thresholds_can_come_from_several_fold_assignments(examples: list[NoteExample]) -> None:
    cache: dict[int, list[np.ndarray]] = {}
    data, oof = train_model(examples, k=3, version="t", progress=False, threshold_seeds=2, margins=cache)
    assert data["provenance"]["threshold_seeds"] == 2 and sorted(cache) == [0, 1]
    runs = [cross_validate(examples, k=3, seed=s, progress=False).margins for s in (0, 1)]
    assert all(np.array_equal(a, b) for s in (0, 1) for a, b in zip(cache[s], runs[s], strict=True))
    calibration = calibrate_by_setting([*examples, *examples], [*runs[0], *runs[1]])
    assert data["calibration"] == {s: {"x": xs, "y": ys} for s, (xs, ys) in calibration.items()}
    probabilities = [
        [np.interp(m, *calibration[ex.setting]).tolist() for ex, m in zip(examples, run, strict=True)] for run in runs
    ]
    assert data["thresholds"] == choose_thresholds_over(examples, probabilities, precision_target=0.95)[0]
    # The report is the first fold assignment's, at those thresholds; the spread chooses each seed's the same way.
    assert data["floors"] == training.choose_floors_over(examples, probabilities, data["thresholds"])
    assert oof == training.report(
        examples, probabilities[0], data["thresholds"], data["strict_thresholds"], data["floors"]
    )
    spread = fold_seed_spread(examples, [0, 1], k=3, progress=False, threshold_seeds=2, margins=cache)["small"]
    assert spread["f1"]["values"][0] == oof["small"]["f1"] and sorted(cache) == [0, 1, 2]
    # Without floors (for comparison): the same margins, thresholds and calibration, and no floor anywhere.
    bare, bare_oof = train_model(
        examples, k=3, version="t", progress=False, threshold_seeds=2, margins=cache, with_floors=False
    )
    assert bare["floors"] == {} and bare["thresholds"] == data["thresholds"]
    assert bare_oof == training.report(examples, probabilities[0], data["thresholds"], data["strict_thresholds"], {})
    bare_spread = fold_seed_spread(
        examples, [0], k=3, progress=False, threshold_seeds=2, margins=cache, with_floors=False
    )
    assert bare_spread["small"]["f1"]["values"] == [bare_oof["small"]["f1"]]
    with pytest.raises(InputError, match="threshold seeds"):
        train_model(examples, k=3, version="t", progress=False, threshold_seeds=0)


def test_selection_resolves_excludes1_and_threshold() -> None:
    ex = NoteExample("d", "x", "outpatient", ["E11.9"], ["E11.9", "E10.9", "I10"], [{}, {}, {}], excludes=[[0, 1]])
    assert select(ex, [0.9, 0.8, 0.3], 0.5) == ["E11.9"]  # E10.9 excluded by E11.9
    assert select(ex, [0.9, 0.8, 0.6], 0.5) == ["E11.9", "I10"]
    assert select(ex, [0.4, 0.3, 0.2], 0.5) == []


def test_a_floor_gives_a_note_with_no_code_its_likeliest_candidate() -> None:
    hit = NoteExample("h", "x", "outpatient", ["a"], ["a", "b"], [{}, {}])
    miss = NoteExample("m", "x", "outpatient", ["x"], ["y", "x"], [{}, {}])
    assert select(hit, [0.15, 0.05], 0.3) == [] and select(hit, [0.15, 0.05], 0.3, floor=0.14) == ["a"]
    assert select(hit, [0.15, 0.05], 0.3, floor=0.16) == []
    assert select(hit, [0.45, 0.35], 0.3, floor=0.0) == ["a", "b"]  # codes at the threshold: the floor adds none
    # F1 with no floor 0; a floor in (0.10, 0.15] takes a (right), not y (wrong): 0.67; at 0.10 or below also y: 0.5.
    runs = [[[0.15, 0.05], [0.10, 0.02]]]
    assert training.choose_floors_over([hit, miss], runs, {"outpatient": 0.3}) == {"outpatient": 0.12}
    # A setting where any floor adds only wrong codes gets none; a floor is never at or above the threshold.
    assert training.choose_floors_over([miss], [[[0.10, 0.02]]], {"outpatient": 0.3}) == {}
    assert training.choose_floors_over([hit, miss], runs, {"outpatient": 0.12}) == {}
    picks, confidences, labels = training.picked(hit, [0.15, 0.05], 0.3, 0.12)
    assert (picks, confidences, labels) == (["a"], [0.15], [1])
    model = AcceptanceModel(
        {**_packaged(), "floors": {"outpatient": 0.1}, "confidence_offsets": {"outpatient": -1.0}}, version="f"
    )
    assert model.floor("inpatient") is None and 0.0 < model.floor("outpatient") < 0.1  # moved with the confidence


def _packaged() -> dict[str, object]:
    return json.loads(resources.files("medcode.agent").joinpath("data/acceptance.json").read_text("utf-8"))


def test_priors_are_log_document_shares_per_setting() -> None:
    priors = CodePriors.from_labels(
        [("outpatient", ["E11.9", "I10"]), ("outpatient", ["I10"]), ("outpatient", ["E11.65"]), ("inpatient", ["R52"])],
        min_notes=1,
    )
    code, cat = priors.features("I10", "outpatient")
    assert priors.n_docs == {"outpatient": 3, "inpatient": 1}
    assert code > priors.features("E11.9", "outpatient")[0] > priors.features("J45.909", "outpatient")[0]
    assert math.isclose(cat, math.log((2 + 0.1) / 4))
    # A code frequent in one setting is not frequent in the other; a setting without notes has no priors.
    assert priors.features("R52", "inpatient")[0] > priors.features("R52", "outpatient")[0]
    assert all(math.isnan(v) for v in priors.features("I10", "case-report"))
    # A training note's own labels are left out of its priors: E11.65 (only in that note) looks unseen to it.
    unseen = math.log(0.1 / 3)
    assert math.isclose(priors.features("E11.65", "outpatient", own=["E11.65"])[0], unseen)
    assert math.isclose(priors.features("E11.65", "outpatient", own=["E11.65"])[1], math.log(1.1 / 3))  # E11.9's
    assert math.isclose(priors.features("I10", "outpatient", own=["I10"])[0], math.log(1.1 / 3))
    # Too few notes of a setting: no priors at all (the default minimum is a coded history of 200 notes).
    few = CodePriors.from_labels([("outpatient", ["I10"])] * 199)
    assert all(math.isnan(v) for v in few.features("I10", "outpatient"))
    assert not math.isnan(CodePriors.from_labels([("outpatient", ["I10"])] * 200).features("I10", "outpatient")[0])


def test_priors_do_not_leak_a_training_notes_own_labels() -> None:
    """Every code is unique to its note, so priors carry no information about new notes. In-sample priors
    (a note's own labels counted) would separate the training rows perfectly and teach the model to reject
    every code of a new note; left out, the model learns from the score and does as well as without them."""
    rng = random.Random(3)
    examples = _generated("site", 330, rng, keep=0.8)  # training folds of 220: above the 200-note minimum
    _, oof_without = train_model(examples, k=3, version="t", progress=False, features=("score",))
    with_priors, oof_with = train_model(
        examples, k=3, version="t", progress=False, features=("score", "prior_code", "prior_category")
    )
    assert with_priors["priors"]["n_docs"]["outpatient"] == 330
    assert oof_without["site"]["f1"] > 0.8
    assert oof_with["site"]["f1"] > oof_without["site"]["f1"] - 0.03


def _generated(dataset: str, n: int, rng: random.Random, *, keep: float) -> list[NoteExample]:
    """Outpatient notes of eight candidates; the three with a high ``score`` are gold with probability ``keep``."""
    out = []
    for i in range(n):
        codes = [f"X{i:02d}.{j}" for j in range(8)]
        rows = [{"score": (2.0 if j < 3 else 0.0) + rng.gauss(0, 0.4)} for j in range(8)]
        gold = [c for j, c in enumerate(codes[:3]) if rng.random() < keep] or [codes[7]]
        out.append(NoteExample(f"{dataset}-{i}", dataset, "outpatient", gold, codes, rows))
    return out


def test_the_sites_kept_rate_sets_the_confidence_and_changes_no_pick(tmp_path: Path) -> None:
    """A site whose coders keep half of what the generic notes keep: confidence follows the site, picks do not move."""
    rng = random.Random(0)
    examples = [*_generated("generic", 40, rng, keep=0.9), *_generated("queue", 20, rng, keep=0.45)]
    plain, _ = train_model(examples, k=3, version="t", progress=False)
    sited, _ = train_model(examples, k=3, version="t", progress=False, site="queue")
    assert plain["confidence_offsets"] == {} and sited["confidence_offsets"]["outpatient"] < -0.5
    assert sited["provenance"]["confidence_offsets_from"] == "queue"
    a, b = AcceptanceModel(plain, version="a"), AcceptanceModel(sited, version="b")
    assert b.threshold("outpatient") < a.threshold("outpatient")  # the threshold moves with the confidence
    picked_a, picked_b, kept = [], [], []
    for ex in examples[40:]:
        pa, pb = a.probability(ex.rows, ex.setting), b.probability(ex.rows, ex.setting)
        assert select(ex, pa, a.threshold(ex.setting)) == select(ex, pb, b.threshold(ex.setting))
        chosen = set(select(ex, pb, b.threshold(ex.setting)))
        for code, p, q, y in zip(ex.codes, pa, pb, ex.labels, strict=True):
            if code in chosen:
                picked_a.append(p)
                picked_b.append(q)
                kept.append(y)
    rate = sum(kept) / len(kept)
    assert abs(np.mean(picked_b) - rate) < abs(np.mean(picked_a) - rate) - 0.15  # honest at the site now
    # Too few of the site's codes leave the confidence alone.
    few, _ = train_model([*examples[:40], *examples[40:42]], k=3, version="t", progress=False, site="queue")
    assert few["confidence_offsets"] == {}
    assert site_offset([0.9, 0.8, 0.7, 0.6], [1, 0, 1, 0]) < 0 and site_offset([], []) == 0.0
    assert site_offset([0.2, 0.3], [1, 1]) > 5  # all kept: bounded, not infinite


def test_bad_model_files_are_config_errors(tmp_path: Path, small_index_settings: Settings) -> None:
    from medcode.errors import ConfigError

    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "something else"}', encoding="utf-8")
    with pytest.raises(ConfigError, match="not a medcode acceptance model"):
        AcceptanceModel.from_file(bad)
    packaged = _packaged()
    for field in ("thresholds", "confidence_offsets", "setting_trees"):  # a list where an object belongs
        bad.write_text(json.dumps({**packaged, field: [0.3]}), encoding="utf-8")
        with pytest.raises(ConfigError, match="cannot read acceptance model"):
            AcceptanceModel.from_file(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_acceptance_model(small_index_settings.model_copy(update={"acceptance_model": tmp_path / "nope.json"}))


def _finalise(queue: ReviewQueue, note_text: str, codes: list[str]) -> int:
    from medcode.agent import RoutingDecision

    decision = CodingDecision(note_text=note_text, routing=RoutingDecision(decision="review", reasons=["X"]))
    chart_id = queue.enqueue(decision)
    chart = queue.get(chart_id)
    actions = [("add", c, None) for c in codes]
    queue.resolve(chart_id, user="coder1", expected_version=chart.version, actions=actions, finalise=True)
    return chart_id


def test_train_cli_learns_from_datasets_and_the_queue_and_gates_promotion(
    small_index_settings: Settings, labelled: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = own_data_dir(
        small_index_settings, tmp_path / "data", share=("codesets", "retrieval")
    )  # its own queue, audit log and models; the shared code set and index
    docs = list(read_dataset(labelled))
    with ReviewQueue(settings) as queue:
        for doc in docs[:4]:
            _finalise(queue, doc.text, doc.codes)
    found = list(queue_notes(settings))
    assert len(found) >= 4 and all(src == "queue" and isinstance(n, Note) for src, n, _ in found)
    assert sorted(found[0][2]) == sorted(docs[0].codes)  # the coder's final codes are the label

    gate = tmp_path / "gate.jsonl"
    gate.write_text("\n".join(labelled.read_text(encoding="utf-8").splitlines()[:5]) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    data_dir = str(settings.data_dir)
    args = ["--data-dir", data_dir, "train", "--dataset", str(labelled), "--from-queue", "--cv", "3", "--out", str(out)]
    assert main([*args, "--promote", "--gate-dataset", str(gate), "--gate-tolerance", "1.0"]) == 0
    printed = capsys.readouterr()
    assert "out-of-fold" in printed.out and "PROMOTED" in printed.err
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert "queue" in report["trained_on"] and sum(report["trained_on"].values()) == 14 + len(found)
    active = active_model_path(settings)
    assert active.is_file() and active.read_bytes() == (out / "model.json").read_bytes()
    assert load_acceptance_model(settings) is not None
    assert json.loads(active.read_bytes())["provenance"]["queue_through"] is not None

    # --gate-holdout: the queue's newest charts are kept out of training and gate the promotion too.
    assert main([*args, "--gate-holdout", "2"]) == 2  # it needs --promote
    assert "--gate-holdout needs --from-queue and --promote" in capsys.readouterr().err
    assert main([*args, "--promote", "--gate-holdout", str(len(found))]) == 2  # nothing left to learn from
    assert f"the queue has {len(found)} finalised" in capsys.readouterr().err
    gated = [*args, "--promote", "--gate-dataset", str(gate), "--gate-tolerance", "1.0", "--gate-holdout", "2"]
    assert main(gated) == 0
    printed = capsys.readouterr()
    # The active model learned from every chart, so its figures on the held-out two are in-sample, and it says so.
    assert "2 most recently finalised charts" in printed.err and "learned from 2 of them" in printed.err
    assert "gate on the site's 2 held-out charts" in printed.out and "PROMOTED" in printed.err
    held_report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert held_report["trained_on"]["queue"] == len(found) - 2
    with AuditLog(settings) as audit:
        last = audit.records(event_type="acceptance_model_promoted")[-1]
        assert last.payload["site_gate_charts"] == 2 and last.payload["site_gate_challenger_micro_f1"] is not None
    assert active.read_bytes() == (out / "model.json").read_bytes()

    # A challenger that proposes nothing fails the gate: the active model stays.
    broken = json.loads((out / "model.json").read_text(encoding="utf-8"))
    broken["thresholds"] = {"outpatient": 1.01, "inpatient": 1.01}
    broken_path = tmp_path / "broken.json"
    broken_path.write_text(json.dumps(broken), encoding="utf-8")
    from medcode.evals.train_cli import promote

    ok, _table, details = promote(settings, broken_path, gate=gate, tolerance=0.02, out=tmp_path / "gate")
    assert not ok and details["failures"]
    assert active.read_bytes() == (out / "model.json").read_bytes()
    with AuditLog(settings) as audit:
        events = [r.event_type for r in audit.tail(5)]
        assert "acceptance_model_promoted" in events and events[-1] == "acceptance_model_rejected"
        promoted = audit.records(event_type="acceptance_model_promoted")
        assert len(promoted) == 2  # the first model, then the one gated on the held-out charts
        assert all(r.payload["autonomy_suspended"] == [] for r in promoted)  # no grant was active (test_governance)
        assert audit.verify().ok
    # A bad invocation is a clear error, exit 2.
    assert main(["--data-dir", data_dir, "train", "--out", str(tmp_path / "x")]) == 2
    assert "--dataset" in capsys.readouterr().err
    assert main([*args, "--fold-seeds", "0"]) == 2
    assert "--fold-seeds must be at least 1" in capsys.readouterr().err
    assert main([*args, "--threshold-seeds", "0"]) == 2
    assert "--threshold-seeds must be at least 1" in capsys.readouterr().err
    assert np.isfinite(report["thresholds"]["outpatient"])
    # --with-priors on so few notes: no setting has the 200 a prior needs, and the command says so.
    assert main([*args, "--with-priors", "--fold-seeds", "2"]) == 0  # the features are cached: only the fit runs
    printed = capsys.readouterr()
    err = printed.err
    assert "out-of-fold over fold seeds 0-1, median [min-max]" in printed.out
    assert "(calibration and thresholds over fold seeds 0-2)" in printed.out  # the default: three assignments
    spread = json.loads((out / "report.json").read_text(encoding="utf-8"))["out_of_fold_seeds"]
    assert set(spread) == set(report["trained_on"]) and all(len(v["f1"]["values"]) == 2 for v in spread.values())
    assert "no priors for inpatient" in err and "outpatient" in err and "200 labelled notes" in err
    priored = json.loads((out / "model.json").read_text(encoding="utf-8"))
    assert "prior_code" in priored["features"] and priored["priors"]["min_notes"] == 200

    # --ranker: a candidate ranker is fitted on the inpatient notes first; the model learns on its candidates,
    # names it, and brings it along when promoted, so the runtime re-orders with it (the settings leave it off).
    assert main([*args, "--ranker", "--cv", "9"]) == 2  # 4 inpatient notes cannot fill 9 folds
    assert "--ranker: 4 inpatient notes" in capsys.readouterr().err
    assert main([*args, "--ranker", "--promote", "--gate-dataset", str(gate), "--gate-tolerance", "1.0"]) == 0
    printed = capsys.readouterr()
    assert "candidate ranker: out-of-fold recall@100 on 4 inpatient notes" in printed.err
    assert "PROMOTED" in printed.err
    ranked = json.loads((out / "model.json").read_text(encoding="utf-8"))
    spec = ranked["candidate_ranker"]
    assert spec["file"] == f"ranker-{spec['version']}.json" and (out / spec["file"]).is_file()
    assert active.read_bytes() == (out / "model.json").read_bytes()
    assert (active.parent / spec["file"]).read_bytes() == (out / spec["file"]).read_bytes()
    with Runtime(settings) as runtime:
        assert runtime.retriever().ranker is not None and runtime.retriever().ranker.version == spec["version"]
    with Runtime(settings, model_ranker=False) as runtime:  # how training reads the settings alone
        assert runtime.retriever().ranker is None
    packaged = Path(str(resources.files("medcode.retrieval").joinpath("data/candidate_ranker.json")))
    other = settings.model_copy(update={"candidate_ranker": True, "candidate_ranker_file": packaged})
    with Runtime(other) as runtime, pytest.raises(ConfigError, match="is not the candidate ranker"):
        runtime.retriever()

    # A cache the pipeline made before a change (here: other rules) is refused, naming what changed.
    meta = out / "features.jsonl.pipeline.json"
    recorded = json.loads(meta.read_text(encoding="utf-8"))
    assert set(recorded) >= {"index", "rules", "candidate_ranker", "codeset"} and recorded["candidate_ranker"] is None
    assert recorded["features"] == features_identity()
    meta.write_text(json.dumps({**recorded, "rules": "rules-old"}), encoding="utf-8")
    assert main(args) == 2
    assert f"rules rules-old -> {recorded['rules']}" in capsys.readouterr().err
    # So is one whose rows lack a feature added since (the new model would see it missing on every note).
    meta.write_text(json.dumps({**recorded, "features": "features+old"}), encoding="utf-8")
    assert main(args) == 2
    assert f"features features+old -> {features_identity()}" in capsys.readouterr().err


def test_train_reports_each_malformed_dataset_line_it_skips(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from medcode.evals.train_cli import _dataset_notes

    path = tmp_path / "labels.jsonl"
    good = {"id": "a", "text": "ASSESSMENT: Type 2 diabetes mellitus.", "codes": ["E11.9"]}
    path.write_text(json.dumps(good) + '\n{"id": "b", "text": "no codes"}\nnot json\n', encoding="utf-8")
    notes = _dataset_notes(path, Settings(), None)
    assert [(name, note.id, codes) for name, note, codes in notes] == [(f"{tmp_path.name}/labels", "a", ["E11.9"])]
    err = capsys.readouterr().err
    assert f"{path}:2: skipped: missing required field 'codes'" in err
    assert f"{path}:3: skipped: invalid JSON" in err
