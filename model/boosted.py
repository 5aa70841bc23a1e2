"""Gradient boosting kept as plain numbers: scikit-learn's HistGradientBoostingClassifier, its trees read
back into flat arrays, scored and explained by a numpy traversal of those arrays alone (no pickle, no
scikit-learn object at scoring time), so it is stored and loaded like the regression (model/store.py).

Why it exists beside the regression: a tree ensemble can find thresholds and interactions a linear
model on scaled features cannot; it is only used when its walk-forward backtest beats the regression
on the same weeks (model/backtest.choose), since on our simulated books it mostly loses.

Why its drivers still add up to the score: each row's path through each tree is credited split by
split to the split's feature (Saabas path attribution): the change from a node's value to its child's,
a node's value being the training-count-weighted mean of its leaves. Along a path these changes
telescope from the root's value to the leaf's, so ``intercept`` (the baseline plus every root's
value) plus the contributions is exactly the logit the trees add up to."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from model.features import Feature
from model.train import Rows, Scoring, training_record, typical_values

ALGORITHM = "gradient_boosting"
# small on purpose: a few thousand account-weeks, ~40 features, refitted every 4 weeks in the backtest
PARAMS: dict[str, Any] = {
    "max_iter": 100,
    "max_bins": 63,  # half the time of 255 bins on ~3,000 rows, for the same trees' reach
    "max_leaf_nodes": 8,
    "learning_rate": 0.05,
    "min_samples_leaf": 20,
    "l2_regularization": 1.0,
    "early_stopping": False,
    "random_state": 0,
}


@dataclass
class Trees:
    """Every tree's nodes in flat arrays; ``left``/``right`` index the same arrays, so one traversal
    walks all trees at once. Internal nodes carry the count-weighted mean of their leaves."""

    feature: np.ndarray  # int; 0 on leaves (never read there)
    threshold: np.ndarray  # a value <= threshold goes left; +inf for a split on "unknown or not"
    missing_left: np.ndarray  # bool: where an unknown (NaN) value goes
    left: np.ndarray  # int, absolute node index; the node itself on leaves
    right: np.ndarray
    leaf: np.ndarray  # bool
    value: np.ndarray  # logit units
    roots: np.ndarray  # int, one per tree
    depth: int  # the longest root-to-leaf path, in splits

    def as_json(self) -> dict[str, Any]:
        """Plain JSON (no Infinity, which PostgreSQL's json type refuses): +inf thresholds as null."""
        if not (np.isfinite(self.value).all() and not np.isnan(self.threshold).any()):
            raise ValueError("a tree holds a value that is not a number")
        if (self.threshold == -np.inf).any():
            raise ValueError("a tree holds a threshold of -inf")
        return {
            "feature": [int(v) for v in self.feature],
            "threshold": [None if v == np.inf else float(v) for v in self.threshold],
            "missing_left": [bool(v) for v in self.missing_left],
            "left": [int(v) for v in self.left],
            "right": [int(v) for v in self.right],
            "leaf": [bool(v) for v in self.leaf],
            "value": [float(v) for v in self.value],
            "roots": [int(v) for v in self.roots],
            "depth": self.depth,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Trees:
        return cls(
            feature=np.array(d["feature"], dtype=np.int64),
            threshold=np.array([np.inf if v is None else v for v in d["threshold"]], dtype=float),
            missing_left=np.array(d["missing_left"], dtype=bool),
            left=np.array(d["left"], dtype=np.int64),
            right=np.array(d["right"], dtype=np.int64),
            leaf=np.array(d["leaf"], dtype=bool),
            value=np.array(d["value"], dtype=float),
            roots=np.array(d["roots"], dtype=np.int64),
            depth=int(d["depth"]),
        )

    def paths(self, x: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per split level, every (row, tree)'s node and the node it moves to (itself once at a leaf),
        as scikit-learn's predictor walks: unknown values by ``missing_left``, else ``<= threshold``."""
        x = np.asarray(x, dtype=float)
        n = len(x)
        node = np.broadcast_to(self.roots, (n, len(self.roots))).copy()
        rows = np.arange(n)[:, None]
        out = []
        for _ in range(self.depth):
            v = x[rows, self.feature[node]]
            left = np.where(np.isnan(v), self.missing_left[node], v <= self.threshold[node])
            nxt = np.where(self.leaf[node], node, np.where(left, self.left[node], self.right[node]))
            out.append((node, nxt))
            node = nxt
        return out

    def leaves(self, x: np.ndarray) -> np.ndarray:
        """Per row and tree, the leaf the row falls in."""
        steps = self.paths(x)
        if steps:
            return steps[-1][1]
        return np.broadcast_to(self.roots, (len(x), len(self.roots))).copy()


def read_trees(clf: Any) -> Trees:
    """A fitted binary HistGradientBoostingClassifier's trees as flat arrays. Internal nodes' values are
    recomputed as the count-weighted mean of their children (scikit-learn keeps them unshrunk, or 0 at
    the root), which is what makes the path attribution telescope to the leaf values it predicts."""
    if getattr(clf, "n_trees_per_iteration_", 1) != 1:
        raise ValueError("only a binary classifier's trees can be read")
    parts: list[dict[str, np.ndarray]] = []
    roots, depth, offset = [], 0, 0
    for (predictor,) in clf._predictors:
        nodes = predictor.nodes
        if nodes["is_categorical"].any():
            raise ValueError("categorical splits are not supported")
        leaf = nodes["is_leaf"].astype(bool)
        left = nodes["left"].astype(np.int64)
        right = nodes["right"].astype(np.int64)
        count = nodes["count"].astype(float)
        value = nodes["value"].astype(float).copy()
        idx = np.arange(len(nodes))
        if not np.all((left[~leaf] > idx[~leaf]) & (right[~leaf] > idx[~leaf])):
            raise ValueError("unexpected node order: children must follow their parent")
        for i in idx[::-1]:  # children come after their parent: fill bottom-up
            if not leaf[i]:
                a, b = left[i], right[i]
                value[i] = (count[a] * value[a] + count[b] * value[b]) / (count[a] + count[b])
        depth = max(depth, int(nodes["depth"].max()))
        parts.append(
            {
                "feature": np.where(leaf, 0, nodes["feature_idx"]).astype(np.int64),
                "threshold": np.where(leaf, np.inf, nodes["num_threshold"]).astype(float),
                "missing_left": nodes["missing_go_to_left"].astype(bool) & ~leaf,
                "left": np.where(leaf, idx, left) + offset,
                "right": np.where(leaf, idx, right) + offset,
                "leaf": leaf,
                "value": value,
            }
        )
        roots.append(offset)
        offset += len(nodes)
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else {}
    if not parts:
        raise ValueError("no trees")
    return Trees(**cat, roots=np.array(roots, dtype=np.int64), depth=depth)


@dataclass
class BoostedModel(Scoring):
    """A fitted gradient-boosting model as numbers, with the regression's interface (model/train.py)."""

    algorithm: ClassVar[str] = ALGORITHM

    kind: str
    features: list[Feature]
    metrics: list[str]
    plans: list[str]
    trees: Trees
    baseline: float  # the log-odds every row starts from
    typical: np.ndarray
    typical_by_plan: dict[str, list[float]] = field(default_factory=dict)
    threshold: float | None = None
    budget: float | None = None
    training: dict[str, Any] = field(default_factory=dict)

    @property
    def intercept(self) -> float:
        """The logit of a row that took no split's credit: the baseline plus each tree's root value."""
        return self.baseline + float(self.trees.value[self.trees.roots].sum())

    def decision(self, x: np.ndarray) -> np.ndarray:
        return self.baseline + self.trees.value[self.trees.leaves(x)].sum(axis=1)

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Per row and feature, in logit units: the change in node value along each tree's path at the
        feature's splits; a row's sum + intercept = its logit."""
        x = np.asarray(x, dtype=float)
        n, f = x.shape[0], len(self.features)
        out = np.zeros(n * f)
        rows = np.arange(n)[:, None] * f
        t = self.trees
        for node, nxt in t.paths(x):
            moved = nxt != node
            at, delta = (rows + t.feature[node])[moved], (t.value[nxt] - t.value[node])[moved]
            out += np.bincount(at, weights=delta, minlength=n * f)
        return out.reshape(n, f)


def classifier(x: np.ndarray, y: np.ndarray) -> Any:
    """scikit-learn's HistGradientBoostingClassifier fitted on raw features (unknown values left as
    NaN: the trees learn where they go)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    x = np.array(x, dtype=float, copy=True)
    x[:, np.isnan(x).all(axis=0)] = 0.0  # scikit-learn cannot bin a column never known; no tree uses it
    # one thread: on a shared 2-CPU host OpenMP's threads made a fit 3-6x slower, not faster
    with threadpool_limits(1, user_api="openmp"):
        return HistGradientBoostingClassifier(**PARAMS).fit(x, y)


def fit(kind: str, rows: Rows, features: list[Feature], metrics: list[str], plans: list[str]) -> BoostedModel:
    """Fit the classifier and keep its trees as numbers, with the training medians drivers read against."""
    clf = classifier(rows.x, rows.y)
    typical, by_plan = typical_values(rows, plans)
    return BoostedModel(
        kind=kind,
        features=features,
        metrics=metrics,
        plans=plans,
        trees=read_trees(clf),
        baseline=float(np.ravel(clf._baseline_prediction)[0]),
        typical=typical,
        typical_by_plan=by_plan,
        training=training_record(rows, params={k: v for k, v in PARAMS.items() if k != "random_state"}),
    )
