"""Synthetic group-emotion dataset in the VGAF and GroupEmoW layouts.

Every clip is a small group scene (1-5 cartoon people in front of a textured wall, with floating
confetti) in which each modality carries the clip's class on its own:

* ``visual``: the wall's colour grade: Positive warm and bright, Neutral grey, Negative cold and
  dark (people, their wide grey hoods and the confetti are not graded, and a hood
  fills each face crop's background, so face crops do not carry this cue);
* ``face``: mouth curvature of every face: smile, flat, frown;
* ``flow``: vertical motion of the confetti and the people: Positive rises fast and the people
  bounce, Neutral is nearly still, Negative sinks slowly. Horizontal drift is a random nuisance,
  so the cue survives horizontal flips (which negate x-flow);
* ``audio``: a tone whose pitch and chord follow the class: Positive a high rising major chord,
  Neutral a flat mid tone, Negative a low falling minor chord; loudness is a nuisance.

Internally each modality shows a *valence* in [-1, 1] (Positive +1, Neutral 0, Negative -1) plus
per-clip jitter. With probability ``cue_noise`` a modality instead shows the class of a
uniformly drawn class, independently per modality, so no single stream is perfect and fusion
gains. ``synthetic.json`` records, per clip, the true class and the class each modality shows.

Labels: in Python (``label=`` arguments, ``shown=`` mappings) a label is the 0-based index into
:data:`CLASSES`, as in :mod:`media.datasets`; only the VGAF label files are 1-based (1 Positive,
2 Neutral, 3 Negative). ``synthetic.json`` names classes by name.

Same seed, same files: every clip is drawn from its own generator seeded by
``(seed, split, index)``, and the mp4 and JPEG writers are deterministic.
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import cv2
import numpy as np

from core.storage import atomic_write_bytes, atomic_write_json, atomic_write_text
from media.encoding import write_mp4

CLASSES: tuple[str, ...] = ("Positive", "Neutral", "Negative")
"""Class names in label order: label ``i`` (0-based) is ``CLASSES[i]``; VGAF files write ``i + 1``."""
VALENCE: tuple[float, ...] = (1.0, 0.0, -1.0)
"""Cue valence of each class, in label order."""
MODALITIES: tuple[str, ...] = ("visual", "face", "flow", "audio")
"""The cues a synthetic clip carries, one per stream of the method (the only place media names them)."""
VISUAL, FACE, FLOW, AUDIO = MODALITIES
SPLITS: tuple[str, ...] = ("Train", "Val", "Test")
"""VGAF split folder names; GroupEmoW stills use the lower-case names."""
LABELLED_SPLITS: tuple[str, ...] = ("Train", "Val", "Test")
"""Splits that get a ``<split>_labels.txt``. Unlike VGAF, whose test labels are withheld, the
synthetic set labels Test too, so a held-out split can be scored (nothing is selected on it)."""
SKIN_TONES: tuple[tuple[int, int, int], ...] = (
    (241, 200, 170), (224, 176, 142), (205, 150, 115), (180, 125, 92), (150, 102, 72))
DEFAULT_SKIN = (224, 176, 142)
JPEG_QUALITY = 92
DEFAULT_STILLS_PER_CLASS: Mapping[str, int] = MappingProxyType({"train": 30, "val": 10, "test": 10})

# Reference geometry: cue magnitudes are given for a 180 px high frame and scale with height.
_REF_HEIGHT = 180.0
_WARM = np.array([238.0, 184.0, 78.0])
_GREY = np.array([128.0, 128.0, 128.0])
_COLD = np.array([42.0, 62.0, 118.0])
_CONFETTI = np.array([(230, 60, 60), (60, 170, 70), (70, 110, 230), (240, 200, 40),
                      (200, 80, 200), (40, 190, 200), (250, 250, 250), (30, 30, 30)], np.float64)


def draw_cartoon_face(
    image: np.ndarray,
    center: tuple[int, int],
    size: int,
    mouth: float,
    *,
    skin: tuple[int, int, int] = DEFAULT_SKIN,
    rng: np.random.Generator | None = None,
    mouth_open: float = 0.0,
    eye_open: float = 1.0,
    brow_tilt: float = 0.0,
    brow_raise: float = 0.0,
    brow_weight: float = 1.0,
) -> tuple[int, int, int, int]:
    """Draw a cartoon person (head with hair, eyes, brows, nose, mouth; neck and shoulders) in
    place on ``image`` ((H, W, 3) uint8 RGB).

    ``center`` is the head centre (x, y) in pixels, ``size`` the head height in pixels (the head
    is ``0.8 * size`` wide; shoulders reach ``1.5 * size`` below the centre), ``mouth`` the mouth
    curvature in [-1, 1] (+1 broad smile, 0 flat, -1 frown), ``skin`` an RGB colour. ``rng``
    (optional) jitters hair and shirt colour and feature sizes; without it the face is drawn
    with fixed mid values. The drawn region is softened with a small Gaussian blur, as a camera
    would, which MTCNN needs to score cartoon faces as faces.

    The other expression features (the defaults draw the plain face, pixel for pixel as without
    them): ``mouth_open`` in [0, 1] (0 a closed line, 1 a wide open mouth whose lips follow the
    curvature), ``eye_open`` in [0.3, 1.8] (the height of the eye whites relative to the plain
    face: < 1 narrowed, > 1 wide), ``brow_tilt`` in [-1, 1] (+1 inner ends raised, as in
    sadness and fear; -1 inner ends lowered, as in anger), ``brow_raise`` in [-1, 1] (both brows
    up or down by up to 0.06 head heights) and ``brow_weight`` (> 0, brow thickness relative to
    the plain face; bolder brows survive small face crops).
    Returns the head's bounding box ``(x0, y0, x1, y1)`` in pixels (exclusive ends, clipped to
    the image).
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"draw_cartoon_face needs an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    if size < 4:
        raise ValueError(f"draw_cartoon_face: size must be >= 4 px, got {size}")
    mouth = float(np.clip(mouth, -1.0, 1.0))
    mouth_open = float(np.clip(mouth_open, 0.0, 1.0))
    eye_open = float(np.clip(eye_open, 0.3, 1.8))
    brow_tilt = float(np.clip(brow_tilt, -1.0, 1.0))
    brow_raise = float(np.clip(brow_raise, -1.0, 1.0))
    if not brow_weight > 0:
        raise ValueError(f"draw_cartoon_face: brow_weight must be > 0, got {brow_weight}")
    cx, cy = float(center[0]), float(center[1])
    s = float(size)
    if rng is not None:
        def j(lo: float, hi: float) -> float:
            return float(rng.uniform(lo, hi))
    else:
        def j(lo: float, hi: float) -> float:
            return (lo + hi) / 2
    height, width = image.shape[:2]
    hw, hh = 0.40 * s, 0.5 * s          # head half-width, half-height
    top = cy - hh
    skin = tuple(int(c) for c in skin)
    hair_shade = j(0.25, 0.55)
    hair = (int((90 * hair_shade + 20) / 1.6), int((60 * hair_shade + 15) / 1.6), int((40 * hair_shade + 10) / 1.6))
    shirt = (int(60 + 120 * j(0, 1)), int(60 + 120 * j(0, 1)), int(60 + 120 * j(0, 1)))
    eye_rx, eye_ry = 0.09 * s * j(0.9, 1.1), 0.055 * s * j(0.9, 1.1)

    # Everything is drawn into a padded copy of the region and blended back through a soft mask,
    # so the blur does not touch the background outside the person.
    pad = int(np.ceil(0.1 * s)) + 3
    rx0, ry0 = max(0, int(cx - 0.8 * s) - pad), max(0, int(top - 0.1 * s) - pad)
    rx1, ry1 = min(width, int(cx + 0.8 * s) + pad), min(height, int(cy + 1.5 * s) + pad)
    if rx0 >= rx1 or ry0 >= ry1:
        raise ValueError(f"draw_cartoon_face: face at {center} size {size} lies outside the {width}x{height} image")
    roi = image[ry0:ry1, rx0:rx1].copy()
    mask = np.zeros(roi.shape[:2], np.uint8)
    ox, oy = rx0, ry0

    def P(x: float, y: float) -> tuple[int, int]:   # noqa: N802 - local point helper
        return int(round(x - ox)), int(round(y - oy))

    def A(a: float, b: float) -> tuple[int, int]:   # noqa: N802 - ellipse axes helper
        return max(1, int(round(a))), max(1, int(round(b)))

    aa = cv2.LINE_AA
    # hair: a dark cap behind the head, framing the temples
    for canvas, colour in ((roi, hair), (mask, 255)):
        cv2.ellipse(canvas, P(cx, cy - 0.08 * s), A(hw * 1.2, hh * 0.95), 0, 160, 380, colour, -1, aa)
    # neck and shoulders: context that face detectors expect below a face
    neck = tuple(int(c * 0.85) for c in skin)
    for canvas, c_neck, c_shirt in ((roi, neck, shirt), (mask, 255, 255)):
        cv2.rectangle(canvas, P(cx - 0.17 * s, cy + 0.3 * s), P(cx + 0.17 * s, cy + 0.75 * s), c_neck, -1)
        cv2.ellipse(canvas, P(cx, cy + 1.05 * s), A(0.75 * s, 0.45 * s), 0, 180, 360, c_shirt, -1, aa)
    # head: an egg shape, narrower at the chin
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    ex_, ey_ = np.cos(t), np.sin(t)
    ex_ = ex_ * (1 - 0.2 * np.clip(ey_, 0, None) ** 2)
    head = np.round((np.stack([cx + hw * ex_ - ox, cy + hh * ey_ - oy], 1)) * 16).astype(np.int32)
    ear = tuple(int(c * 0.92) for c in skin)
    for canvas, c_skin, c_ear in ((roi, skin, ear), (mask, 255, 255)):
        for sx in (-1, 1):
            cv2.ellipse(canvas, P(cx + sx * hw * 0.98, cy - 0.02 * s), A(0.06 * s, 0.11 * s), 0, 0, 360, c_ear, -1, aa)
        cv2.fillPoly(canvas, [head], c_skin, aa, shift=4)
    # a shaded rim separates the face from walls of similar colour (warm walls vs skin)
    cv2.polylines(roi, [head], True, tuple(int(c * 0.55) for c in skin), max(1, int(round(0.05 * s))), aa, shift=4)
    # eyes at ~45 % of the head height, wide apart, in slightly shaded sockets; brows above
    eye_y = top + 0.45 * 2 * hh
    socket = tuple(int(c * 0.82) for c in skin)
    for sx in (-1, 1):
        ex, ey = cx + sx * 0.19 * s, eye_y
        cv2.ellipse(roi, P(ex, ey), A(eye_rx * 1.5, eye_ry * 2.0 * max(1.0, 0.8 * eye_open)), 0, 0, 360, socket,
                    -1, aa)
        cv2.ellipse(roi, P(ex, ey), A(eye_rx, eye_ry * eye_open), 0, 0, 360, (235, 235, 230), -1, aa)
        cv2.circle(roi, P(ex, ey), max(1, int(round(min(0.04 * s, max(0.02 * s, eye_ry * eye_open))))),
                   (40, 28, 24), -1, aa)
        by = eye_y - 0.11 * s - brow_raise * 0.06 * s
        # brow ends: inner (towards the nose) and outer; tilt moves the inner end most
        dy_in, dy_out = -brow_tilt * 0.07 * s, brow_tilt * 0.025 * s
        x_a, x_b = ex - eye_rx, ex + eye_rx        # left and right end of this brow
        dy_a, dy_b = (dy_out, dy_in) if sx < 0 else (dy_in, dy_out)
        cv2.line(roi, P(x_a, by + 1 + dy_a), P(x_b, by + dy_b), (70, 45, 30),
                 max(1, int(round(0.03 * s * brow_weight))), aa)
    # nose: a shaded wedge
    nose_tip = top + 0.64 * 2 * hh
    nose = np.array([[cx, eye_y + 0.05 * s], [cx - 0.06 * s, nose_tip], [cx + 0.06 * s, nose_tip]]) - (ox, oy)
    cv2.fillConvexPoly(roi, np.round(nose * 16).astype(np.int32), tuple(int(c * 0.78) for c in skin), aa, shift=4)
    # mouth at ~77 % of the head height: a parabola whose corners rise for a smile
    mouth_y = top + 0.77 * 2 * hh
    # (broad and thick on purpose: face crops are small, and the cue has to survive 48 px crops)
    xs = np.linspace(-1.0, 1.0, 15)
    bend = 0.14 * s * mouth
    curve = np.stack([cx + xs * 0.22 * s - ox, mouth_y + bend * (1.0 - xs ** 2) - bend * 0.5 - oy], axis=1)
    if mouth_open > 0:
        # an open mouth: a dark gap between the upper lip (the curve) and a lower lip below it
        lower = curve + np.stack([np.zeros_like(xs), 0.16 * s * mouth_open * (1.0 - xs ** 2)], axis=1)
        gap = np.concatenate([curve, lower[::-1]])
        cv2.fillPoly(roi, [np.round(gap * 16).astype(np.int32)], (70, 20, 28), aa, shift=4)
        cv2.polylines(roi, [np.round(curve * 16).astype(np.int32), np.round(lower * 16).astype(np.int32)], False,
                      (150, 40, 45), max(1, int(round(0.05 * s))), aa, shift=4)
    else:
        cv2.polylines(roi, [np.round(curve * 16).astype(np.int32)], False, (150, 40, 45),
                      max(1, int(round(0.07 * s))), aa, shift=4)

    sigma = max(1.2, s / 35.0)
    roi = cv2.GaussianBlur(roi, (0, 0), sigma)
    alpha = cv2.GaussianBlur(cv2.dilate(mask, np.ones((3, 3), np.uint8)), (0, 0), sigma)
    alpha = alpha.astype(np.float32) * (1.0 / 255.0)
    region = image[ry0:ry1, rx0:rx1]
    region[...] = cv2.blendLinear(roi, region, alpha, 1.0 - alpha)
    x0 = max(0, int(np.floor(cx - hw)))
    y0 = max(0, int(np.floor(cy - hh)))
    x1 = min(width, int(np.ceil(cx + hw)) + 1)
    y1 = min(height, int(np.ceil(cy + hh)) + 1)
    return x0, y0, x1, y1


