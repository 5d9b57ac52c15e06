#!/usr/bin/env python
"""Live group emotion of a camera, a stream or a video file, smoothed over time.

    python tools/live.py --run runs/fusion --source 0                      # camera 0
    python tools/live.py --run runs/fusion --source rtsp://host/stream --show
    python tools/live.py --run runs/fusion --source clip.mp4 --out annotated.mp4

Every --stride seconds the whole trained pipeline (keyframes, four streams, fusion) runs on the
last --window seconds; the fused probabilities are smoothed over the last --smooth windows.
Writes an annotated mp4 (--out), a JSON-lines log with one object per window (--log; default
next to --out) and prints a summary: windows predicted and dropped, latency, windows per
second, and whether it keeps up with real time. Ctrl-C or `q` (with --show) stop cleanly.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from training.command_line import add_debug_argument, run_main
from fusion.live import (
    DEFAULT_SMOOTH_K, DEFAULT_STRIDE_S, DEFAULT_WINDOW_S, LiveRunner, LiveSettings, LiveSourceError,
    default_window_seconds, source_kind,
)
from fusion.prediction import PipelineError, Predictor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="fusion run directory (records the whole pipeline)")
    parser.add_argument("--source", required=True, help="camera index (0), stream URL, or video file")
    parser.add_argument("--out", help="annotated mp4 to write")
    parser.add_argument("--log", help="JSON-lines log, one object per window (default: OUT with .jsonl)")
    parser.add_argument("--window", type=float, default=None,
                        help="seconds per window (default: median clip length of the run's training cache, "
                             f"else {DEFAULT_WINDOW_S:g})")
    parser.add_argument("--stride", type=float, default=DEFAULT_STRIDE_S, help="seconds between windows")
    parser.add_argument("--smooth", type=int, default=DEFAULT_SMOOTH_K, help="smooth over the last K windows")
    parser.add_argument("--smoothing", choices=("mean", "ema"), default="mean",
                        help="rolling mean of the last K windows, or exponential moving average")
    parser.add_argument("--ema-alpha", type=float, default=0.5, help="weight of the newest window for --smoothing ema")
    parser.add_argument("--realtime", action=argparse.BooleanOptionalAction, default=None,
                        help="skip windows whose processing would start more than one stride late "
                             "(default: on for cameras and URLs, off for files)")
    parser.add_argument("--show", action="store_true", help="on-screen view when a display exists (q quits)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quiet", action="store_true", help="no line per window, only the summary")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    add_debug_argument(parser)
    args = parser.parse_args(argv)

    predictor = Predictor.from_run(args.run, device=args.device)
    window, window_from = (args.window, "--window") if args.window is not None else default_window_seconds(args.run)
    realtime = source_kind(args.source) != "file" if args.realtime is None else args.realtime
    log = args.log or (str(Path(args.out).with_suffix(".jsonl")) if args.out else None)
    try:
        settings = LiveSettings(window=window, stride=args.stride, smooth_k=args.smooth, smoothing=args.smoothing,
                                ema_alpha=args.ema_alpha, drop_late=realtime)
        runner = LiveRunner(predictor, settings, out=args.out, log=log, show=args.show,
                            echo=None if args.quiet else print)
    except ValueError as e:
        parser.error(str(e))
    source = runner.open(args.source)
    print(f"{source.name}: window {window:g} s ({window_from}), stride {args.stride:g} s, smoothing "
          f"{args.smoothing} over {args.smooth}, "
          f"{'real time: late windows dropped' if realtime else 'every window predicted'}", flush=True)
    summary = runner.run(source)
    print(json.dumps(summary.as_dict()) if args.json else summary.format(), flush=True)
    return 0 if summary.frames > 0 else 1


if __name__ == "__main__":
    sys.exit(run_main(main, user_errors=(PipelineError, LiveSourceError)))
