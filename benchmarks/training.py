"""Training: seconds per step of a stream built from its recipe against the same network without
its attention neck, interleaved in the same run (the attention's cost), optional knobs
(channels-last, bf16, ``torch.compile``) against the plain step, and the cache loader's
throughput against the step's. The step runs on a chosen device (model and batch moved there,
autocast on its type, CUDA synchronised before a step's clock stops); on CUDA also the peak
memory of the step alone."""
from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from benchmarks.inputs import DEFAULT_CLASSES, CountingScorer, clip_record, load_scorer_model, write_scene_clip
from benchmarks.timing import BenchmarkError, interleaved, machine_info, paired_ratio
from keyframes.extraction import KeyframeSettings
from streams.cache import load_entries, read_meta, write_meta
from streams.preprocessing import ClipPreprocessor
from streams.specs import get_spec

GOALS = {"ratio": 1.10,            # step with attention / bare backbone step (visual)
         "loader_vs_step": 5.0}    # loader clips/s over training-step clips/s


def fabricate_cache(root: str | os.PathLike, *, stream: str, n_clips: int, preprocess_cfg: Mapping[str, Any],
                    clip_size: tuple[int, int] = (1280, 720), clip_seconds: float = 5.0,
                    class_names: Sequence[str] = DEFAULT_CLASSES, seed: int = 0) -> Path:
    """``n_clips`` cache entries ``root/clip_XXXX/`` for ``stream``: a generated group scene of
    ``clip_size`` (width, height) and ``clip_seconds`` is preprocessed once with
    ``preprocess_cfg`` (a random-init scorer picks the keyframes), and its entry is copied with
    labels cycling over ``class_names`` (split ``train``). Sizes and dtypes are those of real
    preprocessing, which is what matters for timing. Returns ``root``."""
    root = Path(root)
    spec = get_spec(stream)
    with tempfile.TemporaryDirectory(prefix="bench_fab_") as tmp:
        video = write_scene_clip(Path(tmp) / "scene.mp4", seconds=clip_seconds, size=clip_size, seed=seed)
        scorer = None
        if spec.uses_keyframes:
            settings = KeyframeSettings.from_config(preprocess_cfg.get("keyframes"))
            scorer = CountingScorer.scoring_as(load_scorer_model(None, depth=18, seed=seed), settings)
        pre = ClipPreprocessor(dict(preprocess_cfg), cache_root=Path(tmp) / "cache", scorer=scorer,
                               scorer_hash="benchmark", streams=(stream,))
        pre(clip_record(video))
        source = Path(tmp) / "cache" / "clip"
        if not spec.available(read_meta(source) or {}):
            raise BenchmarkError(f"the generated scene gave no {stream} input to fabricate a cache from")
        for i in range(n_clips):
            d = root / f"clip_{i:04d}"
            shutil.copytree(source, d, dirs_exist_ok=True)
            meta = read_meta(d)
            meta.update({"clip_id": d.name, "split": "train", "label": i % len(class_names),
                         "class_names": list(class_names)})
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


