"""Drawing on the live view: face boxes, the smoothed group label, a bar per class and a status
line."""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np


_CLASS_COLOURS = ((46, 204, 113), (241, 196, 15), (231, 76, 60), (52, 152, 219), (155, 89, 182),
                  (230, 126, 34), (26, 188, 156), (236, 240, 241))


def annotate(image: np.ndarray, *, boxes: Sequence[Sequence[float]], class_names: Sequence[str],
             probs: np.ndarray | None, label: str | None, status: str) -> np.ndarray:
    """A copy of ``image`` (uint8 RGB (H, W, 3)) with face ``boxes`` ([x0, y0, x1, y1] px),
    the ``label``, a bar per class for ``probs`` (C,) and a ``status`` line at the bottom."""
    out = np.ascontiguousarray(image.copy())
    h, w = out.shape[:2]
    scale = max(0.3, min(h, w) / 500.0)
    thick = max(1, int(round(scale * 2)))
    for b in boxes:
        x0, y0, x1, y1 = (int(round(v)) for v in b)
        cv2.rectangle(out, (x0, y0), (x1, y1), (255, 255, 0), thick)
    font = cv2.FONT_HERSHEY_SIMPLEX
    line = int(round(22 * scale)) + 2
    bar_w, bar_h = max(10, w // 5), max(3, int(round(12 * scale)))
    n_bars = len(class_names) if probs is not None else 0
    # a darkened panel keeps the text readable on any background
    label_h = int(round(30 * scale)) + 4 if label is not None else 0
    panel_h = min(h, label_h + n_bars * (bar_h + 4) + 8)
    panel_w = min(w, 12 + bar_w + int(round(130 * scale)))
    if panel_h > 8:
        out[:panel_h, :panel_w] = (out[:panel_h, :panel_w] * 0.45).astype(np.uint8)
    out[h - line:, :] = (out[h - line:, :] * 0.45).astype(np.uint8)
    if label is not None:
        cv2.putText(out, label, (4, label_h - 6), font, scale * 1.1, (255, 255, 255), thick, cv2.LINE_AA)
    y = label_h + 4
    if probs is not None:
        y += bar_h
        for i, (name, p) in enumerate(zip(class_names, probs)):
            colour = _CLASS_COLOURS[i % len(_CLASS_COLOURS)]
            cv2.rectangle(out, (4, y - bar_h), (4 + bar_w, y), (90, 90, 90), -1)
            cv2.rectangle(out, (4, y - bar_h), (4 + int(round(bar_w * float(p))), y), colour, -1)
            cv2.putText(out, f"{name} {float(p):.2f}", (8 + bar_w, y), font, scale * 0.6, (255, 255, 255), 1,
                        cv2.LINE_AA)
            y += bar_h + 4
    cv2.putText(out, status, (4, h - 5), font, scale * 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def even_size(image: np.ndarray) -> np.ndarray:
    """Crop one pixel row/column where needed: H.264 wants even sizes."""
    h, w = image.shape[:2]
    return image[: h - h % 2, : w - w % 2]
