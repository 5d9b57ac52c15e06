"""Cue measurements on decoded group clips, shared by the tests of synthetic.group and
synthetic.faces: wall warmth, dominant pitch, vertical flow and mouth curvature."""
from __future__ import annotations

import cv2
import numpy as np


def warmth(frames: np.ndarray) -> float:
    """Mean red minus mean blue over the clip."""
    mean = frames.reshape(-1, 3).mean(axis=0)
    return float(mean[0] - mean[2])


def dominant_hz(audio: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1 / rate)[spectrum.argmax()])


def mean_y_flow(frames: np.ndarray) -> float:
    """Mean vertical Farneback flow (px/frame, + = down) over a few consecutive frame pairs."""
    values = []
    for i in range(2, len(frames) - 1, 4):
        a = cv2.cvtColor(frames[i], cv2.COLOR_RGB2GRAY)
        b = cv2.cvtColor(frames[i + 1], cv2.COLOR_RGB2GRAY)
        flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        values.append(float(flow[..., 1].mean()))
    return float(np.mean(values))


def mouth_curvature(frame: np.ndarray, box) -> float:
    """Curvature of the mouth line in a head box: per column the reddest row of the lower face,
    fitted with a parabola; > 0 when the corners are higher than the middle (a smile)."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    region = frame[y0 + int(0.62 * h):y0 + int(0.95 * h), x0 + int(0.25 * w):x0 + int(0.75 * w)].astype(float)
    redness = region[..., 0] - region[..., 1]
    rows = redness.argmax(axis=0)
    xs = (np.arange(region.shape[1]) - region.shape[1] / 2) / w
    return float(-np.polyfit(xs, rows / h, 2)[0])