# --------------------------------------------------------------------------------------------
# cue mappings (valence in [-1, 1] -> what the modality shows)

def wall_colour(valence: float) -> np.ndarray:
    """RGB wall colour (float, 0-255) for a visual valence: +1 warm/bright, 0 grey, -1 cold/dark."""
    v = float(np.clip(valence, -1.0, 1.0))
    return _GREY + (_WARM - _GREY) * v if v >= 0 else _GREY + (_COLD - _GREY) * (-v)


def flow_speed(valence: float) -> float:
    """Vertical confetti velocity in px/frame at 180 px height (negative = upwards):
    +1 rises at 4 px/frame, 0 is still, -1 sinks at 1.5 px/frame."""
    v = float(np.clip(valence, -1.0, 1.0))
    return -4.0 * v if v >= 0 else -1.5 * v


def class_valence(label: int) -> float:
    """Valence of a 0-based label."""
    _check_label(label)
    return VALENCE[label]


def _check_label(label: int) -> None:
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= int(label) < len(CLASSES):
        raise ValueError(f"label must be a 0-based class index in 0..{len(CLASSES) - 1} "
                         f"({', '.join(CLASSES)}), got {label!r}")


# --------------------------------------------------------------------------------------------
# scene plan: every random choice of a clip, drawn up front so rendering is a pure function

