"""Synthetic group-emotion dataset in the VGAF layout (with GroupEmoW-format stills beside it).

Every clip is a small group scene (:mod:`synthetic.scenes`: 1-5 cartoon people in front of a
textured wall, with floating confetti) in which each modality carries the clip's class on its own:

* ``visual``: the wall's colour grade: Positive warm and bright, Neutral grey, Negative cold and
  dark (people, their wide grey hoods and the confetti are not graded, and a hood
  fills each face crop's background, so face crops do not carry this cue);
* ``face``: mouth curvature of every face: smile, flat, frown;
* ``flow``: vertical motion of the confetti and the people: Positive rises fast and the people
  bounce, Neutral is nearly still, Negative sinks slowly. Horizontal drift is a random nuisance,
  so the cue survives horizontal flips (which negate x-flow);
* ``audio``: a tone whose pitch and chord follow the class (:func:`synthetic.audio.synthesize_tone`):
  Positive a high rising major chord, Neutral a flat mid tone, Negative a low falling minor chord;
  loudness is a nuisance.

Internally each modality shows a *valence* in [-1, 1] (Positive +1, Neutral 0, Negative -1) plus
per-clip jitter. With probability ``cue_noise`` a modality instead shows the class of a
uniformly drawn class, independently per modality, so no single stream is perfect and fusion
gains. ``synthetic.json`` records, per clip, the true class and the class each modality shows.
Labels are 0-based indices into :data:`synthetic.cues.CLASSES` (see :mod:`synthetic.cues`).

Same seed, same files: every clip is drawn from its own generator seeded by
``(seed, split, index)``, and the mp4 and JPEG writers are deterministic.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from core.storage import atomic_write_json, atomic_write_text
from media.encoding import write_mp4
from synthetic.audio import synthesize_tone
from synthetic.cues import (
    AUDIO,
    CLASSES,
    FACE,
    MODALITIES,
    check_label,
    check_shown,
    clip_generators,
    jittered_valence,
    noisy_shown,
)
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
from synthetic.peaks import check_family
from synthetic.scenes import ScenePlan, plan_scene, render_frames
from synthetic.stills import DEFAULT_STILLS_PER_CLASS, SPLITS, still_counts, still_tasks, stills_per_split, write_stills

LABELLED_SPLITS: tuple[str, ...] = ("Train", "Val", "Test")
"""Splits that get a ``<split>_labels.txt``. Unlike VGAF, whose test labels are withheld, the
synthetic set labels Test too, so a held-out split can be scored (nothing is selected on it)."""


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
    peak: bool | Mapping[str, Any] = False,
    cue_jitter: float = 0.2,
    face_carrier: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """Render one scene in memory.

    ``label`` is the true class (0-based index into :data:`CLASSES`); ``shown`` maps modalities
    (:data:`MODALITIES`) to the class that modality displays (default: all show ``label``).
    ``n_faces`` fixes the number of people (default 1-5 at random; 0 or ``with_faces=False``
    gives an empty scene), ``peak`` makes the cues swell to full strength for about 1 s and stay
    at 30 % elsewhere (:mod:`synthetic.peaks`; a mapping ``{"family", "off_peak"}`` draws one of
    the keyframe ablation's families instead, :func:`synthetic.peaks.draw_moments`),
    ``cue_jitter`` is the half-width of the
    per-modality valence jitter, ``face_carrier`` the one person (index into ``record["faces"]``)
    whose mouth shows the face cue while the others look neutral (None: everyone shows it).
    Returns ``(frames, audio, record)``: frames ``(T, H, W, 3)`` uint8 RGB with
    ``T = round(duration * fps)``, audio float32 ``(round(duration * sample_rate),)`` or None,
    and a JSON-able record: ``class`` (name), ``shown`` (modality -> class name, None for a
    modality the clip lacks: ``face`` without people, ``audio`` without a track), ``valence``,
    ``has_audio``, ``n_faces``, ``faces`` (size, base mouth curvature, first-frame head box
    ``[x0, y0, x1, y1]``), ``peak`` and ``frames`` (and ``face_carrier`` when given).
    """
    frames, audio, record, _ = render_clip_plan(label=label, rng=rng, duration=duration, width=width, height=height,
                                                fps=fps, sample_rate=sample_rate, shown=shown, with_audio=with_audio,
                                                with_faces=with_faces, n_faces=n_faces, peak=peak,
                                                cue_jitter=cue_jitter, face_carrier=face_carrier)
    return frames, audio, record


def render_clip_plan(*, label: int, rng: np.random.Generator, duration: float, width: int, height: int, fps: float,
                     sample_rate: int, shown: Mapping[str, int] | None, with_audio: bool, with_faces: bool,
                     n_faces: int | None, peak: bool | Mapping[str, Any], cue_jitter: float,
                     face_carrier: int | None
                     ) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any], tuple[ScenePlan, list]]:
    """:func:`render_clip` (same arguments, all keyword), also returning ``(plan, head boxes per
    frame)``, from which the ground truth of a clip's regions is drawn
    (:func:`synthetic.scenes.people_masks`)."""
    check_label(label)
    check_geometry(width, height, fps, duration)
    shown_d = check_shown(shown, label)
    if n_faces is None:
        n_faces = int(rng.integers(1, 6))
    if not with_faces:
        n_faces = 0
    if not 0 <= n_faces <= 8:
        raise ValueError(f"n_faces must be in 0..8, got {n_faces}")
    if face_carrier is not None and not 0 <= face_carrier < n_faces:
        raise ValueError(f"face_carrier must index one of the {n_faces} people, got {face_carrier}")
    valence = jittered_valence(rng, shown_d, cue_jitter)
    plan = plan_scene(rng, valence, width=width, height=height, fps=fps, duration=duration,
                      n_faces=n_faces, peak=peak, face_carrier=face_carrier)
    n_frames = max(1, int(round(duration * fps)))
    frames, boxes = render_frames(plan, n_frames)
    audio = None
    if with_audio:
        audio = synthesize_tone(valence=plan.valence[AUDIO], peak=plan.peak, duration=plan.duration,
                                ref_hz=plan.audio_ref_hz, gain=plan.audio_gain, noise_gain=plan.noise_gain,
                                n_samples=int(round(duration * sample_rate)), sample_rate=sample_rate, rng=rng)
    record = {
        "class": CLASSES[label],
        "shown": {m: (None if (m == FACE and n_faces == 0) or (m == AUDIO and audio is None)
                      else CLASSES[c]) for m, c in shown_d.items()},
        "valence": {m: round(v, 4) for m, v in valence.items()},
        "has_audio": audio is not None,
        "n_faces": n_faces,
        "faces": [{"size": round(p.size, 2),
                   "mouth": round(float(np.clip((valence[FACE] if face_carrier in (None, i) else 0.0) + p.mouth_jitter,
                                                -1, 1)), 4),
                   "box": list(boxes[0][i])} for i, p in enumerate(plan.people)],
        "peak": plan.peak,
        "frames": n_frames,
    }
    if face_carrier is not None:
        record["face_carrier"] = face_carrier
    return frames, audio, record, (plan, boxes)


def make_clip(path: str | os.PathLike, *, fps: float = 15, sample_rate: int = 16000, **scene: Any) -> dict[str, Any]:
    """Render a scene and write it to ``path`` as an H.264 mp4 with an AAC mono track (no audio
    stream when ``with_audio=False``). ``scene``: the other keyword arguments of
    :func:`render_clip` (``label`` and ``rng`` required). Returns the clip's record."""
    frames, audio, record = render_clip(fps=fps, sample_rate=sample_rate, **scene)
    write_mp4(path, frames, fps=fps, audio=audio, sample_rate=sample_rate if audio is not None else None)
    return record


# --------------------------------------------------------------------------------------------
# dataset generation

@dataclass(frozen=True)
class _ClipTask:
    split: str
    index: int
    name: str
    label: int
    path: str
    with_audio: bool
    with_faces: bool
    peak: bool | Mapping[str, Any]
    settings: ClipSettings


def _clip_worker(task: _ClipTask) -> dict[str, Any]:
    s = task.settings
    noise_rng, scene_rng = clip_generators(s.seed, SPLITS.index(task.split), task.index)
    shown = noisy_shown(noise_rng, task.label, range(len(CLASSES)), s.cue_noise)
    record = make_clip(task.path, label=task.label, rng=scene_rng, duration=s.duration, width=s.width,
                       height=s.height, fps=s.fps, sample_rate=s.sample_rate, shown=shown,
                       with_audio=task.with_audio, with_faces=task.with_faces, peak=task.peak,
                       cue_jitter=s.cue_jitter)
    return {"name": task.name, **record}


def _clip_tasks(out: Path, counts: Mapping[str, int], fractions: Mapping[str, float],
                settings: ClipSettings, peak: bool | Mapping[str, Any] = True) -> list[_ClipTask]:
    """Every clip of every split: balanced shuffled labels; which clips lack audio or people and
    which peak drawn from the seed (``fractions``: ``audio``, ``faceless``, ``peak``); a peaked
    clip gets ``peak`` (see :func:`render_clip`)."""
    seed = settings.seed
    tasks: list[_ClipTask] = []
    video = 0
    for split in SPLITS:
        code = SPLITS.index(split)
        labels = balanced_labels(counts[split], len(CLASSES), seed, 100 + code)
        silent = chosen(counts[split], 1.0 - fractions["audio"], seed, 200, code)
        faceless = chosen(counts[split], fractions["faceless"], seed, 300, code)
        peaked = chosen(counts[split], fractions["peak"], seed, 400, code)
        first_video = video
        for i, label in enumerate(labels):
            # VGAF names clips <video>_<clip>; here every video yields three clips, and video
            # numbers continue across splits so names are unique in the whole dataset
            video = first_video + i // 3 + 1
            name = f"{video}_{i % 3 + 1}"
            tasks.append(_ClipTask(split=split, index=i, name=name, label=label, path=str(out / split / f"{name}.mp4"),
                                   with_audio=i not in silent, with_faces=i not in faceless,
                                   peak=peak if i in peaked else False,
                                   settings=settings))
        (out / split).mkdir(parents=True, exist_ok=True)
    return tasks


def _write_label_files(out: Path, tasks: list[_ClipTask]) -> None:
    """``<split>_labels.txt`` of every labelled split: header ``Vid_name Label``, then per clip its
    name and its 1-based label."""
    for split in LABELLED_SPLITS:
        lines = ["Vid_name Label"] + [f"{t.name} {t.label + 1}" for t in tasks if t.split == split]
        atomic_write_text(out / f"{split}_labels.txt", "\n".join(lines) + "\n")


def _summary(out: Path, clips: Mapping[str, list[dict]], stills_n: Mapping[str, int]) -> dict[str, Any]:
    return {
        "out_dir": str(out),
        "clips": {split: {c: sum(1 for r in clips[split] if r["class"] == c) for c in CLASSES} for split in SPLITS},
        "clips_without_audio": {split: sum(1 for r in clips[split] if not r["has_audio"]) for split in SPLITS},
        "clips_without_faces": {split: sum(1 for r in clips[split] if r["n_faces"] == 0) for split in SPLITS},
        "stills": still_counts(stills_n),
        "paths": {
            "videos": {split: str(out / split) for split in SPLITS},
            "labels": {split: str(out / f"{split}_labels.txt") for split in LABELLED_SPLITS},
            "stills": str(out / "groupemow"),
            "metadata": str(out / "synthetic.json"),
        },
    }


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
    peak_family: Mapping[str, Any] | None = None,
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
    * ``groupemow/{train,val,test}/{positive,neutral,negative}/*.jpg``: stills, all cues agreeing
      (:mod:`synthetic.stills`);
    * ``synthetic.json``: the parameters, and per clip (see :func:`render_clip`) its name and
      class, the class each modality shows (after ``cue_noise``), valences, faces, audio
      presence and peak; per still its path, class and faces.

    ``cue_noise`` is the probability, per clip and modality independently, that the modality
    shows the cue of a uniformly drawn class instead of the true one. ``audio=False`` writes no
    audio at all; otherwise ``audio_fraction`` of each split's clips (rounded) have an audio
    track. ``faceless_fraction`` of them show no people (wall and confetti only), and
    ``peak_fraction`` have cues that swell for about 1 s (see :func:`render_clip`), or with
    ``peak_family`` (``{"family": "peak" | "spread" | "steady", "off_peak": 0..0.3}``) the moments
    of that family of the keyframe ablation (:func:`synthetic.peaks.draw_moments`); which clips
    is drawn from the seed.
    ``n_stills_per_class`` is stills per class per split (an int, or a mapping from
    ``train``/``val``/``test`` to ints; default :data:`DEFAULT_STILLS_PER_CLASS`). Labels are
    balanced within each split and shuffled.
    ``workers > 1`` renders in that many processes (same files either way). An existing dataset
    in ``out_dir`` raises ``FileExistsError`` unless ``overwrite=True``, which replaces it.
    Returns a summary: counts per split and class, and where the files are.
    """
    started = time.perf_counter()
    out = Path(out_dir)
    check_counts({"n_train": n_train, "n_val": n_val, "n_test": n_test})
    check_fractions({"cue_noise": cue_noise, "audio_fraction": audio_fraction, "faceless_fraction": faceless_fraction,
                     "peak_fraction": peak_fraction})
    check_cue_jitter(cue_jitter)
    check_geometry(width, height, fps, duration)
    if peak_family is not None:
        check_family(str(peak_family["family"]), float(peak_family["off_peak"]))
    stills_n = stills_per_split(DEFAULT_STILLS_PER_CLASS if n_stills_per_class is None else n_stills_per_class,
                                "n_stills_per_class")
    claim_output_folder(out, [out / s for s in SPLITS] + [out / f"{s}_labels.txt" for s in SPLITS]
                        + [out / "groupemow", out / "synthetic.json"], overwrite)

    audio_fraction = audio_fraction if audio else 0.0
    settings = ClipSettings(seed=int(seed), cue_noise=float(cue_noise), cue_jitter=float(cue_jitter),
                            duration=float(duration), width=int(width), height=int(height), fps=float(fps),
                            sample_rate=int(sample_rate))
    clip_tasks = _clip_tasks(out, {"Train": int(n_train), "Val": int(n_val), "Test": int(n_test)},
                             {"audio": audio_fraction, "faceless": faceless_fraction, "peak": peak_fraction}, settings,
                             peak=dict(peak_family) if peak_family is not None else True)
    stills_tasks = still_tasks(out / "groupemow", stills_n, seed=seed, cue_jitter=cue_jitter, width=width,
                               height=height)
    clip_records = run_in_processes(_clip_worker, clip_tasks, workers)
    stills_json = write_stills(out / "groupemow", stills_tasks, workers, relative_to=out)

    _write_label_files(out, clip_tasks)
    clips_json = {split: [r for t, r in zip(clip_tasks, clip_records) if t.split == split] for split in SPLITS}
    params = {
        "seed": int(seed), "n_train": int(n_train), "n_val": int(n_val), "n_test": int(n_test),
        "cue_noise": float(cue_noise), "cue_jitter": float(cue_jitter), "duration": float(duration),
        "width": int(width), "height": int(height), "fps": float(fps), "sample_rate": int(sample_rate),
        "n_stills_per_class": stills_n, AUDIO: bool(audio), "audio_fraction": float(audio_fraction),
        "faceless_fraction": float(faceless_fraction),
        "peak_fraction": float(peak_fraction),
    }
    if peak_family is not None:  # recorded only when given, so older sets' parameters stay as they were
        params["peak_family"] = {"family": str(peak_family["family"]), "off_peak": float(peak_family["off_peak"])}
    atomic_write_json(out / "synthetic.json", {
        "format": "synthetic-vgaf", "version": 1,
        "classes": list(CLASSES),
        "label_file_values": {c: i + 1 for i, c in enumerate(CLASSES)},
        "modalities": list(MODALITIES),
        "params": params, "clips": clips_json, "stills": stills_json,
    })
    return {**_summary(out, clips_json, stills_n), "seconds": round(time.perf_counter() - started, 2)}
