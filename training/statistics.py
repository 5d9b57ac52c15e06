"""Uncertainty and comparison statistics for classifiers scored on the same clips.

Inputs are plain NumPy arrays: ``labels`` (N,) integer class indices ``0..C-1``, ``predictions``
(N,) predicted class indices, ``probabilities`` (N, C) per-class scores (softmax outputs or any
score that ranks clips; rows need not sum to 1). Outputs are plain dicts of Python floats, ints,
strings and lists, JSON-ready (no NaN: an undefined value is ``None`` and the reason is given).

* :func:`bootstrap_accuracy` and :func:`bootstrap_accuracy_difference`: point estimate and
  percentile bootstrap interval, clips resampled with replacement (paired for a difference).
* :func:`roc_auc_one_vs_rest`, :func:`roc_curves`, :func:`pr_curves`: one-vs-rest per class.
* :func:`mcnemar_test`: do two classifiers err on the same clips at different rates?
* :func:`score_classifier`: one model on one split, everything above but McNemar in one dict.
* :func:`bootstrap_interval`: the percentile bootstrap of any statistic of the clips (the
  calibration scores of :mod:`training.calibration` use it).

The figures of these dicts are in :mod:`training.plots`.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy import stats
from sklearn import metrics as skm

from training.metrics import check_labels, classification_report

DRAWS = 1000
CONFIDENCE = 0.95
MCNEMAR_EXACT_BELOW = 25  # discordant pairs; below it the chi-square approximation is poor
_BOOTSTRAP_CHUNK = 1 << 22  # resampled indices held at once (32 MiB of int64)


def bootstrap_accuracy(labels: np.ndarray, predictions: np.ndarray, *, draws: int = DRAWS,
                       confidence: float = CONFIDENCE, seed: int = 0) -> dict:
    """Accuracy with a percentile bootstrap interval.

    Each of ``draws`` resamples draws N clips with replacement (NumPy ``default_rng(seed)``) and
    takes their accuracy; the interval is the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2``
    quantiles of those accuracies. It describes the sampling noise of the N clips only (not of
    training). Returns ``{"accuracy", "interval": [lo, hi], "confidence", "draws", "seed",
    "num_samples"}``.
    """
    c = _num_classes_for(labels, predictions)
    t = check_labels(labels, "labels", c)
    p = check_labels(predictions, "predictions", c)
    _same_length(t, p, "predictions")
    point, lo, hi = _bootstrap_mean((t == p).astype(np.float64), draws=draws, confidence=confidence, seed=seed)
    return {"accuracy": point, "interval": [lo, hi], "confidence": confidence, "draws": draws, "seed": seed,
            "num_samples": int(t.size)}


def bootstrap_accuracy_difference(labels: np.ndarray, predictions_a: np.ndarray, predictions_b: np.ndarray, *,
                                  draws: int = DRAWS, confidence: float = CONFIDENCE, seed: int = 0) -> dict:
    """Accuracy of A minus accuracy of B on the same clips, with a paired percentile bootstrap
    interval (each resample scores both classifiers on the same resampled clips, so the clips'
    shared difficulty cancels). E.g. A = the full model, B = the model without one stream: the
    accuracy that stream contributes. Returns ``{"difference", "interval": [lo, hi],
    "accuracy_a", "accuracy_b", "confidence", "draws", "seed", "num_samples"}``.
    """
    t, a, b = _paired(labels, predictions_a, predictions_b)
    per_clip = (t == a).astype(np.float64) - (t == b).astype(np.float64)
    point, lo, hi = _bootstrap_mean(per_clip, draws=draws, confidence=confidence, seed=seed)
    return {"difference": point, "interval": [lo, hi], "accuracy_a": float(np.mean(t == a)),
            "accuracy_b": float(np.mean(t == b)), "confidence": confidence, "draws": draws, "seed": seed,
            "num_samples": int(t.size)}


def _paired(labels: np.ndarray, predictions_a: np.ndarray,
            predictions_b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(labels, predictions_a, predictions_b)`` checked as class indices of one class count and
    of one length (two classifiers on the same clips)."""
    c = _num_classes_for(labels, predictions_a, predictions_b)
    t = check_labels(labels, "labels", c)
    a = check_labels(predictions_a, "predictions_a", c)
    b = check_labels(predictions_b, "predictions_b", c)
    _same_length(t, a, "predictions_a")
    _same_length(t, b, "predictions_b")
    return t, a, b


def _bootstrap_mean(values: np.ndarray, *, draws: int, confidence: float, seed: int) -> tuple[float, float, float]:
    """Mean of ``values`` (N,) and the percentile interval of the means of ``draws`` resamples."""
    values = np.asarray(values, dtype=np.float64)
    lo, hi = bootstrap_interval(lambda idx: values[idx].mean(axis=1), values.size, draws=draws,
                                confidence=confidence, seed=seed)
    return float(values.mean()), lo, hi


