"""Classification metrics for any number of classes (scikit-learn) and a confusion-matrix image
(the matplotlib figure of :mod:`training.plots` as an RGB array, for TensorBoard).

Conventions: labels are integer class indices ``0..C-1``; the confusion matrix has rows = true
class, columns = predicted class. A class that is never predicted has precision 0 (not NaN), a
class with no samples has recall 0, and F1 is 0 whenever precision + recall is 0 (scikit-learn's
``zero_division=0``). Macro averages are taken over all ``C`` classes, present or not.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn import metrics as skm

from training.plots import confusion_matrix_figure, figure_to_rgb


def confusion_matrix(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                     num_classes: int) -> np.ndarray:
    """(C, C) int64 counts; ``cm[t, p]`` = number of samples of true class ``t`` predicted as ``p``."""
    t, p = check_label_pair(y_true, y_pred, num_classes)
    return skm.confusion_matrix(t, p, labels=np.arange(num_classes)).astype(np.int64)


def classification_report(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                          class_names: Sequence[str]) -> dict:
    """Accuracy, macro precision/recall/F1 and per-class metrics.

    Returns ``{"num_samples", "accuracy", "macro_precision", "macro_recall", "macro_f1",
    "per_class": {name: {"precision", "recall", "f1", "support"}}, "class_names",
    "confusion_matrix": [[int]]}`` (plain Python types, JSON-ready).
    """
    class_names = [str(c) for c in class_names]
    if len(set(class_names)) != len(class_names):
        raise ValueError(f"class_names must be unique, got {class_names}")
    t, p = check_label_pair(y_true, y_pred, len(class_names))
    if t.size == 0:
        raise ValueError("classification_report needs at least one sample")
    labels = np.arange(len(class_names))
    # keys are the class indices as strings: a class named "accuracy" or "macro avg" cannot collide
    rep = skm.classification_report(t, p, labels=labels, output_dict=True, zero_division=0)
    macro = rep["macro avg"]
    return {
        "num_samples": int(t.size),
        "accuracy": float(skm.accuracy_score(t, p)),
        "macro_precision": float(macro["precision"]),
        "macro_recall": float(macro["recall"]),
        "macro_f1": float(macro["f1-score"]),
        "per_class": {
            name: {"precision": float(rep[str(i)]["precision"]), "recall": float(rep[str(i)]["recall"]),
                   "f1": float(rep[str(i)]["f1-score"]), "support": int(rep[str(i)]["support"])}
            for i, name in enumerate(class_names)
        },
        "class_names": class_names,
        "confusion_matrix": skm.confusion_matrix(t, p, labels=labels).tolist(),
    }


def format_report(report: dict, digits: int = 3) -> str:
    """scikit-learn's text table of a :func:`classification_report` (one row per class, accuracy,
    macro and weighted averages), rebuilt from its confusion matrix: every number in the table
    depends on the predictions only through that matrix."""
    cm = np.asarray(report["confusion_matrix"], dtype=np.int64)
    names = list(report["per_class"])
    c = len(names)
    if cm.shape != (c, c):
        raise ValueError(f"report has a {cm.shape} confusion matrix for {c} classes")
    cells = np.arange(c * c)
    t = np.repeat(cells // c, cm.ravel())
    p = np.repeat(cells % c, cm.ravel())
    return skm.classification_report(t, p, labels=np.arange(c), target_names=names, digits=digits, zero_division=0)


def render_confusion_matrix(cm: np.ndarray | Sequence[Sequence[int]], class_names: Sequence[str],
                            title: str | None = None) -> np.ndarray:
    """The figure of :func:`training.plots.confusion_matrix_figure` (counts and row percentages,
    shaded by row share) as an RGB image ``(H, W, 3)`` uint8, e.g. for TensorBoard."""
    return figure_to_rgb(confusion_matrix_figure(cm, class_names, title=title))


def check_labels(values: Sequence[int] | np.ndarray, what: str, num_classes: int) -> np.ndarray:
    """``values`` as a 1-D int64 array of class indices; ValueError naming ``what`` if a value is
    not a whole number or lies outside ``0..num_classes-1``."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    arr = np.asarray(values).reshape(-1)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.number) or not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ValueError(f"{what} must hold integer class indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(f"{what} has labels outside 0..{num_classes - 1}: min {arr.min()}, max {arr.max()}")
    return arr


def check_label_pair(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                     num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Both label arrays checked by :func:`check_labels`, and of the same length.

    scikit-learn would silently drop labels outside ``labels=``; this refuses them instead."""
    t = check_labels(y_true, "y_true", num_classes)
    p = check_labels(y_pred, "y_pred", num_classes)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size}")
    return t, p
