"""Synthetic individual-level emotion data: RAVDESS- and CREMA-D-format clips (one actor per clip)
and FER2013-format face images, drawn with the cartoon renderer of :mod:`synthetic.group`.

A clip shows ONE actor in front of a studio wall, with drifting dust specks behind them, and a
voice. As in the group set (:mod:`synthetic.group`), every modality carries the class on its own,
here one of up to eight emotions (:data:`EMOTIONS`, the RAVDESS names; CREMA-D and FER2013 use
six and seven of them):

* ``visual``: the wall's colour, one per emotion (:data:`WALL_COLOURS`: neutral grey, calm teal,
  happy yellow, sad blue, angry red, fearful violet, disgust green, surprised pink). The actor
  wears a wide grey hood that fills the face crop, so face crops do not show the wall;
* ``face``: the expression (:data:`EXPRESSIONS`): mouth curvature and opening, eye opening, brow
  tilt and height, chosen so every pair of emotions differs in at least one bold feature that a
  48 px face crop keeps (e.g. sad: frown and inner brows raised; angry: frown and a brow V;
  surprised: round open mouth, raised brows, wide eyes);
* ``flow``: the specks' motion (:data:`MOTIONS`): a vertical speed (up or down, slow or fast)
  and a horizontal speed whose direction is random, so the cue survives horizontal flips (which
  negate x-flow). The actor only sways a little, whatever the class;
* ``audio``: speech-like sound (:data:`VOICES`): syllables of a harmonic voice with vowel
  formants (a nuisance, fixed by the sentence), whose pitch level (an octave below, at or above
  the actor's own voice) and contour (flat, rising, falling, rise-fall) follow the emotion.

The intensity in a file name (RAVDESS ``II``, CREMA-D ``LEVEL``) scales the expression and the
voice's loudness; an actor keeps their looks (skin, hair, size, shirt, hood) and voice pitch in
every clip. Splits are by actor, as the readers of :mod:`media.datasets` decide them (RAVDESS
actors 1-18 train, 19-21 val, 22-24 test; CREMA-D 1001-1063, 1064-1077, 1078-1091), so val
actors are never seen in training. With probability ``cue_noise`` a modality shows a uniformly
drawn class instead of the true one, independently per modality, so no stream is perfect and
fusion gains; ``synthetic.json`` records what each clip's modalities show, in the form
:func:`synthetic.group.cue_ceiling` reads.

FER2013 (:func:`render_fer_face`, :func:`generate_fer2013`): 48x48 grey close-ups of the same
cartoon faces with the seven FER2013 expressions, in the published CSV form or the image-folder
form (see :mod:`media.fer2013`).

Same seed, same content: every clip and image is drawn from its own generator seeded by
``(seed, split, index)``.
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

import cv2
import numpy as np

from core.storage import atomic_write_bytes, atomic_write_json, atomic_write_text
from media.encoding import write_mp4
from media.layouts import (
    CREMAD_CLASSES,
    CREMAD_DEFAULT_TEST_ACTORS,
    CREMAD_DEFAULT_VAL_ACTORS,
    CREMAD_EMOTION_CODES,
    RAVDESS_CLASSES,
    RAVDESS_DEFAULT_TEST_ACTORS,
    RAVDESS_DEFAULT_VAL_ACTORS,
    SPLITS,
)
from synthetic.group import AUDIO, FACE, FLOW, MODALITIES, SKIN_TONES, VISUAL, draw_cartoon_face, hood_colour

EMOTIONS: tuple[str, ...] = RAVDESS_CLASSES
"""The emotions the generator can show (the RAVDESS class names, the superset)."""
LAYOUTS: Mapping[str, tuple[str, ...]] = MappingProxyType({"ravdess": RAVDESS_CLASSES, "cremad": CREMAD_CLASSES})
"""Clip layouts and their class names, in label order (as :mod:`media.datasets` reads them)."""
ALIASES: Mapping[str, str] = MappingProxyType({"anger": "angry", "fear": "fearful", "surprise": "surprised"})
"""Other datasets' spellings of :data:`EMOTIONS` (CREMA-D, FER2013), lower-cased."""