def bootstrap_interval(statistic: Callable[[np.ndarray], np.ndarray], n: int, *, draws: int = DRAWS,
                       confidence: float = CONFIDENCE, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval ``(lo, hi)`` of a statistic of N samples.

    ``statistic(indices)`` takes ``indices`` (K, N) int64, K resamples of N sample indices drawn
    with replacement, and returns the statistic of each resample (K,). The resamples are drawn
    from NumPy ``default_rng(seed)`` in chunks, so every statistic of this module (and of
    :mod:`training.calibration`) sees the same resamples for the same ``n``, ``draws`` and ``seed``.
    """
    if n == 0:
        raise ValueError("bootstrap needs at least one sample")
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    rng = np.random.default_rng(seed)
    values = np.empty(draws, dtype=np.float64)
    per_chunk = max(1, _BOOTSTRAP_CHUNK // n)
    for start in range(0, draws, per_chunk):
        stop = min(draws, start + per_chunk)
        values[start:stop] = statistic(rng.integers(0, n, size=(stop - start, n)))
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(values, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def mcnemar_test(labels: np.ndarray, predictions_a: np.ndarray, predictions_b: np.ndarray, *,
                 exact_below: int = MCNEMAR_EXACT_BELOW) -> dict:
    """McNemar's test of two classifiers on the same clips (H0: both err equally often).

    Only the discordant clips count: ``b`` = A right and B wrong, ``c`` = A wrong and B right.
    With ``b + c < exact_below`` the p-value is the exact two-sided binomial test of
    ``min(b, c)`` successes in ``b + c`` trials at 1/2 (``2 * P(X <= min(b, c))``, capped at 1);
    otherwise the chi-square statistic with continuity correction ``(|b - c| - 1)^2 / (b + c)``
    on 1 degree of freedom. No discordant clip gives p = 1. Returns ``{"p_value", "method":
    "exact binomial" | "chi-square with continuity correction", "statistic" (chi-square value,
    None for the exact test), "a_right_b_wrong": b, "a_wrong_b_right": c, "num_samples"}``.
    """
    t, a, b_ = _paired(labels, predictions_a, predictions_b)
    a_right, b_right = a == t, b_ == t
    b = int(np.sum(a_right & ~b_right))
    c = int(np.sum(~a_right & b_right))
    n = b + c
    statistic = None
    if n == 0:
        method, p = "exact binomial", 1.0
    elif n < exact_below:
        method = "exact binomial"
        p = float(stats.binomtest(min(b, c), n, 0.5, alternative="two-sided").pvalue)
    else:
        method = "chi-square with continuity correction"
        statistic = float((abs(b - c) - 1) ** 2 / n)
        p = float(stats.chi2.sf(statistic, df=1))
    return {"p_value": min(1.0, p), "method": method, "statistic": statistic, "a_right_b_wrong": b,
            "a_wrong_b_right": c, "num_samples": int(t.size)}


def roc_auc_one_vs_rest(labels: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str]) -> dict:
    """Per-class one-vs-rest ROC AUC and their unweighted mean over the classes that can be scored.

    A class is skipped when the labels hold no clip of it or only clips of it (one side of its
    one-vs-rest split is empty, so its AUC is undefined); it is listed in ``skipped`` with the
    reason and its AUC is ``None``. With every class present ``macro`` equals scikit-learn's
    ``roc_auc_score(..., multi_class="ovr", average="macro")``. Returns ``{"macro": float |
    None (no class scorable), "per_class": {name: float | None}, "skipped": {name: reason}}``.
    """
    t, probs, names = _check_scores(labels, probabilities, class_names)
    per_class: dict[str, float | None] = {}
    skipped: dict[str, str] = {}
    for k, name in enumerate(names):
        reason = _one_vs_rest_undefined(t, k)
        if reason:
            per_class[name] = None
            skipped[name] = reason
        else:
            per_class[name] = float(skm.roc_auc_score(t == k, probs[:, k]))
    scored = [v for v in per_class.values() if v is not None]
    return {"macro": float(np.mean(scored)) if scored else None, "per_class": per_class, "skipped": skipped}


def roc_curves(labels: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str]) -> dict:
    """One-vs-rest ROC curve of each class (for :func:`training.plots.roc_figure`).

    Returns ``{"class_names", "curves": {name: {"fpr": [...], "tpr": [...], "auc"}}, "skipped":
    {name: reason}}``; a skipped class (see :func:`roc_auc_one_vs_rest`) has no curve. The
    thresholds are left out (the first is +inf, not JSON).
    """
    t, probs, names = _check_scores(labels, probabilities, class_names)
    curves, skipped = {}, {}
    for k, name in enumerate(names):
        reason = _one_vs_rest_undefined(t, k)
        if reason:
            skipped[name] = reason
            continue
        fpr, tpr, _ = skm.roc_curve(t == k, probs[:, k])
        curves[name] = {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "auc": float(skm.auc(fpr, tpr))}
    return {"class_names": names, "curves": curves, "skipped": skipped}


def pr_curves(labels: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str]) -> dict:
    """One-vs-rest precision-recall curve of each class (for :func:`training.plots.pr_figure`).

    Returns ``{"class_names", "curves": {name: {"precision": [...], "recall": [...],
    "average_precision", "prevalence"}}, "skipped": {name: reason}}``; ``prevalence`` (the share
    of the class in ``labels``) is the precision of a random scorer. A class without any clip is
    skipped (recall undefined); a class holding every clip has a defined, flat curve.
    """
    t, probs, names = _check_scores(labels, probabilities, class_names)
    curves, skipped = {}, {}
    for k, name in enumerate(names):
        positives = t == k
        if not positives.any():
            skipped[name] = "no clip of this class"
            continue
        precision, recall, _ = skm.precision_recall_curve(positives, probs[:, k])
        curves[name] = {"precision": precision.tolist(), "recall": recall.tolist(),
                        "average_precision": float(skm.average_precision_score(positives, probs[:, k])),
                        "prevalence": float(positives.mean())}
    return {"class_names": names, "curves": curves, "skipped": skipped}


def score_classifier(labels: np.ndarray, probabilities: np.ndarray, class_names: Sequence[str], *,
                     draws: int = DRAWS, confidence: float = CONFIDENCE, seed: int = 0) -> dict:
    """One model on one split: predictions are ``probabilities.argmax(1)``.

    Returns ``{"num_samples", "accuracy", "interval": [lo, hi], "confidence", "draws", "seed",
    "macro_f1", "per_class": {name: {"precision", "recall", "f1", "support"}}, "roc_auc" (macro,
    float | None), "roc_auc_per_class", "roc_auc_skipped": {name: reason}, "confusion_matrix"}``
    (see :func:`bootstrap_accuracy`, :func:`training.metrics.classification_report`,
    :func:`roc_auc_one_vs_rest`).
    """
    t, probs, names = _check_scores(labels, probabilities, class_names)
    pred = probs.argmax(axis=1)
    boot = bootstrap_accuracy(t, pred, draws=draws, confidence=confidence, seed=seed)
    report = classification_report(t, pred, names)
    auc = roc_auc_one_vs_rest(t, probs, names)
    return {"num_samples": report["num_samples"], "accuracy": report["accuracy"], "interval": boot["interval"],
            "confidence": confidence, "draws": draws, "seed": seed, "macro_f1": report["macro_f1"],
            "per_class": report["per_class"], "roc_auc": auc["macro"], "roc_auc_per_class": auc["per_class"],
            "roc_auc_skipped": auc["skipped"], "confusion_matrix": report["confusion_matrix"]}


def _one_vs_rest_undefined(labels: np.ndarray, k: int) -> str | None:
    positives = int(np.sum(labels == k))
    if positives == 0:
        return "no clip of this class"
    if positives == labels.size:
        return "every clip is of this class"
    return None


def _check_scores(labels: np.ndarray, probabilities: np.ndarray,
                  class_names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    names = [str(c) for c in class_names]
    if len(set(names)) != len(names):
        raise ValueError(f"class_names must be unique, got {names}")
    probs = np.asarray(probabilities, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != len(names):
        raise ValueError(f"probabilities must be (N, {len(names)}) for classes {names}, got shape {probs.shape}")
    if not np.isfinite(probs).all():
        raise ValueError("probabilities hold NaN or inf")
    t = check_labels(labels, "labels", len(names))
    if t.size != probs.shape[0]:
        raise ValueError(f"labels has {t.size} entries but probabilities has {probs.shape[0]} rows")
    if t.size == 0:
        raise ValueError("no sample to score")
    return t, probs, names


def _num_classes_for(*arrays: np.ndarray) -> int:
    """Label arrays without class names: any non-negative class index is allowed."""
    return max(1, int(max((np.max(a) for a in map(np.asarray, arrays) if np.size(a)), default=0)) + 1)


def _same_length(labels: np.ndarray, other: np.ndarray, what: str) -> None:
    if labels.shape != other.shape:
        raise ValueError(f"labels has {labels.size} entries but {what} has {other.size}")
