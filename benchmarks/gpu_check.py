"""The GPU check (``make gpu-check``, ``tools/gpu_check.py``): on one GPU, each full stream recipe
trains a few steps at its per-device batch (step time, clips per second, peak memory against
the estimate of :mod:`benchmarks.memory`, the DataLoader's clips per second against the step's),
and a fusion run predicts a generated clip and runs live mode over it on the GPU.

The training inputs come from a cache fabricated by preprocessing a generated scene at the full
recipe's sizes (:func:`benchmarks.training.fabricate_cache`), so the loader reads and augments
arrays of the real size. The fusion run is ``runs/demo/fusion`` when the demo has been run, else
an untrained one built on the spot (:func:`benchmarks.inputs.untrained_pipeline_run`: it runs the
same code on the device; its predictions mean nothing).

Each part runs on its own: one that fails is recorded with its error, and the others still run.
"""
from __future__ import annotations

import os
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from benchmarks.inputs import untrained_pipeline_run, write_scene_clip
from benchmarks.memory import estimate_training_memory
from benchmarks.timing import BenchmarkError, machine_info
from benchmarks.training import fabricate_cache, training_benchmark
from core.config import load_config
from streams.specs import get_spec

ROOT = Path(__file__).resolve().parents[1]


def check_device(device: str | torch.device, *, allow_cpu: bool = False) -> torch.device:
    """``device`` as a torch device, refusing anything but an available CUDA device unless
    ``allow_cpu`` (then the CPU too: the check's own tests, at tiny sizes)."""
    device = torch.device(device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise BenchmarkError("no CUDA device")
        return device
    if device.type == "cpu" and allow_cpu:
        return device
    raise BenchmarkError(f"the GPU check runs on a CUDA device, not {device} (--allow-cpu for a CPU dry run)")


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        return f"{props.name}, {props.total_memory / 2 ** 30:.1f} GiB"
    return f"{device.type} ({os.cpu_count()} logical CPUs)"


def _attempt(what: Callable[[], dict]) -> dict:
    """``what()``, or ``{"error": "<type>: <message>"}`` when it raises: one broken part of the
    check is reported beside the others instead of hiding them."""
    try:
        return what()
    except Exception as e:  # noqa: BLE001 - recorded on the page; the check's exit status says it failed
        return {"error": f"{type(e).__name__}: {e}"}


def train_check(stream: str, *, device: torch.device, tiny: bool, batch: int | None, precision: str, steps: int,
                loader_workers: int | None, work_dir: str | os.PathLike) -> dict:
    """A few training steps of ``stream``'s full (or tiny) recipe on ``device``, the loader's
    throughput and the memory estimate for the same batch and precision; the inputs come from a
    cache fabricated under ``work_dir`` at the recipe's sizes (kept for the stream's next
    precision). Returns the flat row of the page."""
    cfg = load_config(get_spec(stream).recipe_path(tiny=tiny))
    estimate = estimate_training_memory(cfg, batch=batch, precision=precision)
    batch = estimate["batch"]
    pre_cfg = load_config(ROOT / ("configs/preprocess/demo.yaml" if tiny else "configs/preprocess/default.yaml"))
    workers = int(cfg.get("train", {}).get("num_workers", 0)) if loader_workers is None else loader_workers
    clip_size = (320, 180) if tiny else (1280, 720)
    cache = Path(work_dir) / f"cache_{stream}"  # fabricated once per stream, read by each precision
    if not cache.is_dir():
        fabricate_cache(cache, stream=stream, n_clips=min(batch, 8), preprocess_cfg=pre_cfg, clip_size=clip_size)
    result = training_benchmark(stream, stream_cfg=cfg, preprocess_cfg=pre_cfg, batch_size=batch, steps=steps,
                                warmup=1, cache=cache, loader_clips=2 * batch, loader_workers=workers,
                                bf16=precision == "bf16", device=device, bare=False, work_dir=work_dir)
    row = {"stream": stream, "recipe": "tiny" if tiny else "full", "batch": batch, "precision": precision,
           "step_s": result["step_s"], "first_step_s": result["first_step_s"],
           "step_clips_per_s": result["step_clips_per_s"], "loader_clips_per_s": result["loader_clips_per_s"],
           "loader_workers": workers, "loader_vs_step": result["loader_vs_step"],
           "estimate_gib": estimate["total_gib"], "input_shape": result["input_shape"]}
    if "peak_memory_gib" in result:
        row["peak_memory_gib"] = result["peak_memory_gib"]
        row["peak_vs_estimate"] = result["peak_memory_gib"] / estimate["total_gib"]
    return row


def inference_check(run: str | os.PathLike | None, *, device: torch.device, clip_seconds: float,
                    clip_size: tuple[int, int], work_dir: str | os.PathLike) -> dict:
    """Predict a generated group scene with fusion run ``run`` (``None``: an untrained one built
    under ``work_dir``) on ``device``, then run live mode over the same clip (every window
    computed, none dropped). Returns seconds, windows per second and latencies."""
    from benchmarks.live import live_benchmark
    from fusion.prediction import Predictor
    from live_mode import default_window_seconds

    work_dir = Path(work_dir)
    source = str(run) if run else "untrained tiny pipeline (benchmarks.inputs.untrained_pipeline_run)"
    run = Path(run) if run else untrained_pipeline_run(work_dir / "pipeline")
    clip = write_scene_clip(work_dir / "scene.mp4", seconds=clip_seconds, size=clip_size, seed=1)
    out: dict[str, Any] = {"run": source, "clip": f"{clip_seconds:g} s {clip_size[0]}x{clip_size[1]} generated scene"}
    t0 = time.perf_counter()
    predictor = Predictor.from_run(run, device=str(device))
    out["load_s"] = time.perf_counter() - t0
    predictor.predict(clip)  # the first prediction pays for lazy set-up (MTCNN, cuDNN's choices)
    t0 = time.perf_counter()
    prediction = predictor.predict(clip)
    out["predict_s"] = time.perf_counter() - t0
    out["predicted"] = prediction["label"]
    out.update({f"predict_{stage}_s": seconds for stage, seconds in prediction.get("timings_s", {}).items()})
    window = min(default_window_seconds(run)[0], clip_seconds)
    live = live_benchmark(clip, predictor=predictor, window=window, stride=1.0, realtime=False)
    out.update({f"live_{k}": live[k] for k in ("windows", "windows_per_s", "mean_latency_s", "p95_latency_s",
                                                "warmup_s")})
    out["live_window_s"] = window
    return out


def gpu_check(*, device: str | torch.device = "cuda", allow_cpu: bool = False, streams: Sequence[str],
              tiny: bool = False, batch: int | None = None, precisions: Sequence[str] = ("fp32", "bf16"),
              steps: int = 3, loader_workers: int | None = None, run: str | os.PathLike | None = None,
              clip_seconds: float = 8.0, clip_size: tuple[int, int] = (1280, 720), inference: bool = True,
              say: Callable[[str], None] = lambda _msg: None) -> dict:
    """The whole check (see the module docstring). Returns ``{"device", "training": [row per
    stream and precision], "inference": {...}, "failed": [what failed], ...}``."""
    device = check_device(device, allow_cpu=allow_cpu)
    out: dict[str, Any] = {"device": str(device), "device_name": device_name(device), "torch": torch.__version__,
                           "machine_start": machine_info(), "training": []}
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        for stream in streams:
            for precision in precisions:
                say(f"training {stream} ({'tiny' if tiny else 'full'} recipe, {precision}) on {device} ...")
                row = _attempt(partial(train_check, stream, device=device, tiny=tiny, batch=batch,
                                       precision=precision, steps=steps, loader_workers=loader_workers, work_dir=tmp))
                out["training"].append({"stream": stream, "precision": precision, **row})
        if inference:
            say(f"predicting and running live mode on {device} ...")
            out["inference"] = _attempt(lambda: inference_check(run, device=device, clip_seconds=clip_seconds,
                                                                clip_size=clip_size, work_dir=tmp))
    out["failed"] = [f"{r['stream']} {r['precision']}" for r in out["training"] if "error" in r]
    if "error" in out.get("inference", {}):
        out["failed"].append("inference")
    out["machine_end"] = machine_info()
    return out


def _number(value: Any, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def gpu_check_markdown(result: Mapping[str, Any]) -> str:
    """The results page body of :func:`gpu_check`."""
    lines = [f"Device: {result['device_name']} (`{result['device']}`), torch {result['torch']}.", "",
             "## Training steps", "",
             "A few steps of each recipe at its per-device batch on one device (the model's steps alone "
             "for the peak memory, `torch.cuda.max_memory_allocated`), against the estimate of "
             "`python tools/benchmark.py memory` for the same batch and precision; the DataLoader's "
             "clips per second (with the recipe's workers, on a cache fabricated at the recipe's sizes) "
             "against the step's.", "",
             "| stream | recipe | precision | batch | step s | clips/s | peak GiB | estimate GiB | peak / estimate "
             "| loader clips/s | loader / step |", "|" + "---|" * 11]
    errors = []
    for r in result["training"]:
        if "error" in r:
            errors.append(f"- {r['stream']} ({r['precision']}): `{r['error']}`")
            continue
        lines.append("| " + " | ".join([r["stream"], r["recipe"], r["precision"], str(r["batch"]), _number(r["step_s"]),
                                        _number(r["step_clips_per_s"], 1), _number(r.get("peak_memory_gib"), 2),
                                        _number(r["estimate_gib"], 2), _number(r.get("peak_vs_estimate"), 2),
                                        _number(r["loader_clips_per_s"], 1), _number(r["loader_vs_step"], 2)]) + " |")
    if errors:
        lines += ["", "Failed:", "", *errors]
    inference = result.get("inference")
    if inference is not None:
        lines += ["", "## Prediction and live mode", ""]
        if "error" in inference:
            lines.append(f"Failed: `{inference['error']}`")
        else:
            lines += ["| key | value |", "|---|---|"]
            lines += [f"| `{k}` | {_number(v)} |" for k, v in inference.items()]
    return "\n".join(lines)

