"""Speed and memory measurements of keyframe extraction, preprocessing and stream training
(the logic behind ``tools/benchmark.py``).

Each benchmark returns one flat, JSON-serialisable dict; :func:`format_report` turns it into a
table. Times are seconds per clip (or per step). Both the wall time (``time.perf_counter``) and
the CPU time of this process (``time.process_time``, summed over its threads) are reported: on a
machine shared with other processes the wall time is inflated, the CPU time much less. Every
measurement is preceded by ``warmup`` unmeasured runs (model construction, lazy MTCNN, page
cache) and is the median of ``repeats`` runs. A cheap setting and its expensive reference are
measured in the same process run, so their ratio is meaningful even when absolute numbers are
inflated by load.

* :func:`keyframe_benchmark`: decode (+ sampling), scoring, selection and writing of the keyframe
  stage with a config, against scoring every frame at a larger size; reports how much of the
  reference's selection the cheap setting keeps (:func:`selection_overlap`).
* :func:`preprocess_benchmark`: the one-pass preprocessing (:class:`~streams.preprocessing.ClipPreprocessor`)
  per stage, against a naive pipeline (:func:`naive_preprocess`), plus the peak memory of a fresh
  process preprocessing a short and a long clip (:func:`peak_rss_of_preprocessing`).
* :func:`training_benchmark`: one training step of a stream with and without its attention
  neck, and the cache data loader alone (from a fabricated cache, :func:`fabricate_cache`).
"""
from __future__ import annotations

import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import cv2
import numpy as np
import torch

from media.datasets import ClipRecord
from media.decoding import VideoReader, read_audio
from media.encoding import write_mp4
from media.storage import atomic_save_npy, atomic_write_json, read_json
from media.synthetic import draw_cartoon_face
from keyframes.extraction import KEYFRAMES_JSON, KeyframeExtractor, KeyframeSettings
from keyframes.scorer import SentimentScorer, create_scorer
from keyframes.selection import Candidate, select_keyframes
from streams.cache import ARRAY_FILES, write_meta
from streams.inputs.faces import FaceExtractor
from streams.inputs.optical_flow import compute_flow_stack, create_flow_estimator, flow_positions, quantise_flow
from streams.inputs.spectrogram import log_mel_spectrogram
from streams.preprocessing import ClipPreprocessor

# Goals the benchmarks report against (not asserted anywhere).
GOALS = {
    "keyframes_total_s": 3.0,          # whole keyframe extraction per 5 s clip, 2 CPU cores
    "preprocess_total_s": 4.0,         # whole preprocessing per 5 s clip, 2 CPU cores
    "preprocess_speedup": 5.0,         # over the naive baseline
    "memory_growth_60s_vs_5s": 10.0,   # peak RSS of a 60 s clip must stay below this multiple
    "attention_step_ratio": 1.10,      # step with attention / bare backbone step (visual)
    "loader_vs_step": 5.0,             # loader clips/s over training-step clips/s
}
DEFAULT_CLASSES = ("Positive", "Neutral", "Negative")


class BenchmarkError(ValueError):
    """A benchmark that cannot run as asked (the message says what is wrong)."""


# --- machine and timing -----------------------------------------------------------------------

def machine_info() -> dict:
    """CPU count, torch threads and the load average (1 min) at the time of the call."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "load_avg_1min": round(load, 2)}


def _median_dicts(runs: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Per-key median of ``runs`` (keys missing from a run are skipped for that run)."""
    keys = sorted({k for r in runs for k in r})
    return {k: float(statistics.median(r[k] for r in runs if k in r)) for k in keys}


def _measure(run: Callable[[], dict], *, repeats: int, warmup: int) -> tuple[dict[str, float], Any]:
    """Call ``run`` ``warmup`` times unmeasured, then ``repeats`` times. ``run`` returns a dict of
    stage seconds (and may put a non-numeric payload under ``"_result"``). Returns the per-key
    medians plus ``wall_s``/``cpu_s`` (medians of the whole call), and the last payload."""
    if repeats < 1:
        raise BenchmarkError(f"repeats must be >= 1, got {repeats}")
    for _ in range(max(0, warmup)):
        run()
    runs, payload = [], None
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        stages = dict(run())
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        payload = stages.pop("_result", None)
        runs.append({**stages, "wall_s": wall, "cpu_s": cpu})
    return _median_dicts(runs), payload


