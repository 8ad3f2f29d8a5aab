"""Gradient-boosted tree ensembles stored as JSON and evaluated with numpy (no pickle, no scikit-learn
at run time). Shared by the retrieval stage's candidate ranker and the agent's acceptance model.

Fitting (``fit_boosting``) and exporting (``export_trees``) need scikit-learn (the ``train`` extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["TreeEnsemble", "export_trees", "fit_boosting"]


class TreeEnsemble:
    """Additive binary trees: ``margin(x)`` is the baseline plus each tree's leaf value (log-odds).

    Raises ``KeyError``/``TypeError``/``ValueError`` for trees that are not in ``export_trees``'s shape.
    """

    def __init__(self, baseline: float, trees: Sequence[dict[str, list[Any]]]) -> None:
        self.baseline = float(baseline)
        self._trees = [
            (
                np.asarray(tree["feature"], dtype=np.int64),
                np.asarray(tree["threshold"], dtype=np.float64),
                np.asarray(tree["left"], dtype=np.int64),
                np.asarray(tree["right"], dtype=np.int64),
                np.asarray(tree["missing_left"], dtype=bool),
                np.asarray(tree["value"], dtype=np.float64),
                np.asarray(tree["leaf"], dtype=bool),
            )
            for tree in trees
        ]

    def margin(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Raw boosted scores for a feature matrix (NaN goes the way training sent missing values)."""
        total = np.full(x.shape[0], self.baseline, dtype=np.float64)
        for feature, threshold, left, right, missing_left, value, leaf in self._trees:
            node = np.zeros(x.shape[0], dtype=np.int64)
            active = ~leaf[node]
            while active.any():
                idx = np.nonzero(active)[0]
                cur = node[idx]
                vals = x[idx, feature[cur]]
                go_left = np.where(np.isnan(vals), missing_left[cur], vals <= threshold[cur])
                node[idx] = np.where(go_left, left[cur], right[cur])
                active = ~leaf[node]
            total += value[node]
        return total


def export_trees(estimator: Any) -> tuple[float, list[dict[str, list[Any]]]]:
    """(baseline, trees) of a fitted binary ``HistGradientBoostingClassifier`` (numeric features only)."""
    baseline = float(np.ravel(estimator._baseline_prediction)[0])
    trees = []
    for (predictor,) in estimator._predictors:
        nodes = predictor.nodes
        if bool(np.any(nodes["is_categorical"])):
            raise ValueError("categorical splits are not supported by the exporter")
        trees.append(
            {
                "feature": nodes["feature_idx"].astype(int).tolist(),
                "threshold": [float(t) for t in nodes["num_threshold"]],
                "left": nodes["left"].astype(int).tolist(),
                "right": nodes["right"].astype(int).tolist(),
                "missing_left": nodes["missing_go_to_left"].astype(bool).tolist(),
                "value": [round(float(v), 8) for v in nodes["value"]],
                "leaf": nodes["is_leaf"].astype(bool).tolist(),
            }
        )
    return baseline, trees


def fit_boosting(
    x: NDArray[np.float64],
    y: NDArray[np.int64],
    *,
    seed: int = 0,
    weights: NDArray[np.float64] | None = None,
    **params: Any,
) -> Any:
    """A ``HistGradientBoostingClassifier`` fitted on ``x``/``y`` (needs scikit-learn)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    config = {
        "learning_rate": 0.06,
        "max_iter": 300,
        "max_leaf_nodes": 15,
        "min_samples_leaf": 30,
        "l2_regularization": 1.0,
        "early_stopping": False,
        "random_state": seed,
        **params,
    }
    model = HistGradientBoostingClassifier(**config)
    # A feature no training row has (an LLM feature when no LLM ran) is all NaN, which the binner
    # cannot take: give it a constant, so no tree ever splits on it.
    x = np.where(np.isnan(x).all(axis=0), 0.0, x) if len(x) else x
    model.fit(x, y, sample_weight=weights)
    return model
