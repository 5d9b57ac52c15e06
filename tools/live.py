#!/usr/bin/env python
"""Live group emotion of a camera, a stream or a video file, smoothed over time.

    python tools/live.py --run runs/fusion --source 0                      # camera 0
    python tools/live.py --run runs/fusion --source rtsp://host/stream --show   # reconnects after drops
    python tools/live.py --run runs/fusion --source clip.mp4 --out annotated.mp4
    python tools/live.py --run runs/fusion --source 0 --serve 8765        # dashboard at http://127.0.0.1:8765/
    python tools/live.py --run runs/fusion --source 0 --audio-source default   # camera + microphone (Linux)
    python tools/live.py --run runs/fusion --source clip.mp4 --fusion late --late-weights face=0.6,audio=0.4
    python tools/live.py --bundle runs/demo/bundle --source 0              # a release bundle, ONNX Runtime

Every --stride seconds the whole trained pipeline (keyframes, four streams, fusion) runs on the
last --window seconds; the fused probabilities are smoothed over the last --smooth windows. They
are calibrated (each run's temperature, fitted on val: among windows shown with top probability p,
about a share p is right), so --min-confidence means what it says; --no-calibration uses the raw
ones (--fusion late averages the streams' calibrated probabilities).
Writes an annotated mp4 (--out), a JSON-lines log with one object per window (--log; default
next to --out) and prints a summary: windows predicted and dropped, latency, windows per
second, and whether it keeps up with real time (if not, the stride it could sustain). Ctrl-C or
`q` (with --show) stop cleanly. Each frame is converted, scored and searched for faces once, on
arrival, for all the windows that contain it, and the pipeline is warmed up on a window it draws
itself (faces and a tone, live_mode/warmup.py) before the first frame is read. Face detection is
budgeted to --face-rate newly searched keyframes per second of source (a keyframe not searched
takes the boxes of the nearest searched frame within 0.5 s; its crops are still its own pixels);
--face-rate all searches every keyframe, as for a file.

Microphone names (--audio-source, with a camera): Linux (alsa) `default` or `hw:CARD,DEV`
(`arecord -L` lists them); macOS (avfoundation) `:0` for the first audio device (`ffmpeg -f
avfoundation -list_devices true -i ""`); Windows (dshow) `audio=NAME` (`ffmpeg -f dshow
-list_devices true -i dummy`). --audio-format overrides the capture format (e.g. pulse, oss).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.command_line import (
    add_calibration_argument,
    add_debug_argument,
    add_device_argument,
    positive_float_or_all,
    run_main,
)
from fusion.prediction import PipelineError
from live_mode import (
    DEFAULT_FACE_RATE,
    DEFAULT_SMOOTH_K,
    DEFAULT_STRIDE_S,
    DEFAULT_WINDOW_S,
    FUSION_MODES,
    LiveRunner,
    LiveSettings,
    LiveSourceError,
    default_window_seconds,
    parse_late_weights,
    source_kind,
)
from live_mode.dashboard import DashboardServer, is_loopback, parse_serve_address
from live_mode.dashboard_state import DashboardState
from release.pipeline_source import add_pipeline_arguments, build_predictor, bundle_clip_seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_pipeline_arguments(parser, run_help="fusion run directory (records the whole pipeline)")
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
    parser.add_argument("--audio-source", default=None, metavar="DEVICE",
                        help="with a camera: a microphone recorded on the same clock (see the device names above)")
    parser.add_argument("--audio-format", default=None,
                        help="capture format of --audio-source (default: alsa / avfoundation / dshow by platform)")
    parser.add_argument("--fusion", choices=FUSION_MODES, default="head",
                        help="head: the run's fusion head; late: weighted average of stream scores (--late-weights)")
    parser.add_argument("--late-weights", default=None, metavar="S=W,...",
                        help="weights of --fusion late (default face=0.6,audio=0.4, the real-time design)")
    parser.add_argument("--face-hold", type=int, default=50, metavar="FRAMES",
                        help="a face box stays on screen this many frames after the frame it was found in [50]")
    parser.add_argument("--min-confidence", type=float, default=0.0,
                        help="show 'uncertain' when the smoothed top probability is below this [0: never]")
    parser.add_argument("--face-rate", type=positive_float_or_all, default=DEFAULT_FACE_RATE, metavar="N|all",
                        help=f"keyframes newly searched for faces per second of source [{DEFAULT_FACE_RATE:g}]; the "
                             "others take the boxes of the nearest searched frame; all: search every keyframe")
    parser.add_argument("--show-attention", action="store_true",
                        help="overlay the visual stream's spatial attention as a heat map")
    parser.add_argument("--incremental", action=argparse.BooleanOptionalAction, default=True,
                        help="share per-frame work between overlapping windows [on]; off: each window alone")
    parser.add_argument("--warm-up", action=argparse.BooleanOptionalAction, default=True,
                        help="run the pipeline once on a drawn window (faces, a tone) before the first frame [on]")
    parser.add_argument("--reconnect", type=int, default=None, metavar="N",
                        help="stream URLs: connection attempts after each drop, with exponential backoff "
                             "(default: unlimited; 0: a drop ends the run); files never reconnect")
    parser.add_argument("--show", action="store_true", help="on-screen view when a display exists (q quits)")
    parser.add_argument("--serve", default=None, metavar="[HOST:]PORT",
                        help="serve the dashboard (video, timeline, status, JSON API) at http://HOST:PORT/ "
                             "(HOST default 127.0.0.1)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="let --serve bind an address other machines reach (the page has no authentication)")
    add_device_argument(parser, what="the keyframe scorer, MTCNN, the streams and the fusion head")
    add_calibration_argument(parser)
    parser.add_argument("--quiet", action="store_true", help="no line per window, only the summary")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    serve = parse_serve_address(args.serve, allow_remote=args.allow_remote) if args.serve is not None else None

    predictor = build_predictor(args, parser)
    if args.window is not None or args.run:
        window, window_from = (args.window, "--window") if args.window is not None else default_window_seconds(args.run)
    else:  # a bundle records its training clips' median length
        seconds = bundle_clip_seconds(args.bundle)
        window, window_from = (seconds, "the bundle's training clips") if seconds else (DEFAULT_WINDOW_S, "default")
    realtime = source_kind(args.source) != "file" if args.realtime is None else args.realtime
    log = args.log or (str(Path(args.out).with_suffix(".jsonl")) if args.out else None)
    try:
        settings = LiveSettings(window=window, stride=args.stride, smooth_k=args.smooth, smoothing=args.smoothing,
                                ema_alpha=args.ema_alpha, drop_late=realtime, incremental=args.incremental,
                                warm_up=args.warm_up, face_hold=args.face_hold, min_confidence=args.min_confidence,
                                show_attention=args.show_attention, fusion=args.fusion, face_rate=args.face_rate,
                                late_weights=parse_late_weights(args.late_weights) if args.late_weights else ())
        runner = LiveRunner(predictor, settings, out=args.out, log=log, show=args.show,
                            echo=None if args.quiet else print)
    except ValueError as e:
        parser.error(str(e))
    if args.show_attention and runner.attention_stream is None:
        print("--show-attention: no stream of this run has spatial attention over the keyframes; nothing to overlay",
              flush=True)
    if args.reconnect is not None and (args.reconnect < 0 or source_kind(args.source) != "url"):
        parser.error("--reconnect N needs N >= 0 and a stream URL as --source")
    source = runner.open(args.source, audio_source=args.audio_source, audio_format=args.audio_format,
                         reconnect=args.reconnect)
    fusion = ("fusion head" if args.fusion == "head" else
              "late fusion " + ", ".join(f"{s} {w:g}" for s, w in settings.late_weight_map().items()))
    print(f"{source.name}: window {window:g} s ({window_from}), stride {args.stride:g} s, smoothing "
          f"{args.smoothing} over {args.smooth}, {fusion}, "
          f"{'real time: late windows dropped' if realtime else 'every window predicted'}", flush=True)
    server = None
    if serve is not None:
        state = DashboardState()
        runner.listeners.append(state)
        server = DashboardServer(state, *serve).start()
        print(f"dashboard: {server.url}", flush=True)
        if not is_loopback(serve[0]):
            print(f"warning: the dashboard at {server.url} is reachable from other machines and has no "
                  "authentication: anyone who can reach this port sees the video", file=sys.stderr, flush=True)
    try:
        summary = runner.run(source)
    finally:
        if server is not None:
            server.stop()
    print(json.dumps(summary.as_dict()) if args.json else summary.format(), flush=True)
    return 0 if summary.frames > 0 else 1


if __name__ == "__main__":
    sys.exit(run_main(main, user_errors=(PipelineError, LiveSourceError)))
