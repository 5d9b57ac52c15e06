"""The warm-up window live mode runs before the first real one: frames and a tone it makes itself.

The first call of each stage pays a one-off cost (librosa's filters, MTCNN's three networks, the
streams' and the scorer's first batches). :func:`warm_up_window` runs the whole pipeline once on
a window of :func:`face_frame` frames and a :func:`tone`, so the first real window does not pay
it. The frame holds plain faces drawn with OpenCV, which MTCNN finds, so its later stages (the
refinement and output networks, that run only on candidate faces) and the face stream run too.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Protocol

import cv2
import numpy as np

from live_mode.incremental import ArrivalWork
from media.capture import LiveFrame
from media.reuse import ReuseStore


class WarmUpTarget(Protocol):
    """What the warm-up needs of a live runner (:class:`live_mode.runner.LiveRunner` has it all):
    written here so that this module does not import the runner, which imports it."""

    settings: Any
    size_for: Callable[[int, int], tuple[int, int]]
    audio_rate: int
    predictor: Any
    streams: Any

    def predict_window(self, frames: list[LiveFrame], audio: np.ndarray, **kwargs: Any) -> Any: ...

SKIN = (224, 182, 150)
HAIR = (60, 40, 30)
FEATURE = (40, 30, 30)
WHITE = (250, 250, 250)


def draw_face(image: np.ndarray, centre: tuple[int, int], height: int) -> None:
    """Draw, in place on ``image`` ((H, W, 3) uint8 RGB), a plain frontal face ``height`` pixels
    tall (``0.78 * height`` wide) centred at ``centre`` (x, y) pixels: hair, a skin oval, eyes
    with pupils, brows, a nose and a smiling mouth, over a neck and shoulders."""
    x, y = centre
    h = max(int(height), 8)
    half_w, half_h = int(0.39 * h), h // 2

    def at(dx: float, dy: float) -> tuple[int, int]:
        return int(round(x + dx * h)), int(round(y + dy * h))

    def size(a: float, b: float) -> tuple[int, int]:
        return max(int(round(a * h)), 1), max(int(round(b * h)), 1)

    cv2.ellipse(image, at(0, 1.15), size(0.75, 0.55), 0, 180, 360, (70, 90, 140), -1)    # shoulders
    cv2.rectangle(image, at(-0.12, 0.35), at(0.12, 0.7), SKIN, -1)                        # neck
    cv2.ellipse(image, at(0, -0.06), (half_w + h // 20, half_h + h // 20), 0, 180, 360, HAIR, -1)
    cv2.ellipse(image, (x, y), (half_w, half_h), 0, 0, 360, SKIN, -1)
    for side in (-1, 1):
        eye = at(side * 0.16, -0.08)
        cv2.ellipse(image, eye, size(0.085, 0.045), 0, 0, 360, WHITE, -1)
        cv2.circle(image, eye, max(h // 30, 1), FEATURE, -1)
        cv2.line(image, at(side * 0.25, -0.17), at(side * 0.08, -0.18), FEATURE, max(h // 40, 1))
    cv2.line(image, at(0, -0.04), at(0, 0.1), (190, 140, 115), max(h // 50, 1))            # nose
    cv2.ellipse(image, at(0, 0.18), size(0.14, 0.06), 0, 0, 180, (150, 50, 50), max(h // 40, 1))


def face_frame(width: int, height: int) -> np.ndarray:
    """A ``height`` x ``width`` (H, W, 3) uint8 RGB frame: a grey room with three faces side by
    side, each about 0.38 of the frame's height, softened by a small Gaussian blur as a camera
    would."""
    image = np.full((height, width, 3), 128, np.uint8)
    image[: height // 2] = 90
    for k in range(3):
        draw_face(image, (int(width * (0.25 + 0.25 * k)), int(height * 0.45)), int(height * 0.38))
    return cv2.GaussianBlur(image, (3, 3), 0)


def tone(seconds: float, rate: int, *, hz: float = 330.0) -> np.ndarray:
    """``seconds`` of a sine at ``hz`` and amplitude 0.2, sampled at ``rate``: (N,) float32."""
    t = np.arange(int(seconds * rate)) / rate
    return (0.2 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def warm_up_window(runner: WarmUpTarget, width: int, height: int, fps: float) -> float:
    """Run ``runner``'s pipeline once on a window (``runner.settings.window`` seconds) of
    :func:`face_frame` frames, at the analysis size of a ``width`` x ``height`` source at
    ``fps``, and a :func:`tone`; with incremental work on, the frames go through the per-frame
    work first, as real frames do. Returns the seconds it took."""
    t0 = time.perf_counter()
    st = runner.settings
    w, h = runner.size_for(int(width), int(height))
    image = face_frame(w, h)
    n = max(2, int(round(st.window * fps)))
    frames = [LiveFrame(i, i / fps, image) for i in range(n)]
    store = ReuseStore() if st.incremental else None
    if store is not None:
        arrival = ArrivalWork(runner.predictor.preprocessor, runner.streams, st, fps=fps, store=store)
        for f in frames:
            arrival.add(f)
        arrival.flush()
    runner.predict_window(frames, tone(st.window, runner.audio_rate), start=0.0, end=n / fps, fps=fps,
                          name="warm-up", store=store, audio_start=0)
    return time.perf_counter() - t0
