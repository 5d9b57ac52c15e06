"""Cartoon people: the face every synthetic set draws (head with hair, eyes, brows, nose, mouth;
neck and shoulders), their skin tones, and the grey hood behind each head."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

SKIN_TONES: tuple[tuple[int, int, int], ...] = (
    (241, 200, 170), (224, 176, 142), (205, 150, 115), (180, 125, 92), (150, 102, 72))
DEFAULT_SKIN = (224, 176, 142)
Colour = tuple[int, ...]
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


@dataclass(frozen=True)
class _Features:
    """The checked expression features of one face (see :func:`draw_cartoon_face`)."""

    mouth: float
    mouth_open: float
    eye_open: float
    brow_tilt: float
    brow_raise: float
    brow_weight: float


class _Canvas:
    """A padded copy of the image region around a person, and the mask of what was drawn in it;
    points are given in image pixels and drawn in region pixels."""

    def __init__(self, image: np.ndarray, cx: float, top: float, cy: float, s: float, center: tuple[float, float],
                 size: float) -> None:
        height, width = image.shape[:2]
        pad = int(np.ceil(0.1 * s)) + 3
        self.x0, self.y0 = max(0, int(cx - 0.8 * s) - pad), max(0, int(top - 0.1 * s) - pad)
        self.x1, self.y1 = min(width, int(cx + 0.8 * s) + pad), min(height, int(cy + 1.5 * s) + pad)
        if self.x0 >= self.x1 or self.y0 >= self.y1:
            raise ValueError(f"draw_cartoon_face: face at {center} size {size} lies outside the {width}x{height} image")
        self.roi = image[self.y0:self.y1, self.x0:self.x1].copy()
        self.mask = np.zeros(self.roi.shape[:2], np.uint8)

    def point(self, x: float, y: float) -> tuple[int, int]:
        return int(round(x - self.x0)), int(round(y - self.y0))

    def fixed(self, points: np.ndarray) -> np.ndarray:
        """Image-pixel points as region-pixel int32 points with 4 fractional bits (``shift=4``)."""
        return np.round((points - (self.x0, self.y0)) * 16).astype(np.int32)


def _axes(a: float, b: float) -> tuple[int, int]:
    return max(1, int(round(a))), max(1, int(round(b)))


def _shade(colour: Colour, factor: float) -> Colour:
    return tuple(int(c * factor) for c in colour)


def _check_features(image: np.ndarray, size: int, mouth: float, mouth_open: float, eye_open: float,
                    brow_tilt: float, brow_raise: float, brow_weight: float) -> _Features:
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"draw_cartoon_face needs an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    if size < 4:
        raise ValueError(f"draw_cartoon_face: size must be >= 4 px, got {size}")
    features = _Features(mouth=float(np.clip(mouth, -1.0, 1.0)), mouth_open=float(np.clip(mouth_open, 0.0, 1.0)),
                         eye_open=float(np.clip(eye_open, 0.3, 1.8)), brow_tilt=float(np.clip(brow_tilt, -1.0, 1.0)),
                         brow_raise=float(np.clip(brow_raise, -1.0, 1.0)), brow_weight=brow_weight)
    if not brow_weight > 0:
        raise ValueError(f"draw_cartoon_face: brow_weight must be > 0, got {brow_weight}")
    return features


def _jitter(rng: np.random.Generator | None) -> Callable[[float, float], float]:
    """A draw in [lo, hi) from ``rng``, or the middle of the range without one."""
    if rng is not None:
        def j(lo: float, hi: float) -> float:
            return float(rng.uniform(lo, hi))
    else:
        def j(lo: float, hi: float) -> float:
            return (lo + hi) / 2
    return j


def _draw_body(c: _Canvas, cx: float, cy: float, s: float, hw: float, hh: float, skin: Colour, hair: Colour,
               shirt: Colour) -> None:
    """Hair behind the head, then neck and shoulders, into the region and the mask."""
    aa = cv2.LINE_AA
    # hair: a dark cap behind the head, framing the temples
    for canvas, colour in ((c.roi, hair), (c.mask, 255)):
        cv2.ellipse(canvas, c.point(cx, cy - 0.08 * s), _axes(hw * 1.2, hh * 0.95), 0, 160, 380, colour, -1, aa)
    # neck and shoulders: context that face detectors expect below a face
    neck = _shade(skin, 0.85)
    for canvas, c_neck, c_shirt in ((c.roi, neck, shirt), (c.mask, 255, 255)):
        cv2.rectangle(canvas, c.point(cx - 0.17 * s, cy + 0.3 * s), c.point(cx + 0.17 * s, cy + 0.75 * s), c_neck, -1)
        cv2.ellipse(canvas, c.point(cx, cy + 1.05 * s), _axes(0.75 * s, 0.45 * s), 0, 180, 360, c_shirt, -1, aa)


def _draw_head(c: _Canvas, cx: float, cy: float, s: float, hw: float, hh: float, skin: Colour) -> None:
    """Ears and an egg-shaped head (narrower at the chin) with a shaded rim."""
    aa = cv2.LINE_AA
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    ex_, ey_ = np.cos(t), np.sin(t)
    ex_ = ex_ * (1 - 0.2 * np.clip(ey_, 0, None) ** 2)
    head = np.round((np.stack([cx + hw * ex_ - c.x0, cy + hh * ey_ - c.y0], 1)) * 16).astype(np.int32)
    ear = _shade(skin, 0.92)
    for canvas, c_skin, c_ear in ((c.roi, skin, ear), (c.mask, 255, 255)):
        for sx in (-1, 1):
            cv2.ellipse(canvas, c.point(cx + sx * hw * 0.98, cy - 0.02 * s), _axes(0.06 * s, 0.11 * s), 0, 0, 360,
                        c_ear, -1, aa)
        cv2.fillPoly(canvas, [head], c_skin, aa, shift=4)
    # a shaded rim separates the face from walls of similar colour (warm walls vs skin)
    cv2.polylines(c.roi, [head], True, _shade(skin, 0.55), max(1, int(round(0.05 * s))), aa, shift=4)


def _draw_eyes_and_brows(c: _Canvas, cx: float, eye_y: float, s: float, eye_rx: float, eye_ry: float, skin: Colour,
                         f: _Features) -> None:
    """Eyes in slightly shaded sockets, wide apart at ``eye_y``; brows above them."""
    aa = cv2.LINE_AA
    socket = _shade(skin, 0.82)
    for sx in (-1, 1):
        ex, ey = cx + sx * 0.19 * s, eye_y
        cv2.ellipse(c.roi, c.point(ex, ey), _axes(eye_rx * 1.5, eye_ry * 2.0 * max(1.0, 0.8 * f.eye_open)), 0, 0, 360,
                    socket, -1, aa)
        cv2.ellipse(c.roi, c.point(ex, ey), _axes(eye_rx, eye_ry * f.eye_open), 0, 0, 360, (235, 235, 230), -1, aa)
        cv2.circle(c.roi, c.point(ex, ey), max(1, int(round(min(0.04 * s, max(0.02 * s, eye_ry * f.eye_open))))),
                   (40, 28, 24), -1, aa)
        by = eye_y - 0.11 * s - f.brow_raise * 0.06 * s
        # brow ends: inner (towards the nose) and outer; tilt moves the inner end most
        dy_in, dy_out = -f.brow_tilt * 0.07 * s, f.brow_tilt * 0.025 * s
        x_a, x_b = ex - eye_rx, ex + eye_rx        # left and right end of this brow
        dy_a, dy_b = (dy_out, dy_in) if sx < 0 else (dy_in, dy_out)
        cv2.line(c.roi, c.point(x_a, by + 1 + dy_a), c.point(x_b, by + dy_b), (70, 45, 30),
                 max(1, int(round(0.03 * s * f.brow_weight))), aa)


def _draw_mouth(c: _Canvas, cx: float, mouth_y: float, s: float, f: _Features) -> None:
    """A parabola at ``mouth_y`` whose corners rise for a smile; open, a dark gap below it.
    (Broad and thick on purpose: face crops are small, and the cue has to survive 48 px crops.)"""
    aa = cv2.LINE_AA
    xs = np.linspace(-1.0, 1.0, 15)
    bend = 0.14 * s * f.mouth
    curve = np.stack([cx + xs * 0.22 * s - c.x0, mouth_y + bend * (1.0 - xs ** 2) - bend * 0.5 - c.y0], axis=1)
    if f.mouth_open > 0:
        # an open mouth: a dark gap between the upper lip (the curve) and a lower lip below it
        lower = curve + np.stack([np.zeros_like(xs), 0.16 * s * f.mouth_open * (1.0 - xs ** 2)], axis=1)
        gap = np.concatenate([curve, lower[::-1]])
        cv2.fillPoly(c.roi, [np.round(gap * 16).astype(np.int32)], (70, 20, 28), aa, shift=4)
        cv2.polylines(c.roi, [np.round(curve * 16).astype(np.int32), np.round(lower * 16).astype(np.int32)], False,
                      (150, 40, 45), max(1, int(round(0.05 * s))), aa, shift=4)
    else:
        cv2.polylines(c.roi, [np.round(curve * 16).astype(np.int32)], False, (150, 40, 45),
                      max(1, int(round(0.07 * s))), aa, shift=4)


def _blend(image: np.ndarray, c: _Canvas, s: float) -> None:
    """Soften the drawn region with a small Gaussian blur and blend it back through the mask, so
    the blur does not touch the background outside the person."""
    sigma = max(1.2, s / 35.0)
    roi = cv2.GaussianBlur(c.roi, (0, 0), sigma)
    alpha = cv2.GaussianBlur(cv2.dilate(c.mask, np.ones((3, 3), np.uint8)), (0, 0), sigma)
    alpha = alpha.astype(np.float32) * (1.0 / 255.0)
    region = image[c.y0:c.y1, c.x0:c.x1]
    region[...] = cv2.blendLinear(roi, region, alpha, 1.0 - alpha)


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
    f = _check_features(image, size, mouth, mouth_open, eye_open, brow_tilt, brow_raise, brow_weight)
    cx, cy = float(center[0]), float(center[1])
    s = float(size)
    j = _jitter(rng)
    height, width = image.shape[:2]
    hw, hh = 0.40 * s, 0.5 * s          # head half-width, half-height
    top = cy - hh
    skin = tuple(int(c) for c in skin)
    hair_shade = j(0.25, 0.55)
    hair = (int((90 * hair_shade + 20) / 1.6), int((60 * hair_shade + 15) / 1.6), int((40 * hair_shade + 10) / 1.6))
    shirt = (int(60 + 120 * j(0, 1)), int(60 + 120 * j(0, 1)), int(60 + 120 * j(0, 1)))
    eye_rx, eye_ry = 0.09 * s * j(0.9, 1.1), 0.055 * s * j(0.9, 1.1)

    # Everything is drawn into a padded copy of the region and blended back through a soft mask.
    c = _Canvas(image, cx, top, cy, s, center, size)
    _draw_body(c, cx, cy, s, hw, hh, skin, hair, shirt)
    _draw_head(c, cx, cy, s, hw, hh, skin)
    eye_y = top + 0.45 * 2 * hh         # eyes at ~45 % of the head height
    _draw_eyes_and_brows(c, cx, eye_y, s, eye_rx, eye_ry, skin, f)
    # nose: a shaded wedge
    nose_tip = top + 0.64 * 2 * hh
    nose = np.array([[cx, eye_y + 0.05 * s], [cx - 0.06 * s, nose_tip], [cx + 0.06 * s, nose_tip]])
    cv2.fillConvexPoly(c.roi, c.fixed(nose), _shade(skin, 0.78), cv2.LINE_AA, shift=4)
    _draw_mouth(c, cx, top + 0.77 * 2 * hh, s, f)      # mouth at ~77 % of the head height
    _blend(image, c, s)
    x0 = max(0, int(np.floor(cx - hw)))
    y0 = max(0, int(np.floor(cy - hh)))
    x1 = min(width, int(np.ceil(cx + hw)) + 1)
    y1 = min(height, int(np.ceil(cy + hh)) + 1)
    return x0, y0, x1, y1
