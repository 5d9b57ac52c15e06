"""Fitted scikit-learn models as plain arrays, and their outputs recomputed with NumPy.

The stacking head (:mod:`fusion.heads.stacking`) is saved as these arrays (safetensors, no
pickle) and predicts with the functions here, so a saved run needs neither pickle nor the
scikit-learn version that fitted it. Each ``*_arrays`` function reads a fitted estimator's public
attributes; each evaluation function takes those arrays and ``X`` (N, F) float64 and returns
what the estimator's method returns, to floating-point rounding (tests compare them).

Trees compare ``X`` cast to float32 with float64 thresholds, as scikit-learn's trees do.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

LEAF = -1  # scikit-learn's TREE_LEAF: children_left of a leaf


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``z`` (N, K)."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def sigmoid_pair(z: np.ndarray) -> np.ndarray:
    """``[1 - sigmoid(z), sigmoid(z)]`` (N, 2) for a binary model's raw output ``z`` (N,)."""
    p = 1.0 / (1.0 + np.exp(-z))
    return np.stack([1.0 - p, p], axis=1)


# ------------------------------------------------------------------------------------------ SVC


def svc_arrays(svc) -> dict[str, np.ndarray]:
    """A fitted ``sklearn.svm.SVC`` (rbf or linear kernel, numeric ``gamma``) as arrays:
    ``support_vectors`` (V, F), ``dual_coef`` (C-1, V), ``intercept`` (C(C-1)/2,), ``n_support``
    (C,), ``gamma`` ()."""
    if svc.kernel not in ("rbf", "linear"):
        raise ValueError(f"SVC kernel {svc.kernel!r}: only rbf and linear are exported")
    return {"support_vectors": np.asarray(svc.support_vectors_, np.float64),
            "dual_coef": np.asarray(svc.dual_coef_, np.float64),
            "intercept": np.asarray(svc.intercept_, np.float64),
            "n_support": np.asarray(svc.n_support_, np.int64),
            "gamma": np.asarray(float(svc.gamma) if svc.kernel == "rbf" else 0.0, np.float64)}


