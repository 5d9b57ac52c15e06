"""Synthetic FER2013-format face images: 48x48 grey close-ups of the cartoon faces
(:mod:`synthetic.faces`) showing the seven FER2013 expressions (:data:`synthetic.emotions.EXPRESSIONS`),
in the published CSV form or the image-folder form (see :mod:`media.layouts.fer2013`).

Same seed, same content: every image is drawn from its own generator seeded by
``(seed, split, index)``, the same in both forms.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core.storage import atomic_write_bytes, atomic_write_text
from media.layouts import SPLITS
from synthetic.emotions import EXPRESSIONS, canonical_emotion
from synthetic.faces import SKIN_TONES, draw_cartoon_face
from synthetic.output import balanced_labels, check_counts, claim_output_folder

FER_FORMS: tuple[str, ...] = ("csv", "folder")


def render_fer_face(emotion: str, rng: np.random.Generator, *, cue_jitter: float = 0.2) -> np.ndarray:
    """One FER2013-style image: a (48, 48) uint8 grey close-up of a cartoon face showing
    ``emotion`` (any name :func:`synthetic.emotions.canonical_emotion` knows), with a random skin
    tone, looks, background grey, position, tilt (+-8 degrees) and expression strength (0.8-1)."""
    expression = EXPRESSIONS[canonical_emotion(emotion)].scaled(float(rng.uniform(0.8, 1.0)))
    j = rng.uniform(-cue_jitter, cue_jitter, 3) * 0.4
    side = 96
    canvas = np.empty((side, side, 3), np.uint8)
    level = rng.uniform(40, 210)
    gradient = (np.linspace(-1, 1, side)[:, None] * rng.uniform(-25, 25)
                + np.linspace(-1, 1, side)[None, :] * rng.uniform(-25, 25))
    canvas[...] = np.clip(level + gradient, 0, 255).astype(np.uint8)[..., None]
    size = float(rng.uniform(74, 86))
    center = (side / 2 + rng.uniform(-4, 4), side / 2 + 4 + rng.uniform(-4, 4))
    draw_cartoon_face(canvas, center, size, float(np.clip(expression.mouth + j[0], -1, 1)),
                      skin=SKIN_TONES[int(rng.integers(0, len(SKIN_TONES)))], rng=rng,
                      mouth_open=expression.mouth_open, eye_open=float(np.clip(expression.eye_open + j[1], 0.3, 1.8)),
                      brow_tilt=float(np.clip(expression.brow_tilt + j[2], -1, 1)), brow_raise=expression.brow_raise,
                      brow_weight=2.0)
    angle = float(rng.uniform(-8, 8))
    rotation = cv2.getRotationMatrix2D((side / 2, side / 2), angle, 1.0)
    canvas = cv2.warpAffine(canvas, rotation, (side, side), borderMode=cv2.BORDER_REPLICATE)
    grey = cv2.cvtColor(canvas, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (48, 48), interpolation=cv2.INTER_AREA)


def _write_png(path: Path, image: np.ndarray) -> None:
    ok, png = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("cv2.imencode failed to encode a PNG")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, png.tobytes())


def generate_fer2013(
    out_dir: str | os.PathLike,
    *,
    form: str,
    n_train: int,
    n_val: int,
    n_test: int = 0,
    seed: int = 0,
    cue_jitter: float = 0.2,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write a synthetic FER2013 dataset (:func:`render_fer_face`, the seven FER2013 classes,
    labels balanced and shuffled within each split) under ``out_dir`` in one published form:

    * ``form='csv'``: ``fer2013.csv`` with the header ``emotion,pixels,Usage`` (Training,
      PublicTest, PrivateTest rows for train, val, test);
    * ``form='folder'``: ``train/``, ``val/``, ``test/`` (splits with images only) holding
      ``<emotion>/<NNNNN>.png`` (lossless), NNNNN the image's row position in its split.

    The same seed gives the same images and labels in both forms, which
    :func:`media.layouts.fer2013.read_fer2013` reads identically. Returns counts per split and class.
    """
    from media.layouts.fer2013 import CSV_NAME, FER2013_CLASSES, FER2013_FOLDERS, FER2013_USAGE

    if form not in FER_FORMS:
        raise ValueError(f"FER2013 form must be one of {FER_FORMS}, got {form!r}")
    counts = {"train": n_train, "val": n_val, "test": n_test}
    check_counts({f"n_{name}": value for name, value in counts.items()})
    out = Path(out_dir)
    claim_output_folder(out, [out / CSV_NAME] + [out / s for s in FER2013_USAGE], overwrite)
    rows = ["emotion,pixels,Usage"]
    summary: dict[str, dict[str, int]] = {}
    for split, n in counts.items():
        labels = balanced_labels(int(n), len(FER2013_CLASSES), seed, 300 + SPLITS.index(split))
        summary[split] = {c: labels.count(i) for i, c in enumerate(FER2013_CLASSES)}
        for i, label in enumerate(labels):
            image = render_fer_face(FER2013_CLASSES[label],
                                    np.random.default_rng([int(seed), 20 + SPLITS.index(split), i]),
                                    cue_jitter=cue_jitter)
            if form == "csv":
                rows.append(f"{label},{' '.join(str(int(v)) for v in image.reshape(-1))},{FER2013_USAGE[split]}")
            else:
                _write_png(out / split / FER2013_FOLDERS[label] / f"{i:05d}.png", image)
    if form == "csv":
        atomic_write_text(out / CSV_NAME, "\n".join(rows) + "\n")
    return {"out_dir": str(out), "form": form, "classes": list(FER2013_CLASSES), "images": summary}