def _rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB, from /proc/self/status (VmRSS, VmHWM).

    Not ``getrusage(RUSAGE_SELF).ru_maxrss``: Linux carries the parent's resident size at fork
    time into a child's ru_maxrss across exec, so a child of a big benchmark process would report
    the parent's memory. VmHWM is the high-water mark of this process's own address space.
    Falls back to ru_maxrss where /proc is missing."""
    fields: dict[str, float] = {}
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(rest.split()[0]) / 1024.0  # kB
    peak = fields.get("VmHWM", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
    return fields.get("VmRSS", float("nan")), peak


# --- clips and scorers ------------------------------------------------------------------------

def write_scene_clip(path: str | os.PathLike, *, seconds: float = 5.0, size: tuple[int, int] = (1280, 720),
                     fps: float = 25.0, faces: int = 3, audio: bool = True, sample_rate: int = 16000,
                     seed: int = 0) -> Path:
    """Write a synthetic group scene to ``path`` (H.264/AAC mp4) and return the path.

    ``size`` is (width, height) in pixels; ``round(seconds * fps)`` frames of a textured
    background with ``faces`` cartoon faces (head height 38 % of the frame) that sway sideways
    and change expression over time; ``audio`` adds a mono track at ``sample_rate`` Hz (a tone
    whose pitch and loudness change, plus noise). Frames are streamed to the encoder, so long
    clips do not sit in memory.
    """
    w, h = (int(v) for v in size)
    n_frames = max(1, int(round(seconds * fps)))
    rng = np.random.default_rng(seed)
    bg = rng.integers(50, 210, (h // 16 + 1, w // 16 + 1, 3)).astype(np.uint8)
    bg = np.kron(bg, np.ones((16, 16, 1), np.uint8))[:h, :w]
    xs = np.linspace(w * 0.2, w * 0.8, max(faces, 1))
    phases = rng.uniform(0, 2 * np.pi, max(faces, 1))

    def frames() -> Iterable[np.ndarray]:
        for t in range(n_frames):
            img = bg.copy()
            sec = t / fps
            for k in range(faces):
                cx = int(xs[k] + 0.04 * w * np.sin(2 * np.pi * sec / 3.0 + phases[k]))
                cy = int(h * 0.45 + 0.01 * h * np.sin(2 * np.pi * sec / 1.3 + phases[k]))
                mouth = float(np.sin(2 * np.pi * sec / 4.0 + phases[k]))
                draw_cartoon_face(img, (cx, cy), int(h * 0.38), mouth)
            yield img

    tone = None
    if audio:
        t = np.arange(int(n_frames / fps * sample_rate)) / sample_rate
        pitch = 220.0 + 110.0 * np.sin(2 * np.pi * t / 2.5)
        loud = 0.1 + 0.1 * (1 + np.sin(2 * np.pi * t / 1.7))
        tone = (loud * np.sin(2 * np.pi * np.cumsum(pitch) / sample_rate)
                + 0.02 * rng.standard_normal(t.size)).astype(np.float32)
    return write_mp4(path, frames(), fps=fps, audio=tone, sample_rate=sample_rate if audio else None)


def load_scorer_model(scorer: str | os.PathLike | None, *, depth: int = 50, num_classes: int = 3,
                      seed: int = 0) -> tuple[torch.nn.Module, tuple[str, ...], str]:
    """The scorer network to time: a trained run/checkpoint when ``scorer`` is given, else a
    random-init torchvision ResNet-``depth`` (same cost, meaningless scores). Returns
    ``(model in eval mode, class_names, description)``."""
    if scorer:
        loaded = SentimentScorer.from_checkpoint(scorer)
        return loaded.model, loaded.class_names, f"trained scorer {scorer}"
    torch.manual_seed(seed)
    model = create_scorer(num_classes=num_classes, depth=depth).eval()
    names = DEFAULT_CLASSES if num_classes == 3 else tuple(f"class{i}" for i in range(num_classes))
    return model, names, (f"random-init ResNet-{depth} (no --scorer given): timings are representative, "
                          "scores and therefore the selection are not")


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


def _clip_info(video: Path) -> dict:
    with VideoReader(video) as reader:
        info = reader.info
    return {"width": info.width, "height": info.height, "fps": round(info.fps, 3),
            "duration_s": round(info.duration, 3), "frames": info.frame_count, "has_audio": info.has_audio}


class _CountingScorer:
    """Wraps a :class:`SentimentScorer`, remembering how many frames the last ``score`` call rated
    and the CPU seconds (this process, all threads) it took."""

    def __init__(self, scorer: SentimentScorer) -> None:
        self.inner, self.class_names, self.last_count, self.last_cpu_s = scorer, scorer.class_names, 0, 0.0

    def score(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        c0 = time.process_time()
        probs = self.inner.score(frames)
        self.last_count, self.last_cpu_s = len(frames), time.process_time() - c0
        return probs


def _record(video: Path) -> ClipRecord:
    return ClipRecord(clip_id="clip", path=Path(video), label=None, class_names=(), split=None)


# --- keyframes --------------------------------------------------------------------------------

def _keyframe_run(video: Path, settings: KeyframeSettings, scorer: _CountingScorer, short_side: int,
                  work: Path) -> dict:
    """One keyframe extraction of ``video`` into ``work/clip``; stage seconds + chosen indices."""
    shutil.rmtree(work / "clip", ignore_errors=True)
    extractor = KeyframeExtractor(settings=settings, scorer=scorer, scorer_hash="benchmark",
                                  cache_root=work, short_side=short_side)
    if extractor(_record(video)) != "done":
        raise BenchmarkError(f"{work / 'clip'}: extraction was skipped, the benchmark directory was not clean")
    record = read_json(work / "clip" / KEYFRAMES_JSON) or {}
    stages = {f"{k}_s": v for k, v in extractor.last_timings.items()}
    stages["scoring_cpu_s"] = scorer.last_cpu_s
    stages["_result"] = {"indices": [k["index"] for k in record.get("keyframes", [])], "scored": scorer.last_count}
    return stages


def keyframe_benchmark(video: str | os.PathLike, *, cfg: Mapping[str, Any], scorer_model: torch.nn.Module,
                       class_names: Sequence[str], scorer_description: str, repeats: int = 3, warmup: int = 1,
                       reference: bool = True, reference_size: int = 224, reference_repeats: int = 1,
                       tolerance: int = 2, work_dir: str | os.PathLike | None = None) -> dict:
    """Seconds per clip of the keyframe stage (:class:`~keyframes.extraction.KeyframeExtractor`,
    writing ``keyframes.npy``/``keyframes.json`` to a temporary directory) with the recipe ``cfg``
    (sections ``keyframes`` and ``visual``), and, with ``reference``, the same pipeline scoring
    every frame (``candidate_fps`` = the video's frame rate) at ``reference_size`` px short side.

    Returns a dict with ``decode_s`` (decoding + sampling), ``scoring_s``, ``selection_s``,
    ``write_s``, ``total_s`` (wall, whole call), ``cpu_s``, ``frames_scored`` and, with
    ``reference``: ``reference_total_s``, ``reference_scoring_s``, ``reference_cpu_s``,
    ``selection_overlap`` (share of the same frame indices, see :func:`selection_overlap`) and
    ``selection_overlap_tolerant`` (within ``tolerance`` frames).
    """
    video = Path(video)
    settings = KeyframeSettings.from_config(cfg.get("keyframes"))
    short_side = int(cfg.get("visual", {}).get("short_side", 256))
    clip = _clip_info(video)
    scorer = _CountingScorer(SentimentScorer(scorer_model, class_names, input_size=settings.score_size,
                                             batch_size=settings.batch_size))
    out: dict[str, Any] = {"benchmark": "keyframes", "video": str(video), "clip": clip, "scorer": scorer_description,
                           "settings": asdict(settings), "repeats": repeats, "warmup": warmup,
                           "machine_start": machine_info()}
    with tempfile.TemporaryDirectory(prefix="bench_kf_", dir=work_dir) as tmp:
        work = Path(tmp)
        med, got = _measure(lambda: _keyframe_run(video, settings, scorer, short_side, work),
                            repeats=repeats, warmup=warmup)
        chosen = got["indices"]
        out.update({k: med[k] for k in ("decode_s", "scoring_s", "scoring_cpu_s", "selection_s", "write_s")})
        out["total_s"], out["cpu_s"] = med["wall_s"], med["cpu_s"]
        out["frames_scored"] = got["scored"]
        out["keyframe_indices"] = chosen
        if reference:
            ref_settings = replace(settings, candidate_fps=float(clip["fps"]), score_size=int(reference_size))
            ref_scorer = _CountingScorer(SentimentScorer(scorer_model, class_names, input_size=ref_settings.score_size,
                                                         batch_size=settings.batch_size))
            # no warmup: the decoder, model and page cache are warm from the runs above
            ref, ref_got = _measure(lambda: _keyframe_run(video, ref_settings, ref_scorer, short_side, work),
                                       repeats=reference_repeats, warmup=0)
            out["reference_settings"] = asdict(ref_settings)
            out["reference_repeats"] = reference_repeats
            out.update({f"reference_{k}": ref[k]
                        for k in ("decode_s", "scoring_s", "scoring_cpu_s", "selection_s", "write_s")})
            out["reference_total_s"], out["reference_cpu_s"] = ref["wall_s"], ref["cpu_s"]
            ref_chosen = ref_got["indices"]
            out["reference_frames_scored"] = ref_got["scored"]
            out["reference_keyframe_indices"] = ref_chosen
            out["selection_overlap"] = selection_overlap(chosen, ref_chosen)
            out["selection_overlap_tolerance_frames"] = tolerance
            out["selection_overlap_tolerant"] = selection_overlap(chosen, ref_chosen, tolerance=tolerance)
            out["speedup_vs_reference"] = out["reference_total_s"] / out["total_s"]
    out["goal_total_s"] = GOALS["keyframes_total_s"]
    out["goal_met"] = out["total_s"] <= GOALS["keyframes_total_s"]
    out["machine_end"] = machine_info()
    return out


# --- preprocessing ----------------------------------------------------------------------------

def _preprocess_run(pre: ClipPreprocessor, video: Path) -> dict:
    """One preprocessing of ``video`` into ``pre.cache_root/clip``; stage seconds + a summary."""
    shutil.rmtree(pre.cache_root / "clip", ignore_errors=True)
    if pre(_record(video)) != "done":
        raise BenchmarkError(f"{pre.cache_root / 'clip'}: preprocessing was skipped, the directory was not clean")
    meta = read_json(pre.cache_root / "clip" / "meta.json") or {}
    stages = {f"{k}_s": v for k, v in pre.last_timings.items() if k != "compute_total"}
    if isinstance(pre.scorer, _CountingScorer):
        stages["scoring_cpu_s"] = pre.scorer.last_cpu_s
    stages["_result"] = {"n_faces": meta.get("n_faces"), "has_audio": meta.get("has_audio"),
                         "keyframe_indices": meta.get("keyframes", {}).get("indices")}
    return stages


class NaivePreprocessor:
    """The straightforward pipeline the one-pass preprocessing is compared with: every stream
    reads the clip on its own (keyframes, faces and flow each decode the video at full
    resolution; the audio stream opens the file again and decodes the audio track), the scorer
    rates every frame at ``score_size`` px short side, MTCNN runs at full resolution on the
    keyframes, and flow is TV-L1 on the ``positions`` frame pairs at ``flow.short_side``.
    Other settings (N, threshold, crop sizes, mel) come from the same recipe; the outputs are
    written like the cache's arrays. Models are built here, outside the timed call."""

    def __init__(self, cfg: Mapping[str, Any], *, scorer_model: torch.nn.Module, class_names: Sequence[str],
                 score_size: int = 224, flow_algorithm: str = "tvl1", max_side: int = 1 << 16) -> None:
        self.settings = KeyframeSettings.from_config(cfg.get("keyframes"))
        self.visual = dict(cfg.get("visual", {}))
        self.flow_cfg = dict(cfg.get("flow", {}))
        self.faces_cfg = dict(cfg.get("faces", {}))
        self.audio_cfg = dict(cfg.get("audio", {}))
        self.scorer = SentimentScorer(scorer_model, class_names, input_size=score_size,
                                      batch_size=self.settings.batch_size)
        f = self.faces_cfg
        self.faces = FaceExtractor(detect_max_side=max_side,  # never downscaled: full resolution
                                   min_confidence=float(f.get("min_confidence", 0.9)),
                                   min_size=int(f.get("min_size", 20)), num_faces=int(f.get("num_faces", 16)),
                                   crop_size=int(f.get("crop_size", 112)), margin=float(f.get("margin", 0.25)))
        self.flow_algorithm = flow_algorithm
        self.flow = create_flow_estimator(flow_algorithm)

    def __call__(self, video: str | os.PathLike, out_dir: str | os.PathLike) -> dict:
        """Process ``video`` into ``out_dir``; returns wall seconds (``<stage>_s``) and CPU seconds
        (``<stage>_cpu_s``) per stage."""
        video, out_dir = Path(video), Path(out_dir)
        t: dict[str, Any] = {}
        stage = _StageClock(t)

        # visual: decode everything at full resolution, score every frame, select, resize
        with stage("decode_visual"), VideoReader(video) as reader:
            info = reader.info
            decoded = list(reader.iter_frames())
        with stage("scoring"):
            probs = self.scorer.score([f.image for f in decoded])
        with stage("selection"):
            mw = int(self.settings.motion_width)
            prev, cands = None, []
            for f, p in zip(decoded, probs):
                gray = cv2.cvtColor(f.image, cv2.COLOR_RGB2GRAY)
                small = cv2.resize(gray, (mw, max(1, round(gray.shape[0] * mw / gray.shape[1]))),
                                   interpolation=cv2.INTER_AREA).astype(np.int16)
                diff = 0.0 if prev is None else float(np.abs(small - prev).mean())
                prev = small
                cands.append(Candidate(index=f.index, time=f.time, probs=tuple(float(v) for v in p), diff=diff))
            sel = select_keyframes(cands, duration=info.duration, num_keyframes=self.settings.num_keyframes,
                                   threshold=self.settings.threshold)
            ss = int(self.visual.get("short_side", 256))
            by_index = {f.index: f.image for f in decoded}
            keyframes = np.stack([_resize_short(by_index[k.index], ss) for k in sel.keyframes])
            del decoded, by_index

        # faces: decode again at full resolution, MTCNN at full resolution
        with stage("decode_faces"), VideoReader(video) as reader:
            kf_full = reader.frames_by_index(sel.indices)
        with stage("faces"):
            faces = self.faces.extract([f.image for f in kf_full], [f.time for f in kf_full], source=str(video))
            del kf_full

        # flow: decode again at full resolution, grey + resize, TV-L1
        step = int(self.flow_cfg.get("step", 1))
        positions = flow_positions(max(info.frame_count, step + 1), int(self.flow_cfg.get("positions", 8)), step)
        with stage("decode_flow"), VideoReader(video) as reader:
            wanted = sorted(set(positions) | {p + step for p in positions})
            full = {f.index: f.image for f in reader.frames_by_index(wanted)}
        with stage("flow"):
            fs = int(self.flow_cfg.get("short_side", 256))
            gray = {i: _resize_short(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), fs) for i, img in full.items()}
            del full
            bound = float(self.flow_cfg.get("bound", 20.0))
            flow = quantise_flow(compute_flow_stack([(gray[p], gray[p + step]) for p in positions], self.flow), bound)

        # audio: open and decode the file once more, then the log-mel
        sr = int(self.audio_cfg.get("sample_rate", 16000))
        with stage("audio_decode"):
            audio = read_audio(video, sr)
        with stage("mel"):
            mel = None
            if audio is not None and audio.size > 0:
                mel = log_mel_spectrogram(audio, sr, n_mels=int(self.audio_cfg.get("n_mels", 128)),
                                          n_fft=int(self.audio_cfg.get("n_fft", 1024)),
                                          hop_length=int(self.audio_cfg.get("hop_length", 512))).astype(np.float16)

        with stage("write"):
            out_dir.mkdir(parents=True, exist_ok=True)
            atomic_save_npy(out_dir / ARRAY_FILES["visual"], keyframes)
            atomic_save_npy(out_dir / ARRAY_FILES["face"], faces.crops)
            atomic_save_npy(out_dir / ARRAY_FILES["flow"], flow)
            if mel is not None:
                atomic_save_npy(out_dir / ARRAY_FILES["audio"], mel)
            atomic_write_json(out_dir / "meta.json", {"keyframes": sel.indices, "n_faces": int(faces.n_faces)})
        t["_result"] = {"n_faces": int(faces.n_faces), "keyframe_indices": sel.indices}
        return t