def svc_decision(arrays: dict[str, np.ndarray], X: np.ndarray, *, kernel: str) -> np.ndarray:
    """``SVC.decision_function`` (``decision_function_shape="ovr"``) of ``X`` (N, F): (N, C) for
    C > 2 classes (one-vs-one votes plus bounded confidences), (N, 1) for two."""
    sv, coef, intercept = arrays["support_vectors"], arrays["dual_coef"], arrays["intercept"]
    n_support = arrays["n_support"].astype(int)
    if kernel == "rbf":
        sq = (X * X).sum(1)[:, None] + (sv * sv).sum(1)[None, :] - 2.0 * X @ sv.T
        k = np.exp(-float(arrays["gamma"]) * np.maximum(sq, 0.0))
    else:
        k = X @ sv.T
    n_classes = len(n_support)
    start = np.concatenate([[0], np.cumsum(n_support)])
    ovo = np.empty((len(X), n_classes * (n_classes - 1) // 2))
    p = 0
    for i in range(n_classes):
        for j in range(i + 1, n_classes):
            si, sj = slice(start[i], start[i + 1]), slice(start[j], start[j + 1])
            ovo[:, p] = k[:, si] @ coef[j - 1, si] + k[:, sj] @ coef[i, sj] + intercept[p]
            p += 1
    if n_classes == 2:
        return ovo
    return _ovr_from_ovo(ovo, n_classes)


def _ovr_from_ovo(ovo: np.ndarray, n_classes: int) -> np.ndarray:
    """One-vs-rest scores from pairwise decisions, as scikit-learn's SVC builds them: votes per
    class plus the summed pairwise confidences squashed into (-1/3, 1/3) to break ties."""
    votes = np.zeros((len(ovo), n_classes))
    confidence = np.zeros((len(ovo), n_classes))
    p = 0
    for i in range(n_classes):
        for j in range(i + 1, n_classes):
            confidence[:, i] += ovo[:, p]
            confidence[:, j] -= ovo[:, p]
            votes[ovo[:, p] >= 0, i] += 1
            votes[ovo[:, p] < 0, j] += 1
            p += 1
    return votes + confidence / (3 * (np.abs(confidence) + 1))


# ---------------------------------------------------------------------------------------- trees


def _flatten_trees(trees: Sequence, values: Sequence[np.ndarray]) -> dict[str, np.ndarray]:
    """The trees' ``tree_`` structures as one node table with global child indices: ``roots``
    (T,), ``left``/``right``/``feature`` (nodes,), ``threshold`` (nodes,), ``value`` (nodes, ...)."""
    roots, left, right, feature, threshold = [], [], [], [], []
    offset = 0
    for t in trees:
        n = t.node_count
        roots.append(offset)
        for out, child in ((left, t.children_left), (right, t.children_right)):
            child = np.asarray(child, np.int64)
            out.append(np.where(child == LEAF, LEAF, child + offset))
        feature.append(np.asarray(t.feature, np.int64))
        threshold.append(np.asarray(t.threshold, np.float64))
        offset += n
    return {"roots": np.asarray(roots, np.int64), "left": np.concatenate(left), "right": np.concatenate(right),
            "feature": np.concatenate(feature), "threshold": np.concatenate(threshold),
            "value": np.concatenate([np.asarray(v, np.float64) for v in values])}


def leaves(arrays: dict[str, np.ndarray], X: np.ndarray, roots: np.ndarray) -> np.ndarray:
    """The leaf each row of ``X`` (N, F) reaches in each tree rooted at ``roots`` (any shape R):
    node indices (N, *R)."""
    x32 = np.asarray(X, np.float32)
    left, right, feature, threshold = arrays["left"], arrays["right"], arrays["feature"], arrays["threshold"]
    node = np.broadcast_to(roots.reshape(-1), (len(X), roots.size)).copy()
    rows = np.arange(len(X))[:, None]
    while True:
        inner = left[node] != LEAF
        if not inner.any():
            break
        f = np.where(inner, feature[node], 0)
        go_left = x32[rows, f] <= threshold[node]
        node = np.where(inner, np.where(go_left, left[node], right[node]), node)
    return node.reshape((len(X),) + roots.shape)


def forest_arrays(forest) -> dict[str, np.ndarray]:
    """A fitted ``RandomForestClassifier`` as a node table; ``value`` (nodes, C) holds each
    leaf's class fractions."""
    values = []
    for est in forest.estimators_:
        v = np.asarray(est.tree_.value[:, 0, :], np.float64)
        total = v.sum(axis=1, keepdims=True)
        values.append(v / np.where(total == 0, 1.0, total))
    return _flatten_trees([est.tree_ for est in forest.estimators_], values)


def forest_proba(arrays: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """``RandomForestClassifier.predict_proba`` of ``X``: the mean of the trees' leaf fractions (N, C)."""
    leaf = leaves(arrays, X, arrays["roots"])  # (N, T)
    out = np.zeros((len(X), arrays["value"].shape[1]))
    for t in range(leaf.shape[1]):
        out += arrays["value"][leaf[:, t]]
    return out / leaf.shape[1]


def boosting_arrays(gb) -> dict[str, np.ndarray]:
    """A fitted ``GradientBoostingClassifier`` with ``init="zero"`` as a node table: ``roots``
    (stages, K) (K = 1 for two classes, else C), ``value`` (nodes,) the leaves' raw updates,
    ``learning_rate`` ()."""
    if gb.init != "zero":
        raise ValueError("only GradientBoostingClassifier(init='zero') is exported (its start needs no estimator)")
    stages, k = gb.estimators_.shape
    trees = [gb.estimators_[i, j].tree_ for i in range(stages) for j in range(k)]
    out = _flatten_trees(trees, [np.asarray(t.value[:, 0, 0], np.float64) for t in trees])
    out["roots"] = out["roots"].reshape(stages, k)
    out["learning_rate"] = np.asarray(float(gb.learning_rate), np.float64)
    return out


def boosting_proba(arrays: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """``GradientBoostingClassifier.predict_proba`` of ``X`` (N, C): stages added in order from
    zero, then a sigmoid (two classes) or a softmax."""
    leaf = leaves(arrays, X, arrays["roots"])  # (N, stages, K)
    lr = float(arrays["learning_rate"])
    raw = np.zeros((len(X), leaf.shape[2]))
    for stage in range(leaf.shape[1]):
        for k in range(leaf.shape[2]):
            raw[:, k] += lr * arrays["value"][leaf[:, stage, k]]
    return sigmoid_pair(raw[:, 0]) if raw.shape[1] == 1 else softmax(raw)


# ----------------------------------------------------------------------------------- logistic


def logistic_arrays(model) -> dict[str, np.ndarray]:
    """A fitted ``LogisticRegression``: ``coef`` (K, F) (K = 1 for two classes), ``intercept`` (K,)."""
    return {"coef": np.asarray(model.coef_, np.float64), "intercept": np.asarray(model.intercept_, np.float64)}


def logistic_proba(arrays: dict[str, np.ndarray], X: np.ndarray) -> np.ndarray:
    """``LogisticRegression.predict_proba`` of ``X`` (N, C): softmax, or a sigmoid for two classes."""
    z = X @ arrays["coef"].T + arrays["intercept"]
    return sigmoid_pair(z[:, 0]) if z.shape[1] == 1 else softmax(z)
