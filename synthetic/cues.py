"""The cues of the synthetic sets: the modalities every clip carries its class in, the group set's
classes and what each valence shows, the cue noise that makes a modality show another class, and
the best score any reader of the shown cues could reach (:func:`cue_ceiling`).

Labels: in Python (``label=`` arguments, ``shown=`` mappings) a group-set label is the 0-based
index into :data:`CLASSES`, as in :mod:`media.layouts`; only the VGAF label files are 1-based
(1 Positive, 2 Neutral, 3 Negative). ``synthetic.json`` names classes by name.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence, TypeVar

import numpy as np

CLASSES: tuple[str, ...] = ("Positive", "Neutral", "Negative")
"""Group-set class names in label order: label ``i`` (0-based) is ``CLASSES[i]``; VGAF files write ``i + 1``."""
VALENCE: tuple[float, ...] = (1.0, 0.0, -1.0)
"""Cue valence of each class, in label order."""
MODALITIES: tuple[str, ...] = ("visual", "face", "flow", "audio")
"""The cues a synthetic clip carries, one per stream of the method (the only place media names them)."""
VISUAL, FACE, FLOW, AUDIO = MODALITIES

_WARM = np.array([238.0, 184.0, 78.0])
_GREY = np.array([128.0, 128.0, 128.0])
_COLD = np.array([42.0, 62.0, 118.0])

Label = TypeVar("Label")


def wall_colour(valence: float) -> np.ndarray:
    """RGB wall colour (float, 0-255) for a visual valence: +1 warm/bright, 0 grey, -1 cold/dark."""
    v = float(np.clip(valence, -1.0, 1.0))
    return _GREY + (_WARM - _GREY) * v if v >= 0 else _GREY + (_COLD - _GREY) * (-v)


def flow_speed(valence: float) -> float:
    """Vertical confetti velocity in px/frame at 180 px height (negative = upwards):
    +1 rises at 4 px/frame, 0 is still, -1 sinks at 1.5 px/frame."""
    v = float(np.clip(valence, -1.0, 1.0))
    return -4.0 * v if v >= 0 else -1.5 * v


def check_label(label: int) -> None:
    """Raise ``ValueError`` unless ``label`` is a 0-based index into :data:`CLASSES`."""
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= int(label) < len(CLASSES):
        raise ValueError(f"label must be a 0-based class index in 0..{len(CLASSES) - 1} "
                         f"({', '.join(CLASSES)}), got {label!r}")


def class_valence(label: int) -> float:
    """Valence of a 0-based label."""
    check_label(label)
    return VALENCE[label]


def check_shown(shown: Mapping[str, int] | None, label: int) -> dict[str, int]:
    """The class (0-based) each modality of a group clip of class ``label`` shows: ``shown``
    (modality -> label, absent modalities show ``label``; None: all do), checked."""
    if shown is None:
        return {m: int(label) for m in MODALITIES}
    unknown = set(shown) - set(MODALITIES)
    if unknown:
        raise ValueError(f"shown: unknown modalities {sorted(unknown)}; expected a subset of {MODALITIES}")
    out = {}
    for m in MODALITIES:
        value = shown.get(m, label)
        check_label(value)
        out[m] = int(value)
    return out


def jittered_valence(rng: np.random.Generator, shown: Mapping[str, int], cue_jitter: float) -> dict[str, float]:
    """Per modality, the valence of the class it shows plus a uniform draw in
    ``[-cue_jitter, cue_jitter]``, clipped to [-1, 1] (one draw per modality, in
    :data:`MODALITIES` order)."""
    return {m: float(np.clip(class_valence(int(shown[m])) + rng.uniform(-cue_jitter, cue_jitter), -1.0, 1.0))
            for m in MODALITIES}


def clip_generators(seed: int, split_index: int, index: int) -> tuple[np.random.Generator, np.random.Generator]:
    """``(noise, scene)`` generators of clip ``index`` of a split: independent streams, so a
    clip's scene does not change when the cue noise or the audio fraction do."""
    noise_ss, scene_ss = np.random.SeedSequence([seed, split_index, index]).spawn(2)
    return np.random.default_rng(noise_ss), np.random.default_rng(scene_ss)


def noisy_shown(rng: np.random.Generator, label: Label, classes: Sequence[Label], cue_noise: float) -> dict[str, Label]:
    """What each modality of a clip of class ``label`` shows: with probability ``cue_noise`` a
    uniformly drawn one of ``classes`` instead of ``label`` (two draws per modality, in
    :data:`MODALITIES` order, whatever the outcome)."""
    shown = {}
    for m in MODALITIES:
        flip = rng.random() < cue_noise
        other = classes[int(rng.integers(0, len(classes)))]
        shown[m] = other if flip else label
    return shown


def _present(clip: Mapping[str, Any], m: str) -> bool:
    return not ((m == AUDIO and not clip["has_audio"]) or (m == FACE and clip["n_faces"] == 0))


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

    modalities = {}
    for m in metadata["modalities"]:
        having = [c for c in clips if _present(c, m)]
        modalities[m] = sum(c["shown"][m] == c["class"] for c in having) / len(having) if having else None
    fused = 0.0
    for clip in clips:
        if p_other == 0.0:
            scores = [sum(_present(clip, m) and clip["shown"][m] == k for m in metadata["modalities"]) for k in classes]
        else:
            scores = [sum(np.log(p_true if clip["shown"][m] == k else p_other)
                          for m in metadata["modalities"] if _present(clip, m)) for k in classes]
        best = max(scores)
        tied = [k for k, s in zip(classes, scores) if np.isclose(s, best)]
        fused += (clip["class"] in tied) / len(tied)
    return {"clips": len(clips), "modalities": modalities, "fused": fused / len(clips) if clips else None}
