"""Classification metrics for any number of classes (numpy only) and a confusion-matrix image.

Conventions: labels are integer class indices ``0..C-1``; the confusion matrix has rows = true
class, columns = predicted class. A class that is never predicted has precision 0 (not NaN), a
class with no samples has recall 0, and F1 is 0 whenever precision + recall is 0. Macro averages
are taken over all ``C`` classes.
"""
from __future__ import annotations

import os
from typing import Sequence

import cv2
import numpy as np

from media.storage import atomic_write_bytes


def confusion_matrix(y_true: Sequence[int] | np.ndarray, y_pred: Sequence[int] | np.ndarray,
                     num_classes: int) -> np.ndarray:
    """(C, C) int64 counts; ``cm[t, p]`` = number of samples of true class ``t`` predicted as ``p``."""
    t = _as_labels(y_true, "y_true", num_classes)
    p = _as_labels(y_pred, "y_pred", num_classes)
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size}")
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


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
    num_classes = len(class_names)
    cm = confusion_matrix(y_true, y_pred, num_classes)
    total = int(cm.sum())
    if total == 0:
        raise ValueError("classification_report needs at least one sample")
    tp = np.diag(cm).astype(np.float64)
    predicted = cm.sum(axis=0).astype(np.float64)
    support = cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return {
        "num_samples": total,
        "accuracy": float(tp.sum() / total),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "per_class": {
            name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                   "support": int(support[i])}
            for i, name in enumerate(class_names)
        },
        "class_names": class_names,
        "confusion_matrix": cm.tolist(),
    }


def format_report(report: dict) -> str:
    """A plain-text table of a :func:`classification_report`: one row per class, then the totals."""
    names = list(report["per_class"])
    width = max([len("macro avg")] + [len(n) for n in names])
    lines = [f"{'class':<{width}}  precision  recall     f1  support"]
    for name in names:
        r = report["per_class"][name]
        lines.append(f"{name:<{width}}  {r['precision']:9.3f}  {r['recall']:6.3f}  {r['f1']:5.3f}  {r['support']:7d}")
    lines.append(f"{'macro avg':<{width}}  {report['macro_precision']:9.3f}  {report['macro_recall']:6.3f}  "
                 f"{report['macro_f1']:5.3f}  {report['num_samples']:7d}")
    lines.append(f"accuracy {report['accuracy']:.4f}  macro F1 {report['macro_f1']:.4f}  "
                 f"({report['num_samples']} samples)")
    return "\n".join(lines)


_FONT = cv2.FONT_HERSHEY_SIMPLEX
_SCALE = 0.45
_THICK = 1