def synchronize(device: torch.device) -> None:
    """Wait for the work queued on ``device`` (CUDA runs asynchronously: without this a clock
    stops when the kernels are queued, not done); a no-op elsewhere."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stepper:
    """One training step (forward, cross-entropy, backward, optimizer step) of a model on a fixed
    batch on ``device`` (model and batch moved there), optionally channels-last, under bf16
    autocast on the device's type, or ``torch.compile``d. A call returns once the device has
    finished the step."""

    def __init__(self, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, optim_cfg: Mapping[str, Any], *,
                 channels_last: bool = False, bf16: bool = False, compile: bool = False,
                 device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        model, x, y = model.to(self.device), x.to(self.device), y.to(self.device)
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
        ctx = torch.autocast(device_type=self.device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext()
        with ctx:
            logits = self.forward(self.x)
        loss = torch.nn.functional.cross_entropy(logits.float(), self.y)
        loss.backward()
        self.opt.step()
        synchronize(self.device)
        if not torch.isfinite(loss):
            raise BenchmarkError(f"training step produced a non-finite loss ({loss.item()})")
        if self.first_s is None:
            self.first_s = time.perf_counter() - t0
        return {}


def step_peak_memory(stepper_factory: Callable[[], Stepper], device: str | torch.device, *, steps: int = 2) -> dict:
    """Peak CUDA memory of training steps of one model alone on ``device``: the stepper (built
    by ``stepper_factory`` once the device's peak counter is reset, so its parameters, batch and
    optimizer state count) runs ``steps`` steps (the optimizer state exists from the first).
    Returns ``peak_memory_gib`` (``torch.cuda.max_memory_allocated``) and
    ``peak_reserved_gib`` (what the caching allocator held), or ``{}`` off CUDA. The stepper
    is freed before returning."""
    import gc

    device = torch.device(device)
    if device.type != "cuda":
        return {}
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    stepper = stepper_factory()
    for _ in range(steps):
        stepper()
    out = {"peak_memory_gib": torch.cuda.max_memory_allocated(stepper.device) / 2 ** 30,
           "peak_reserved_gib": torch.cuda.max_memory_reserved(stepper.device) / 2 ** 30}
    del stepper
    gc.collect()
    torch.cuda.empty_cache()
    return out


def training_benchmark(stream: str, *, stream_cfg: Mapping[str, Any], preprocess_cfg: Mapping[str, Any],
                       batch_size: int = 1, steps: int = 5, warmup: int = 1, cache: str | os.PathLike | None = None,
                       n_clips: int = 8, loader_clips: int = 32, loader_workers: int = 0,
                       clip_size: tuple[int, int] = (1280, 720), channels_last: bool = False, bf16: bool = False,
                       compile: bool = False, compare_knobs: Sequence[str] = (), seed: int = 0,
                       work_dir: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                       bare: bool = True) -> dict:
    """Training-step time of ``stream`` built from ``stream_cfg`` (a stream recipe) and of its
    bare backbone (the same recipe with ``attention: false``), and the loader's throughput.

    Inputs come from the cache ``cache`` or, when ``None``, from :func:`fabricate_cache` with the
    sizes of ``preprocess_cfg``; the step runs on ``batch_size`` items of the training dataset
    (augmented as in training). Returns ``step_s``, ``bare_step_s``, ``ratio`` (step / bare),
    ``step_clips_per_s``, ``loader_clips_per_s``, ``loader_vs_step`` and the input shape; with
    ``compare_knobs`` (any of ``channels_last``, ``bf16``, ``compile``) also the attention model's
    step with each knob alone, ``knob_<name>_step_s`` and ``knob_<name>_speedup``, measured
    interleaved with the plain step. The steps run on ``device``; on CUDA the result also has
    the recipe model's ``peak_memory_gib`` (its steps alone, before the timings). ``bare=False``
    skips the bare backbone (no ``bare_step_s``, ``ratio``).
    """
    from streams.data import StreamDataset
    from streams.training import build_stream_model

    if stream_cfg.get("stream") != stream:
        raise BenchmarkError(f"the stream recipe is for {stream_cfg.get('stream')!r}, not {stream!r}")
    bad = sorted(set(compare_knobs) - {"channels_last", "bf16", "compile"})
    if bad:
        raise BenchmarkError(f"unknown knobs {bad}; choose from channels_last, bf16, compile")
    out: dict[str, Any] = {"benchmark": "train", "stream": stream, "model": dict(stream_cfg.get("model", {})),
                           "data": dict(stream_cfg.get("data", {})), "batch_size": batch_size, "steps": steps,
                           "warmup": warmup, "channels_last": channels_last, "bf16": bf16, "compile": compile,
                           "device": str(torch.device(device)), "machine_start": machine_info()}
    with tempfile.TemporaryDirectory(prefix="bench_train_", dir=work_dir) as tmp:
        root = Path(cache) if cache else fabricate_cache(Path(tmp) / "cache", stream=stream, n_clips=n_clips,
                                                         preprocess_cfg=preprocess_cfg, clip_size=clip_size, seed=seed)
        out["cache"] = str(cache) if cache else f"fabricated: {n_clips} entries, sizes from the preprocessing recipe"
        entries = load_entries(root, require=(stream,))
        dataset = StreamDataset(entries, stream, dict(stream_cfg.get("data", {})), train=True, seed=seed)
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

        knobs = dict(channels_last=channels_last, bf16=bf16, compile=compile, device=device)
        out.update(step_peak_memory(lambda: Stepper(build(), x, y, optim_cfg, **knobs), device))
        steppers = {"full": Stepper(build(), x, y, optim_cfg, **knobs)}
        if bare:
            steppers["bare"] = Stepper(build(attention=False), x, y, optim_cfg, **knobs)
        out["attention_in_recipe"] = bool(model_cfg.get("attention", False))
        for knob in compare_knobs:
            steppers[f"knob_{knob}"] = Stepper(build(), x, y, optim_cfg, **{**knobs, knob: True})
        timed = interleaved(steppers, repeats=steps, warmup=warmup)
    out["step_s"], out["step_cpu_s"] = timed["full"]["wall"]["median"], timed["full"]["cpu"]["median"]
    out["step_spread"] = {k: timed["full"]["wall"][k] for k in ("min", "max", "iqr")}
    out["first_step_s"] = steppers["full"].first_s
    if bare:
        out["bare_step_s"], out["bare_step_cpu_s"] = timed["bare"]["wall"]["median"], timed["bare"]["cpu"]["median"]
        out["bare_step_spread"] = {k: timed["bare"]["wall"][k] for k in ("min", "max", "iqr")}
        ratio = paired_ratio(timed, "full", "bare")
        out["ratio"], out["ratio_spread"] = ratio["median"], ratio
        out["ratio_cpu"] = out["step_cpu_s"] / out["bare_step_cpu_s"]
    out["step_clips_per_s"] = batch_size / out["step_s"]
    out["loader_vs_step"] = out["loader_clips_per_s"] / out["step_clips_per_s"]
    for knob in compare_knobs:
        out[f"knob_{knob}_step_s"] = timed[f"knob_{knob}"]["wall"]["median"]
        out[f"knob_{knob}_first_step_s"] = steppers[f"knob_{knob}"].first_s
        speedup = paired_ratio(timed, "full", f"knob_{knob}")
        out[f"knob_{knob}_speedup"], out[f"knob_{knob}_speedup_spread"] = speedup["median"], speedup
    out["goals"] = dict(GOALS)
    if bare:
        out["goal_ratio_met"] = out["ratio"] <= GOALS["ratio"]
    out["goal_loader_met"] = out["loader_vs_step"] >= GOALS["loader_vs_step"]
    out["machine_end"] = machine_info()
    return out
