"""What every synthetic generator does the same way: check its counts and frame geometry, claim
its output folder, draw balanced labels and seeded subsets, and render its tasks in spawned
processes."""
from __future__ import annotations

import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np


@dataclass(frozen=True)
class ClipSettings:
    """What every clip of a generated set shares: the ``seed``, the probability ``cue_noise`` that
    a modality shows another class, the cues' ``cue_jitter``, ``duration`` (s), frame ``width``
    and ``height`` (px), ``fps`` and the audio ``sample_rate`` (Hz)."""

    seed: int
    cue_noise: float
    cue_jitter: float
    duration: float
    width: int
    height: int
    fps: float
    sample_rate: int


def check_counts(counts: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` naming the first of ``counts`` (argument name -> value) that is not a
    non-negative int."""
    for name, value in counts.items():
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")


def check_fractions(fractions: Mapping[str, float]) -> None:
    """Raise ``ValueError`` naming the first of ``fractions`` (argument name -> value) outside [0, 1]."""
    for name, value in fractions.items():
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")


def check_cue_jitter(cue_jitter: float) -> None:
    """Raise ``ValueError`` for a negative ``cue_jitter``."""
    if cue_jitter < 0:
        raise ValueError(f"cue_jitter must be >= 0, got {cue_jitter}")


def check_geometry(width: int, height: int, fps: float, duration: float) -> None:
    """Raise ``ValueError`` unless the frame (``width`` x ``height`` px) is even and at least
    32x32 and ``fps`` and ``duration`` (s) are positive."""
    if width < 32 or height < 32 or width % 2 or height % 2:
        raise ValueError(f"frame size must be even and at least 32x32, got {width}x{height}")
    if fps <= 0 or duration <= 0:
        raise ValueError(f"fps and duration must be positive, got fps={fps} duration={duration}")


def claim_output_folder(out: Path, owned: Iterable[Path], overwrite: bool) -> None:
    """Make ``out`` ready for a new dataset: the paths in ``owned`` (what a generator writes
    there) that exist raise ``FileExistsError`` unless ``overwrite``, which deletes them; then
    ``out`` is created. Other files in ``out`` are left alone."""
    existing = [p for p in owned if p.exists()]
    if existing:
        if not overwrite:
            raise FileExistsError(f"{out}: already holds a dataset ({existing[0].name}); pass overwrite=True to "
                                  "replace it")
        for p in existing:
            shutil.rmtree(p) if p.is_dir() else p.unlink()
    out.mkdir(parents=True, exist_ok=True)


def balanced_labels(n: int, n_classes: int, seed: int, purpose: int) -> list[int]:
    """``n`` labels in ``0..n_classes-1``, as balanced as ``n`` allows, in an order drawn from
    ``(seed, purpose)``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, purpose]))
    return [int(x) for x in rng.permutation(np.arange(n) % n_classes)]


def chosen(n: int, fraction: float, seed: int, purpose: int, split_index: int) -> set[int]:
    """Exactly ``round(n * fraction)`` of the indices ``0..n-1``, drawn by a permutation seeded
    with ``(seed, purpose, split_index)``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, purpose, split_index]))
    return {int(i) for i in rng.permutation(n)[:int(round(n * fraction))]}


def run_in_processes(fn: Callable[[Any], Any], tasks: Sequence[Any], workers: int) -> list[Any]:
    """``[fn(t) for t in tasks]``, computed by up to ``workers`` spawned processes when
    ``workers > 1`` and there is more than one task (``fn`` and the tasks must pickle); the
    results come back in task order either way."""
    if workers <= 1 or len(tasks) <= 1:
        return [fn(t) for t in tasks]
    # spawn, not fork: the caller may hold torch/OpenCV thread pools that a fork would copy
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=spawn) as pool:
        return list(pool.map(fn, tasks, chunksize=max(1, len(tasks) // (4 * workers))))
