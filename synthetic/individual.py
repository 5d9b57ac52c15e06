"""Synthetic individual-level emotion data in the RAVDESS and CREMA-D layouts: one actor per clip
(:mod:`synthetic.actors`), every modality showing one of the layout's emotions on its own
(:mod:`synthetic.emotions`).

The intensity in a file name (RAVDESS ``II``, CREMA-D ``LEVEL``) scales the expression and the
voice's loudness. Splits are by actor, as the readers of :mod:`media.layouts` decide them
(RAVDESS actors 1-18 train, 19-21 val, 22-24 test; CREMA-D 1001-1063, 1064-1077, 1078-1091), so
val actors are never seen in training. With probability ``cue_noise`` a modality shows a
uniformly drawn class instead of the true one, independently per modality, so no stream is
perfect and fusion gains; ``synthetic.json`` records what each clip's modalities show, in the
form :func:`synthetic.cues.cue_ceiling` reads.

Each layout is one row of :data:`LAYOUTS` (classes, actors, file naming), so adding a layout is
one row. Same seed, same content: every clip is drawn from its own generator seeded by
``(seed, split, index)``.
"""
from __future__ import annotations

import os
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

from core.storage import atomic_write_json
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
from synthetic.actors import Actor, make_actor, render_actor_clip
from synthetic.cues import MODALITIES, clip_generators, noisy_shown
from synthetic.output import (
    ClipSettings,
    balanced_labels,
    check_counts,
    check_cue_jitter,
    check_fractions,
    check_geometry,
    chosen,
    claim_output_folder,
    run_in_processes,
)

RAVDESS_STATEMENTS = {1: "Kids are talking by the door", 2: "Dogs are sitting by the door"}
CREMAD_SENTENCES: tuple[str, ...] = ("IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS",
                                     "TSI", "WSI")
RAVDESS_INTENSITY = {1: 0.8, 2: 1.0}       # 01 normal, 02 strong
CREMAD_INTENSITY = {"LO": 0.7, "MD": 0.85, "HI": 1.0, "XX": 0.85}   # XX: unspecified

Variant = tuple[Any, ...]
"""The file-name fields that tell one actor's clips of one emotion apart."""


# --------------------------------------------------------------------------------------------
# file naming, per layout

def _ravdess_variants(emotion_index: int) -> list[Variant]:
    # (intensity, statement, repetition); RAVDESS has no strong intensity for neutral
    intensities = (1,) if RAVDESS_CLASSES[emotion_index] == "neutral" else (1, 2)
    return [(i, s, r) for i in intensities for s in (1, 2) for r in (1, 2)]


def _ravdess_name(actor: int, emotion_index: int, variant: Variant, has_audio: bool) -> str:
    intensity, statement, repetition = variant
    modality = 1 if has_audio else 2            # 01 full audio-video, 02 video only
    return (f"Actor_{actor:02d}/{modality:02d}-01-{emotion_index + 1:02d}-{intensity:02d}-"
            f"{statement:02d}-{repetition:02d}-{actor:02d}")


def _ravdess_intensity(variant: Variant) -> tuple[float, int]:
    intensity, statement, _ = variant
    return RAVDESS_INTENSITY[intensity], statement


def _cremad_variants(emotion_index: int) -> list[Variant]:
    # IEO at three levels, the other sentences unspecified (as in the real set)
    return [("IEO", lvl) for lvl in ("LO", "MD", "HI")] + [(s, "XX") for s in CREMAD_SENTENCES[1:]]


def _cremad_name(actor: int, emotion_index: int, variant: Variant, has_audio: bool) -> str:
    sentence, level = variant
    return f"VideoMP4/{actor}_{sentence}_{CREMAD_EMOTION_CODES[emotion_index]}_{level}"


def _cremad_intensity(variant: Variant) -> tuple[float, int]:
    sentence, level = variant
    return CREMAD_INTENSITY[level], zlib.crc32(sentence.encode())


@dataclass(frozen=True)
class IndividualLayout:
    """How one individual-level layout names and splits its clips: ``classes`` in label order
    (as :mod:`media.layouts` reads them), ``actors`` (every actor id), the default ``val_actors``
    and ``test_actors``, ``folder`` (the prefix of the top-level entries it writes),
    ``variants(emotion_index)`` (the distinct file-name fields one actor can record one emotion
    with), ``clip_name(actor, emotion_index, variant, has_audio)`` (the clip id: relative path
    without extension) and ``intensity(variant)`` (cue intensity, sentence seed)."""

    classes: tuple[str, ...]
    actors: range
    val_actors: Sequence[int]
    test_actors: Sequence[int]
    folder: str
    variants: Callable[[int], list[Variant]]
    clip_name: Callable[[int, int, Variant, bool], str]
    intensity: Callable[[Variant], tuple[float, int]]


LAYOUTS: Mapping[str, IndividualLayout] = MappingProxyType({
    "ravdess": IndividualLayout(RAVDESS_CLASSES, range(1, 25), RAVDESS_DEFAULT_VAL_ACTORS, RAVDESS_DEFAULT_TEST_ACTORS,
                                "Actor_", _ravdess_variants, _ravdess_name, _ravdess_intensity),
    "cremad": IndividualLayout(CREMAD_CLASSES, range(1001, 1092), CREMAD_DEFAULT_VAL_ACTORS,
                               CREMAD_DEFAULT_TEST_ACTORS, "VideoMP4", _cremad_variants, _cremad_name,
                               _cremad_intensity),
})
"""The individual-level layouts the generator writes."""


