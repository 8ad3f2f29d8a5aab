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
        # All trees' nodes in one set of arrays (a tree's children offset by where its nodes start), so that
        # ``margin`` walks every (row, tree) pair at once, one tree level per step.
        sizes = [len(tree["feature"]) for tree in trees]
        self._roots = np.cumsum([0, *sizes[:-1]], dtype=np.int64)[: len(sizes)]
        offsets = np.repeat(self._roots, sizes)

        def column(name: str, dtype: type) -> NDArray[Any]:
            return (
                np.concatenate([np.asarray(tree[name], dtype=dtype) for tree in trees]) if trees else np.zeros(0, dtype)
            )

        self._feature = column("feature", np.int64)
        self._threshold = column("threshold", np.float64)
        self._left = column("left", np.int64) + offsets
        self._right = column("right", np.int64) + offsets
        self._missing_left = column("missing_left", bool)
        self._value = column("value", np.float64)
        self._leaf = column("leaf", bool)
        if any(len(tree[name]) != size for tree, size in zip(trees, sizes, strict=True) for name in _NODE_FIELDS):
            raise ValueError("a tree's node lists differ in length")

    def margin(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """Raw boosted scores for a feature matrix (NaN goes the way training sent missing values)."""
        total = np.full(x.shape[0], self.baseline, dtype=np.float64)
        if not len(self._roots) or not x.shape[0]:
            return total
        node = np.tile(self._roots, (x.shape[0], 1))
        rows, cols = np.nonzero(~self._leaf[node])
        while rows.size:
            cur = node[rows, cols]
            vals = x[rows, self._feature[cur]]
            go_left = np.where(np.isnan(vals), self._missing_left[cur], vals <= self._threshold[cur])
            nxt = np.where(go_left, self._left[cur], self._right[cur])
            node[rows, cols] = nxt
            inner = ~self._leaf[nxt]
            rows, cols = rows[inner], cols[inner]
        values = self._value[node]
        for t in range(values.shape[1]):  # tree by tree, as the trees were added: the same sums to the last bit
            total += values[:, t]
        return total


_NODE_FIELDS = ("feature", "threshold", "left", "right", "missing_left", "value", "leaf")


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
