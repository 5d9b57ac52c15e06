"""Preprocessing: seconds per clip of the one-pass preprocessing of every stream, against the
straightforward way (each stream reads the clip on its own, with the expensive settings its spec
names), interleaved in the same run; the peak memory of a fresh process preprocessing a short
and a long clip; and, on request, the throughput of preprocessing a dataset in one process
against K worker processes."""
from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import torch

from benchmarks.inputs import (
    CountingScorer,
    ScorerModel,
    clip_info,
    clip_record,
    load_scorer_model,
    write_scene_clip,
)
from benchmarks.keyframes import float32_comparison, float32_recipe
from benchmarks.timing import BenchmarkError, interleaved, machine_info, paired_ratio, rss_mb, summarise
from keyframes.extraction import KeyframeSettings
from media.decoding import probe
from streams.cache import read_meta
from streams.preprocessing import ClipPreprocessor
from streams.specs import STREAM_SPECS, parse_streams

GOALS = {"total_s": 1.5,            # whole preprocessing per 5 s 720p clip, 2 CPU cores (issue 17)
         "speedup": 5.0,            # over the naive baseline
         "peak_rss_ratio_max": 1.25}  # a 60 s clip's peak RSS within 25 % of a 5 s one's: no growth with length


def naive_config(cfg: Mapping[str, Any], fps: float, score_size: int = 224) -> dict:
    """The recipe of the straightforward way: every frame scored at ``score_size`` px in float32,
    and each stream with the expensive settings its spec names (:attr:`StreamSpec.naive_settings`)."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in cfg.items()}
    out["keyframes"] = {**dict(cfg.get("keyframes") or {}), "candidate_fps": float(fps), "score_size": int(score_size),
                        "precision": "float32"}
    for spec in STREAM_SPECS.values():
        if spec.naive_settings:
            out[spec.section] = {**dict(cfg.get(spec.section) or {}), **spec.naive_settings}
    return out


class NaivePreprocessor:
    """Every stream on its own: one :class:`ClipPreprocessor` per stream, each decoding the clip
    again (the streams that read keyframes after the first take the stored selection, as a
    pipeline of separate scripts would), with :func:`naive_config`."""

    def __init__(self, cfg: Mapping[str, Any], *, scorer: CountingScorer, fps: float, work: Path,
                 score_size: int = 224) -> None:
        self.cfg = naive_config(cfg, fps, score_size)
        self.streams = parse_streams(None, dict(cfg))
        self.work = work
        self.steps = [ClipPreprocessor(self.cfg, cache_root=work, scorer=scorer, scorer_hash="naive", streams=(s,))
                      for s in self.streams]

    def describe(self) -> str:
        parts = [f"each of {', '.join(self.streams)} decodes the clip itself",
                 f"every frame scored at {self.cfg['keyframes']['score_size']} px"]
        parts += [f"{s.name}: {s.naive_settings}" for s in STREAM_SPECS.values() if s.naive_settings]
        return "; ".join(parts)

    def __call__(self, video: Path) -> dict:
        shutil.rmtree(self.work / "clip", ignore_errors=True)
        stages: dict[str, float] = {}
        for step in self.steps:
            step(clip_record(video))
            for k, v in step.last_timings.items():
                if k != "compute_total":
                    stages[f"{k}_s"] = stages.get(f"{k}_s", 0.0) + v
        return stages


def _run(pre: ClipPreprocessor, video: Path) -> dict:
    """One preprocessing of ``video`` into a clean ``pre.cache_root/clip``: stage seconds + a summary."""
    shutil.rmtree(pre.cache_root / "clip", ignore_errors=True)
    if isinstance(pre.scorer, CountingScorer):
        pre.scorer.reset()
    if pre(clip_record(video)) != "done":
        raise BenchmarkError(f"{pre.cache_root / 'clip'}: preprocessing was skipped, the directory was not clean")
    meta = read_meta(pre.cache_root / "clip") or {}
    stages = {f"{k}_s": v for k, v in pre.last_timings.items() if k != "compute_total"}
    if isinstance(pre.scorer, CountingScorer):
        stages["scorer_busy_s"] = pre.scorer.last_s
    stages["_result"] = {"n_faces": meta.get("n_faces"), "has_audio": meta.get("has_audio"),
                         "frames_scored": pre.scorer.last_count if pre.scorer is not None else 0,
                         "indices": (meta.get("keyframes") or {}).get("indices", [])}
    return stages


def _start_child(entry: str, spec: Mapping[str, Any]) -> subprocess.Popen:
    """A fresh Python process running ``benchmarks.preprocessing.<entry>(json.dumps(spec))``."""
    code = f"import sys; from benchmarks.preprocessing import {entry}; {entry}(sys.argv[1])"
    return subprocess.Popen([sys.executable, "-c", code, json.dumps(spec)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _child_result(proc: subprocess.Popen, *, what: str, timeout: float) -> dict:
    """The JSON line a child printed last; a :class:`BenchmarkError` naming ``what`` when it failed."""
    try:
        stdout, stderr = proc.communicate(timeout=max(1.0, timeout))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise BenchmarkError(f"{what}: the measuring child ran past {timeout:.0f} s") from None
    lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise BenchmarkError(f"{what}: the measuring child failed (exit {proc.returncode}):\n{stderr[-3000:]}")
    return json.loads(lines[-1])


def peak_rss_of_preprocessing(videos: Mapping[str, str | os.PathLike], *, cfg: Mapping[str, Any],
                              scorer: str | None, scorer_depth: int = 50, seed: int = 0,
                              timeout: float = 1800.0) -> dict[str, dict]:
    """Preprocess each of ``videos`` (label -> path) once, each in its own fresh Python process,
    and return label -> ``{"rss_before_mb", "peak_rss_mb", "wall_s"}`` in MiB:
    ``rss_before_mb`` after imports and model construction, before the clip; ``peak_rss_mb`` is
    the process's peak resident size at the end (VmHWM, see :func:`benchmarks.timing.rss_mb`).
    The children run at the same time (a process's peak memory does not depend on its
    neighbours; their ``wall_s`` does, so it is only informative)."""
    procs = {label: (video, _start_child("rss_child", {
        "video": str(video), "cfg": cfg, "scorer": scorer, "scorer_depth": scorer_depth, "seed": seed,
        "threads": torch.get_num_threads()})) for label, video in videos.items()}
    results, failures = {}, []
    deadline = time.monotonic() + timeout
    for label, (video, proc) in procs.items():
        try:
            results[label] = _child_result(proc, what=f"{video} (memory)", timeout=deadline - time.monotonic())
        except BenchmarkError as e:
            failures.append(str(e))
    if failures:
        raise BenchmarkError("\n".join(failures))
    return results


def check_dataset_request(clips: int, workers: int) -> None:
    """A :class:`BenchmarkError` unless :func:`dataset_throughput` can time ``clips`` clips on
    ``workers`` workers (called by the tool before anything is measured)."""
    if workers < 2:
        raise BenchmarkError(f"--dataset-workers must be >= 2 (one process is the other setting), got {workers}")
    if clips < workers + 2:
        raise BenchmarkError(f"--dataset-clips must be >= --dataset-workers + 2 = {workers + 2}, so that two clips "
                             f"or more finish after every worker's first one, got {clips}")


def dataset_throughput(video: str | os.PathLike, *, cfg: Mapping[str, Any], scorer: str | None,
                       scorer_depth: int = 50, seed: int = 0, clips: int = 8, workers: int = 2,
                       repeats: int = 3, timeout: float = 1800.0) -> dict:
    """Seconds per clip of preprocessing a *dataset* the way ``tools/preprocess.py`` does
    (:func:`core.batch.run_batch` over ``clips`` copies of ``video``), in one process with this
    process's torch threads (``--workers 0``) and with ``workers`` worker processes of one torch
    thread each (``--workers K``), each run in a fresh Python process, interleaved ``repeats``
    times (one process, K workers, one process, ...).

    Per setting: ``per_clip_s`` (summary over the rounds of the steady seconds per clip, from
    :meth:`core.batch.BatchSummary.steady_seconds_per_clip`: the time between each worker's first
    clip and the last one, so start-up, model loading and first-call costs are left out),
    ``ready_s`` (start until the job was built), ``total_s`` (the whole run, start-up included) and
    ``clips_per_s``; ``workers_speedup``: the paired per-round ratio one process / K workers."""
    check_dataset_request(clips, workers)
    threads = torch.get_num_threads()
    settings = {"one_process": 0, f"workers_{workers}": workers}
    rounds: dict[str, list[dict]] = {name: [] for name in settings}
    for _ in range(repeats):
        for name, k in settings.items():
            proc = _start_child("dataset_child", {"video": str(video), "cfg": cfg, "scorer": scorer,
                                                  "scorer_depth": scorer_depth, "seed": seed, "threads": threads,
                                                  "clips": clips, "workers": k})
            rounds[name].append(_child_result(proc, what=f"{video} (dataset, {name})", timeout=timeout))
    out: dict[str, Any] = {"clips": clips, "repeats": repeats, "torch_threads_one_process": threads}
    for name in settings:
        per_clip = summarise([r["per_clip_s"] for r in rounds[name]])
        out[name] = {"per_clip_s": per_clip, "clips_per_s": 1.0 / per_clip["median"],
                     "ready_s": summarise([r["ready_s"] for r in rounds[name]]),
                     "total_s": summarise([r["total_s"] for r in rounds[name]]),
                     "rounds_per_clip_s": [r["per_clip_s"] for r in rounds[name]]}
    one, many = out["one_process"]["rounds_per_clip_s"], out[f"workers_{workers}"]["rounds_per_clip_s"]
    out["workers_speedup"] = summarise([a / b for a, b in zip(one, many)])
    return out


def dataset_child(spec_json: str) -> None:
    """Entry point of the child process of :func:`dataset_throughput` (prints one JSON line)."""
    from core.batch import run_batch
    from media.layouts import ClipRecord

    spec = json.loads(spec_json)
    torch.set_num_threads(int(spec["threads"]))
    records = [ClipRecord(clip_id=f"clip{i:03d}", path=Path(spec["video"]), label=None, class_names=(), split=None)
               for i in range(int(spec["clips"]))]
    workers = int(spec["workers"])
    with tempfile.TemporaryDirectory(prefix="bench_dataset_") as tmp:
        make_job = functools.partial(benchmark_job, spec["cfg"], tmp, scorer=spec["scorer"],
                                     scorer_depth=int(spec["scorer_depth"]), seed=int(spec["seed"]))
        with contextlib.redirect_stderr(io.StringIO()):  # run_batch's progress bar
            summary = run_batch(records, make_job, errors_log=Path(tmp) / "errors.jsonl", workers=workers)
    if summary.failed or summary.done != len(records):
        raise BenchmarkError(f"{spec['video']}: {summary.failed} of {len(records)} clips failed in the dataset run: "
                             f"{summary.failures[:1]}")
    print(json.dumps({"per_clip_s": summary.steady_seconds_per_clip(skip=max(1, workers)),
                      "ready_s": summary.ready_s, "total_s": summary.seconds}))


def benchmark_job(cfg: Mapping[str, Any], cache_root: str, *, scorer: str | None, scorer_depth: int = 50,
                  seed: int = 0) -> ClipPreprocessor:
    """The per-clip job the preprocessing benchmarks time: a :class:`ClipPreprocessor` with recipe
    ``cfg`` and the scorer network of :func:`benchmarks.inputs.load_scorer_model`, scoring at the
    recipe's ``keyframes.score_size`` (module-level, so worker processes can build it)."""
    settings = KeyframeSettings.from_config(cfg.get("keyframes"))
    loaded = load_scorer_model(scorer, depth=scorer_depth, seed=seed)
    return ClipPreprocessor(dict(cfg), cache_root=cache_root, scorer=CountingScorer.scoring_as(loaded, settings),
                            scorer_hash="benchmark")


