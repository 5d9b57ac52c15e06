"""A PNG strip of a clip's chosen keyframes with their time, score and top class, for a person
to look at."""
from __future__ import annotations

import os
from typing import Sequence

import cv2
import numpy as np

from core.storage import atomic_write_bytes
from keyframes.selection import Selection


def render_contact_sheet(images: Sequence[np.ndarray], selection: Selection,
                         class_names: Sequence[str] = (), *, columns: int = 8, thumb_height: int = 96) -> np.ndarray:
    """Tile ``images`` ((H, W, 3) uint8 RGB, one per keyframe) with a caption under each:
    ``t=1.23s s=0.91 Positive``. Returns an (H', W', 3) uint8 RGB image."""
    if len(images) != len(selection.keyframes):
        raise ValueError(f"{len(images)} images for {len(selection.keyframes)} keyframes; need one per keyframe")
    thumbs = []
    for img, k in zip(images, selection.keyframes):
        h, w = img.shape[:2]
        tw = max(1, round(w * thumb_height / h))
        t = cv2.resize(img, (tw, thumb_height), interpolation=cv2.INTER_AREA)
        cap = np.full((18, tw, 3), 255, np.uint8)
        top = class_names[int(np.argmax(k.probs))] if class_names else str(int(np.argmax(k.probs)))
        cv2.putText(cap, f"t={k.time:.2f}s s={k.score:.2f} {top}", (2, 13), cv2.FONT_HERSHEY_SIMPLEX,
                    0.35, (0, 0, 0), 1, cv2.LINE_AA)
        thumbs.append(np.concatenate([t, cap], axis=0))
    if not thumbs:
        raise ValueError("no keyframes to draw")
    tw = max(t.shape[1] for t in thumbs)
    th = thumbs[0].shape[0]
    rows = (len(thumbs) + columns - 1) // columns
    sheet = np.full((rows * (th + 4), min(columns, len(thumbs)) * (tw + 4), 3), 255, np.uint8)
    for i, t in enumerate(thumbs):
        r, c = divmod(i, columns)
        sheet[r * (th + 4):r * (th + 4) + th, c * (tw + 4):c * (tw + 4) + t.shape[1]] = t
    return sheet


def write_contact_sheet(path: str | os.PathLike, images: Sequence[np.ndarray], selection: Selection,
                        class_names: Sequence[str] = ()) -> None:
    """Render and write the contact sheet as a PNG, atomically."""
    sheet = render_contact_sheet(images, selection, class_names)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"{path}: PNG encoding failed")
    atomic_write_bytes(path, buf.tobytes())
