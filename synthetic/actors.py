"""Actor clips: ONE cartoon actor in a wide grey hood in front of a studio wall, with drifting dust
specks behind them, and a voice, every modality showing an emotion (:mod:`synthetic.emotions`).
The actor keeps their looks (skin, hair, size, shirt, hood) and voice pitch in every clip and
only sways a little, whatever the class; the hood fills the face crop, so face crops do not show
the wall."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import cv2
import numpy as np

from synthetic.audio import synthesize_speech
from synthetic.cues import AUDIO, FACE, FLOW, MODALITIES, VISUAL
from synthetic.emotions import (
    EMOTIONS,
    EXPRESSIONS,
    MOTIONS,
    VOICES,
    WALL_COLOURS,
    Expression,
    canonical_emotion,
    check_shown,
)
from synthetic.faces import SKIN_TONES, draw_cartoon_face, hood_colour
from synthetic.output import check_geometry
from synthetic.scenes import REF_HEIGHT


@dataclass(frozen=True)
class Actor:
    """An actor's looks and voice, the same in every clip: ``actor_id`` as in the file names,
    ``skin`` RGB, ``size`` head height as a fraction of the frame height, ``x`` the head centre as
    a fraction of the width, ``looks_seed`` (hair, shirt and feature jitter, and the hood's grey),
    ``voice_hz`` the actor's own pitch."""

    actor_id: int
    skin: tuple[int, int, int]
    size: float
    x: float
    looks_seed: int
    voice_hz: float


def make_actor(actor_id: int, seed: int) -> Actor:
    """The actor ``actor_id`` of the dataset drawn with ``seed`` (the same actor for the same pair)."""
    rng = np.random.default_rng([int(seed), 1000003, int(actor_id)])
    return Actor(actor_id=int(actor_id), skin=SKIN_TONES[int(rng.integers(0, len(SKIN_TONES)))],
                 size=float(rng.uniform(0.40, 0.48)), x=float(rng.uniform(0.44, 0.56)),
                 looks_seed=int(rng.integers(0, 2 ** 31)), voice_hz=float(rng.uniform(180.0, 250.0)))


def _studio_wall(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """(H, W) float32 luminance multiplier around 1: a soft light spot, faint blotches, grain."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = rng.uniform(0.3, 0.7) * width, rng.uniform(0.2, 0.5) * height
    spot = np.exp(-(((xx - cx) / (0.8 * width)) ** 2 + ((yy - cy) / (0.9 * height)) ** 2))
    coarse = rng.standard_normal((max(2, height // 24), max(2, width // 24))).astype(np.float32)
    blotches = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    texture = 0.88 + 0.2 * spot + 0.04 * blotches + 0.02 * rng.standard_normal((height, width)).astype(np.float32)
    return texture.astype(np.float32)


def _specks(rng: np.random.Generator, width: int, height: int, n_frames: int, motion: tuple[float, float],
            strength: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dust specks: positions (T, N, 2) wrapped around the frame, radii (N,), grey levels (N,)."""
    k = height / REF_HEIGHT
    n = max(8, int(rng.integers(26, 40) * (width * height) / (320 * 180)))
    start = np.stack([rng.uniform(0, width, n), rng.uniform(0, height, n)], axis=1)
    speed = rng.uniform(0.8, 1.2, n)
    vy = motion[0] * k * strength * speed
    direction = 1.0 if rng.random() < 0.5 else -1.0
    vx = direction * motion[1] * k * strength * speed + rng.uniform(-0.3, 0.3, n) * k
    steps = np.arange(n_frames)[:, None]
    margin = 8.0 * k
    x = np.mod(start[None, :, 0] + steps * vx[None] + margin, width + 2 * margin) - margin
    y = np.mod(start[None, :, 1] + steps * vy[None] + margin, height + 2 * margin) - margin
    radius = rng.uniform(2.0, 4.0, n) * k
    level = rng.choice([235.0, 25.0], n) + rng.uniform(-15, 15, n)
    return np.stack([x, y], axis=-1), radius, level


def _backdrop(rng: np.random.Generator, cue: Mapping[str, str], width: int, height: int, n_frames: int,
              cue_jitter: float) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The wall in the visual cue's colour ((H, W, 3) uint8) and the specks moving as the flow
    cue says (see :func:`_specks`)."""
    wall = _studio_wall(rng, width, height)
    colour = np.asarray(WALL_COLOURS[cue[VISUAL]], np.float32) * rng.uniform(0.9, 1.1)
    colour = colour + rng.uniform(-8, 8, 3) * (1 + cue_jitter)
    background = np.clip(wall[..., None] * colour, 0, 255).astype(np.uint8)
    strength = float(rng.uniform(1 - cue_jitter, 1 + cue_jitter * 0.5))
    return background, _specks(rng, width, height, n_frames, MOTIONS[cue[FLOW]], strength)


def _jittered_expression(rng: np.random.Generator, emotion: str, intensity: float, cue_jitter: float) -> Expression:
    """The face cue of ``emotion`` at ``intensity`` with per-clip jitter (one draw of five)."""
    face = EXPRESSIONS[emotion].scaled(intensity)
    j = rng.uniform(-cue_jitter, cue_jitter, 5) * np.array([0.5, 0.3, 0.4, 0.4, 0.4])
    return Expression(mouth=float(np.clip(face.mouth + j[0], -1, 1)),
                      mouth_open=float(np.clip(face.mouth_open + abs(j[1]) * (face.mouth_open > 0), 0, 1)),
                      eye_open=float(np.clip(face.eye_open * (1 + j[2] * 0.5), 0.3, 1.8)),
                      brow_tilt=float(np.clip(face.brow_tilt + j[3], -1, 1)),
                      brow_raise=float(np.clip(face.brow_raise + j[4], -1, 1)))


def _render_actor_frames(background: np.ndarray, specks: tuple[np.ndarray, np.ndarray, np.ndarray], actor: Actor,
                         face: Expression, rng: np.random.Generator, n_frames: int,
                         fps: float) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """``n_frames`` frames ((T, H, W, 3) uint8) of the actor swaying in front of the backdrop,
    and the first frame's head box; ``rng`` draws the actor's place and sway."""
    height, width = background.shape[:2]
    k = height / REF_HEIGHT
    positions, radii, levels = specks
    size = actor.size * height
    cx, cy = actor.x * width + rng.uniform(-0.03, 0.03) * width, (0.44 + rng.uniform(-0.03, 0.03)) * height
    sway_amp, sway_hz, sway_phase = rng.uniform(0.5, 2.0) * k, rng.uniform(0.2, 0.5), rng.uniform(0, 2 * np.pi)
    hood = hood_colour(actor.looks_seed)
    hood_r = max(1, int(round(size)))
    frames = np.empty((n_frames, height, width, 3), np.uint8)
    first_box = None
    for i in range(n_frames):
        frame = frames[i]
        frame[...] = background
        for (x, y), r, g in zip(positions[i], radii, levels):
            cv2.circle(frame, (int(round(x * 16)), int(round(y * 16))), int(round(r * 16)), (g, g, g), -1,
                       cv2.LINE_AA, shift=4)
        t = i / fps
        hx = cx + sway_amp * np.sin(2 * np.pi * sway_hz * t + sway_phase)
        hy = cy + 0.5 * sway_amp * np.sin(2 * np.pi * sway_hz * 0.7 * t + sway_phase + 1.0)
        cv2.circle(frame, (int(round(hx)), int(round(hy))), hood_r, hood, -1, cv2.LINE_AA)
        box = draw_cartoon_face(frame, (hx, hy), size, face.mouth, skin=actor.skin,
                                rng=np.random.default_rng(actor.looks_seed), mouth_open=face.mouth_open,
                                eye_open=face.eye_open, brow_tilt=face.brow_tilt, brow_raise=face.brow_raise,
                                brow_weight=2.0)
        if first_box is None:
            first_box = box
    return frames, first_box


def render_actor_clip(
    *,
    label: str,
    actor: Actor,
    rng: np.random.Generator,
    classes: Sequence[str] = EMOTIONS,
    shown: Mapping[str, str] | None = None,
    intensity: float = 1.0,
    sentence_seed: int = 0,
    duration: float = 3.0,
    width: int = 320,
    height: int = 180,
    fps: float = 15,
    sample_rate: int = 16000,
    with_audio: bool = True,
    cue_jitter: float = 0.2,
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Render one clip of ``actor`` showing emotion ``label`` (a name in ``classes``).

    ``shown`` maps each modality (:data:`synthetic.cues.MODALITIES`) to the class it displays
    (default: all show ``label``). ``intensity`` in (0, 1] scales the expression and loudness;
    ``sentence_seed`` fixes the syllable timing and vowels; ``cue_jitter`` is the per-clip
    jitter of the cues (0 = exactly as designed).
    Returns ``(frames, audio, record)``: frames ``(T, H, W, 3)`` uint8 RGB with
    ``T = round(duration * fps)``, audio float32 ``(round(duration * sample_rate),)`` or None,
    and a JSON-able record: ``class``, ``shown`` (modality -> class, None for audio without a
    track), ``has_audio``, ``n_faces`` (1), ``faces`` (the first frame's head box), ``actor``,
    ``intensity``, ``frames``.
    """
    check_geometry(width, height, fps, duration)
    if not 0 < intensity <= 1:
        raise ValueError(f"intensity must be in (0, 1], got {intensity}")
    if label not in classes:
        raise ValueError(f"label {label!r} is not one of the classes {tuple(classes)}")
    shown_d = check_shown(shown if shown is not None else {m: label for m in MODALITIES}, classes)
    cue = {m: canonical_emotion(c) for m, c in shown_d.items()}
    n_frames = max(1, int(round(duration * fps)))

    background, specks = _backdrop(rng, cue, width, height, n_frames, cue_jitter)
    face = _jittered_expression(rng, cue[FACE], intensity, cue_jitter)
    frames, first_box = _render_actor_frames(background, specks, actor, face, rng, n_frames, fps)
    audio = None
    if with_audio:
        level, contour, rate = VOICES[cue[AUDIO]]
        level += float(rng.uniform(-cue_jitter, cue_jitter)) * 0.5
        audio = synthesize_speech(level=level, contour=contour, rate=rate, voice_hz=actor.voice_hz, duration=duration,
                                  sample_rate=sample_rate, sentence_seed=sentence_seed, rng=rng,
                                  loudness=0.6 + 0.4 * intensity)
    record = {
        "class": label,
        "shown": {m: (None if m == AUDIO and audio is None else c) for m, c in shown_d.items()},
        "has_audio": audio is not None,
        "n_faces": 1,
        "faces": [{"box": list(first_box), "size": round(actor.size * height, 2)}],
        "actor": actor.actor_id,
        "intensity": round(float(intensity), 3),
        "frames": n_frames,
    }
    return frames, audio, record
