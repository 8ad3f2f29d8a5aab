"""The site-learning benchmark (``tools/bench_site_learning.py``) on small generated notes with known answers."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from medcode.evals._training import NoteExample
from tools.bench_site_learning import run


def _note(dataset: str, i: int, rows: list[dict[str, float]], n_gold: int, rng: random.Random) -> NoteExample:
    """An outpatient note whose first ``n_gold`` candidates (of ``rows``) are gold, candidates in no particular order."""
    codes = [f"X{i:02d}.{j}" for j in range(len(rows))]
    order = rng.sample(range(len(rows)), len(rows))
    return NoteExample(
        doc_id=f"{dataset}-{i}",
        dataset=dataset,
        setting="outpatient",
        gold=codes[:n_gold],
        codes=[codes[j] for j in order],
        rows=[rows[j] for j in order],
    )


def _notes(dataset: str, n: int, rng: random.Random, *, telling: str) -> list[NoteExample]:
    """Outpatient notes of ten candidates, three of them gold; only the feature ``telling`` tells gold apart."""
    out = []
    for i in range(n):
        rows = [
            {name: (2.0 if j < 3 and name == telling else 0.0) + rng.gauss(0, 0.3) for name in ("score", "log_hits")}
            for j in range(10)
        ]
        out.append(_note(dataset, i, rows, 3, rng))
    return out


def test_every_site_note_is_scored_once_per_history_size_by_a_model_that_never_saw_it() -> None:
    rng = random.Random(0)
    generic = _notes("generic", 30, rng, telling="score")
    site = _notes("site", 15, rng, telling="log_hits")  # the site's coders keep what the generic notes do not
    figures = run([*generic, *site], "site", [0, 5, None], ["default"], folds=3, inner=3, seed=0)
    assert set(figures) == {(0, "default"), (5, "default"), (-1, "default")}
    for row in figures.values():
        assert row["tp"] + row["fn"] == 15 * 3  # each site note once, every gold code counted
    assert [figures[(n, "default")]["history"] for n in (0, 5, -1)] == [0, 5, 10]  # 2 of 3 folds are history
    # The site's own charts teach what the generic notes could not: learning from them helps.
    assert figures[(0, "default")]["f1"] < 0.5 < 0.9 <= figures[(-1, "default")]["f1"]
    assert 0.0 <= figures[(-1, "default")]["ece"] <= 1.0


def test_a_site_missing_from_the_cache_is_refused(tmp_path: Path) -> None:
    from tools.bench_site_learning import main

    cache = tmp_path / "features.jsonl"
    rng = random.Random(1)
    cache.write_text("".join(ex.to_json() + "\n" for ex in _notes("generic", 3, rng, telling="score")))
    with pytest.raises(SystemExit) as exit_info:
        main(["--features", str(cache), "--site", "site"])
    assert exit_info.value.code == 2


def test_the_site_offset_variant_moves_only_the_confidence() -> None:
    rng = random.Random(0)
    generic = _notes("generic", 30, rng, telling="score")
    site = _notes("site", 15, rng, telling="log_hits")
    figures = run([*generic, *site], "site", [0, None], ["default", "site-offset"], folds=3, inner=3, seed=0)
    for n in (0, -1):  # the same models and picks; only the confidence may move
        assert {k: v for k, v in figures[(n, "default")].items() if k not in ("ece", "confidence")} == {
            k: v for k, v in figures[(n, "site-offset")].items() if k not in ("ece", "confidence")
        }
    assert figures[(0, "site-offset")]["confidence"] == figures[(0, "default")]["confidence"]  # no history


def _floor_notes(dataset: str, n: int, rng: random.Random) -> list[NoteExample]:
    """One gold code among ten. In every other note it scores 2 beside three wrong codes at 1; in the rest it
    scores 1 alone: codes at 1 are mostly wrong, so the threshold leaves those notes empty and a floor helps."""
    out = []
    for i in range(n):
        levels = [2.0, 1.0, 1.0, 1.0] if i % 2 == 0 else [1.0]
        rows = [
            {"score": (levels[j] if j < len(levels) else 0.0) + rng.gauss(0, 0.1), "log_hits": 0.0} for j in range(10)
        ]
        out.append(_note(dataset, i, rows, 1, rng))
    return out


def test_the_no_floor_variant_only_drops_the_floor_picks() -> None:
    rng = random.Random(0)
    notes = [*_floor_notes("generic", 40, rng), *_floor_notes("site", 15, rng)]
    figures = run(notes, "site", [0], ["default", "no-floor"], folds=3, inner=3, seed=0)
    default, no_floor = figures[(0, "default")], figures[(0, "no-floor")]
    assert default["tp"] + default["fn"] == no_floor["tp"] + no_floor["fn"] == 15
    # The same model and threshold: without the floor the weak notes (7 of 15) lose their one pick, a right one.
    assert no_floor["fp"] == default["fp"] and 0 < default["tp"] - no_floor["tp"] <= 7
    assert default["f1"] > no_floor["f1"]


def test_the_table_gives_each_row_its_seeds_range(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tools.bench_site_learning import main

    rng = random.Random(2)
    notes = [*_notes("generic", 24, rng, telling="score"), *_notes("site", 12, rng, telling="log_hits")]
    cache = tmp_path / "features.jsonl"
    cache.write_text("".join(ex.to_json() + "\n" for ex in notes))
    args = ["--site", "site", "--steps", "all", "--folds", "3", "--inner", "3", "--seeds", "0,1"]
    assert main(["--features", str(cache), *args]) == 0
    out = capsys.readouterr().out
    assert "ECE min-max" in out
    row = next(line for line in out.splitlines() if "(all)" in line).split()
    f1, ece = float(row[5]), float(row[8])
    f1_lo, f1_hi = (float(v) for v in row[6].split("-"))
    ece_lo, ece_hi = (float(v) for v in row[9].split("-"))
    assert f1_lo <= f1 <= f1_hi and ece_lo <= ece <= ece_hi
