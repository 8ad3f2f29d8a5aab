"""Metrics on hand-computed tiny cases, including empty predictions, empty gold and duplicates."""

from __future__ import annotations

import pytest

from medcode.evals._metrics import (
    average_precision,
    category_f1,
    exact_match,
    expected_calibration_error,
    macro_f1,
    mean_average_precision,
    micro_prf,
    reliability_bins,
)


def test_micro_prf_hand_computed() -> None:
    gold = [["I10", "E11.9"], ["J45.909"]]
    pred = [["I10", "E11.65", "I10"], []]  # duplicate I10 counts once
    prf = micro_prf(gold, pred)
    assert (prf.tp, prf.fp, prf.fn) == (1, 1, 2)
    assert prf.precision == pytest.approx(0.5)
    assert prf.recall == pytest.approx(1 / 3)
    assert prf.f1 == pytest.approx(0.4)


def test_micro_prf_is_case_insensitive_and_handles_empty() -> None:
    assert micro_prf([["i10"]], [["I10 "]]).f1 == 1.0
    empty = micro_prf([[]], [[]])
    assert (empty.precision, empty.recall, empty.f1) == (0.0, 0.0, 0.0)
    no_pred = micro_prf([["I10"]], [[]])
    assert no_pred.precision == 0.0 and no_pred.recall == 0.0 and no_pred.fn == 1
    no_gold = micro_prf([[]], [["I10"]])
    assert no_gold.fp == 1 and no_gold.f1 == 0.0
    with pytest.raises(ValueError, match="gold documents"):
        micro_prf([["I10"]], [])


def test_macro_f1_averages_over_codes() -> None:
    gold = [["A"], ["A", "B"]]
    pred = [["A"], ["C"]]
    # A: tp1 fn1 -> P1 R.5 F .667; B: fn1 -> 0; C: fp1 -> 0
    assert macro_f1(gold, pred) == pytest.approx((2 / 3) / 3)
    assert macro_f1([[]], [[]]) == 0.0


def test_exact_match() -> None:
    assert exact_match([["A", "B"], [], ["C"]], [["B", "A", "A"], [], ["D"]]) == pytest.approx(2 / 3)
    assert exact_match([], []) == 0.0


def test_average_precision_hand_computed() -> None:
    # relevant at ranks 1 and 3 of 2 gold: (1/1 + 2/3) / 2
    assert average_precision(["A", "B"], ["A", "X", "B"]) == pytest.approx((1 + 2 / 3) / 2)
    # duplicates in the ranking are skipped, not double-counted
    assert average_precision(["A", "B"], ["A", "A", "B"]) == pytest.approx(1.0)
    # a missed gold code lowers AP
    assert average_precision(["A", "B"], ["A"]) == pytest.approx(0.5)
    assert average_precision([], ["A"]) is None
    assert average_precision(["A"], []) == 0.0


def test_map_skips_documents_without_gold() -> None:
    assert mean_average_precision([["A"], [], ["B"]], [["A"], ["Z"], ["X", "B"]]) == pytest.approx((1 + 0.5) / 2)
    assert mean_average_precision([[]], [["A"]]) == 0.0


def test_category_f1_gives_partial_credit() -> None:
    prf = category_f1([["E11.9", "I10"]], [["E11.65"]])
    assert (prf.tp, prf.fp, prf.fn) == (1, 0, 1)
    assert prf.f1 == pytest.approx(2 / 3)


def test_reliability_and_ece() -> None:
    conf = [0.95, 0.95, 0.15, 1.0]
    ok = [True, False, False, True]
    bins = reliability_bins(conf, ok, n_bins=10)
    assert bins[0] == (pytest.approx(0.1), pytest.approx(0.15), 0.0, 1)
    top = bins[-1]
    assert top[3] == 3 and top[2] == pytest.approx(2 / 3)
    expected = 1 / 4 * 0.15 + 3 / 4 * abs(2 / 3 - (0.95 + 0.95 + 1.0) / 3)
    assert expected_calibration_error(conf, ok) == pytest.approx(expected)
    assert expected_calibration_error([], []) == 0.0
    assert expected_calibration_error([1.0, 0.0], [True, False]) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        reliability_bins([1.5], [True])