def rss_child(spec_json: str) -> None:
    """Entry point of the child process of :func:`peak_rss_of_preprocessing` (prints one JSON line)."""
    spec = json.loads(spec_json)
    torch.set_num_threads(int(spec["threads"]))
    with tempfile.TemporaryDirectory(prefix="bench_rss_") as tmp:
        pre = benchmark_job(spec["cfg"], tmp, scorer=spec["scorer"], scorer_depth=int(spec["scorer_depth"]),
                            seed=int(spec["seed"]))
        # build the lazy models (MTCNN, flow, librosa's imports) on a tiny clip before the "before" reading
        warm = write_scene_clip(Path(tmp) / "warm.mp4", seconds=1.0, size=(160, 90), fps=10)
        _run(pre, warm)
        before, _ = rss_mb()
        t0 = time.perf_counter()
        _run(pre, Path(spec["video"]))
        wall = time.perf_counter() - t0
        _, peak = rss_mb()
    print(json.dumps({"rss_before_mb": before, "peak_rss_mb": peak, "wall_s": wall}))


def preprocess_benchmark(video: str | os.PathLike, *, cfg: Mapping[str, Any], scorer_model: ScorerModel,
                         repeats: int = 5, warmup: int = 1, baseline: bool = True,
                         baseline_score_size: int = 224,
                         memory_clips: Mapping[str, str | os.PathLike] | None = None, scorer: str | None = None,
                         scorer_depth: int = 50, work_dir: str | os.PathLike | None = None,
                         dataset_clips: int = 0, dataset_workers: int = 2, tolerance: int = 2) -> dict:
    """Seconds per clip of :class:`~streams.preprocessing.ClipPreprocessor` (every stream the recipe
    enables, writing included) with recipe ``cfg`` and the scorer network ``scorer_model``
    (:func:`benchmarks.inputs.load_scorer_model`): per stage (``decode_s``, ``scoring_s``,
    ``selection_s``, one ``<stream>_s`` per stream, ``audio_decode_s``, ``write_s``), ``total_s``
    and ``cpu_s``; with ``baseline`` the same clip through :class:`NaivePreprocessor`,
    interleaved ``repeats`` times each: ``baseline_*``, ``speedup`` (median of the per-round
    ratios) and ``speedup_spread``. ``memory_clips`` (label -> video, e.g. ``{"5s": a, "60s": b}``)
    are each preprocessed in a fresh process after the timed runs: ``peak_rss_mb_<label>`` and
    ``rss_before_mb_<label>``; ``peak_rss_mb`` is that of the first label. ``dataset_clips`` > 0
    adds ``dataset`` (:func:`dataset_throughput` over that many copies of ``video``, ``repeats``
    rounds, one process against K = ``dataset_workers`` workers), its medians
    ``dataset_one_process_per_clip_s`` and ``dataset_workers_K_per_clip_s`` and the paired
    ``dataset_workers_speedup``. A recipe whose ``keyframes.precision`` is not float32 is timed
    against the same recipe in float32 too (a third interleaved arm): ``float32_total_s``,
    ``float32_cpu_s``, ``float32_scoring_s`` and :func:`benchmarks.keyframes.float32_comparison`'s
    fields (``tolerance``: frames of slack in the tolerant selection overlap)."""
    video = Path(video)
    settings = KeyframeSettings.from_config(cfg.get("keyframes"))
    out: dict[str, Any] = {"benchmark": "preprocess", "video": str(video), "clip": clip_info(video),
                           "scorer": scorer_model.description, "repeats": repeats, "warmup": warmup,
                           "machine_start": machine_info()}
    with tempfile.TemporaryDirectory(prefix="bench_pre_", dir=work_dir) as tmp:
        sc = CountingScorer.scoring_as(scorer_model, settings)
        pre = ClipPreprocessor(dict(cfg), cache_root=Path(tmp) / "ours", scorer=sc, scorer_hash="benchmark")
        runs = {"ours": lambda: _run(pre, video)}
        if baseline:
            naive_settings = replace(settings, score_size=baseline_score_size, precision="float32")
            naive_scorer = CountingScorer.scoring_as(scorer_model, naive_settings, timing_only=True)
            naive = NaivePreprocessor(cfg, scorer=naive_scorer, fps=probe(video).fps, work=Path(tmp) / "naive",
                                      score_size=baseline_score_size)
            runs["baseline"] = lambda: naive(video)
            out["baseline"] = naive.describe()
        exact_cfg = float32_recipe(cfg)
        if exact_cfg is not None:
            exact_scorer = CountingScorer.scoring_as(scorer_model,
                                                     KeyframeSettings.from_config(exact_cfg["keyframes"]))
            exact = ClipPreprocessor(exact_cfg, cache_root=Path(tmp) / "float32", scorer=exact_scorer,
                                     scorer_hash="benchmark")
            runs["float32"] = lambda: _run(exact, video)
        timed = interleaved(runs, repeats=repeats, warmup=warmup)
    ours = timed["ours"]
    out.update(ours["stages"])
    out["total_s"], out["cpu_s"] = ours["wall"]["median"], ours["cpu"]["median"]
    out["total_spread"] = {k: ours["wall"][k] for k in ("min", "max", "iqr")}
    out.update({"n_faces": ours["result"]["n_faces"], "has_audio": ours["result"]["has_audio"],
                "frames_scored": ours["result"]["frames_scored"]})
    if baseline:
        base = timed["baseline"]
        out.update({f"baseline_{k}": v for k, v in base["stages"].items()})
        out["baseline_total_s"], out["baseline_cpu_s"] = base["wall"]["median"], base["cpu"]["median"]
        ratio = paired_ratio(timed, "baseline", "ours")
        out["speedup"], out["speedup_spread"] = ratio["median"], ratio
        out["speedup_cpu"] = out["baseline_cpu_s"] / out["cpu_s"]
    if "float32" in timed:
        exact = timed["float32"]
        out["float32_total_s"], out["float32_cpu_s"] = exact["wall"]["median"], exact["cpu"]["median"]
        out["float32_scoring_s"] = exact["stages"]["scoring_s"]
        out.update(float32_comparison(timed, tolerance=tolerance))
    if memory_clips:
        measured = peak_rss_of_preprocessing(memory_clips, cfg=cfg, scorer=scorer, scorer_depth=scorer_depth)
        for i, (label, clip) in enumerate(memory_clips.items()):
            mem = measured[label]
            out[f"peak_rss_mb_{label}"] = mem["peak_rss_mb"]
            out[f"rss_before_mb_{label}"] = mem["rss_before_mb"]
            out[f"memory_clip_{label}"] = {"video": str(clip), **clip_info(Path(clip)), "child_wall_s": mem["wall_s"]}
            if i == 0:
                out["peak_rss_mb"] = mem["peak_rss_mb"]
        labels = list(memory_clips)
        if len(labels) >= 2:
            first, last = labels[0], labels[-1]
            out[f"peak_rss_ratio_{last}_vs_{first}"] = out[f"peak_rss_mb_{last}"] / out[f"peak_rss_mb_{first}"]
            out[f"clip_memory_mb_{first}"] = out[f"peak_rss_mb_{first}"] - out[f"rss_before_mb_{first}"]
            out[f"clip_memory_mb_{last}"] = out[f"peak_rss_mb_{last}"] - out[f"rss_before_mb_{last}"]
    if dataset_clips:
        data = dataset_throughput(video, cfg=cfg, scorer=scorer, scorer_depth=scorer_depth, clips=dataset_clips,
                                  workers=dataset_workers, repeats=repeats)
        out["dataset"] = data
        for name in ("one_process", f"workers_{dataset_workers}"):
            out[f"dataset_{name}_per_clip_s"] = data[name]["per_clip_s"]["median"]
        out["dataset_workers_speedup"] = data["workers_speedup"]["median"]
    out["goals"] = dict(GOALS)
    out["goal_total_met"] = out["total_s"] <= GOALS["total_s"]
    if "speedup" in out:
        out["goal_speedup_met"] = out["speedup"] >= GOALS["speedup"]
    ratio_keys = [k for k in out if k.startswith("peak_rss_ratio_")]
    if ratio_keys:
        out["goal_memory_met"] = out[ratio_keys[0]] < GOALS["peak_rss_ratio_max"]
    out["machine_end"] = machine_info()
    return out