def render_confusion_matrix(cm: np.ndarray | Sequence[Sequence[int]], class_names: Sequence[str],
                            title: str | None = None) -> np.ndarray:
    """Draw a confusion matrix as an RGB image ``(H, W, 3)`` uint8.

    Each cell shows the count and its share of the true-class row; the shading (white -> dark
    blue) is the row-normalised value, so per-class recall reads at a glance even when classes are
    imbalanced. Rows are true classes (labelled left), columns predicted classes (labelled on top,
    written vertically).
    """
    cm = np.asarray(cm, dtype=np.int64)
    names = [str(c) for c in class_names]
    c = len(names)
    if cm.shape != (c, c):
        raise ValueError(f"confusion matrix shape {cm.shape} does not match {c} class names")
    row_sum = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, row_sum, out=np.zeros(cm.shape, dtype=np.float64), where=row_sum > 0)

    def text_size(s: str) -> tuple[int, int]:
        (w, h), base = cv2.getTextSize(s, _FONT, _SCALE, _THICK)
        return w, h + base

    count_w = max(text_size(str(int(v)))[0] for v in cm.ravel()) if cm.size else 0
    cell = max(52, count_w + 14)
    label_w = max(text_size(n)[0] for n in names)
    line_h = text_size("Ag")[1]
    pad = 8
    left = pad + line_h + pad + label_w + pad  # axis title "true" (vertical) + row labels
    top = pad + (line_h + pad if title else 0) + line_h + pad + label_w + pad  # title + "predicted" + column labels
    width = left + c * cell + pad
    height = top + c * cell + pad
    img = np.full((height, width, 3), 255, dtype=np.uint8)
    black = (0, 0, 0)

    y = pad
    if title:
        tw = text_size(title)[0]
        cv2.putText(img, title, (max(pad, (width - tw) // 2), y + line_h - 3), _FONT, _SCALE, black, _THICK, cv2.LINE_AA)
        y += line_h + pad
    pw = text_size("predicted")[0]
    cv2.putText(img, "predicted", (left + (c * cell - pw) // 2, y + line_h - 3), _FONT, _SCALE, black, _THICK,
                cv2.LINE_AA)
    y += line_h + pad
    for j, name in enumerate(names):  # column labels, vertical (read bottom to top)
        strip = _text_strip(name, label_w, line_h)
        rotated = cv2.rotate(strip, cv2.ROTATE_90_COUNTERCLOCKWISE)  # (label_w, line_h)
        x0 = left + j * cell + (cell - line_h) // 2
        img[y:y + label_w, x0:x0 + line_h] = np.minimum(img[y:y + label_w, x0:x0 + line_h], rotated)
    grid_y = top
    strip = _text_strip("true", c * cell, line_h, center=True)
    img[grid_y:grid_y + c * cell, pad:pad + line_h] = cv2.rotate(strip, cv2.ROTATE_90_COUNTERCLOCKWISE)
    for i, name in enumerate(names):  # row labels, right-aligned
        tw, _ = text_size(name)
        yy = grid_y + i * cell + (cell + line_h) // 2 - 3
        cv2.putText(img, name, (left - pad - tw, yy), _FONT, _SCALE, black, _THICK, cv2.LINE_AA)

    light = np.array([255, 255, 255], dtype=np.float64)
    dark = np.array([8, 48, 107], dtype=np.float64)  # RGB dark blue
    for i in range(c):
        for j in range(c):
            v = float(norm[i, j])
            color = tuple(int(round(x)) for x in light + (dark - light) * v)
            x0, y0 = left + j * cell, grid_y + i * cell
            cv2.rectangle(img, (x0, y0), (x0 + cell - 1, y0 + cell - 1), color, thickness=-1)
            cv2.rectangle(img, (x0, y0), (x0 + cell - 1, y0 + cell - 1), (200, 200, 200), thickness=1)
            fg = (255, 255, 255) if v > 0.5 else (0, 0, 0)
            for k, s in enumerate((str(int(cm[i, j])), f"{100 * v:.0f}%")):
                tw, _ = text_size(s)
                yy = y0 + cell // 2 + (k * line_h) - 2
                cv2.putText(img, s, (x0 + (cell - tw) // 2, yy), _FONT, _SCALE, fg, _THICK, cv2.LINE_AA)
    return img


def _text_strip(text: str, width: int, height: int, center: bool = False) -> np.ndarray:
    """White (height, width, 3) strip with black ``text`` (left-aligned or centred)."""
    strip = np.full((height, width, 3), 255, dtype=np.uint8)
    (tw, th), base = cv2.getTextSize(text, _FONT, _SCALE, _THICK)
    x = (width - tw) // 2 if center else 0  # left end lands next to the grid after a CCW turn
    cv2.putText(strip, text, (max(0, x), height - base - 1), _FONT, _SCALE, (0, 0, 0), _THICK, cv2.LINE_AA)
    return strip


def save_png(path: str | os.PathLike, image: np.ndarray) -> None:
    """Write an RGB ``(H, W, 3)`` or grayscale ``(H, W)`` uint8 image as PNG, atomically."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"{path}: expected a uint8 (H, W) or (H, W, 3) image, got {image.dtype} {image.shape}")
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if image.ndim == 3 else image
    ok, buf = cv2.imencode(".png", bgr)
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode the image as PNG")
    atomic_write_bytes(path, buf.tobytes())


def _as_labels(values, what: str, num_classes: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ValueError(f"{what} must hold integer class indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(f"{what} has labels outside 0..{num_classes - 1}: min {arr.min()}, max {arr.max()}")
    return arr