def _layout(layout: str) -> IndividualLayout:
    if layout not in LAYOUTS:
        raise ValueError(f"unknown individual layout {layout!r}; expected one of {tuple(LAYOUTS)}")
    return LAYOUTS[layout]


def split_actors(layout: str) -> dict[str, tuple[int, ...]]:
    """The actor ids of each split (``'train'``, ``'val'``, ``'test'``) of ``layout``, as the
    readers of :mod:`media.layouts` split them by default."""
    spec = _layout(layout)
    val, test = spec.val_actors, spec.test_actors
    train = tuple(a for a in spec.actors if a not in val and a not in test)
    return {"train": train, "val": tuple(val), "test": tuple(test)}


# --------------------------------------------------------------------------------------------
# dataset generation


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
    with_audio: bool
    settings: ClipSettings


def _actor_clip_worker(task: _ActorClipTask) -> dict[str, Any]:
    s = task.settings
    noise_rng, scene_rng = clip_generators(s.seed, SPLITS.index(task.split), task.index)
    shown = noisy_shown(noise_rng, task.label, task.classes, s.cue_noise)
    frames, audio, record = render_actor_clip(
        label=task.label, actor=task.actor, rng=scene_rng, classes=task.classes,
        shown=shown, intensity=task.intensity, sentence_seed=task.sentence_seed, duration=s.duration,
        width=s.width, height=s.height, fps=s.fps, sample_rate=s.sample_rate,
        with_audio=task.with_audio, cue_jitter=s.cue_jitter)
    write_mp4(task.path, frames, fps=s.fps, audio=audio, sample_rate=s.sample_rate if audio is not None else None)
    return {"clip_id": task.clip_id, **record}


def _split_tasks(out: Path, layout: str, split: str, n: int, audio_fraction: float,
                 settings: ClipSettings) -> list[_ActorClipTask]:
    """The clips of one split: balanced shuffled labels, the k-th clip of class c by actor
    ``(k * C + c) mod A`` (classes interleave over the split's actors), each actor's clips of a
    class named by the layout's next unused variant."""
    spec = LAYOUTS[layout]
    classes = spec.classes
    seed = settings.seed
    labels = balanced_labels(n, len(classes), seed, 100 + SPLITS.index(split))
    silent = chosen(n, 1.0 - audio_fraction, seed, 200, SPLITS.index(split))
    actors = split_actors(layout)[split]
    per_class = [0] * len(classes)
    used: dict[tuple[int, int], int] = {}
    tasks = []
    for i, label in enumerate(labels):
        actor_id = actors[(per_class[label] * len(classes) + label) % len(actors)]
        per_class[label] += 1
        variants = spec.variants(label)
        k = used.get((actor_id, label), 0)
        if k >= len(variants):
            raise ValueError(
                f"{layout}: {n} {split} clips need more than {len(variants)} clips of {classes[label]!r} by one "
                f"actor, more than the naming allows ({len(actors)} {split} actors); ask for fewer clips")
        used[(actor_id, label)] = k + 1
        variant = variants[k]
        intensity, sentence_seed = spec.intensity(variant)
        has_audio = i not in silent
        clip_id = spec.clip_name(actor_id, label, variant, has_audio)
        tasks.append(_ActorClipTask(
            split=split, index=i, clip_id=clip_id, path=str(out / f"{clip_id}.mp4"), label=classes[label],
            classes=tuple(classes), actor=make_actor(actor_id, seed), intensity=intensity,
            sentence_seed=int(sentence_seed), with_audio=has_audio, settings=settings))
    return tasks


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
    spec = _layout(layout)
    classes = spec.classes
    counts = {"train": n_train, "val": n_val, "test": n_test}
    check_counts({f"n_{name}": value for name, value in counts.items()})
    check_fractions({"cue_noise": cue_noise, "audio_fraction": audio_fraction})
    check_cue_jitter(cue_jitter)
    check_geometry(width, height, fps, duration)

    out = Path(out_dir)
    owned = [p for p in (out.iterdir() if out.is_dir() else ()) if p.name.startswith(spec.folder)]
    claim_output_folder(out, owned + [out / "synthetic.json"], overwrite)
    settings = ClipSettings(seed=int(seed), cue_noise=float(cue_noise), cue_jitter=float(cue_jitter),
                            duration=float(duration), width=int(width), height=int(height), fps=float(fps),
                            sample_rate=int(sample_rate))
    tasks = [t for split in SPLITS for t in _split_tasks(out, layout, split, int(counts[split]), audio_fraction,
                                                          settings)]
    for task in tasks:
        Path(task.path).parent.mkdir(parents=True, exist_ok=True)
    records = run_in_processes(_actor_clip_worker, tasks, workers)

    clips = {split: [r for t, r in zip(tasks, records) if t.split == split] for split in SPLITS}
    params = {"layout": layout, "seed": int(seed), "n_train": int(n_train), "n_val": int(n_val),
              "n_test": int(n_test), "cue_noise": float(cue_noise), "cue_jitter": float(cue_jitter),
              "duration": float(duration), "width": int(width), "height": int(height), "fps": float(fps),
              "sample_rate": int(sample_rate), "audio_fraction": float(audio_fraction)}
    atomic_write_json(out / "synthetic.json", {
        "format": f"synthetic-{layout}", "version": 1, "classes": list(classes), "modalities": list(MODALITIES),
        "params": params, "actors": {s: list(a) for s, a in split_actors(layout).items()}, "clips": clips,
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
