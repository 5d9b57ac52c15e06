"""Keyframe extraction: seconds per clip of the keyframe stage (decode + candidate sampling,
scoring, selection, writing) with a preprocessing recipe, against the same stage scoring EVERY
frame at a larger size, interleaved in the same run; and how much of that reference's selection
the cheap setting keeps."""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from benchmarks.inputs import CountingScorer, ScorerModel, clip_info, clip_record, scoring_size
from benchmarks.timing import BenchmarkError, interleaved, machine_info, paired_ratio
from core.storage import read_json
from keyframes.extraction import KeyframeSettings
from streams.cache import KEYFRAMES_JSON
from streams.preprocessing import ClipPreprocessor
from streams.specs import STREAM_SPECS

GOAL_TOTAL_S = 3.0   # whole keyframe extraction per 5 s 720p clip, 2 CPU cores


def selection_overlap(chosen: Sequence[int], reference: Sequence[int], *, tolerance: int = 0) -> float:
    """Fraction of ``reference`` keyframes matched by ``chosen`` ones: frames are paired one to
    one when their indices differ by at most ``tolerance`` frames (0: the same frame), greedily in
    temporal order (optimal for 1-D matching). Returns ``matches / max(len(chosen), len(reference))``
    in [0, 1] (1.0 when both are empty)."""
    a, b = sorted(int(i) for i in chosen), sorted(int(i) for i in reference)
    if not a and not b:
        return 1.0
    i = j = matched = 0
    while i < len(a) and j < len(b):
        if abs(a[i] - b[j]) <= tolerance:
            matched, i, j = matched + 1, i + 1, j + 1
        elif a[i] < b[j]:
            i += 1
        else:
            j += 1
    return matched / max(len(a), len(b))


def float32_recipe(cfg: Mapping[str, Any]) -> dict | None:
    """``cfg`` with ``keyframes.precision: float32``: the arm a recipe that scores in another
    precision is timed against in the same run; ``None`` when ``cfg`` scores in float32."""
    settings = KeyframeSettings.from_config(cfg.get("keyframes"))
    if settings.precision == "float32":
        return None
    return {**cfg, "keyframes": asdict(replace(settings, precision="float32"))}


def float32_comparison(timed: Mapping[str, Any], *, tolerance: int) -> dict[str, Any]:
    """What scoring in another precision gains and moves, from :func:`interleaved` timings with
    arms ``ours`` and ``float32`` whose results carry the keyframe ``indices``:
    ``speedup_vs_float32`` (median of the paired per-round ratios) with its spread, and the
    share of the float32 keyframes chosen too, exactly and within ``tolerance`` frames."""
    ratio = paired_ratio(timed, "float32", "ours")
    ours, exact = timed["ours"]["result"]["indices"], timed["float32"]["result"]["indices"]
    return {"speedup_vs_float32": ratio["median"], "speedup_vs_float32_spread": ratio,
            "selection_overlap_float32": selection_overlap(ours, exact),
            "selection_overlap_float32_tolerant": selection_overlap(ours, exact, tolerance=tolerance)}


def keyframe_stage(cfg: Mapping[str, Any], scorer: CountingScorer, work: Path) -> ClipPreprocessor:
    """The keyframes-only preprocessing (the streams whose array is the keyframe images, as
    ``tools/extract_keyframes.py`` runs it) writing into ``work``."""
    streams = tuple(name for name, spec in STREAM_SPECS.items() if spec.stores_keyframes)
    return ClipPreprocessor(dict(cfg), cache_root=work, scorer=scorer, scorer_hash="benchmark", streams=streams)


def _run(stage: ClipPreprocessor, video: Path) -> dict:
    """One extraction of ``video`` into a clean ``stage.cache_root/clip``: stage seconds + picks."""
    shutil.rmtree(stage.cache_root / "clip", ignore_errors=True)
    stage.scorer.reset()
    if stage(clip_record(video)) != "done":
        raise BenchmarkError(f"{stage.cache_root / 'clip'}: extraction was skipped, the directory was not clean")
    record = read_json(stage.cache_root / "clip" / KEYFRAMES_JSON) or {}
    t = stage.last_timings
    stages = {"decode_s": t.get("decode", 0.0), "scoring_s": t.get("scoring", 0.0),
              "selection_s": t.get("selection", 0.0), "write_s": t.get("write", 0.0),
              "scorer_busy_s": stage.scorer.last_s}
    stages["_result"] = {"indices": [k["index"] for k in record.get("keyframes", [])],
                         "scored": stage.scorer.last_count}
    return stages