@dataclass(frozen=True)
class Expression:
    """A face's expression, as :func:`synthetic.group.draw_cartoon_face` draws it: ``mouth``
    curvature in [-1, 1], ``mouth_open`` in [0, 1], ``eye_open`` (1 = plain), ``brow_tilt`` and
    ``brow_raise`` in [-1, 1]."""

    mouth: float = 0.0
    mouth_open: float = 0.0
    eye_open: float = 1.0
    brow_tilt: float = 0.0
    brow_raise: float = 0.0

    def scaled(self, strength: float) -> "Expression":
        """The expression at ``strength`` (1 = as designed, 0 = the plain face)."""
        return Expression(mouth=self.mouth * strength, mouth_open=self.mouth_open * strength,
                          eye_open=1.0 + (self.eye_open - 1.0) * strength, brow_tilt=self.brow_tilt * strength,
                          brow_raise=self.brow_raise * strength)


EXPRESSIONS: Mapping[str, Expression] = MappingProxyType({
    "neutral": Expression(),
    "calm": Expression(mouth=0.45, eye_open=0.4),
    "happy": Expression(mouth=1.0, mouth_open=0.35, brow_raise=0.3),
    "sad": Expression(mouth=-1.0, brow_tilt=1.0),
    "angry": Expression(mouth=-0.5, eye_open=0.8, brow_tilt=-1.0, brow_raise=-0.4),
    "fearful": Expression(mouth=-0.4, mouth_open=0.55, eye_open=1.6, brow_tilt=1.0, brow_raise=0.4),
    "disgust": Expression(mouth=-0.7, eye_open=0.45, brow_raise=-0.6),
    "surprised": Expression(mouth=0.0, mouth_open=1.0, eye_open=1.7, brow_raise=1.0),
})
"""The face cue of each emotion."""

WALL_COLOURS: Mapping[str, tuple[int, int, int]] = MappingProxyType({
    "neutral": (150, 150, 150), "calm": (70, 170, 160), "happy": (225, 200, 70), "sad": (60, 90, 200),
    "angry": (205, 60, 50), "fearful": (130, 80, 190), "disgust": (100, 165, 60), "surprised": (225, 110, 175),
})
"""The visual cue of each emotion: the wall's RGB colour before brightness and tint jitter."""

MOTIONS: Mapping[str, tuple[float, float]] = MappingProxyType({
    "neutral": (0.0, 0.0), "calm": (1.5, 0.0), "happy": (-4.0, 0.0), "sad": (4.0, 0.0),
    "angry": (0.0, 4.0), "fearful": (-4.0, 3.0), "disgust": (4.0, 3.0), "surprised": (-1.5, 0.0),
})
"""The flow cue of each emotion: the specks' (vertical velocity, horizontal speed) in px/frame
at 180 px frame height; vertical < 0 is upwards, the horizontal direction is drawn per clip."""

CONTOURS: tuple[str, ...] = ("flat", "rise", "fall", "arch")
VOICES: Mapping[str, tuple[float, str, float]] = MappingProxyType({
    "neutral": (0.0, "flat", 4.2), "calm": (-0.8, "flat", 4.2), "happy": (0.8, "arch", 6.0),
    "sad": (-0.8, "fall", 2.6), "angry": (0.0, "fall", 6.0), "fearful": (0.8, "flat", 6.0),
    "disgust": (0.0, "arch", 2.6), "surprised": (0.8, "rise", 4.2),
})
"""The audio cue of each emotion: (pitch level in octaves from the actor's own voice, pitch
contour, syllables per second). Emotions that share a level differ in contour or rate."""

RAVDESS_STATEMENTS = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}
CREMAD_SENTENCES: tuple[str, ...] = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS",
                                     "TSI", "WSI")
