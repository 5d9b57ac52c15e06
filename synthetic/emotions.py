"""The cues of the individual-level sets: what each of up to eight emotions (:data:`EMOTIONS`,
the RAVDESS names; CREMA-D and FER2013 use six and seven of them) shows in each modality.

* ``visual``: the wall's colour (:data:`WALL_COLOURS`: neutral grey, calm teal, happy yellow, sad
  blue, angry red, fearful violet, disgust green, surprised pink);
* ``face``: the expression (:data:`EXPRESSIONS`): mouth curvature and opening, eye opening, brow
  tilt and height, chosen so every pair of emotions differs in at least one bold feature that a
  48 px face crop keeps (e.g. sad: frown and inner brows raised; angry: frown and a brow V;
  surprised: round open mouth, raised brows, wide eyes);
* ``flow``: the specks' motion (:data:`MOTIONS`): a vertical speed (up or down, slow or fast)
  and a horizontal speed whose direction is random;
* ``audio``: the voice (:data:`VOICES`): pitch level (an octave below, at or above the actor's
  own voice), contour (flat, rising, falling, rise-fall) and syllable rate.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping, Sequence

from media.layouts import RAVDESS_CLASSES
from synthetic.cues import MODALITIES

EMOTIONS: tuple[str, ...] = RAVDESS_CLASSES
"""The emotions the generator can show (the RAVDESS class names, the superset)."""
ALIASES: Mapping[str, str] = MappingProxyType({"anger": "angry", "fear": "fearful", "surprise": "surprised"})
"""Other datasets' spellings of :data:`EMOTIONS` (CREMA-D, FER2013), lower-cased."""


@dataclass(frozen=True)
class Expression:
    """A face's expression, as :func:`synthetic.faces.draw_cartoon_face` draws it: ``mouth``
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

VOICES: Mapping[str, tuple[float, str, float]] = MappingProxyType({
    "neutral": (0.0, "flat", 4.2), "calm": (-0.8, "flat", 4.2), "happy": (0.8, "arch", 6.0),
    "sad": (-0.8, "fall", 2.6), "angry": (0.0, "fall", 6.0), "fearful": (0.8, "flat", 6.0),
    "disgust": (0.0, "arch", 2.6), "surprised": (0.8, "rise", 4.2),
})
"""The audio cue of each emotion: (pitch level in octaves from the actor's own voice, pitch
contour (:data:`synthetic.audio.CONTOURS`), syllables per second). Emotions that share a level
differ in contour or rate."""


def canonical_emotion(name: str) -> str:
    """The :data:`EMOTIONS` name of a dataset's class name (``'Anger'`` -> ``'angry'``)."""
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    if key not in EXPRESSIONS:
        raise ValueError(f"no synthetic cue for the emotion {name!r}; known: {', '.join(EMOTIONS)} "
                         f"(and {', '.join(ALIASES)})")
    return key


def check_shown(shown: Mapping[str, str], classes: Sequence[str]) -> dict[str, str]:
    """``shown`` (modality -> class name, every modality of :data:`synthetic.cues.MODALITIES`),
    checked against ``classes`` and :func:`canonical_emotion`."""
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