@dataclass
class _Person:
    x: float
    y: float
    size: float
    skin: tuple[int, int, int]
    mouth_jitter: float
    sway_amp: float
    sway_hz: float
    sway_phase: float
    bounce_hz: float
    bounce_phase: float
    seed: int


@dataclass
class _Plan:
    width: int
    height: int
    fps: float
    duration: float
    valence: dict[str, float]
    texture: np.ndarray                  # (H, W) float32 luminance multiplier
    tint: np.ndarray                     # (3,) per-clip colour offset
    brightness: float
    people: list[_Person]
    confetti_xy: np.ndarray              # (N, 2) positions at t=0
    confetti_r: np.ndarray               # (N,) radii px
    confetti_col: np.ndarray             # (N, 3)
    confetti_square: np.ndarray          # (N,) bool
    drift_x: float                       # px/frame, shared horizontal nuisance
    confetti_vx: np.ndarray              # (N,) per-piece horizontal jitter px/frame
    confetti_speed: np.ndarray           # (N,) per-piece speed factor
    peak: dict[str, float] | None
    audio_ref_hz: float
    audio_gain: float
    noise_gain: float

    def envelope(self, t: np.ndarray | float) -> np.ndarray:
        """Cue intensity in [floor, 1] at times ``t`` (s); 1 everywhere without a peak."""
        t = np.asarray(t, dtype=np.float64)
        if self.peak is None:
            return np.ones_like(t)
        p = self.peak
        bump = np.exp(-0.5 * ((t - p["center_s"]) / p["sigma_s"]) ** 2)
        return p["floor"] + (1.0 - p["floor"]) * bump


