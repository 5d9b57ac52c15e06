"""Group scenes: 1-5 cartoon people in wide grey hoods in front of a textured wall, with floating
confetti. :func:`plan_scene` draws every random choice of a scene up front, so that
:func:`render_frames` (and the tone of :mod:`synthetic.audio`) are pure functions of the plan.

What each modality's valence (in [-1, 1]) does to the scene: ``visual`` grades the wall's colour
(:func:`synthetic.cues.wall_colour`; people, hoods and confetti are not graded), ``face`` bends
every mouth, ``flow`` moves the confetti and people vertically (:func:`synthetic.cues.flow_speed`:
rising fast and bouncing, still, or sinking slowly; horizontal drift is a random nuisance).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import cv2
import numpy as np

from synthetic.cues import FACE, FLOW, VISUAL, flow_speed, wall_colour
from synthetic.faces import HOOD_RADIUS, SKIN_TONES, draw_cartoon_face, hood_colour
from synthetic.peaks import draw_moments, draw_peak, peak_envelope

REF_HEIGHT = 180.0
"""Reference frame height: cue magnitudes are given for a 180 px high frame and scale with height."""
_CONFETTI = np.array([(230, 60, 60), (60, 170, 70), (70, 110, 230), (240, 200, 40),
                      (200, 80, 200), (40, 190, 200), (250, 250, 250), (30, 30, 30)], np.float64)

Box = tuple[int, int, int, int]


@dataclass
class Person:
    """One person of a scene: head centre ``x``, ``y`` and height ``size`` (px), skin, the
    mouth's offset from the face cue, sway and bounce (amplitude px, Hz, phase rad) and the seed
    of their looks."""

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
class ScenePlan:
    """Every random choice of one group scene (frame size px, ``fps``, ``duration`` s, each
    modality's valence, the wall, the people, the confetti, the peak and the tone's nuisances)."""

    width: int
    height: int
    fps: float
    duration: float
    valence: dict[str, float]
    texture: np.ndarray                  # (H, W) float32 luminance multiplier
    tint: np.ndarray                     # (3,) per-clip colour offset
    brightness: float
    people: list[Person]
    confetti_xy: np.ndarray              # (N, 2) positions at t=0
    confetti_r: np.ndarray               # (N,) radii px
    confetti_col: np.ndarray             # (N, 3)
    confetti_square: np.ndarray          # (N,) bool
    drift_x: float                       # px/frame, shared horizontal nuisance
    confetti_vx: np.ndarray              # (N,) per-piece horizontal jitter px/frame
    confetti_speed: np.ndarray           # (N,) per-piece speed factor
    peak: dict[str, Any] | None
    audio_ref_hz: float
    audio_gain: float
    noise_gain: float
    face_carrier: int | None = None      # the one person whose mouth shows the face cue (None: everyone)

    def envelope(self, t: np.ndarray | float) -> np.ndarray:
        """Cue intensity in [floor, 1] at times ``t`` (s); 1 everywhere without a peak (a
        negative floor shows the opposite valence)."""
        return peak_envelope(self.peak, t)


def _make_texture(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Wall texture: (H, W) float32 multiplier around 1 (stripes or blotches of random phase)
    with a darker floor band at the bottom."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    k = height / REF_HEIGHT
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


def _sink_rate(intensity: float, duration: float) -> float:
    """Sinking speed of people in px/s at 180 px height: 6 px/s at full intensity, slower for
    clips over 4 s so that nobody sinks more than 24 px."""
    return intensity * min(6.0, 24.0 / max(duration, 1e-6))


def _plan_people(rng: np.random.Generator, n_faces: int, width: int, height: int, duration: float) -> list[Person]:
    """``n_faces`` people side by side, each in their own slot of the width, nearest last."""
    k = height / REF_HEIGHT
    people: list[Person] = []
    if not n_faces:
        return people
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
        people.append(Person(
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
    return people


def plan_scene(
    rng: np.random.Generator,
    valence: Mapping[str, float],
    *,
    width: int,
    height: int,
    fps: float,
    duration: float,
    n_faces: int,
    peak: bool | Mapping[str, Any],
    face_carrier: int | None = None,
) -> ScenePlan:
    """Draw a scene of ``n_faces`` people showing ``valence`` (modality -> [-1, 1]) for a
    ``width`` x ``height`` clip of ``duration`` s at ``fps``; ``peak``: True, its cues swell for
    about 1 s (:func:`synthetic.peaks.draw_peak`); a mapping ``{"family", "off_peak"}``, its
    moments drawn by :func:`synthetic.peaks.draw_moments`; ``face_carrier``: only this person (index into the
    plan's ``people``) shows the face cue, the others a neutral mouth (None: everyone shows it).
    The random draws do not depend on ``face_carrier``."""
    k = height / REF_HEIGHT
    texture = _make_texture(rng, width, height)
    tint = rng.uniform(-14, 14, 3)
    brightness = float(rng.uniform(0.9, 1.1))
    people = _plan_people(rng, n_faces, width, height, duration)

    n_conf = int(rng.integers(18, 32) * (width * height) / (320 * 180))
    n_conf = max(6, n_conf)
    confetti_xy = np.stack([rng.uniform(0, width, n_conf), rng.uniform(0, height, n_conf)], axis=1)
    confetti_r = rng.uniform(2.0, 4.5, n_conf) * k
    confetti_col = _CONFETTI[rng.integers(0, len(_CONFETTI), n_conf)]
    confetti_square = rng.random(n_conf) < 0.5
    drift_x = float(rng.uniform(-0.8, 0.8) * k)
    confetti_vx = rng.uniform(-0.3, 0.3, n_conf) * k
    confetti_speed = rng.uniform(0.8, 1.2, n_conf)

    peak_spec = (draw_moments(rng, duration, family=str(peak["family"]), off_peak=float(peak["off_peak"]))
                 if isinstance(peak, Mapping) else draw_peak(rng, duration) if peak else None)
    return ScenePlan(
        width=width, height=height, fps=fps, duration=duration, valence=dict(valence),
        texture=texture, tint=tint, brightness=brightness, people=people,
        confetti_xy=confetti_xy, confetti_r=confetti_r, confetti_col=confetti_col,
        confetti_square=confetti_square, drift_x=drift_x, confetti_vx=confetti_vx,
        confetti_speed=confetti_speed, peak=peak_spec,
        audio_ref_hz=float(rng.uniform(270, 330)), audio_gain=float(rng.uniform(0.08, 0.4)),
        noise_gain=float(rng.uniform(0.002, 0.02)), face_carrier=face_carrier,
    )


# --------------------------------------------------------------------------------------------
# rendering

def _render_wall(plan: ScenePlan, v_visual: float) -> np.ndarray:
    colour = np.clip(wall_colour(v_visual) * plan.brightness + plan.tint, 0, 255).astype(np.float32)
    return np.clip(plan.texture[..., None] * colour, 0, 255).astype(np.uint8)


def _confetti_positions(plan: ScenePlan, n_frames: int) -> np.ndarray:
    """(T, N, 2) confetti positions, wrapped around the frame edges."""
    k = plan.height / REF_HEIGHT
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


def _person_offsets(plan: ScenePlan, person: Person, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(dx, dy) in px of a person at times ``t``: random sway, plus a bounce (positive flow
    valence) or a slow sink (negative flow valence)."""
    k = plan.height / REF_HEIGHT
    v = plan.valence[FLOW]
    env = plan.envelope(t)
    dx = person.sway_amp * np.sin(2 * np.pi * person.sway_hz * t + person.sway_phase)
    bounce = 6.0 * k * max(v, 0.0) * env * np.abs(np.sin(np.pi * person.bounce_hz * t + person.bounce_phase))
    sink_rate = _sink_rate(max(-v, 0.0), plan.duration) * k * env
    sink = np.concatenate([[0.0], np.cumsum(sink_rate[:-1] * np.diff(t))]) if t.size > 1 else np.zeros_like(t)
    return dx, sink - bounce


def _draw_hood(frame: np.ndarray, center: tuple[float, float], person: Person) -> None:
    r = max(1, int(round(HOOD_RADIUS * person.size)))
    cv2.circle(frame, (int(round(center[0])), int(round(center[1]))), r, hood_colour(person.seed), -1, cv2.LINE_AA)


def _draw_confetti(frame: np.ndarray, xy: np.ndarray, plan: ScenePlan) -> None:
    for (x, y), r, col, square in zip(xy, plan.confetti_r, plan.confetti_col, plan.confetti_square):
        colour = tuple(float(c) for c in col)
        if square:
            pts = np.array([[x - r, y - r], [x + r, y - r], [x + r, y + r], [x - r, y + r]])
            cv2.fillConvexPoly(frame, np.round(pts * 16).astype(np.int32), colour, cv2.LINE_AA, shift=4)
        else:
            cv2.circle(frame, (int(round(x * 16)), int(round(y * 16))), int(round(r * 16)), colour, -1,
                       cv2.LINE_AA, shift=4)


def _draw_people(frame: np.ndarray, plan: ScenePlan, offsets: list[tuple[np.ndarray, np.ndarray]], i: int,
                 env_i: float) -> list[Box]:
    """Draw every person of frame ``i`` (hoods first, then faces); returns their head boxes.

    Every person wears a wide hood of a random, class-free colour. Hoods go down first, so no
    hood covers a face, and each reaches past the person's face crop (MTCNN box plus margin):
    face crops then show faces and hoods, never the graded wall, and the face stream has to read
    mouths instead of copying the visual stream's cue."""
    for person, (dx, dy) in zip(plan.people, offsets):
        _draw_hood(frame, (person.x + dx[i], person.y + dy[i]), person)
    boxes = []
    for j, (person, (dx, dy)) in enumerate(zip(plan.people, offsets)):
        shows = plan.face_carrier is None or j == plan.face_carrier
        mouth = float(np.clip((plan.valence[FACE] if shows else 0.0) * env_i + person.mouth_jitter, -1.0, 1.0))
        # the same feature jitter on every frame: a person keeps their looks
        boxes.append(draw_cartoon_face(frame, (person.x + dx[i], person.y + dy[i]), person.size, mouth,
                                       skin=person.skin, rng=np.random.default_rng(person.seed)))
    return boxes


def render_frames(plan: ScenePlan, n_frames: int) -> tuple[np.ndarray, list[list[Box]]]:
    """Render ``n_frames`` frames of ``plan``: ((T, H, W, 3) uint8 RGB, per frame the head boxes
    ``(x0, y0, x1, y1)`` px of its people)."""
    t = np.arange(n_frames) / plan.fps
    env = plan.envelope(t)
    static_wall = _render_wall(plan, plan.valence[VISUAL]) if plan.peak is None else None
    confetti = _confetti_positions(plan, n_frames)
    offsets = [_person_offsets(plan, p, t) for p in plan.people]
    frames = np.empty((n_frames, plan.height, plan.width, 3), np.uint8)
    boxes: list[list[Box]] = []
    for i in range(n_frames):
        frame = frames[i]
        frame[...] = static_wall if static_wall is not None else _render_wall(plan, plan.valence[VISUAL] * env[i])
        _draw_confetti(frame, confetti[i], plan)
        boxes.append(_draw_people(frame, plan, offsets, i, env[i]))
    return frames, boxes


def people_masks(plan: ScenePlan, n_frames: int) -> np.ndarray:
    """(T, H, W) bool: where the people (hoods and faces) of each frame of ``plan`` are; the rest
    of the frame is the graded wall (which carries the visual cue) and the confetti."""
    t = np.arange(n_frames) / plan.fps
    env = plan.envelope(t)
    offsets = [_person_offsets(plan, p, t) for p in plan.people]
    masks = np.zeros((n_frames, plan.height, plan.width), bool)
    canvas = np.zeros((plan.height, plan.width, 3), np.uint8)
    for i in range(n_frames):
        canvas[...] = 0
        _draw_people(canvas, plan, offsets, i, env[i])
        masks[i] = canvas.any(axis=-1)
    return masks