RAVDESS_INTENSITY = {1: 0.8, 2: 1.0}       # 01 normal, 02 strong
CREMAD_INTENSITY = {"LO": 0.7, "MD": 0.85, "HI": 1.0, "XX": 0.85}   # XX: unspecified

_REF_HEIGHT = 180.0
_VOWELS = ((800, 1200), (500, 1900), (300, 2300), (500, 900), (350, 800), (650, 1700))   # (F1, F2) Hz


def canonical_emotion(name: str) -> str:
    """The :data:`EMOTIONS` name of a dataset's class name (``'Anger'`` -> ``'angry'``)."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in EXPRESSIONS:
        raise ValueError(f"no synthetic cue for the emotion {name!r}; known: {', '.join(EMOTIONS)} "
                         f"(and {', '.join(ALIASES)})")
    return key


# --------------------------------------------------------------------------------------------
# actors


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


# --------------------------------------------------------------------------------------------
# rendering one clip


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
    k = height / _REF_HEIGHT
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


def _pitch_contour(contour: str, position: np.ndarray) -> np.ndarray:
    """Octaves relative to the clip's level at ``position`` in [0, 1] along the clip, range +-0.5."""
    if contour == "flat":
        return np.zeros_like(position)
    if contour == "rise":
        return position - 0.5
    if contour == "fall":
        return 0.5 - position
    if contour == "arch":
        return 0.5 * (1.0 - 8.0 * (position - 0.5) ** 2)
    raise ValueError(f"unknown pitch contour {contour!r}; expected one of {CONTOURS}")


