"""Drawing on the live view: face boxes (held through short gaps in detection), the smoothed
group label ("uncertain" below a confidence), a bar per class, a status line, and the visual
stream's spatial attention as a heat map."""
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


UNCERTAIN = "uncertain"


def shown_label(probs: np.ndarray, class_names: Sequence[str], min_confidence: float) -> str:
    """The label a viewer sees for smoothed ``probs`` (C,): the top class, or :data:`UNCERTAIN`
    when its probability is below ``min_confidence``."""
    top = int(np.argmax(probs))
    return class_names[top] if float(probs[top]) >= min_confidence else UNCERTAIN


class FaceHold:
    """Face boxes on screen. A box stays for ``hold`` frames after the frame it was detected in,
    so a short gap in detection (a keyframe or a window that found no face) does not make it
    flicker, and a face that left disappears ``hold`` frames later; newer detections replace
    older ones."""

    def __init__(self, hold: int) -> None:
        if hold < 0:
            raise ValueError(f"face hold must be >= 0 frames, got {hold}")
        self.hold = int(hold)
        self._boxes: list = []
        self._seen: int | None = None    # source frame index the boxes were detected in

    def update(self, boxes: Sequence[Sequence[float]], detected_at: int | None) -> None:
        """A window's result: the ``boxes`` of its latest frame with faces, source frame
        ``detected_at`` (``None``, no boxes: the window found no face)."""
        if boxes and detected_at is not None and (self._seen is None or detected_at >= self._seen):
            self._boxes, self._seen = [list(b) for b in boxes], int(detected_at)

    def boxes(self, frame: int) -> list:
        """The boxes to draw on source frame ``frame``."""
        if self._seen is None or not 0 <= frame - self._seen <= self.hold:
            return []
        return self._boxes


def attention_overlay(image: np.ndarray, weights: np.ndarray, box: Sequence[float], *,
                      alpha: float = 0.45) -> np.ndarray:
    """``image`` (uint8 RGB (H, W, 3)) with a heat map of attention ``weights`` (H', W') in [0, 1]
    blended over ``box`` ((x0, y0, x1, y1) as fractions of the width and height: the part of the
    frame the stream saw); blue is low, red high."""
    h, w = image.shape[:2]
    x0, y0 = int(round(box[0] * w)), int(round(box[1] * h))
    x1, y1 = max(x0 + 1, int(round(box[2] * w))), max(y0 + 1, int(round(box[3] * h)))
    heat = cv2.resize(np.clip(np.asarray(weights, np.float32), 0, 1), (x1 - x0, y1 - y0),
                      interpolation=cv2.INTER_LINEAR)
    colour = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]  # BGR -> RGB
    out = image.copy()
    region = out[y0:y1, x0:x1]
    out[y0:y1, x0:x1] = cv2.addWeighted(region, 1.0 - alpha, colour[:region.shape[0], :region.shape[1]], alpha, 0)
    return out
