"""GroupEmoW-format stills: single group scenes (:mod:`synthetic.scenes`) in which every cue
agrees, as JPEGs in ``{train,val,test}/{positive,neutral,negative}/``. The VGAF-layout set writes
them under its ``groupemow/`` folder (:func:`synthetic.group.generate_dataset`);
:func:`generate_stills` writes them alone, for the keyframe scorer of a dataset of another layout.

Same seed, same files: every still is drawn from its own generator seeded by
``(seed, split, index)``, and the JPEG writer is deterministic.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import cv2
import numpy as np

from core.storage import atomic_write_bytes, atomic_write_json
from synthetic.cues import CLASSES, FACE, VISUAL, check_label, check_shown, jittered_valence
from synthetic.output import check_cue_jitter, check_geometry, claim_output_folder, run_in_processes
from synthetic.scenes import plan_scene, render_frames

SPLITS: tuple[str, ...] = ("Train", "Val", "Test")
"""VGAF split folder names; GroupEmoW stills use the lower-case names."""
JPEG_QUALITY = 92
DEFAULT_STILLS_PER_CLASS: Mapping[str, int] = MappingProxyType({"train": 30, "val": 10, "test": 10})


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
    check_label(label)
    check_geometry(width, height, 1, 1)
    n_faces = int(rng.integers(1, 6)) if with_faces else 0
    shown = check_shown(None, label)
    valence = jittered_valence(rng, shown, cue_jitter)
    plan = plan_scene(rng, valence, width=width, height=height, fps=1, duration=1.0, n_faces=n_faces, peak=False)
    frames, boxes = render_frames(plan, 1)
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


@dataclass(frozen=True)
class StillTask:
    """One still to render and write (a process pool's job)."""

    split: str
    index: int
    label: int
    path: str
    seed: int
    cue_jitter: float
    width: int
    height: int


def _still_worker(task: StillTask) -> dict[str, Any]:
    rng = np.random.default_rng(np.random.SeedSequence([task.seed, 10 + SPLITS.index(task.split), task.index]))
    image, record = render_still(label=task.label, rng=rng, width=task.width, height=task.height,
                                 cue_jitter=task.cue_jitter)
    atomic_write_bytes(task.path, encode_jpeg(image))
    return record


def still_tasks(root: Path, stills_n: Mapping[str, int], *, seed: int, cue_jitter: float, width: int,
                height: int) -> list[StillTask]:
    """The stills of a GroupEmoW root ``root``: ``stills_n[split]`` per class per split, in
    class order, each at ``<split>/<class>/<split>_<NNNNN>.jpg``."""
    tasks = []
    for split in SPLITS:
        low = split.lower()
        labels = [c for c in range(len(CLASSES)) for _ in range(stills_n[low])]
        for i, label in enumerate(labels):
            path = root / low / CLASSES[label].lower() / f"{low}_{i:05d}.jpg"
            tasks.append(StillTask(split=split, index=i, label=label, path=str(path), seed=int(seed),
                                   cue_jitter=float(cue_jitter), width=int(width), height=int(height)))
    return tasks


def write_stills(root: Path, tasks: list[StillTask], workers: int, relative_to: Path) -> dict[str, list[dict]]:
    """Make the class folders of the GroupEmoW root ``root`` and write ``tasks`` there with
    ``workers`` processes. Returns per lower-case split the still records (``path`` relative to
    ``relative_to``, ``class``, ``n_faces``, ``valence``, ``faces``), as ``synthetic.json`` keeps them."""
    for split in SPLITS:
        for cls in CLASSES:
            (root / split.lower() / cls.lower()).mkdir(parents=True, exist_ok=True)
    records = run_in_processes(_still_worker, tasks, workers)
    return {split.lower(): [{"path": str(Path(t.path).relative_to(relative_to)), **r}
                            for t, r in zip(tasks, records) if t.split == split]
            for split in SPLITS}


def still_counts(stills_n: Mapping[str, int]) -> dict[str, dict[str, int]]:
    """Stills per lower-case split and class name."""
    return {s.lower(): {c: stills_n[s.lower()] for c in CLASSES} for s in SPLITS}


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
    images are those :func:`synthetic.group.generate_dataset` writes under ``groupemow/`` for the
    same seed, ``cue_jitter`` and size; use this to train the keyframe scorer for a dataset of
    another layout (RAVDESS, CREMA-D). ``n_per_class``: stills per class per split (an int, or a
    mapping from ``train``/``val``/``test`` to ints). Returns counts per split and class and the root."""
    started = time.perf_counter()
    stills_n = stills_per_split(n_per_class, "n_per_class")
    check_cue_jitter(cue_jitter)
    check_geometry(width, height, 1, 1)
    out = Path(out_dir)
    claim_output_folder(out, [out / s.lower() for s in SPLITS] + [out / "synthetic.json"], overwrite)
    tasks = still_tasks(out, stills_n, seed=seed, cue_jitter=cue_jitter, width=width, height=height)
    stills = write_stills(out, tasks, workers, relative_to=out)
    params = {"seed": int(seed), "n_stills_per_class": stills_n, "cue_jitter": float(cue_jitter),
              "width": int(width), "height": int(height)}
    atomic_write_json(out / "synthetic.json", {
        "format": "synthetic-groupemow", "version": 1, "classes": list(CLASSES), "params": params, "stills": stills,
    })
    return {"out_dir": str(out), "stills": still_counts(stills_n), "seconds": round(time.perf_counter() - started, 2)}
