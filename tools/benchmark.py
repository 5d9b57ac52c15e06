#!/usr/bin/env python
"""Measure how fast keyframe extraction, preprocessing and stream training run on this machine.

    python tools/benchmark.py keyframes [VIDEO] [--config configs/preprocess/default.yaml] [--scorer RUN] [--json]
    python tools/benchmark.py preprocess [VIDEO] [--long-video LONG] [--config ...] [--scorer RUN]
                                         [--dataset-clips 12 [--dataset-workers 2]] [--json]
    python tools/benchmark.py train visual [--full | --tiny] [--steps 2] [--batch 1] [--compare-knobs channels_last]
                                           [--device cuda] [--json]
    python tools/benchmark.py live --run runs/demo/fusion [VIDEO] [--stride 1] [--no-realtime] [--compare] [--json]
    python tools/benchmark.py live --run runs/demo/fusion [VIDEO] --stride 0.5 --serve [--repeats 5]
    python tools/benchmark.py live --full-size [VIDEO] --no-realtime [--device cuda] [--markdown PAGE]
    python tools/benchmark.py explain --run runs/demo/fusion [VIDEO] [--repeats 5] [--gradcam] [--json]
    python tools/benchmark.py memory --config configs/streams/visual.yaml [--batch 16] [--precision bf16] [--json]
    python tools/benchmark.py memory --all-full-recipes --batch 16 --markdown docs/results/memory.md
    python tools/benchmark.py predict --run runs/demo/fusion [--bundle B] [VIDEO] [--json]
                                      [--markdown docs/results/predict.md]

Without VIDEO (or with --make-clip) a synthetic group scene is generated: 5 s (live: 30 s),
1280x720, 25 fps, three faces, with 6-channel 48 kHz audio like 5.1 footage (--size, --seconds,
--fps, --audio-channels, --audio-rate change it). Without --scorer the keyframe
scorer is a random-init ResNet-50 (same cost; its scores, and so the selection overlap, mean
nothing). The cheap setting and its reference/baseline are measured in the same run, interleaved
(A B A B ...) --repeats times each after --warmup rounds: medians, spreads (min, max, IQR) and
the ratio per round, wall clock and CPU time of this process.
`preprocess` also measures the peak memory (VmHWM) of a fresh process preprocessing the 5 s clip
and a 60 s one (--long-video, or generated; --clips-dir keeps generated clips for re-use); with
--dataset-clips N, the steady seconds per clip of preprocessing N copies of the clip as
tools/preprocess.py does, in one process against --dataset-workers K processes.
--threads 1 avoids torch's thread spinning on a machine shared with other busy processes.
`train` and `live` run the networks on --device (CUDA when this machine has it, else the CPU):
`train` moves the model and batch there, autocasts on its type (--bf16) and synchronises CUDA
before each step's clock stops; on CUDA it also reports the peak memory of the recipe model's
steps alone (torch.cuda.max_memory_allocated), to set against `memory`'s estimate.
`explain` times explaining a clip (tools/explain.py without the maps; --gradcam adds them) against
predicting it with the same pipeline, interleaved, and says whether explaining costs at most 2x.
`memory` estimates the per-device GPU memory of training a stream recipe (parameters, gradients,
optimizer state, the activations saved for backward, the input batch) on fake CUDA tensors: no
GPU needed, nothing allocated (benchmarks/memory.py says what is counted); --all-full-recipes
estimates every stream's full recipe in fp32 and bf16 (or --precision).
`predict` times the runs under PyTorch against their release bundle (--bundle, else exported to a
temp dir) under ONNX Runtime on the same clip, interleaved: the scorer, the streams, the fusion
head, preprocessing and the whole prediction, with the ratio per round and issue 30's goals.
`live --serve` runs live mode without and with the dashboard (tools/live.py --serve) serving a
client that reads its video and event feed, interleaved --repeats times each: medians, spreads and
the ratio with/without. `live --full-size` builds the full recipes with untrained weights (timing
does not depend on the weights) and reports seconds per window per stage (`stage_s`) and the
sustainable stride; --no-realtime predicts every window, so each one's cost is measured.
With --json the result is ONE JSON object on stdout (progress goes to stderr).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import tempfile
from pathlib import Path

import torch

from benchmarks.inputs import clip_info, load_scorer_model, write_scene_clip
from benchmarks.keyframes import keyframe_benchmark
from benchmarks.memory import memory_markdown
from benchmarks.preprocessing import check_dataset_request, preprocess_benchmark
from benchmarks.timing import BenchmarkError, format_report
from benchmarks.training import training_benchmark
from core.command_line import (
    add_debug_argument,
    add_device_argument,
    describe_error,
    naming_config,
    non_negative_int,
    positive_float,
    positive_float_or_all,
    positive_int,
    run_main,
)
from core.config import load_config
from core.results_page import result_table, write_results_page
from fusion.prediction import PipelineError
from live_mode import DEFAULT_FACE_RATE
from media.decoding import probe
from streams.specs import STREAM_SPECS, get_spec

ROOT = Path(__file__).resolve().parents[1]


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1280x720, got {text!r}") from None
    if w < 16 or h < 16:
        raise argparse.ArgumentTypeError(f"size must be at least 16x16, got {text!r}")
    return w, h


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _clip_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", nargs="?", default=None, help="clip to measure (default: generate one)")
    p.add_argument("--make-clip", action="store_true", help="generate the clip even if VIDEO is given")
    p.add_argument("--size", type=_size, default=(1280, 720), help="generated clip size WxH [1280x720]")
    p.add_argument("--seconds", type=positive_float, default=5.0, help="generated clip length [5]")
    p.add_argument("--fps", type=positive_float, default=25.0, help="generated clip frame rate [25]")
    p.add_argument("--audio-channels", type=int, choices=(1, 2, 6), default=6,
                   help="channels of the generated clip's audio [6, as 5.1 footage]")
    p.add_argument("--audio-rate", type=positive_int, default=48000,
                   help="sample rate of the generated clip's audio [48000]")
    p.add_argument("--clips-dir", default=None, help="keep generated clips here (default: a temp dir, deleted)")
    p.add_argument("--config", default=str(ROOT / "configs/preprocess/default.yaml"), help="preprocessing recipe")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    p.add_argument("--scorer", default=None, help="scorer run/checkpoint (default: random-init ResNet)")
    p.add_argument("--scorer-depth", type=int, choices=(18, 34, 50, 101, 152), default=50,
                   help="depth of the random-init scorer [50]")
    p.add_argument("--repeats", type=positive_int, default=5, help="interleaved timed rounds of each setting [5]")
    p.add_argument("--warmup", type=non_negative_int, default=1)
    _common_args(p)


def _common_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=positive_int, default=None,
                   help="torch threads (default: torch's choice, one per core); 1 is faster on an overloaded machine")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--markdown", metavar="PATH", default=None,
                   help="also write the result as a results page (command, commit, machine), e.g. docs/results/...")
    add_debug_argument(p)


def _clips_dir(args):
    if args.clips_dir:
        Path(args.clips_dir).mkdir(parents=True, exist_ok=True)
        return contextlib.nullcontext(args.clips_dir)
    return tempfile.TemporaryDirectory(prefix="bench_clips_")


def _clip(args, tmp: Path, name: str = "clip.mp4", seconds: float | None = None,
          size: tuple[int, int] | None = None) -> tuple[Path, bool]:
    if args.video and not args.make_clip and seconds is None:
        probe(args.video)  # fail early, naming the file, before any model is built
        return Path(args.video), False
    seconds = args.seconds if seconds is None else seconds
    size = size or args.size
    path = tmp / (f"{Path(name).stem}_{seconds:g}s_{size[0]}x{size[1]}_{args.fps:g}fps"
                  f"_{args.audio_channels}ch{args.audio_rate // 1000}k.mp4")
    if path.exists():  # --clips-dir keeps generated clips; the name says everything they were made with
        probe(path)
        return path, True
    _say(f"generating a {seconds:g} s {size[0]}x{size[1]} {args.fps:g} fps clip with {args.audio_channels}-channel "
         f"{args.audio_rate} Hz audio -> {path} ...")
    return write_scene_clip(path, seconds=seconds, size=size, fps=args.fps, audio_channels=args.audio_channels,
                            sample_rate=args.audio_rate), True


def cmd_keyframes(args) -> dict:
    cfg = load_config(args.config, args.set)
    with _clips_dir(args) as tmp:
        video, generated = _clip(args, Path(tmp))
        scorer = load_scorer_model(args.scorer, depth=args.scorer_depth)
        _say("measuring keyframe extraction ...")
        result = keyframe_benchmark(video, cfg=cfg, scorer_model=scorer,
                                    repeats=args.repeats, warmup=args.warmup, reference=not args.no_reference,
                                    reference_size=args.reference_size, tolerance=args.tolerance)
    result["config"], result["overrides"], result["generated_clip"] = args.config, list(args.set), generated
    return result


def cmd_preprocess(args) -> dict:
    cfg = load_config(args.config, args.set)
    if args.dataset_clips:
        check_dataset_request(args.dataset_clips, args.dataset_workers)
    with _clips_dir(args) as tmp:
        video, generated = _clip(args, Path(tmp))
        scorer = load_scorer_model(args.scorer, depth=args.scorer_depth)
        memory = None
        if not args.no_memory:
            if args.long_video:
                long_clip = probe(args.long_video).path
            else:
                long_clip, _ = _clip(args, Path(tmp), "long.mp4", seconds=args.long_seconds,
                                     size=args.long_size or args.size)
            short_label, long_label = _label(probe(video).duration), _label(probe(long_clip).duration)
            if short_label == long_label:
                short_label, long_label = f"{short_label}_a", f"{long_label}_b"
            memory = {short_label: video, long_label: long_clip}
        _say("measuring preprocessing (ours, then the naive baseline, then memory in fresh processes) ...")
        result = preprocess_benchmark(video, cfg=cfg, scorer_model=scorer,
                                      repeats=args.repeats, warmup=args.warmup, baseline=not args.no_baseline,
                                      memory_clips=memory, scorer=args.scorer, scorer_depth=args.scorer_depth,
                                      dataset_clips=args.dataset_clips, dataset_workers=args.dataset_workers)
    result["config"], result["overrides"], result["generated_clip"] = args.config, list(args.set), generated
    return result


def _label(seconds: float) -> str:
    """Memory-result label of a clip: its length in whole seconds, e.g. ``5s``, ``60s``."""
    return f"{round(seconds)}s"


def cmd_train(args) -> dict:
    stream_cfg = load_config(args.config or get_spec(args.stream).recipe_path(tiny=args.tiny), args.set)
    pre_cfg = load_config(args.preprocess_config or ROOT / ("configs/preprocess/demo.yaml" if args.tiny
                                                            else "configs/preprocess/default.yaml"))
    knobs = [k.strip() for k in args.compare_knobs.split(",") if k.strip()] if args.compare_knobs else []
    _say(f"measuring {args.stream} training steps ({'tiny' if args.tiny else 'full'} recipe) and the loader ...")
    result = training_benchmark(args.stream, stream_cfg=stream_cfg, preprocess_cfg=pre_cfg, batch_size=args.batch,
                                steps=args.steps, warmup=args.warmup, cache=args.cache, n_clips=args.clips,
                                loader_clips=args.loader_clips, loader_workers=args.workers,
                                clip_size=args.clip_size or ((320, 180) if args.tiny else (1280, 720)),
                                channels_last=args.channels_last, bf16=args.bf16, compile=args.compile,
                                compare_knobs=knobs, device=args.device)
    result["recipe"] = "tiny" if args.tiny else "full"
    return result


def cmd_live(args) -> dict:
    """Windows per second of the live front end (every window predicted, none dropped) against
    the rate real time needs at the chosen stride (1 / stride), measured in the same run."""
    from benchmarks.inputs import untrained_pipeline_run
    from benchmarks.live import WindowProbs, agreement, live_benchmark
    from benchmarks.live_dashboard import serve_comparison
    from fusion.prediction import Predictor
    from live_mode import DEFAULT_WINDOW_S, default_window_seconds

    if args.run is None and not args.full_size:
        raise BenchmarkError("live: --run RUN is needed (or --full-size, which builds untrained full-size models)")
    window = args.window if args.window is not None else (
        default_window_seconds(args.run)[0] if args.run else DEFAULT_WINDOW_S)
    # a run that will not load fails here, before a clip is generated
    predictor = None if args.full_size else Predictor.from_run(args.run, device=args.device)
    with _clips_dir(args) as tmp:
        video, generated = _clip(args, Path(tmp))
        if args.full_size:
            _say("building the full-size recipes with untrained weights (3D ResNet-101 + attention, 2D ResNet-101 "
                 "audio, 3D ResNet-50 flow and face) ...")
            predictor = Predictor.from_run(untrained_pipeline_run(Path(tmp) / "full_size", full_size=True),
                                           device=args.device)
        _say(f"running the live pipeline on {video} (window {window:g} s, stride {args.stride:g} s) ...")
        if args.serve:
            _say(f"... without and with the dashboard serving a client, interleaved, {args.repeats} times each ...")
            result = serve_comparison(lambda serve: live_benchmark(
                video, predictor=predictor, window=window, stride=args.stride, realtime=args.realtime,
                incremental=args.incremental, serve=serve, face_rate=args.face_rate), repeats=args.repeats)
            result["benchmark"] = "live --serve"
        else:
            shared = WindowProbs()
            result = live_benchmark(video, predictor=predictor, window=window, stride=args.stride,
                                    realtime=args.realtime, incremental=args.incremental, face_rate=args.face_rate,
                                    listeners=[shared])
        if args.compare:
            _say("... and again computing every window from its frames alone (the reference) ...")
            reference = WindowProbs()
            alone = live_benchmark(video, predictor=predictor, window=window, stride=args.stride,
                                   realtime=args.realtime, incremental=False, listeners=[reference])
            result["window_by_window"] = {k: alone[k] for k in (
                "windows_per_s", "mean_latency_s", "p95_latency_s", "mean_cpu_s", "realtime_factor", "dropped",
                "late_after_first", "keeps_up", "sustainable_stride_s")}
            # what the shared work and the face budget change in the predictions
            result["window_by_window"].update(agreement(shared, reference))
        result["clip"] = clip_info(Path(video))
    result.update({"run": "untrained full-size recipes" if args.full_size else str(args.run),
                   "generated_clip": generated, "device": str(args.device)})
    return result


def cmd_predict(args) -> dict:
    """PyTorch runs against the bundle under ONNX Runtime (benchmarks/prediction.py)."""
    from benchmarks.prediction import predict_benchmark
    from fusion.prediction import Predictor
    from release.bundle_predictor import predictor_from_bundle
    from release.bundle_writer import export_bundle

    with _clips_dir(args) as tmp, tempfile.TemporaryDirectory(prefix="bench_bundle_") as scratch:
        bundle = args.bundle
        if bundle is None:
            _say(f"exporting {args.run} to a temporary bundle ...")
            bundle = Path(scratch) / "bundle"
            export_bundle(args.run, bundle)
        torch_predictor = Predictor.from_run(args.run, device="cpu")
        bundle_predictor = predictor_from_bundle(bundle, engine="onnxruntime", threads=args.threads)
        video, generated = _clip(args, Path(tmp))
        _say(f"timing PyTorch (runs) against ONNX Runtime (bundle) on {video} ...")
        result = predict_benchmark(video, torch_predictor=torch_predictor, bundle_predictor=bundle_predictor,
                                   repeats=args.repeats, warmup=args.warmup)
    result.update({"run": str(args.run), "bundle": str(args.bundle) if args.bundle else "exported to a temp dir",
                   "generated_clip": generated})
    return result


def cmd_explain(args) -> dict:
    """Explaining a clip against predicting it, same pipeline, same run (benchmarks/explanations.py)."""
    from benchmarks.explanations import explain_benchmark
    from explanations.explainer import Explainer

    explainer = Explainer.from_run(args.run, device=args.device)
    with _clips_dir(args) as tmp:
        video, generated = _clip(args, Path(tmp))
        _say(f"predicting and explaining {video}, interleaved, {args.repeats} times each ...")
        result = explain_benchmark(video, explainer=explainer, repeats=args.repeats, warmup=args.warmup,
                                   gradcam=args.gradcam)
        result["clip"] = clip_info(Path(video))
    result.update({"run": str(args.run), "generated_clip": generated})
    return result


def _recipe_label(path: str | Path) -> str:
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def cmd_memory(args) -> dict:
    """The memory estimate of ``--config`` (with ``--set``), or of every stream's full recipe
    (``--all-full-recipes``: each precision; a recipe that cannot be built offline, e.g. the
    speech stream without its encoder's config.json, is listed as skipped with the reason)."""
    from benchmarks.memory import estimate_training_memory
    from training.weights import WeightsError

    if args.all_full_recipes == bool(args.config):
        raise BenchmarkError("give either --config RECIPE or --all-full-recipes")
    if args.config:
        cfg = load_config(args.config, args.set)
        with naming_config(args.config, args.set):
            result = estimate_training_memory(cfg, batch=args.batch, precision=args.precision)
        return {"recipe": _recipe_label(args.config), "overrides": list(args.set), **result}
    estimates, skipped = [], []
    for spec in STREAM_SPECS.values():
        path = spec.recipe_path()
        for precision in [args.precision] if args.precision else ["fp32", "bf16"]:
            _say(f"estimating {_recipe_label(path)} ({precision}) ...")
            try:
                with naming_config(path, args.set):
                    est = estimate_training_memory(load_config(path, args.set), batch=args.batch, precision=precision)
            except WeightsError as e:  # a file the recipe's architecture is read from is missing
                skipped.append({"recipe": _recipe_label(path), "reason": describe_error(e)})
                break
            estimates.append({"recipe": _recipe_label(path), **est})
    return {"estimates": estimates, "skipped": skipped, "overrides": list(args.set)}


def _predict_page(result: dict) -> str:
    from benchmarks.prediction import predict_markdown

    return predict_markdown(result)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    kf = sub.add_parser("keyframes", help="seconds per clip of keyframe extraction, and selection overlap")
    _clip_args(kf)
    kf.add_argument("--reference-size", type=positive_int, default=None,
                    help="score size of the reference (default: the size the scorer was trained at; 224 for a "
                         "random-init scorer; a trained scorer refuses another)")
    kf.add_argument("--tolerance", type=non_negative_int, default=2, help="frames of slack in the tolerant overlap [2]")
    kf.add_argument("--no-reference", action="store_true", help="skip scoring every frame")
    kf.set_defaults(func=cmd_keyframes)

    pp = sub.add_parser("preprocess", help="seconds per clip of preprocessing vs a naive baseline, peak memory")
    _clip_args(pp)
    pp.add_argument("--no-baseline", action="store_true")
    pp.add_argument("--no-memory", action="store_true", help="skip the fresh-process peak-memory runs")
    pp.add_argument("--long-seconds", type=positive_float, default=60.0, help="length of the long memory clip [60]")
    pp.add_argument("--long-size", type=_size, default=None, help="size of the long clip [same as --size]")
    pp.add_argument("--long-video", default=None,
                    help="use this clip as the long memory clip instead of generating one")
    pp.add_argument("--dataset-clips", type=non_negative_int, default=0, metavar="N",
                    help="also time preprocessing a dataset of N copies of the clip, in one process against "
                         "--dataset-workers worker processes, --repeats rounds each [0: not measured]")
    pp.add_argument("--dataset-workers", type=positive_int, default=2, metavar="K",
                    help="worker processes of the dataset measurement [2]")
    pp.set_defaults(func=cmd_preprocess)

    tr = sub.add_parser("train", help="training step with vs without attention, and the loader")
    tr.add_argument("stream", choices=tuple(STREAM_SPECS))
    size = tr.add_mutually_exclusive_group()
    size.add_argument("--full", action="store_true", help="the method's recipe configs/streams/STREAM.yaml [default]")
    size.add_argument("--tiny", action="store_true", help="configs/streams/STREAM_tiny.yaml and small arrays")
    tr.add_argument("--config", default=None, help="stream recipe (overrides --full/--tiny)")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    tr.add_argument("--preprocess-config", default=None, help="recipe giving the fabricated arrays' sizes")
    tr.add_argument("--clip-size", type=_size, default=None, help="source clip size for the array sizes")
    tr.add_argument("--cache", default=None, help="read inputs from this cache instead of fabricating one")
    tr.add_argument("--clips", type=positive_int, default=8, help="fabricated cache entries [8]")
    tr.add_argument("--loader-clips", type=positive_int, default=32, help="clips read per loader measurement [32]")
    tr.add_argument("--workers", type=non_negative_int, default=0,
                    help="DataLoader workers for the loader measurement [0]")
    tr.add_argument("--batch", type=positive_int, default=1)
    tr.add_argument("--steps", type=positive_int, default=5, help="interleaved timed steps per model [5]")
    tr.add_argument("--warmup", type=non_negative_int, default=1)
    tr.add_argument("--channels-last", action="store_true")
    tr.add_argument("--bf16", action="store_true", help="bfloat16 autocast on the device")
    add_device_argument(tr, what="the timed training steps")
    tr.add_argument("--compile", action="store_true", help="torch.compile the models")
    tr.add_argument("--compare-knobs", default="", metavar="LIST",
                    help="also time the attention model with each of channels_last,bf16,compile alone")
    _common_args(tr)
    tr.set_defaults(func=cmd_train)
    lv = sub.add_parser("live", help="live windows per second vs the rate real time needs")
    _clip_args(lv)
    lv.add_argument("--run", default=None, help="fusion run (e.g. runs/demo/fusion); needed unless --full-size")
    lv.add_argument("--stride", type=positive_float, default=1.0, help="seconds between windows [1, the live default]")
    lv.add_argument("--window", type=positive_float, default=None,
                    help="window length (default: the run's clip length)")
    lv.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=True,
                    help="play the file as a camera: late windows are dropped and counted [on]")
    lv.add_argument("--incremental", action=argparse.BooleanOptionalAction, default=True,
                    help="share per-frame work between windows [on]; off: every window from its frames alone")
    add_device_argument(lv, what="the keyframe scorer, MTCNN, the streams and the fusion head")
    lv.add_argument("--compare", action="store_true",
                    help="also run window by window (no shared work, every keyframe searched for faces) on the same "
                         "clip: the speed-up, and how the predictions agree")
    lv.add_argument("--face-rate", type=positive_float_or_all, default=DEFAULT_FACE_RATE, metavar="N|all",
                    help=f"live mode's face-detection budget, keyframes per second of source [{DEFAULT_FACE_RATE:g}]")
    lv.add_argument("--serve", action="store_true",
                    help="compare without and with the dashboard serving a connected client (video and event "
                         "feed), interleaved --repeats times each")
    lv.add_argument("--full-size", action="store_true",
                    help="the full recipes with untrained weights instead of --run: seconds per window per stage "
                         "and the sustainable stride")
    lv.set_defaults(func=cmd_live, seconds=30.0, size=(1280, 720))

    pr = sub.add_parser("predict", help="predict from the runs (PyTorch) vs the bundle (ONNX Runtime), per stage")
    _clip_args(pr)
    pr.add_argument("--run", required=True, help="fusion run (e.g. runs/demo/fusion)")
    pr.add_argument("--bundle", default=None, help="its release bundle (default: export it to a temp dir)")
    pr.set_defaults(func=cmd_predict, page_body=_predict_page, page_title="Benchmark: predict, PyTorch vs ONNX Runtime")
    ex = sub.add_parser("explain", help="explaining a clip vs predicting it (same pipeline, interleaved)")
    _clip_args(ex)
    ex.add_argument("--run", required=True, help="fusion run (e.g. runs/demo/fusion)")
    ex.add_argument("--gradcam", action="store_true", help="also time explanations with the Grad-CAM maps")
    add_device_argument(ex, what="the keyframe scorer, MTCNN, the streams and the fusion head")
    ex.set_defaults(func=cmd_explain, seconds=5.0, size=(1280, 720))

    mem = sub.add_parser("memory", help="per-device GPU memory of training a recipe, estimated without a GPU")
    which = mem.add_mutually_exclusive_group()
    which.add_argument("--config", default=None, help="stream recipe, e.g. configs/streams/visual.yaml")
    which.add_argument("--all-full-recipes", action="store_true",
                       help="every stream's full recipe (configs/streams/STREAM.yaml), fp32 and bf16")
    mem.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override (repeatable)")
    mem.add_argument("--batch", type=positive_int, default=None,
                     help="clips per device (default: the recipe's batch on one device)")
    mem.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default=None,
                     help="autocast precision (default: the recipe's train.mixed_precision)")
    _common_args(mem)
    mem.set_defaults(func=cmd_memory, page_body=memory_markdown, page_title="Training memory per device")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    threads = torch.get_num_threads()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    try:
        result = args.func(args)
    finally:
        torch.set_num_threads(threads)  # main() is also called in-process (tests): leave torch as found
    page_body = getattr(args, "page_body", result_table)
    if args.json:
        print(json.dumps(result))
    else:
        print(page_body(result) if "estimates" in result else format_report(result))
    if args.markdown:
        title = getattr(args, "page_title", None) or f"Benchmark: {args.command} {getattr(args, 'stream', '')}".strip()
        write_results_page(args.markdown, title, "tools/benchmark.py", argv, page_body(result))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, user_errors=(BenchmarkError, PipelineError)))