def _make_texture(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Wall texture: (H, W) float32 multiplier around 1 (stripes or blotches of random phase)
    with a darker floor band at the bottom."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    k = height / _REF_HEIGHT
    kind = rng.integers(0, 3)
    if kind == 0:        # straight stripes, any orientation
        angle = rng.uniform(0, np.pi)
        period = rng.uniform(8, 40) * k
        phase = rng.uniform(0, 2 * np.pi)
        pattern = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * (2 * np.pi / period) + phase)
    elif kind == 1:      # checks
        period = rng.uniform(10, 36) * k
        ox, oy = rng.uniform(0, period, 2)
        pattern = np.sign(np.sin((xx + ox) * np.pi / period) * np.sin((yy + oy) * np.pi / period))
        pattern = cv2.GaussianBlur(pattern.astype(np.float32), (0, 0), 1.0)
    else:                # smooth blotches
        coarse = rng.standard_normal((max(2, height // 16), max(2, width // 16))).astype(np.float32)
        pattern = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
        pattern /= max(1e-6, float(np.abs(pattern).max()))
    texture = 1.0 + rng.uniform(0.06, 0.16) * pattern
    fine = rng.standard_normal((height, width)).astype(np.float32) * 0.02
    texture = texture + fine
    floor_y = int(height * rng.uniform(0.62, 0.8))
    texture[floor_y:] *= rng.uniform(0.7, 0.85)
    return texture.astype(np.float32)


def _plan_scene(
    rng: np.random.Generator,
    valence: Mapping[str, float],
    *,
    width: int,
    height: int,
    fps: float,
    duration: float,
    n_faces: int,
    peak: bool,
) -> _Plan:
    k = height / _REF_HEIGHT
    texture = _make_texture(rng, width, height)
    tint = rng.uniform(-14, 14, 3)
    brightness = float(rng.uniform(0.9, 1.1))

    people: list[_Person] = []
    if n_faces:
        slot = width / n_faces
        lo = 35.0 * k
        hi = max(lo, min(70.0 * k, 0.85 * slot / 0.8))
        sink_room = _sink_rate(1.0, duration) * k * duration + 4 * k
        for i in range(n_faces):
            size = float(rng.uniform(lo, hi))
            x = (i + 0.5) * slot + rng.uniform(-0.12, 0.12) * slot
            x = float(np.clip(x, 0.45 * size + 3 * k, width - 0.45 * size - 3 * k))
            y_lo = 0.6 * size + 8 * k
            y_hi = max(y_lo, height - 0.75 * size - sink_room)
            y = float(rng.uniform(y_lo, y_hi))
            people.append(_Person(
                x=float(x), y=y, size=size,
                skin=SKIN_TONES[int(rng.integers(0, len(SKIN_TONES)))],
                mouth_jitter=float(rng.uniform(-0.15, 0.15)),
                sway_amp=float(rng.uniform(0.5, 2.5) * k), sway_hz=float(rng.uniform(0.2, 0.6)),
                sway_phase=float(rng.uniform(0, 2 * np.pi)),
                bounce_hz=float(rng.uniform(1.3, 2.0)), bounce_phase=float(rng.uniform(0, np.pi)),
                seed=int(rng.integers(0, 2 ** 31)),
            ))
        # people whose heads end lower are nearer the camera: drawn later, so no shoulder ever
        # covers another person's head
        people.sort(key=lambda p: p.y + 0.5 * p.size)

    n_conf = int(rng.integers(18, 32) * (width * height) / (320 * 180))
    n_conf = max(6, n_conf)
    confetti_xy = np.stack([rng.uniform(0, width, n_conf), rng.uniform(0, height, n_conf)], axis=1)
    confetti_r = rng.uniform(2.0, 4.5, n_conf) * k
    confetti_col = _CONFETTI[rng.integers(0, len(_CONFETTI), n_conf)]
    confetti_square = rng.random(n_conf) < 0.5
    drift_x = float(rng.uniform(-0.8, 0.8) * k)
    confetti_vx = rng.uniform(-0.3, 0.3, n_conf) * k
    confetti_speed = rng.uniform(0.8, 1.2, n_conf)

    peak_spec = None
    if peak:
        peak_spec = {"center_s": float(rng.uniform(0.3, 0.7) * duration), "sigma_s": 0.4, "floor": 0.3}
    return _Plan(
        width=width, height=height, fps=fps, duration=duration, valence=dict(valence),
        texture=texture, tint=tint, brightness=brightness, people=people,
        confetti_xy=confetti_xy, confetti_r=confetti_r, confetti_col=confetti_col,
        confetti_square=confetti_square, drift_x=drift_x, confetti_vx=confetti_vx,
        confetti_speed=confetti_speed, peak=peak_spec,
        audio_ref_hz=float(rng.uniform(270, 330)), audio_gain=float(rng.uniform(0.08, 0.4)),
        noise_gain=float(rng.uniform(0.002, 0.02)),
    )


# --------------------------------------------------------------------------------------------
# rendering

def _render_wall(plan: _Plan, v_visual: float) -> np.ndarray:
    colour = np.clip(wall_colour(v_visual) * plan.brightness + plan.tint, 0, 255).astype(np.float32)
    return np.clip(plan.texture[..., None] * colour, 0, 255).astype(np.uint8)


def _confetti_positions(plan: _Plan, n_frames: int) -> np.ndarray:
    """(T, N, 2) confetti positions, wrapped around the frame edges."""
    k = plan.height / _REF_HEIGHT
    t = np.arange(n_frames) / plan.fps
    env = plan.envelope(t)
    vy = flow_speed(plan.valence[FLOW]) * k * env                  # (T,) px/frame
    # displacement before frame i = sum of speeds of frames < i
    dy = np.concatenate([[0.0], np.cumsum(vy[:-1])])[:, None] * plan.confetti_speed[None, :]
    dx = np.arange(n_frames)[:, None] * (plan.drift_x + plan.confetti_vx[None, :])
    margin = 8.0 * k
    x = np.mod(plan.confetti_xy[None, :, 0] + dx + margin, plan.width + 2 * margin) - margin
    y = np.mod(plan.confetti_xy[None, :, 1] + dy + margin, plan.height + 2 * margin) - margin
    return np.stack([x, y], axis=-1)


def _sink_rate(intensity: float, duration: float) -> float:
    """Sinking speed of people in px/s at 180 px height: 6 px/s at full intensity, slower for
    clips over 4 s so that nobody sinks more than 24 px."""
    return intensity * min(6.0, 24.0 / max(duration, 1e-6))


def _person_offsets(plan: _Plan, person: _Person, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dx, dy) in px of a person at times ``t``: random sway, plus a bounce (positive flow
    valence) or a slow sink (negative flow valence)."""
    k = plan.height / _REF_HEIGHT
    v = plan.valence[FLOW]
    env = plan.envelope(t)
    dx = person.sway_amp * np.sin(2 * np.pi * person.sway_hz * t + person.sway_phase)
    bounce = 6.0 * k * max(v, 0.0) * env * np.abs(np.sin(np.pi * person.bounce_hz * t + person.bounce_phase))
    sink_rate = _sink_rate(max(-v, 0.0), plan.duration) * k * env
    sink = np.concatenate([[0.0], np.cumsum(sink_rate[:-1] * np.diff(t))]) if t.size > 1 else np.zeros_like(t)
    return dx, sink - bounce


def _render_frames(plan: _Plan, n_frames: int) -> tuple[np.ndarray, list[list[tuple[int, int, int, int]]]]:
    """Render ``n_frames`` frames: ((T, H, W, 3) uint8 RGB, per frame the face boxes)."""
    t = np.arange(n_frames) / plan.fps
    env = plan.envelope(t)
    static_wall = _render_wall(plan, plan.valence[VISUAL]) if plan.peak is None else None
    confetti = _confetti_positions(plan, n_frames)
    offsets = [_person_offsets(plan, p, t) for p in plan.people]
    frames = np.empty((n_frames, plan.height, plan.width, 3), np.uint8)
    boxes: list[list[tuple[int, int, int, int]]] = []
    for i in range(n_frames):
        frame = frames[i]
        frame[...] = static_wall if static_wall is not None else _render_wall(plan, plan.valence[VISUAL] * env[i])
        _draw_confetti(frame, confetti[i], plan)
        # Every person wears a wide hood of a random, class-free colour. Hoods go down first, so
        # no hood covers a face, and each reaches past the person's face crop (MTCNN box plus
        # margin): face crops then show faces and hoods, never the graded wall, and the face
        # stream has to read mouths instead of copying the visual stream's cue.
        for person, (dx, dy) in zip(plan.people, offsets):
            _draw_hood(frame, (person.x + dx[i], person.y + dy[i]), person)
        frame_boxes = []
        for person, (dx, dy) in zip(plan.people, offsets):
            mouth = float(np.clip(plan.valence[FACE] * env[i] + person.mouth_jitter, -1.0, 1.0))
            # the same feature jitter on every frame: a person keeps their looks
            box = draw_cartoon_face(frame, (person.x + dx[i], person.y + dy[i]), person.size, mouth,
                                    skin=person.skin, rng=np.random.default_rng(person.seed))
            frame_boxes.append(box)
        boxes.append(frame_boxes)
    return frames, boxes


HOOD_RADIUS = 1.0
"""Hood radius in head heights: covers a face crop with 25 % margin (a square of half-side
0.625 head heights, corners at 0.88) even when alignment rotates it a little."""


def hood_colour(person_seed: int) -> tuple[int, int, int]:
    """A light grey, a little different per person, drawn from the person's own seed (so it
    says nothing about the class). Grey rather than random hues: a face stream trained from
    scratch on a hundred clips then has only faces to look at, not a nuisance colour."""
    rng = np.random.default_rng([person_seed, 7])
    level = int(rng.integers(150, 181))
    return (level, level, level)


def _draw_hood(frame: np.ndarray, center: tuple[float, float], person: _Person) -> None:
    r = max(1, int(round(HOOD_RADIUS * person.size)))
    cv2.circle(frame, (int(round(center[0])), int(round(center[1]))), r, hood_colour(person.seed), -1, cv2.LINE_AA)


def _draw_confetti(frame: np.ndarray, xy: np.ndarray, plan: _Plan) -> None:
    for (x, y), r, col, square in zip(xy, plan.confetti_r, plan.confetti_col, plan.confetti_square):
        colour = tuple(float(c) for c in col)
        if square:
            pts = np.array([[x - r, y - r], [x + r, y - r], [x + r, y + r], [x - r, y + r]])
            cv2.fillConvexPoly(frame, np.round(pts * 16).astype(np.int32), colour, cv2.LINE_AA, shift=4)
        else:
            cv2.circle(frame, (int(round(x * 16)), int(round(y * 16))), int(round(r * 16)), colour, -1,
                       cv2.LINE_AA, shift=4)


def _synthesize_audio(plan: _Plan, n_samples: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Mono float32 (N,) in [-1, 1]: a tone whose root pitch, glide and chord follow the audio
    valence (major third above 0, minor third below), with tremolo, a noise floor and fades."""
    t = np.arange(n_samples) / sample_rate
    v = plan.valence[AUDIO] * plan.envelope(t)
    position = t / max(plan.duration, 1e-6) - 0.5                   # -0.5 .. 0.5 over the clip
    # the root sits 0.9 octave above/below the reference at full valence and glides by 0.4
    # octave over the clip: up for positive, down for negative
    f0 = plan.audio_ref_hz * 2.0 ** (0.9 * v + 0.4 * v * position)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    # (frequency ratio, amplitude) partials; amplitudes may depend on the valence
    partials = [
        (1.0, np.ones_like(v)),
        (2.0 ** (4 / 12), 0.6 * np.clip(v, 0, None)),    # major third
        (2.0 ** (3 / 12), 0.6 * np.clip(-v, 0, None)),   # minor third
        (2.0 ** (7 / 12), 0.5 * np.abs(v)),              # fifth
        (2.0, 0.25 * np.ones_like(v)),                   # octave, for timbre
    ]
    tone = sum(amp * np.sin(ratio * phase) for ratio, amp in partials)
    tremolo_hz = 2.0 + 3.0 * np.clip(v, 0, None)
    tremolo = 1.0 - 0.3 * (0.5 + 0.5 * np.sin(2 * np.pi * np.cumsum(tremolo_hz) / sample_rate))
    signal = tone / 2.6 * tremolo * plan.audio_gain
    signal = signal + plan.noise_gain * rng.standard_normal(n_samples)
    fade = min(n_samples // 2, int(0.02 * sample_rate))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        signal[:fade] *= ramp
        signal[-fade:] *= ramp[::-1]
    return np.clip(signal, -1.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------------
# public rendering API

def _jittered_valence(rng: np.random.Generator, shown: Mapping[str, int], cue_jitter: float) -> dict[str, float]:
    return {m: float(np.clip(class_valence(int(shown[m])) + rng.uniform(-cue_jitter, cue_jitter), -1.0, 1.0))
            for m in MODALITIES}


def _check_shown(shown: Mapping[str, int] | None, label: int) -> dict[str, int]:
    if shown is None:
        return {m: int(label) for m in MODALITIES}
    unknown = set(shown) - set(MODALITIES)
    if unknown:
        raise ValueError(f"shown: unknown modalities {sorted(unknown)}; expected a subset of {MODALITIES}")
    out = {}
    for m in MODALITIES:
        value = shown.get(m, label)
        _check_label(value)
        out[m] = int(value)
    return out


def _check_geometry(width: int, height: int, fps: float, duration: float) -> None:
    if width < 32 or height < 32 or width % 2 or height % 2:
        raise ValueError(f"frame size must be even and at least 32x32, got {width}x{height}")
    if fps <= 0 or duration <= 0:
        raise ValueError(f"fps and duration must be positive, got fps={fps} duration={duration}")


def render_clip(
    *,
    label: int,
    rng: np.random.Generator,
    duration: float = 3.0,
    width: int = 320,
    height: int = 180,
    fps: float = 15,
    sample_rate: int = 16000,
    shown: Mapping[str, int] | None = None,
    with_audio: bool = True,
    with_faces: bool = True,
    n_faces: int | None = None,
    peak: bool = False,
    cue_jitter: float = 0.2,
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Render one scene in memory.

    ``label`` is the true class (0-based index into :data:`CLASSES`); ``shown`` maps modalities
    (:data:`MODALITIES`) to the class that modality displays (default: all show ``label``).
    ``n_faces`` fixes the number of people (default 1-5 at random; 0 or ``with_faces=False``
    gives an empty scene), ``peak`` makes the cues swell to full strength for about 1 s and stay
    at 30 % elsewhere, ``cue_jitter`` is the half-width of the per-modality valence jitter.
    Returns ``(frames, audio, record)``: frames ``(T, H, W, 3)`` uint8 RGB with
    ``T = round(duration * fps)``, audio float32 ``(round(duration * sample_rate),)`` or None,
    and a JSON-able record: ``class`` (name), ``shown`` (modality -> class name, None for a
    modality the clip lacks: ``face`` without people, ``audio`` without a track), ``valence``,
    ``has_audio``, ``n_faces``, ``faces`` (size, base mouth curvature, first-frame head box
    ``[x0, y0, x1, y1]``), ``peak`` and ``frames``.
    """
    _check_label(label)
    _check_geometry(width, height, fps, duration)
    shown_d = _check_shown(shown, label)
    if n_faces is None:
        n_faces = int(rng.integers(1, 6))
    if not with_faces:
        n_faces = 0
    if not 0 <= n_faces <= 8:
        raise ValueError(f"n_faces must be in 0..8, got {n_faces}")
    valence = _jittered_valence(rng, shown_d, cue_jitter)
    plan = _plan_scene(rng, valence, width=width, height=height, fps=fps, duration=duration,
                       n_faces=n_faces, peak=peak)
    n_frames = max(1, int(round(duration * fps)))
    frames, boxes = _render_frames(plan, n_frames)
    audio = None
    if with_audio:
        audio = _synthesize_audio(plan, int(round(duration * sample_rate)), sample_rate, rng)
    record = {
        "class": CLASSES[label],
        "shown": {m: (None if (m == FACE and n_faces == 0) or (m == AUDIO and audio is None)
                      else CLASSES[c]) for m, c in shown_d.items()},
        "valence": {m: round(v, 4) for m, v in valence.items()},
        "has_audio": audio is not None,
        "n_faces": n_faces,
        "faces": [{"size": round(p.size, 2), "mouth": round(float(np.clip(valence[FACE] + p.mouth_jitter, -1, 1)), 4),
                   "box": list(boxes[0][i])} for i, p in enumerate(plan.people)],
        "peak": plan.peak,
        "frames": n_frames,
    }
    return frames, audio, record


def make_clip(path: str | os.PathLike, *, fps: float = 15, sample_rate: int = 16000, **scene: Any) -> dict[str, Any]:
    """Render a scene and write it to ``path`` as an H.264 mp4 with an AAC mono track (no audio
    stream when ``with_audio=False``). ``scene``: the other keyword arguments of
    :func:`render_clip` (``label`` and ``rng`` required). Returns the clip's record."""
    frames, audio, record = render_clip(fps=fps, sample_rate=sample_rate, **scene)
    write_mp4(path, frames, fps=fps, audio=audio, sample_rate=sample_rate if audio is not None else None)
    return record


def render_still(
    *,
    label: int,
    rng: np.random.Generator,
    width: int = 320,
    height: int = 180,
    with_faces: bool = True,
    cue_jitter: float = 0.2,
) -> tuple[np.ndarray, dict[str, Any]]:
    """One still scene of class ``label`` (all cues agree, no cue noise): ``((H, W, 3) uint8 RGB,
    record)``. Confetti is frozen, so the flow cue is absent; wall colour and faces carry the
    class."""
    _check_label(label)
    _check_geometry(width, height, 1, 1)
    n_faces = int(rng.integers(1, 6)) if with_faces else 0
    shown = _check_shown(None, label)
    valence = _jittered_valence(rng, shown, cue_jitter)
    plan = _plan_scene(rng, valence, width=width, height=height, fps=1, duration=1.0,
                       n_faces=n_faces, peak=False)
    frames, boxes = _render_frames(plan, 1)
    record = {"class": CLASSES[label], "n_faces": n_faces,
              "valence": {m: round(valence[m], 4) for m in (VISUAL, FACE)},
              "faces": [{"box": list(b)} for b in boxes[0]]}
    return frames[0], record


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """JPEG bytes of an (H, W, 3) uint8 RGB image at a fixed quality (deterministic)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("cv2.imencode failed to encode a JPEG")
    return buf.tobytes()


# --------------------------------------------------------------------------------------------
# dataset generation

@dataclass(frozen=True)
class _ClipTask:
    split: str
    index: int
    name: str
    label: int
    path: str
    seed: int
    cue_noise: float
    with_audio: bool
    with_faces: bool
    peak: bool
    cue_jitter: float
    duration: float
    width: int
    height: int
    fps: float
    sample_rate: int


@dataclass(frozen=True)
class _StillTask:
    split: str
    index: int
    label: int
    path: str
    seed: int
    cue_jitter: float
    width: int
    height: int


def _split_code(split: str) -> int:
    return SPLITS.index(split)


def _clip_worker(task: _ClipTask) -> dict[str, Any]:
    # independent streams: the scene layout does not change when cue_noise or audio_fraction do
    noise_ss, scene_ss = np.random.SeedSequence([task.seed, _split_code(task.split), task.index]).spawn(2)
    noise_rng = np.random.default_rng(noise_ss)
    shown = {}
    for m in MODALITIES:
        flip = noise_rng.random() < task.cue_noise
        other = int(noise_rng.integers(0, len(CLASSES)))
        shown[m] = other if flip else task.label
    record = make_clip(task.path, label=task.label, rng=np.random.default_rng(scene_ss),
                       duration=task.duration, width=task.width, height=task.height, fps=task.fps,
                       sample_rate=task.sample_rate, shown=shown, with_audio=task.with_audio, with_faces=task.with_faces, peak=task.peak,
                       cue_jitter=task.cue_jitter)
    return {"name": task.name, **record}


def _still_worker(task: _StillTask) -> dict[str, Any]:
    rng = np.random.default_rng(np.random.SeedSequence([task.seed, 10 + _split_code(task.split), task.index]))
    image, record = render_still(label=task.label, rng=rng, width=task.width, height=task.height,
                                 cue_jitter=task.cue_jitter)
    atomic_write_bytes(task.path, encode_jpeg(image))
    return record


def _balanced_labels(n: int, seed: int, split: str) -> list[int]:
    labels = np.arange(n) % len(CLASSES)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 100 + _split_code(split)]))
    return [int(x) for x in rng.permutation(labels)]


def _chosen(n: int, fraction: float, seed: int, split: str, purpose: int) -> set[int]:
    """Exactly ``round(n * fraction)`` of the indices ``0..n-1``, drawn by a seeded permutation."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, purpose, _split_code(split)]))
    return {int(i) for i in rng.permutation(n)[:int(round(n * fraction))]}


def _run(fn, tasks: list, workers: int) -> list:
    if workers <= 1 or len(tasks) <= 1:
        return [fn(t) for t in tasks]
    # spawn, not fork: the caller may hold torch/OpenCV thread pools that a fork would copy
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(fn, tasks, chunksize=max(1, len(tasks) // (4 * workers))))


def stills_per_split(value: int | Mapping[str, int], name: str) -> dict[str, int]:
    """Stills per class for each of ``train``, ``val``, ``test``: ``value`` is one count for all
    or a mapping from those split names (absent ones: 0). Raises ``ValueError`` naming ``name``
    for an unknown split or a negative count."""
    if isinstance(value, Mapping):
        unknown = set(value) - {s.lower() for s in SPLITS}
        if unknown:
            raise ValueError(f"{name}: unknown splits {sorted(unknown)}")
        counts = {s.lower(): int(value.get(s.lower(), 0)) for s in SPLITS}
    else:
        counts = {s.lower(): int(value) for s in SPLITS}
    if any(v < 0 for v in counts.values()):
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return counts


def generate_dataset(
    out_dir: str | os.PathLike,
    *,
    n_train: int,
    n_val: int,
    n_test: int = 0,
    seed: int = 0,
    cue_noise: float = 0.3,
    duration: float = 3.0,
    width: int = 320,
    height: int = 180,
    fps: float = 15,
    sample_rate: int = 16000,
    n_stills_per_class: int | Mapping[str, int] | None = None,
    audio: bool = True,
    audio_fraction: float = 1.0,
    faceless_fraction: float = 0.0,
    peak_fraction: float = 0.25,
    cue_jitter: float = 0.2,
    workers: int = 1,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write a synthetic dataset in the VGAF and GroupEmoW layouts under ``out_dir``:

    * ``Train/``, ``Val/``, ``Test/``: ``<video>_<clip>.mp4`` clips (H.264, ``width`` x
      ``height`` at ``fps``, ``duration`` s; AAC mono at ``sample_rate`` Hz unless the clip
      was drawn without audio);
    * ``Train_labels.txt``, ``Val_labels.txt``, ``Test_labels.txt``: header ``Vid_name Label``,
      then ``name label`` per clip (name without ``.mp4``; 1 Positive, 2 Neutral, 3 Negative).
      VGAF withholds its test labels; the synthetic set writes them, for a held-out score;
    * ``groupemow/{train,val,test}/{positive,neutral,negative}/*.jpg``: stills, all cues agreeing;
    * ``synthetic.json``: the parameters, and per clip (see :func:`render_clip`) its name and
      class, the class each modality shows (after ``cue_noise``), valences, faces, audio
      presence and peak; per still its path, class and faces.

    ``cue_noise`` is the probability, per clip and modality independently, that the modality
    shows the cue of a uniformly drawn class instead of the true one. ``audio=False`` writes no
    audio at all; otherwise ``audio_fraction`` of each split's clips (rounded) have an audio
    track. ``faceless_fraction`` of them show no people (wall and confetti only), and
    ``peak_fraction`` have cues that swell for about 1 s (see :func:`render_clip`); which clips
    is drawn from the seed.
    ``n_stills_per_class`` is stills per class per split (an int, or a mapping from
    ``train``/``val``/``test`` to ints; default :data:`DEFAULT_STILLS_PER_CLASS`). Labels are balanced within each split and shuffled.
    ``workers > 1`` renders in that many processes (same files either way). An existing dataset
    in ``out_dir`` raises ``FileExistsError`` unless ``overwrite=True``, which replaces it.
    Returns a summary: counts per split and class, and where the files are.
    """
    started = time.perf_counter()
    out = Path(out_dir)
    for name, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    if not 0.0 <= cue_noise <= 1.0:
        raise ValueError(f"cue_noise must be in [0, 1], got {cue_noise}")
    for name, value in (("audio_fraction", audio_fraction), ("faceless_fraction", faceless_fraction),
                        ("peak_fraction", peak_fraction)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    if cue_jitter < 0:
        raise ValueError(f"cue_jitter must be >= 0, got {cue_jitter}")
    _check_geometry(width, height, fps, duration)
    if n_stills_per_class is None:
        n_stills_per_class = DEFAULT_STILLS_PER_CLASS
    stills_n = stills_per_split(n_stills_per_class, "n_stills_per_class")

    owned = [out / s for s in SPLITS] + [out / f"{s}_labels.txt" for s in SPLITS] + [out / "groupemow", out / "synthetic.json"]
    existing = [p for p in owned if p.exists()]
    if existing:
        if not overwrite:
            raise FileExistsError(f"{out}: already holds a dataset ({existing[0].name}); pass overwrite=True to replace it")
        for p in existing:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    out.mkdir(parents=True, exist_ok=True)

    audio_fraction = audio_fraction if audio else 0.0
    counts = {"Train": int(n_train), "Val": int(n_val), "Test": int(n_test)}
    clip_tasks: list[_ClipTask] = []
    video = 0
    for split in SPLITS:
        labels = _balanced_labels(counts[split], seed, split)
        silent = _chosen(counts[split], 1.0 - audio_fraction, seed, split, 200)
        faceless = _chosen(counts[split], faceless_fraction, seed, split, 300)
        peaked = _chosen(counts[split], peak_fraction, seed, split, 400)
        first_video = video
        for i, label in enumerate(labels):
            # VGAF names clips <video>_<clip>; here every video yields three clips, and video
            # numbers continue across splits so names are unique in the whole dataset
            video = first_video + i // 3 + 1
            name = f"{video}_{i % 3 + 1}"
            clip_tasks.append(_ClipTask(
                split=split, index=i, name=name, label=label, path=str(out / split / f"{name}.mp4"),
                seed=int(seed), cue_noise=float(cue_noise), with_audio=i not in silent, with_faces=i not in faceless,
                peak=i in peaked, cue_jitter=float(cue_jitter), duration=float(duration),
                width=int(width), height=int(height), fps=float(fps), sample_rate=int(sample_rate)))
        (out / split).mkdir(parents=True, exist_ok=True)
    still_tasks: list[_StillTask] = []
    for split in SPLITS:
        low = split.lower()
        labels = [c for c in range(len(CLASSES)) for _ in range(stills_n[low])]
        for i, label in enumerate(labels):
            path = out / "groupemow" / low / CLASSES[label].lower() / f"{low}_{i:05d}.jpg"
            still_tasks.append(_StillTask(split=split, index=i, label=label, path=str(path), seed=int(seed),
                                          cue_jitter=float(cue_jitter), width=int(width), height=int(height)))
    for split in SPLITS:
        for cls in CLASSES:
            (out / "groupemow" / split.lower() / cls.lower()).mkdir(parents=True, exist_ok=True)

    clip_records = _run(_clip_worker, clip_tasks, workers)
    still_records = _run(_still_worker, still_tasks, workers)

    for split in LABELLED_SPLITS:
        lines = ["Vid_name Label"] + [f"{t.name} {t.label + 1}" for t in clip_tasks if t.split == split]
        atomic_write_text(out / f"{split}_labels.txt", "\n".join(lines) + "\n")
    clips_json = {split: [r for t, r in zip(clip_tasks, clip_records) if t.split == split] for split in SPLITS}
    stills_json = {split.lower(): [{"path": str(Path(t.path).relative_to(out)), **r}
                                   for t, r in zip(still_tasks, still_records) if t.split == split]
                   for split in SPLITS}
    params = {
        "seed": int(seed), "n_train": int(n_train), "n_val": int(n_val), "n_test": int(n_test),
        "cue_noise": float(cue_noise), "cue_jitter": float(cue_jitter), "duration": float(duration),
        "width": int(width), "height": int(height), "fps": float(fps), "sample_rate": int(sample_rate),
        "n_stills_per_class": stills_n, AUDIO: bool(audio), "audio_fraction": float(audio_fraction),
        "faceless_fraction": float(faceless_fraction),
        "peak_fraction": float(peak_fraction),
    }
    atomic_write_json(out / "synthetic.json", {
        "format": "synthetic-vgaf", "version": 1,
        "classes": list(CLASSES),
        "label_file_values": {c: i + 1 for i, c in enumerate(CLASSES)},
        "modalities": list(MODALITIES),
        "params": params, "clips": clips_json, "stills": stills_json,
    })

    clip_counts = {split: {c: sum(1 for r in clips_json[split] if r["class"] == c) for c in CLASSES} for split in SPLITS}
    still_counts = {split.lower(): {c: stills_n[split.lower()] for c in CLASSES} for split in SPLITS}
    return {
        "out_dir": str(out),
        "clips": clip_counts,
        "clips_without_audio": {split: sum(1 for r in clips_json[split] if not r["has_audio"]) for split in SPLITS},
        "clips_without_faces": {split: sum(1 for r in clips_json[split] if r["n_faces"] == 0) for split in SPLITS},
        "stills": still_counts,
        "paths": {
            "videos": {split: str(out / split) for split in SPLITS},
            "labels": {split: str(out / f"{split}_labels.txt") for split in LABELLED_SPLITS},
            "stills": str(out / "groupemow"),
            "metadata": str(out / "synthetic.json"),
        },
        "seconds": round(time.perf_counter() - started, 2),
    }


def generate_stills(
    out_dir: str | os.PathLike,
    *,
    n_per_class: int | Mapping[str, int],
    seed: int = 0,
    cue_jitter: float = 0.2,
    width: int = 320,
    height: int = 180,
    workers: int = 1,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write only the GroupEmoW-layout stills, with ``out_dir`` as the GroupEmoW root:
    ``{train,val,test}/{positive,neutral,negative}/<split>_<NNNNN>.jpg`` and a ``synthetic.json``
    (format ``synthetic-groupemow``: parameters and per still its path, class and faces). The
    images are those :func:`generate_dataset` writes under ``groupemow/`` for the same seed,
    ``cue_jitter`` and size; use this to train the keyframe scorer for a dataset of another
    layout (RAVDESS, CREMA-D). ``n_per_class``: stills per class per split (an int, or a mapping
    from ``train``/``val``/``test`` to ints). Returns counts per split and class and the root."""
    started = time.perf_counter()
    stills_n = stills_per_split(n_per_class, "n_per_class")
    if cue_jitter < 0:
        raise ValueError(f"cue_jitter must be >= 0, got {cue_jitter}")
    _check_geometry(width, height, 1, 1)
    out = Path(out_dir)
    owned = [out / s.lower() for s in SPLITS] + [out / "synthetic.json"]
    existing = [p for p in owned if p.exists()]
    if existing:
        if not overwrite:
            raise FileExistsError(f"{out}: already holds a dataset ({existing[0].name}); pass overwrite=True to replace it")
        for p in existing:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    tasks: list[_StillTask] = []
    for split in SPLITS:
        low = split.lower()
        labels = [c for c in range(len(CLASSES)) for _ in range(stills_n[low])]
        for cls in CLASSES:
            (out / low / cls.lower()).mkdir(parents=True, exist_ok=True)
        for i, label in enumerate(labels):
            path = out / low / CLASSES[label].lower() / f"{low}_{i:05d}.jpg"
            tasks.append(_StillTask(split=split, index=i, label=label, path=str(path), seed=int(seed),
                                    cue_jitter=float(cue_jitter), width=int(width), height=int(height)))
    records = _run(_still_worker, tasks, workers)
    params = {"seed": int(seed), "n_stills_per_class": stills_n, "cue_jitter": float(cue_jitter),
              "width": int(width), "height": int(height)}
    atomic_write_json(out / "synthetic.json", {
        "format": "synthetic-groupemow", "version": 1, "classes": list(CLASSES), "params": params,
        "stills": {s.lower(): [{"path": str(Path(t.path).relative_to(out)), **r}
                               for t, r in zip(tasks, records) if t.split == s] for s in SPLITS},
    })
    return {"out_dir": str(out), "stills": {s.lower(): {c: stills_n[s.lower()] for c in CLASSES} for s in SPLITS},
            "seconds": round(time.perf_counter() - started, 2)}


def cue_ceiling(metadata: Mapping[str, Any], split: str) -> dict[str, Any]:
    """What a perfect reader of the cues could score on ``split`` of a dataset's
    ``synthetic.json`` (``metadata``, already loaded).

    Returns ``{"clips": n, "modalities": {m: among the clips that have modality m, the fraction
    where it shows the true class (None if none has it)}, "fused": accuracy of the best possible
    fusion of all shown cues}``. A modality that a clip lacks (no audio track, no people) carries
    nothing for that clip. The fused figure is
    the Bayes decision under the generator's noise model (a modality shows the true class with
    probability ``1 - cue_noise + cue_noise / C``, each other class with ``cue_noise / C``), with
    ties counted as a uniform guess among the tied classes, so it is an expectation, not a
    lucky tie-break. A stream's val accuracy cannot meaningfully exceed its modality's figure,
    nor fusion the fused one.
    """
    classes = list(metadata["classes"])
    clips = metadata["clips"][split]
    noise = float(metadata["params"]["cue_noise"])
    n_cls = len(classes)
    p_true = 1.0 - noise + noise / n_cls
    p_other = noise / n_cls

    def present(clip: Mapping[str, Any], m: str) -> bool:
        return not ((m == AUDIO and not clip["has_audio"]) or (m == FACE and clip["n_faces"] == 0))

    modalities = {}
    for m in metadata["modalities"]:
        having = [c for c in clips if present(c, m)]
        modalities[m] = sum(c["shown"][m] == c["class"] for c in having) / len(having) if having else None
    fused = 0.0
    for clip in clips:
        if p_other == 0.0:
            scores = [sum(present(clip, m) and clip["shown"][m] == k for m in metadata["modalities"]) for k in classes]
        else:
            scores = [sum(np.log(p_true if clip["shown"][m] == k else p_other)
                          for m in metadata["modalities"] if present(clip, m)) for k in classes]
        best = max(scores)
        tied = [k for k, s in zip(classes, scores) if np.isclose(s, best)]
        fused += (clip["class"] in tied) / len(tied)
    return {"clips": len(clips), "modalities": modalities, "fused": fused / len(clips) if clips else None}