def keyframe_benchmark(video: str | os.PathLike, *, cfg: Mapping[str, Any], scorer_model: ScorerModel,
                       repeats: int = 5, warmup: int = 1,
                       reference: bool = True, reference_size: int | None = None, tolerance: int = 2,
                       work_dir: str | os.PathLike | None = None) -> dict:
    """Seconds per clip of the keyframe stage with recipe ``cfg`` and the scorer network
    ``scorer_model`` (:func:`benchmarks.inputs.load_scorer_model`), and with ``reference`` the
    same stage scoring every frame (``candidate_fps`` = the video's frame rate) at
    ``reference_size`` px, the two interleaved ``repeats`` times each.

    Both arms score at the size a trained scorer was trained at (``reference_size`` ``None``:
    that size, or 224 px for a random-init scorer): a trained scorer asked for another size, by
    ``keyframes.score_size`` or ``reference_size``, raises :class:`~core.config.ConfigError`, as
    preprocessing does, since the selection overlap would compare scores the scorer was never
    validated on.

    Returns ``decode_s``, ``scoring_s``, ``selection_s``, ``write_s`` (stage medians), ``total_s``
    and ``cpu_s`` (medians of the whole call), ``total_spread`` (min, max, IQR), ``frames_scored``
    and, with ``reference``: the same fields prefixed ``reference_``, ``speedup_vs_reference``
    (median of the per-round ratios, with ``speedup_spread``), ``selection_overlap`` (share of the
    same frame indices) and ``selection_overlap_tolerant`` (within ``tolerance`` frames). When
    ``keyframes.precision`` is not float32, the same stage in float32 is a third arm: fields
    prefixed ``float32_``, ``speedup_vs_float32`` (with ``speedup_vs_float32_spread``),
    ``selection_overlap_float32`` and ``selection_overlap_float32_tolerant``: what the faster
    arithmetic costs in time saved and keyframes moved, on this clip."""
    video = Path(video)
    settings = KeyframeSettings.from_config(cfg.get("keyframes"))
    ours_scorer = CountingScorer.scoring_as(scorer_model, settings)  # a size mismatch stops here, before the clip
    ref_size = scoring_size(scorer_model.trained_size, reference_size,
                            what="score the reference (--reference-size)") if reference else None
    clip = clip_info(video)

    out: dict[str, Any] = {"benchmark": "keyframes", "video": str(video), "clip": clip,
                           "scorer": scorer_model.description, "scorer_trained_size": scorer_model.trained_size,
                           "settings": asdict(settings), "repeats": repeats, "warmup": warmup,
                           "machine_start": machine_info()}
    with tempfile.TemporaryDirectory(prefix="bench_kf_", dir=work_dir) as tmp:
        ours = keyframe_stage(cfg, ours_scorer, Path(tmp) / "ours")
        runs = {"ours": lambda: _run(ours, video)}
        if reference:
            ref_settings = replace(settings, candidate_fps=float(clip["fps"]), score_size=ref_size, precision="float32")
            ref_cfg = {**cfg, "keyframes": asdict(ref_settings)}
            ref = keyframe_stage(ref_cfg, CountingScorer.scoring_as(scorer_model, ref_settings),
                                 Path(tmp) / "reference")
            runs["reference"] = lambda: _run(ref, video)
            out["reference_settings"] = asdict(ref_settings)
        exact_cfg = float32_recipe(cfg)
        if exact_cfg is not None:
            exact_scorer = CountingScorer.scoring_as(scorer_model, KeyframeSettings.from_config(exact_cfg["keyframes"]))
            exact = keyframe_stage(exact_cfg, exact_scorer, Path(tmp) / "float32")
            runs["float32"] = lambda: _run(exact, video)
        timed = interleaved(runs, repeats=repeats, warmup=warmup)
    for prefix, name in (("", "ours"), ("reference_", "reference"), ("float32_", "float32")):
        if name not in timed:
            continue
        t = timed[name]
        out.update({f"{prefix}{k}": v for k, v in t["stages"].items()})
        out[f"{prefix}total_s"], out[f"{prefix}cpu_s"] = t["wall"]["median"], t["cpu"]["median"]
        out[f"{prefix}total_spread"] = {k: t["wall"][k] for k in ("min", "max", "iqr")}
        out[f"{prefix}frames_scored"] = t["result"]["scored"]
        out[f"{prefix}keyframe_indices"] = t["result"]["indices"]
    if reference:
        ratio = paired_ratio(timed, "reference", "ours")
        out["speedup_vs_reference"], out["speedup_spread"] = ratio["median"], ratio
        out["selection_overlap"] = selection_overlap(out["keyframe_indices"], out["reference_keyframe_indices"])
        out["selection_overlap_tolerance_frames"] = tolerance
        out["selection_overlap_tolerant"] = selection_overlap(out["keyframe_indices"],
                                                              out["reference_keyframe_indices"], tolerance=tolerance)
    if "float32" in timed:
        out.update(float32_comparison(timed, tolerance=tolerance))
    out["goal_total_s"] = GOAL_TOTAL_S
    out["goal_met"] = out["total_s"] <= GOAL_TOTAL_S
    out["machine_end"] = machine_info()
    return out