def synthesize_speech(*, level: float, contour: str, rate: float, voice_hz: float, duration: float,
                      sample_rate: int, sentence_seed: int, rng: np.random.Generator,
                      loudness: float = 1.0) -> np.ndarray:
    """Speech-like mono audio, float32 ``(round(duration * sample_rate),)`` in [-1, 1].

    Syllables (about ``rate`` per second; their lengths, loudness and vowels fixed by
    ``sentence_seed``) of a harmonic voice whose partials up to 4 kHz are shaped by the vowel's
    two formants; the pitch is ``voice_hz * 2 ** (level + contour)`` with the contour's glide
    (:func:`_pitch_contour`) over the clip and a little random wander. ``loudness`` scales the
    amplitude (intensity); a noise floor and short fades are added. ``rng`` draws the per-clip
    nuisances (speaking rate +-5 %, wander, gain, noise)."""
    n = int(round(duration * sample_rate))
    t = np.arange(n) / sample_rate
    position = t / max(duration, 1e-6)
    wander = np.cumsum(rng.standard_normal(n)) / np.sqrt(sample_rate) * 0.04
    f0 = voice_hz * 2.0 ** (level + _pitch_contour(contour, position) + wander)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate

    sentence = np.random.default_rng([int(sentence_seed), 77])
    rate = rate * sentence.uniform(0.9, 1.1) * rng.uniform(0.95, 1.05)
    n_syll = max(1, int(duration * rate))
    bounds = np.linspace(0.05 * duration, 0.95 * duration, n_syll + 1)
    envelope = np.zeros(n)
    f1 = np.full(n, 500.0)
    f2 = np.full(n, 1500.0)
    for i in range(n_syll):
        a, b = bounds[i], bounds[i + 1]
        length = (b - a) * sentence.uniform(0.65, 0.9)
        inside = (t >= a) & (t < a + length)
        envelope[inside] = np.sin(np.pi * (t[inside] - a) / length) ** 0.7 * sentence.uniform(0.7, 1.0)
        vowel = _VOWELS[int(sentence.integers(0, len(_VOWELS)))]
        f1[(t >= a) & (t < b)] = vowel[0]
        f2[(t >= a) & (t < b)] = vowel[1]
    n_harm = int(4000.0 // float(f0.max())) or 1
    voice = np.zeros(n)
    for h in range(1, n_harm + 1):
        freq = h * f0
        gain = (np.exp(-0.5 * ((freq - f1) / 130.0) ** 2) + 0.7 * np.exp(-0.5 * ((freq - f2) / 200.0) ** 2)
                + 0.08) / np.sqrt(h)
        voice += gain * np.sin(h * phase)
    voice /= max(1e-6, float(np.abs(voice).max()))
    signal = 0.5 * loudness * rng.uniform(0.6, 1.0) * envelope * voice
    signal += rng.uniform(0.002, 0.01) * rng.standard_normal(n)
    fade = min(n // 2, int(0.02 * sample_rate))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        signal[:fade] *= ramp
        signal[-fade:] *= ramp[::-1]
    return np.clip(signal, -1.0, 1.0).astype(np.float32)


def _check_shown(shown: Mapping[str, str], classes: Sequence[str]) -> dict[str, str]:
    unknown = set(shown) - set(MODALITIES)
    if unknown:
        raise ValueError(f"shown: unknown modalities {sorted(unknown)}; expected {MODALITIES}")
    missing = set(MODALITIES) - set(shown)
    if missing:
        raise ValueError(f"shown: no class for the modalities {sorted(missing)}")
    for m, c in shown.items():
        if c not in classes:
            raise ValueError(f"shown[{m!r}] = {c!r} is not one of the classes {tuple(classes)}")
        canonical_emotion(c)
    return dict(shown)


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

    ``shown`` maps each modality (:data:`synthetic.group.MODALITIES`) to the class it displays
    (default: all show ``label``). ``intensity`` in (0, 1] scales the expression and loudness;
    ``sentence_seed`` fixes the syllable timing and vowels; ``cue_jitter`` is the per-clip
    jitter of the cues (0 = exactly as designed).
    Returns ``(frames, audio, record)``: frames ``(T, H, W, 3)`` uint8 RGB with
    ``T = round(duration * fps)``, audio float32 ``(round(duration * sample_rate),)`` or None,
    and a JSON-able record: ``class``, ``shown`` (modality -> class, None for audio without a
    track), ``has_audio``, ``n_faces`` (1), ``faces`` (the first frame's head box), ``actor``,
    ``intensity``, ``frames``.
    """
    if width < 32 or height < 32 or width % 2 or height % 2:
        raise ValueError(f"frame size must be even and at least 32x32, got {width}x{height}")
    if fps <= 0 or duration <= 0:
        raise ValueError(f"fps and duration must be positive, got fps={fps} duration={duration}")
    if not 0 < intensity <= 1:
        raise ValueError(f"intensity must be in (0, 1], got {intensity}")
    if label not in classes:
        raise ValueError(f"label {label!r} is not one of the classes {tuple(classes)}")
    shown_d = _check_shown(shown if shown is not None else {m: label for m in MODALITIES}, classes)
    cue = {m: canonical_emotion(c) for m, c in shown_d.items()}
    n_frames = max(1, int(round(duration * fps)))
    k = height / _REF_HEIGHT

    wall = _studio_wall(rng, width, height)
    colour = np.asarray(WALL_COLOURS[cue[VISUAL]], np.float32) * rng.uniform(0.9, 1.1)
    colour = colour + rng.uniform(-8, 8, 3) * (1 + cue_jitter)
    background = np.clip(wall[..., None] * colour, 0, 255).astype(np.uint8)
    positions, radii, levels = _specks(rng, width, height, n_frames, MOTIONS[cue[FLOW]],
                                       float(rng.uniform(1 - cue_jitter, 1 + cue_jitter * 0.5)))

    face = EXPRESSIONS[cue[FACE]].scaled(intensity)
    j = rng.uniform(-cue_jitter, cue_jitter, 5) * np.array([0.5, 0.3, 0.4, 0.4, 0.4])
    face = Expression(mouth=float(np.clip(face.mouth + j[0], -1, 1)),
                      mouth_open=float(np.clip(face.mouth_open + abs(j[1]) * (face.mouth_open > 0), 0, 1)),
                      eye_open=float(np.clip(face.eye_open * (1 + j[2] * 0.5), 0.3, 1.8)),
                      brow_tilt=float(np.clip(face.brow_tilt + j[3], -1, 1)),
                      brow_raise=float(np.clip(face.brow_raise + j[4], -1, 1)))
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
        "faces": [{"box": list(first_box), "size": round(size, 2)}],
        "actor": actor.actor_id,
        "intensity": round(float(intensity), 3),
        "frames": n_frames,
    }
    return frames, audio, record


# --------------------------------------------------------------------------------------------
# dataset generation (RAVDESS / CREMA-D layouts)


@dataclass(frozen=True)
class _ActorClipTask:
    split: str
    index: int
    clip_id: str
    path: str
    label: str
    classes: tuple[str, ...]
    actor: Actor
    intensity: float
    sentence_seed: int
    seed: int
    cue_noise: float
    cue_jitter: float
    with_audio: bool
    duration: float
    width: int
    height: int
    fps: float
    sample_rate: int


def _actor_clip_worker(task: _ActorClipTask) -> dict[str, Any]:
    noise_ss, scene_ss = np.random.SeedSequence([task.seed, SPLITS.index(task.split), task.index]).spawn(2)
    noise_rng = np.random.default_rng(noise_ss)
    shown = {}
    for m in MODALITIES:
        flip = noise_rng.random() < task.cue_noise
        other = task.classes[int(noise_rng.integers(0, len(task.classes)))]
        shown[m] = other if flip else task.label
    frames, audio, record = render_actor_clip(
        label=task.label, actor=task.actor, rng=np.random.default_rng(scene_ss), classes=task.classes,
        shown=shown, intensity=task.intensity, sentence_seed=task.sentence_seed, duration=task.duration,
        width=task.width, height=task.height, fps=task.fps, sample_rate=task.sample_rate,
        with_audio=task.with_audio, cue_jitter=task.cue_jitter)
    write_mp4(task.path, frames, fps=task.fps, audio=audio, sample_rate=task.sample_rate if audio is not None else None)
    return {"clip_id": task.clip_id, **record}


def _run(fn: Callable, tasks: list, workers: int) -> list:
    if workers <= 1 or len(tasks) <= 1:
        return [fn(t) for t in tasks]
    # spawn, not fork: the caller may hold torch/OpenCV thread pools that a fork would copy
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(fn, tasks, chunksize=max(1, len(tasks) // (4 * workers))))


def split_actors(layout: str) -> dict[str, tuple[int, ...]]:
    """The actor ids of each split (``'train'``, ``'val'``, ``'test'``) of ``layout``, as the
    readers of :mod:`media.datasets` split them by default."""
    if layout == "ravdess":
        val, test = RAVDESS_DEFAULT_VAL_ACTORS, RAVDESS_DEFAULT_TEST_ACTORS
        everyone = range(1, 25)
    elif layout == "cremad":
        val, test = CREMAD_DEFAULT_VAL_ACTORS, CREMAD_DEFAULT_TEST_ACTORS
        everyone = range(1001, 1092)
    else:
        raise ValueError(f"unknown individual layout {layout!r}; expected one of {tuple(LAYOUTS)}")
    train = tuple(a for a in everyone if a not in val and a not in test)
    return {"train": train, "val": tuple(val), "test": tuple(test)}


def _name_variants(layout: str, emotion_index: int) -> list[tuple[Any, ...]]:
    """The distinct file-name fields one actor can record one emotion with."""
    if layout == "ravdess":
        # (intensity, statement, repetition); RAVDESS has no strong intensity for neutral
        intensities = (1,) if RAVDESS_CLASSES[emotion_index] == "neutral" else (1, 2)
        return [(i, s, r) for i in intensities for s in (1, 2) for r in (1, 2)]
    # CREMA-D: IEO at three levels, the other sentences unspecified (as in the real set)
    return [("IEO", lvl) for lvl in ("LO", "MD", "HI")] + [(s, "XX") for s in CREMAD_SENTENCES[1:]]


def _clip_name(layout: str, actor: int, emotion_index: int, variant: tuple[Any, ...], has_audio: bool) -> str:
    """The clip id (relative path without extension) in the layout's naming."""
    if layout == "ravdess":
        intensity, statement, repetition = variant
        modality = 1 if has_audio else 2            # 01 full audio-video, 02 video only
        return (f"Actor_{actor:02d}/{modality:02d}-01-{emotion_index + 1:02d}-{intensity:02d}-"
                f"{statement:02d}-{repetition:02d}-{actor:02d}")
    sentence, level = variant
    return f"VideoMP4/{actor}_{sentence}_{CREMAD_EMOTION_CODES[emotion_index]}_{level}"


def _variant_intensity(layout: str, variant: tuple[Any, ...]) -> tuple[float, int]:
    """(cue intensity, sentence seed) of a name variant."""
    if layout == "ravdess":
        intensity, statement, _ = variant
        return RAVDESS_INTENSITY[intensity], statement
    sentence, level = variant
    return CREMAD_INTENSITY[level], zlib.crc32(sentence.encode())


def _chosen(n: int, fraction: float, seed: int, split: str, purpose: int) -> set[int]:
    rng = np.random.default_rng(np.random.SeedSequence([seed, purpose, SPLITS.index(split)]))
    return {int(i) for i in rng.permutation(n)[:int(round(n * fraction))]}


def generate_individual_dataset(
    out_dir: str | os.PathLike,
    *,
    layout: str,
    n_train: int,
    n_val: int,
    n_test: int = 0,
    seed: int = 0,
    cue_noise: float = 0.3,
    cue_jitter: float = 0.2,
    duration: float = 3.0,
    width: int = 320,
    height: int = 180,
    fps: float = 15,
    sample_rate: int = 16000,
    audio_fraction: float = 1.0,
    workers: int = 1,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write a synthetic RAVDESS-format (``layout='ravdess'``) or CREMA-D-format (``'cremad'``)
    dataset under ``out_dir``:

    * RAVDESS: ``Actor_XX/MM-VC-EE-II-SS-RR-AA.mp4`` (MM 01, or 02 for a clip drawn without
      audio; VC 01 speech; EE the emotion 01-08; II intensity, 01 only for neutral; SS
      statement; RR repetition; AA the actor);
    * CREMA-D: ``VideoMP4/ID_SENTENCE_EMO_LEVEL.mp4`` (sentence IEO at LO/MD/HI, the others XX);
    * ``synthetic.json``: the parameters, the actors of each split, and per clip its id, class,
      the class each modality shows (after ``cue_noise``), actor, intensity, audio presence and
      face box (``clips[split]``, split ``'train'``/``'val'``/``'test'``).

    ``n_train``/``n_val``/``n_test`` clips go to the actors of that split (:func:`split_actors`),
    each class's clips dealt round the actors in turn; labels are balanced within each split and
    shuffled. ``audio_fraction`` of each split's clips have an audio track. Clips are H.264
    ``width`` x ``height`` at ``fps``, ``duration`` s, with AAC mono at ``sample_rate``.
    ``workers > 1`` renders in that many processes. An existing dataset raises
    ``FileExistsError`` unless ``overwrite=True``. Returns a summary: counts per split and class,
    and where the files are.
    """
    started = time.perf_counter()
    if layout not in LAYOUTS:
        raise ValueError(f"unknown individual layout {layout!r}; expected one of {tuple(LAYOUTS)}")
    classes = LAYOUTS[layout]
    counts = {"train": n_train, "val": n_val, "test": n_test}
    for name, value in counts.items():
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"n_{name} must be a non-negative int, got {value!r}")
    for name, value in (("cue_noise", cue_noise), ("audio_fraction", audio_fraction)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    if cue_jitter < 0:
        raise ValueError(f"cue_jitter must be >= 0, got {cue_jitter}")
    if width < 32 or height < 32 or width % 2 or height % 2:
        raise ValueError(f"frame size must be even and at least 32x32, got {width}x{height}")
    if fps <= 0 or duration <= 0:
        raise ValueError(f"fps and duration must be positive, got fps={fps} duration={duration}")

    out = Path(out_dir)
    folder = "Actor_" if layout == "ravdess" else "VideoMP4"
    owned = [p for p in (out.iterdir() if out.is_dir() else ()) if p.name.startswith(folder)] + [out / "synthetic.json"]
    existing = [p for p in owned if p.exists()]
    if existing:
        if not overwrite:
            raise FileExistsError(f"{out}: already holds a dataset ({existing[0].name}); pass overwrite=True to "
                                  "replace it")
        for p in existing:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    out.mkdir(parents=True, exist_ok=True)

    actors_by_split = split_actors(layout)
    tasks: list[_ActorClipTask] = []
    for split in SPLITS:
        n = int(counts[split])
        rng = np.random.default_rng(np.random.SeedSequence([seed, 100 + SPLITS.index(split)]))
        labels = [int(x) for x in rng.permutation(np.arange(n) % len(classes))]
        silent = _chosen(n, 1.0 - audio_fraction, seed, split, 200)
        actors = actors_by_split[split]
        per_class = [0] * len(classes)
        used: dict[tuple[int, int], int] = {}
        for i, label in enumerate(labels):
            # the k-th clip of class c goes to actor (k * C + c) mod A: classes interleave over the actors
            actor_id = actors[(per_class[label] * len(classes) + label) % len(actors)]
            per_class[label] += 1
            variants = _name_variants(layout, label)
            k = used.get((actor_id, label), 0)
            if k >= len(variants):
                raise ValueError(
                    f"{layout}: {n} {split} clips need more than {len(variants)} clips of {classes[label]!r} by one "
                    f"actor, more than the naming allows ({len(actors)} {split} actors); ask for fewer clips")
            used[(actor_id, label)] = k + 1
            variant = variants[k]
            intensity, sentence_seed = _variant_intensity(layout, variant)
            has_audio = i not in silent
            clip_id = _clip_name(layout, actor_id, label, variant, has_audio)
            tasks.append(_ActorClipTask(
                split=split, index=i, clip_id=clip_id, path=str(out / f"{clip_id}.mp4"), label=classes[label],
                classes=tuple(classes), actor=make_actor(actor_id, seed), intensity=intensity,
                sentence_seed=int(sentence_seed), seed=int(seed), cue_noise=float(cue_noise),
                cue_jitter=float(cue_jitter), with_audio=has_audio, duration=float(duration), width=int(width),
                height=int(height), fps=float(fps), sample_rate=int(sample_rate)))
    for task in tasks:
        Path(task.path).parent.mkdir(parents=True, exist_ok=True)
    records = _run(_actor_clip_worker, tasks, workers)

    clips = {split: [r for t, r in zip(tasks, records) if t.split == split] for split in SPLITS}
    params = {"layout": layout, "seed": int(seed), "n_train": int(n_train), "n_val": int(n_val),
              "n_test": int(n_test), "cue_noise": float(cue_noise), "cue_jitter": float(cue_jitter),
              "duration": float(duration), "width": int(width), "height": int(height), "fps": float(fps),
              "sample_rate": int(sample_rate), "audio_fraction": float(audio_fraction)}
    atomic_write_json(out / "synthetic.json", {
        "format": f"synthetic-{layout}", "version": 1, "classes": list(classes), "modalities": list(MODALITIES),
        "params": params, "actors": {s: list(a) for s, a in actors_by_split.items()}, "clips": clips,
    })
    return {
        "out_dir": str(out),
        "layout": layout,
        "classes": list(classes),
        "clips": {s: {c: sum(1 for r in clips[s] if r["class"] == c) for c in classes} for s in SPLITS},
        "clips_without_audio": {s: sum(1 for r in clips[s] if not r["has_audio"]) for s in SPLITS},
        "actors": {s: len({r["actor"] for r in clips[s]}) for s in SPLITS},
        "paths": {"videos": str(out), "metadata": str(out / "synthetic.json")},
        "seconds": round(time.perf_counter() - started, 2),
    }


# --------------------------------------------------------------------------------------------
# FER2013-format face images


def render_fer_face(emotion: str, rng: np.random.Generator, *, cue_jitter: float = 0.2) -> np.ndarray:
    """One FER2013-style image: a (48, 48) uint8 grey close-up of a cartoon face showing
    ``emotion`` (any name :func:`canonical_emotion` knows), with a random skin tone, looks,
    background grey, position, tilt (+-8 degrees) and expression strength (0.8-1)."""
    expression = EXPRESSIONS[canonical_emotion(emotion)].scaled(float(rng.uniform(0.8, 1.0)))
    j = rng.uniform(-cue_jitter, cue_jitter, 3) * 0.4
    side = 96
    canvas = np.empty((side, side, 3), np.uint8)
    level = rng.uniform(40, 210)
    gradient = np.linspace(-1, 1, side)[:, None] * rng.uniform(-25, 25) + np.linspace(-1, 1, side)[None, :] * rng.uniform(-25, 25)
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


FER_FORMS: tuple[str, ...] = ("csv", "folder")


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
    :func:`media.fer2013.read_fer2013` reads identically. Returns counts per split and class.
    """
    from media.layouts import CSV_NAME, FER2013_CLASSES, FER2013_FOLDERS, FER2013_USAGE

    if form not in FER_FORMS:
        raise ValueError(f"FER2013 form must be one of {FER_FORMS}, got {form!r}")
    counts = {"train": n_train, "val": n_val, "test": n_test}
    for name, value in counts.items():
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"n_{name} must be a non-negative int, got {value!r}")
    out = Path(out_dir)
    owned = [out / CSV_NAME] + [out / s for s in FER2013_USAGE]
    existing = [p for p in owned if p.exists()]
    if existing:
        if not overwrite:
            raise FileExistsError(f"{out}: already holds a dataset ({existing[0].name}); pass overwrite=True to "
                                  "replace it")
        for p in existing:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    rows = ["emotion,pixels,Usage"]
    summary: dict[str, dict[str, int]] = {}
    for split, n in counts.items():
        order = np.random.default_rng(np.random.SeedSequence([seed, 300 + SPLITS.index(split)]))
        labels = [int(x) for x in order.permutation(np.arange(int(n)) % len(FER2013_CLASSES))]
        summary[split] = {c: labels.count(i) for i, c in enumerate(FER2013_CLASSES)}
        for i, label in enumerate(labels):
            image = render_fer_face(FER2013_CLASSES[label],
                                    np.random.default_rng([int(seed), 20 + SPLITS.index(split), i]),
                                    cue_jitter=cue_jitter)
            if form == "csv":
                rows.append(f"{label},{' '.join(str(int(v)) for v in image.reshape(-1))},{FER2013_USAGE[split]}")
            else:
                ok, png = cv2.imencode(".png", image)
                if not ok:
                    raise RuntimeError("cv2.imencode failed to encode a PNG")
                path = out / split / FER2013_FOLDERS[label] / f"{i:05d}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_bytes(path, png.tobytes())
    if form == "csv":
        atomic_write_text(out / CSV_NAME, "\n".join(rows) + "\n")
    return {"out_dir": str(out), "form": form, "classes": list(FER2013_CLASSES), "images": summary}