class _StageClock:
    """``with clock("name"): ...`` adds ``name_s`` (wall) and ``name_cpu_s`` (process CPU) to a dict."""

    def __init__(self, into: dict) -> None:
        self.into = into

    def __call__(self, name: str) -> "_StageClock":
        self.name = name
        return self

    def __enter__(self) -> None:
        self.w0, self.c0 = time.perf_counter(), time.process_time()

    def __exit__(self, *exc) -> None:
        self.into[f"{self.name}_s"] = time.perf_counter() - self.w0
        self.into[f"{self.name}_cpu_s"] = time.process_time() - self.c0


def _resize_short(image: np.ndarray, short_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    s = short_side / min(h, w)
    if s == 1.0:
        return image
    return cv2.resize(image, (max(1, round(w * s)), max(1, round(h * s))),
                      interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)


def peak_rss_of_preprocessing(videos: Mapping[str, str | os.PathLike], *, cfg: Mapping[str, Any],
                              scorer: str | None, scorer_depth: int = 50, seed: int = 0,
                              timeout: float = 1800.0) -> dict[str, dict]:
    """Preprocess each of ``videos`` (label -> path) once, each in its own fresh Python process,
    and return label -> ``{"rss_before_mb", "peak_rss_mb", "wall_s"}`` in MiB:
    ``rss_before_mb`` after imports and model construction, before the clip; ``peak_rss_mb`` is
    the process's peak resident size at the end (VmHWM, see :func:`_rss_mb`). The children run at the same time (a
    process's peak memory does not depend on its neighbours; their ``wall_s`` does, so it is
    only informative). Each builds the scorer as :func:`load_scorer_model` does, uses this
    process's number of torch threads and writes to its own temp dir."""
    code = "import sys; from streams.benchmarking import _rss_child; _rss_child(sys.argv[1])"
    procs = {}
    for label, video in videos.items():
        spec = json.dumps({"video": str(video), "cfg": cfg, "scorer": scorer, "scorer_depth": scorer_depth,
                           "seed": seed, "threads": torch.get_num_threads()})
        procs[label] = (video, subprocess.Popen([sys.executable, "-c", code, spec], stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, text=True))
    results, failures = {}, []
    deadline = time.monotonic() + timeout
    for label, (video, proc) in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = proc.communicate()
            failures.append(f"{video}: the memory-measuring child ran past {timeout:.0f} s")
            continue
        lines = [ln for ln in stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            failures.append(f"{video}: the memory-measuring child failed (exit {proc.returncode}):\n{stderr[-3000:]}")
            continue
        results[label] = json.loads(lines[-1])
    if failures:
        raise BenchmarkError("\n".join(failures))
    return results


def _rss_child(spec_json: str) -> None:
    """Entry point of the child process of :func:`peak_rss_of_preprocessing` (prints one JSON line)."""
    spec = json.loads(spec_json)
    torch.set_num_threads(int(spec["threads"]))
    cfg = spec["cfg"]
    settings = KeyframeSettings.from_config(cfg.get("keyframes"))
    model, names, _ = load_scorer_model(spec["scorer"], depth=int(spec["scorer_depth"]), seed=int(spec["seed"]))
    scorer = SentimentScorer(model, names, input_size=settings.score_size, batch_size=settings.batch_size)
    with tempfile.TemporaryDirectory(prefix="bench_rss_") as tmp:
        pre = ClipPreprocessor(cfg, cache_root=tmp, scorer=scorer, scorer_hash="benchmark")
        _ = pre.faces, pre.flow  # build the lazy models before the "before" reading
        log_mel_spectrogram(np.zeros(2048, np.float32), 16000)  # librosa imports scipy.signal lazily
        before, _ = _rss_mb()
        t0 = time.perf_counter()
        _preprocess_run(pre, Path(spec["video"]))
        wall = time.perf_counter() - t0
        _, peak = _rss_mb()
    print(json.dumps({"rss_before_mb": before, "peak_rss_mb": peak, "wall_s": wall}))


def preprocess_benchmark(video: str | os.PathLike, *, cfg: Mapping[str, Any], scorer_model: torch.nn.Module,
                         class_names: Sequence[str], scorer_description: str, repeats: int = 3, warmup: int = 1,
                         baseline: bool = True, baseline_repeats: int = 1, baseline_score_size: int = 224,
                         memory_clips: Mapping[str, str | os.PathLike] | None = None, scorer: str | None = None,
                         scorer_depth: int = 50, work_dir: str | os.PathLike | None = None) -> dict:
    """Seconds per clip of :class:`~streams.preprocessing.ClipPreprocessor` (all four streams,
    writing included) with recipe ``cfg``, per stage: ``decode_s`` (one pass, sampling included),
    ``scoring_s``, ``selection_s``, ``faces_s`` (MTCNN + crops), ``flow_s``, ``audio_decode_s``,
    ``mel_s``, ``write_s``; ``total_s`` (wall) and ``cpu_s``. With ``baseline`` the same clip
    through :class:`NaivePreprocessor` in the same run: ``baseline_*_s``, ``baseline_total_s``,
    ``speedup``. ``memory_clips`` (label -> video, e.g. ``{"5s": a, "60s": b}``) are each
    preprocessed in a fresh process (:func:`peak_rss_of_preprocessing`, after the timed runs): ``peak_rss_mb_<label>``
    and ``rss_before_mb_<label>``; ``peak_rss_mb`` is that of the first label."""
    video = Path(video)
    settings = KeyframeSettings.from_config(cfg.get("keyframes"))
    out: dict[str, Any] = {"benchmark": "preprocess", "video": str(video), "clip": _clip_info(video),
                           "scorer": scorer_description, "repeats": repeats, "warmup": warmup,
                           "machine_start": machine_info()}
    sc = _CountingScorer(SentimentScorer(scorer_model, class_names, input_size=settings.score_size,
                                         batch_size=settings.batch_size))
    with tempfile.TemporaryDirectory(prefix="bench_pre_", dir=work_dir) as tmp:
        pre = ClipPreprocessor(dict(cfg), cache_root=Path(tmp) / "ours", scorer=sc, scorer_hash="benchmark")
        med, info = _measure(lambda: _preprocess_run(pre, video), repeats=repeats, warmup=warmup)
        for key in ("decode_s", "scoring_s", "scoring_cpu_s", "selection_s", "faces_s", "flow_s", "audio_decode_s",
                    "mel_s", "write_s"):
            out[key] = med.get(key, 0.0)
        out["total_s"], out["cpu_s"] = med["wall_s"], med["cpu_s"]
        out.update({"n_faces": info["n_faces"], "has_audio": info["has_audio"], "frames_scored": sc.last_count})
        if baseline:
            naive = NaivePreprocessor(cfg, scorer_model=scorer_model, class_names=class_names,
                                      score_size=baseline_score_size)
            # no warmup run: ResNet-50 and the decoder are warm; MTCNN and TV-L1 are built above
            base, binfo = _measure(lambda: naive(video, Path(tmp) / "naive"), repeats=baseline_repeats, warmup=0)
            out["baseline"] = ("3 full-resolution video decodes (keyframes, faces, flow) + 1 audio decode; "
                               f"every frame scored at {baseline_score_size} px; MTCNN at full resolution on the "
                               f"keyframes; {naive.flow_algorithm} flow at {int(cfg.get('flow', {}).get('short_side', 256))} px")
            out["baseline_repeats"] = baseline_repeats
            out.update({f"baseline_{k}": v for k, v in base.items() if k not in ("wall_s", "cpu_s")})
            out["baseline_total_s"], out["baseline_cpu_s"] = base["wall_s"], base["cpu_s"]
            out["baseline_n_faces"] = binfo["n_faces"]
            out["speedup"] = out["baseline_total_s"] / out["total_s"]
            out["speedup_cpu"] = out["baseline_cpu_s"] / out["cpu_s"]
    if memory_clips:
        measured = peak_rss_of_preprocessing(memory_clips, cfg=cfg, scorer=scorer, scorer_depth=scorer_depth)
        for i, (label, clip) in enumerate(memory_clips.items()):
            mem = measured[label]
            out[f"peak_rss_mb_{label}"] = mem["peak_rss_mb"]
            out[f"rss_before_mb_{label}"] = mem["rss_before_mb"]
            out[f"memory_clip_{label}"] = {"video": str(clip), **_clip_info(Path(clip)), "child_wall_s": mem["wall_s"]}
            if i == 0:
                out["peak_rss_mb"] = mem["peak_rss_mb"]
        labels = list(memory_clips)
        if len(labels) >= 2:
            first, last = labels[0], labels[-1]
            out[f"peak_rss_ratio_{last}_vs_{first}"] = out[f"peak_rss_mb_{last}"] / out[f"peak_rss_mb_{first}"]
            grow_first = out[f"peak_rss_mb_{first}"] - out[f"rss_before_mb_{first}"]
            grow_last = out[f"peak_rss_mb_{last}"] - out[f"rss_before_mb_{last}"]
            out[f"clip_memory_mb_{first}"], out[f"clip_memory_mb_{last}"] = grow_first, grow_last
    out["goals"] = {"total_s": GOALS["preprocess_total_s"], "speedup": GOALS["preprocess_speedup"],
                    "peak_rss_ratio_max": GOALS["memory_growth_60s_vs_5s"]}
    out["goal_total_met"] = out["total_s"] <= GOALS["preprocess_total_s"]
    if "speedup" in out:
        out["goal_speedup_met"] = out["speedup"] >= GOALS["preprocess_speedup"]
    ratio_keys = [k for k in out if k.startswith("peak_rss_ratio_")]
    if ratio_keys:
        out["goal_memory_met"] = out[ratio_keys[0]] < GOALS["memory_growth_60s_vs_5s"]
    out["machine_end"] = machine_info()
    return out


# --- training ---------------------------------------------------------------------------------

def fabricate_cache(root: str | os.PathLike, *, stream: str, n_clips: int, preprocess_cfg: Mapping[str, Any],
                    clip_size: tuple[int, int] = (1280, 720), clip_seconds: float = 5.0,
                    class_names: Sequence[str] = DEFAULT_CLASSES, seed: int = 0) -> Path:
    """Write ``n_clips`` cache entries ``root/clip_XXXX/`` for ``stream`` in the cache format of
    :mod:`streams.cache` (the stream's array + ``meta.json``, split ``train``, labels cycling over
    ``class_names``), with the array sizes that preprocessing ``preprocess_cfg`` makes from a
    ``clip_size`` (width, height) clip of ``clip_seconds``. Contents are random; only sizes and
    dtypes matter for timing. Returns ``root``."""
    root = Path(root)
    rng = np.random.default_rng(seed)
    w, h = clip_size

    def short(side: int) -> tuple[int, int]:
        s = side / min(w, h)
        return max(1, round(h * s)), max(1, round(w * s))

    kf = preprocess_cfg.get("keyframes", {})
    fl = preprocess_cfg.get("flow", {})
    fc = preprocess_cfg.get("faces", {})
    au = preprocess_cfg.get("audio", {})
    for i in range(n_clips):
        d = root / f"clip_{i:04d}"
        meta: dict[str, Any] = {"clip_id": d.name, "split": "train", "label": i % len(class_names),
                                "class_names": list(class_names), "has_audio": True, "n_faces": 0,
                                "arrays": {stream: "fabricated"}}
        if stream == "visual":
            kh, kw = short(int(preprocess_cfg.get("visual", {}).get("short_side", 256)))
            arr = rng.integers(0, 256, (int(kf.get("num_keyframes", 16)), kh, kw, 3), dtype=np.uint8)
        elif stream == "flow":
            fh, fw = short(int(fl.get("short_side", 256)))
            arr = rng.integers(0, 256, (int(fl.get("positions", 8)), 2, fh, fw), dtype=np.uint8)
            meta["flow"] = {"bound": float(fl.get("bound", 20.0))}
        elif stream == "face":
            c = int(fc.get("crop_size", 112))
            arr = rng.integers(0, 256, (int(fc.get("num_faces", 16)), c, c, 3), dtype=np.uint8)
            meta["n_faces"] = int(arr.shape[0])
        elif stream == "audio":
            frames = 1 + int(clip_seconds * int(au.get("sample_rate", 16000))) // int(au.get("hop_length", 512))
            arr = (rng.standard_normal((int(au.get("n_mels", 128)), frames)) * 20 - 40).astype(np.float16)
        else:
            raise BenchmarkError(f"unknown stream {stream!r}; choose from visual, flow, face, audio")
        atomic_save_npy(d / ARRAY_FILES[stream], arr)
        write_meta(d, meta)
    return root


def loader_throughput(dataset: torch.utils.data.Dataset, *, batch_size: int, clips: int, num_workers: int = 0,
                      repeats: int = 3) -> dict:
    """Clips per second a ``DataLoader`` over ``dataset`` delivers (shuffled, ``num_workers``
    worker processes): one unmeasured warm pass, then ``repeats`` timed reads of ``clips`` clips
    (median). Returns ``loader_clips_per_s``, ``loader_s_per_clip`` and the CPU seconds per clip
    of this process (workers not included)."""
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=num_workers)

    def read(n: int) -> int:
        seen = 0
        while seen < n:
            for x, _ in loader:
                seen += int(x.shape[0])
                if seen >= n:
                    break
        return seen

    read(min(clips, len(dataset)))
    walls, cpus = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        n = read(clips)
        walls.append((time.perf_counter() - w0) / n)
        cpus.append((time.process_time() - c0) / n)
    per_clip = statistics.median(walls)
    return {"loader_clips_per_s": 1.0 / per_clip, "loader_s_per_clip": per_clip,
            "loader_cpu_s_per_clip": statistics.median(cpus), "loader_workers": num_workers}


class _Stepper:
    """One training step (forward, cross-entropy, backward, optimizer step) of a model on a fixed
    batch, optionally channels-last, under bf16 autocast, or ``torch.compile``d."""

    def __init__(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, optim_cfg: Mapping[str, Any], *,
                 channels_last: bool = False, bf16: bool = False, compile: bool = False) -> None:
        if channels_last:
            fmt = torch.channels_last_3d if x.dim() == 5 else torch.channels_last
            model = model.to(memory_format=fmt)
            x = x.contiguous(memory_format=fmt)
        self.model = model.train()
        self.forward = torch.compile(model) if compile else model
        self.x, self.y, self.bf16 = x, y, bf16
        name = str(optim_cfg.get("name", "sgd")).lower()
        params = [p for p in model.parameters() if p.requires_grad]
        if name == "adamw":
            self.opt: torch.optim.Optimizer = torch.optim.AdamW(params, lr=float(optim_cfg.get("lr", 1e-3)),
                                                                weight_decay=float(optim_cfg.get("weight_decay", 0.01)))
        else:
            self.opt = torch.optim.SGD(params, lr=float(optim_cfg.get("lr", 0.01)),
                                       momentum=float(optim_cfg.get("momentum", 0.9)),
                                       weight_decay=float(optim_cfg.get("weight_decay", 0.0)))
        self.first_s: float | None = None

    def __call__(self) -> dict:
        t0 = time.perf_counter()
        self.opt.zero_grad(set_to_none=True)
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if self.bf16 else nullcontext()
        with ctx:
            logits = self.forward(self.x)
        loss = torch.nn.functional.cross_entropy(logits.float(), self.y)
        if not torch.isfinite(loss):
            raise BenchmarkError(f"training step produced a non-finite loss ({loss.item()})")
        loss.backward()
        self.opt.step()
        if self.first_s is None:
            self.first_s = time.perf_counter() - t0
        return {}


def _time_steppers(steppers: Mapping[str, _Stepper], *, steps: int, warmup: int) -> dict[str, dict[str, float]]:
    """Warm every stepper up, then time ``steps`` steps of each, interleaved (A B A B ...) so
    that a change of machine load hits all of them alike. Returns name -> medians."""
    for _ in range(max(0, warmup)):
        for s in steppers.values():
            s()
    runs: dict[str, list[dict]] = {name: [] for name in steppers}
    for _ in range(steps):
        for name, s in steppers.items():
            w0, c0 = time.perf_counter(), time.process_time()
            s()
            runs[name].append({"wall_s": time.perf_counter() - w0, "cpu_s": time.process_time() - c0})
    return {name: {**_median_dicts(r), "first_step_s": steppers[name].first_s} for name, r in runs.items()}


def training_benchmark(stream: str, *, stream_cfg: Mapping[str, Any], preprocess_cfg: Mapping[str, Any],
                       batch_size: int = 1, steps: int = 2, warmup: int = 1, cache: str | os.PathLike | None = None,
                       n_clips: int = 8, loader_clips: int = 32, loader_workers: int = 0,
                       clip_size: tuple[int, int] = (1280, 720), channels_last: bool = False, bf16: bool = False,
                       compile: bool = False, compare_knobs: Sequence[str] = (), seed: int = 0,
                       work_dir: str | os.PathLike | None = None) -> dict:
    """Training-step time of ``stream`` built from ``stream_cfg`` (a stream recipe) and of its
    bare backbone (the same recipe with ``attention: false``), and the loader's throughput.

    Inputs come from the cache ``cache`` or, when ``None``, from :func:`fabricate_cache` with the
    sizes of ``preprocess_cfg``; the step runs on ``batch_size`` items of the training dataset
    (augmented as in training). Returns ``step_s``, ``bare_step_s``, ``ratio`` (step / bare),
    ``step_clips_per_s``, ``loader_clips_per_s``, ``loader_vs_step`` and the input shape; with
    ``compare_knobs`` (any of ``channels_last``, ``bf16``, ``compile``) also the attention model's
    step with each knob alone, ``knob_<name>_step_s`` and ``knob_<name>_speedup``, measured
    interleaved with the plain step.
    """
    from streams.cache import load_entries
    from streams.data import StreamDataSettings, StreamDataset
    from streams.training import build_stream_model

    if stream_cfg.get("stream") != stream:
        raise BenchmarkError(f"the stream recipe is for {stream_cfg.get('stream')!r}, not {stream!r}")
    bad = sorted(set(compare_knobs) - {"channels_last", "bf16", "compile"})
    if bad:
        raise BenchmarkError(f"unknown knobs {bad}; choose from channels_last, bf16, compile")
    out: dict[str, Any] = {"benchmark": "train", "stream": stream, "model": dict(stream_cfg.get("model", {})),
                           "data": dict(stream_cfg.get("data", {})), "batch_size": batch_size, "steps": steps,
                           "warmup": warmup, "channels_last": channels_last, "bf16": bf16, "compile": compile,
                           "machine_start": machine_info()}
    with tempfile.TemporaryDirectory(prefix="bench_train_", dir=work_dir) as tmp:
        root = Path(cache) if cache else fabricate_cache(Path(tmp) / "cache", stream=stream, n_clips=n_clips,
                                                         preprocess_cfg=preprocess_cfg, clip_size=clip_size, seed=seed)
        out["cache"] = str(cache) if cache else f"fabricated: {n_clips} entries, sizes from the preprocessing recipe"
        entries = load_entries(root, require=(stream,))
        settings = StreamDataSettings.from_config(dict(stream_cfg.get("data", {})))
        dataset = StreamDataset(entries, stream, settings, train=True, seed=seed)
        if len(dataset) < 1:
            raise BenchmarkError(f"{root}: no entries with a usable {stream} array")
        class_names = entries[0].class_names or DEFAULT_CLASSES
        out.update(loader_throughput(dataset, batch_size=batch_size, clips=loader_clips, num_workers=loader_workers))

        items = [dataset[i % len(dataset)] for i in range(batch_size)]
        x = torch.stack([it[0] for it in items])
        y = torch.tensor([max(0, it[1]) for it in items], dtype=torch.long)
        out["input_shape"] = list(x.shape)
        optim_cfg = dict(stream_cfg.get("train", {}).get("optimizer", {}))
        model_cfg = dict(stream_cfg.get("model", {}))
        model_cfg.pop("pretrained", None)  # random init: same cost, no weight files needed

        def build(attention: bool | None = None) -> torch.nn.Module:
            torch.manual_seed(seed)
            mc = dict(model_cfg)
            if attention is not None:
                mc["attention"] = attention
            return build_stream_model({"stream": stream, "model": mc}, len(class_names))

        knobs = dict(channels_last=channels_last, bf16=bf16, compile=compile)
        steppers = {"full": _Stepper(build(), x, y, optim_cfg, **knobs),
                    "bare": _Stepper(build(attention=False), x, y, optim_cfg, **knobs)}
        out["attention_in_recipe"] = bool(model_cfg.get("attention", False))
        for knob in compare_knobs:
            steppers[f"knob_{knob}"] = _Stepper(build(), x, y, optim_cfg, **{**knobs, knob: True})
        timed = _time_steppers(steppers, steps=steps, warmup=warmup)
    out["step_s"], out["step_cpu_s"] = timed["full"]["wall_s"], timed["full"]["cpu_s"]
    out["bare_step_s"], out["bare_step_cpu_s"] = timed["bare"]["wall_s"], timed["bare"]["cpu_s"]
    out["first_step_s"] = timed["full"]["first_step_s"]
    out["ratio"] = out["step_s"] / out["bare_step_s"]
    out["ratio_cpu"] = out["step_cpu_s"] / out["bare_step_cpu_s"]
    out["step_clips_per_s"] = batch_size / out["step_s"]
    out["loader_vs_step"] = out["loader_clips_per_s"] / out["step_clips_per_s"]
    for knob in compare_knobs:
        t = timed[f"knob_{knob}"]
        out[f"knob_{knob}_step_s"] = t["wall_s"]
        out[f"knob_{knob}_first_step_s"] = t["first_step_s"]
        out[f"knob_{knob}_speedup"] = out["step_s"] / t["wall_s"]
    out["goals"] = {"ratio": GOALS["attention_step_ratio"], "loader_vs_step": GOALS["loader_vs_step"]}
    out["goal_ratio_met"] = out["ratio"] <= GOALS["attention_step_ratio"]
    out["goal_loader_met"] = out["loader_vs_step"] >= GOALS["loader_vs_step"]
    out["machine_end"] = machine_info()
    return out


# --- reporting --------------------------------------------------------------------------------

def format_report(result: Mapping[str, Any]) -> str:
    """A plain-text table of a benchmark result: one ``name  value`` row per number, then the
    descriptive fields."""
    rows, notes = [], []
    for key, value in result.items():
        if isinstance(value, bool):
            rows.append((key, "yes" if value else "no"))
        elif isinstance(value, (int, float)):
            if isinstance(value, float) and not math.isfinite(value):
                rows.append((key, str(value)))
            elif key.endswith("_s") or key.endswith("_mb") or isinstance(value, float):
                rows.append((key, f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"))
            else:
                rows.append((key, str(value)))
        else:
            notes.append((key, json.dumps(value) if not isinstance(value, str) else value))
    width = max((len(k) for k, _ in rows + notes), default=10)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    lines.append("")
    lines += [f"{k:<{width}}  {v}" for k, v in notes]
    return "\n".join(lines)
