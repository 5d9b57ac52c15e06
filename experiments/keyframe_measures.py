"""Each selection of the keyframe ablation made by the real preprocessing, and what is measured on
its stored keyframes: salient recall against the recorded emotion windows, the most any N of the
candidates could reach on that clip (the recall ceiling), and whether the selection differs from
the default's.

Caches live in ``OUT/caches/<set>/<selection>-<hash>``, the hash of the keyframe settings and the
scorer (:func:`keyframes.extraction.keyframes_hash`), so a new scorer or recipe override makes new
caches beside the old ones, and a clip already preprocessed with the same settings is skipped.
"""
from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from benchmarks.timing import BenchmarkError
from core.batch import run_batch
from experiments.keyframe_data import NEUTRAL, scorer_input_size
from experiments.keyframe_settings import AblationSettings, Selection, keyframe_stream
from keyframes.extraction import KeyframeSettings, candidate_times, keyframes_hash
from media.selection import select_records
from streams import cache
from streams.preprocessing import build_preprocess_job, write_pipeline_record
from training.checkpoints import checkpoint_hash


def selection_recipe(selection: Selection, *, scorer: str, settings: AblationSettings) -> dict[str, Any]:
    """The preprocessing recipe of ``selection``: the ablation's recipe with its mode and intensity,
    the scorer scoring at its training size."""
    overrides = [f"keyframes.mode={selection.mode}", f"keyframes.score_size={scorer_input_size(scorer)}"]
    if selection.intensity is not None:
        overrides.append(f"keyframes.intensity={selection.intensity}")
    return settings.recipe(overrides)


def preprocess_selection(selection: Selection, *, data: Path, caches: Path, scorer: str,
                         settings: AblationSettings) -> dict[str, Any]:
    """Preprocess every clip of the set ``data`` for the keyframe stream with ``selection`` into
    ``caches/<selection>-<hash>``. Returns ``{"cache", "keyframes_hash", "seconds", "done",
    "skipped"}``; a clip that fails raises :class:`BenchmarkError` naming the error log."""
    cfg = selection_recipe(selection, scorer=scorer, settings=settings)
    made_with = keyframes_hash(KeyframeSettings.from_config(cfg.get("keyframes")), checkpoint_hash(scorer))
    cache_root = caches / f"{selection.name}-{made_with[:8]}"
    make_job = functools.partial(build_preprocess_job, cfg, scorer, str(cache_root), (keyframe_stream().name,), False)
    records = [r for split in ("train", "val") for r in select_records(str(data), split=split, shard=None)]
    write_pipeline_record(cache_root, cfg, scorer)
    summary = run_batch(records, make_job, errors_log=cache.errors_path(cache_root), workers=settings.workers,
                        desc=f"keyframes {selection.name}")
    if summary.failed:
        raise BenchmarkError(f"{cache.errors_path(cache_root)}: {summary.failed} clip(s) failed to preprocess "
                             f"for {selection.name} (first: {summary.failures[0][0]}: {summary.failures[0][1]})")
    return {"cache": str(cache_root), "keyframes_hash": made_with, "seconds": round(summary.seconds, 1),
            "done": summary.done, "skipped": summary.skipped}


def stored_keyframes(cache_root: str | Path, clip_ids: Sequence[str]) -> dict[str, dict[str, list]]:
    """Per clip id, the stored selection's keyframe ``indices``, ``times`` (s) and ``reasons``.
    Raises :class:`BenchmarkError` when a clip has no stored selection."""
    out = {}
    for clip_id in clip_ids:
        record = cache.read_keyframes_record(cache.entry_dir(cache_root, clip_id))
        if record is None:
            raise BenchmarkError(f"{cache.entry_dir(cache_root, clip_id)}: no keyframes.json for clip {clip_id} "
                                 f"(see {cache.errors_path(cache_root)})")
        kfs = record["keyframes"]
        out[clip_id] = {"indices": [int(k["index"]) for k in kfs], "times": [float(k["time"]) for k in kfs],
                        "reasons": [str(k["reason"]) for k in kfs]}
    return out


def in_windows(t: float, windows: Sequence[tuple[float, float]]) -> bool:
    return any(a <= t <= b for a, b in windows)


def salient_recall(times: Sequence[float], windows: Sequence[tuple[float, float]]) -> float:
    """The fraction of keyframe ``times`` (s; repeats count each time) inside any of ``windows``
    (closed intervals, s)."""
    if not times:
        raise ValueError("no keyframe times")
    return sum(in_windows(t, windows) for t in times) / len(times)


def candidate_frame_times(duration: float, fps: float, settings: KeyframeSettings) -> list[float]:
    """The times (s) of the distinct frames the extractor samples as candidates: each candidate
    time taken to its nearest frame, as :func:`media.sampling.sample_video` does."""
    n_frames = max(1, int(round(duration * fps)))
    frames = {min(n_frames - 1, max(0, math.ceil(round(t * fps - 0.5, 9))))
              for t in candidate_times(duration, settings)}
    return [i / fps for i in sorted(frames)]


def recall_ceiling(duration: float, fps: float, windows: Sequence[tuple[float, float]],
                   settings: KeyframeSettings) -> float:
    """The most salient recall any ``num_keyframes`` distinct candidates could reach on a clip:
    ``min(N, candidates inside the windows) / N``."""
    inside = sum(in_windows(t, windows) for t in candidate_frame_times(duration, fps, settings))
    return min(settings.num_keyframes, inside) / settings.num_keyframes


def recall_by_clip(keyframes: Mapping[str, Mapping[str, list]], truth: Mapping[str, Mapping[str, Any]], *,
                   fps: float, settings: KeyframeSettings) -> dict[str, tuple[float, float]]:
    """``clip id -> (salient recall, recall ceiling)`` over the clips whose visual cue is not
    Neutral (a Neutral clip's moments are invisible)."""
    out = {}
    for clip_id, t in sorted(truth.items()):
        if t["shown"] == NEUTRAL:
            continue
        out[clip_id] = (salient_recall(keyframes[clip_id]["times"], t["windows"]),
                        recall_ceiling(t["duration"], fps, t["windows"], settings))
    return out


def changed(keyframes: Mapping[str, Mapping[str, list]], reference: Mapping[str, Mapping[str, list]]) -> list[bool]:
    """Per clip (sorted ids), whether the keyframes (indices in temporal order, repeats included)
    differ from ``reference``'s."""
    return [keyframes[c]["indices"] != reference[c]["indices"] for c in sorted(reference)]


def picks_by_reason(keyframes: Mapping[str, Mapping[str, list]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for record in keyframes.values():
        for reason in record["reasons"]:
            out[reason] = out.get(reason, 0) + 1
    return dict(sorted(out.items()))
