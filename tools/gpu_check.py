#!/usr/bin/env python
"""Check the GPU path on a machine with a CUDA GPU, and write its results page.

    python tools/gpu_check.py [--markdown docs/results/gpu_check.md] [--streams visual,audio,flow,face]
                              [--batch B] [--precision fp32|bf16|both] [--steps 3] [--run runs/demo/fusion]
    make gpu-check                 (the same, writing docs/results/gpu_check.md)

On one GPU, each full stream recipe trains --steps steps at its per-device batch (--batch
overrides it) in fp32 and bf16: step time, clips per second, peak memory against the estimate of
`python tools/benchmark.py memory`, and the DataLoader's clips per second (the recipe's workers,
on a cache fabricated at the recipe's sizes) against the step's. Then a fusion run (--run;
default runs/demo/fusion when the demo has run, else an untrained tiny pipeline built on the
spot) predicts a generated clip and live mode runs over it on the GPU. A part that fails is
recorded on the page with its error, the others still run, and the exit status is 1.
Without a CUDA device: `error: no CUDA device`, status 2. --device cpu --allow-cpu --tiny is a
dry run of the same code on the CPU at tiny sizes (what the tests run).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from benchmarks.gpu_check import gpu_check, gpu_check_markdown
from benchmarks.timing import BenchmarkError
from core.command_line import add_debug_argument, non_negative_int, positive_int, run_main
from core.results_page import write_results_page
from streams.specs import STREAM_SPECS

ROOT = Path(__file__).resolve().parents[1]
DEMO_RUN = ROOT / "runs/demo/fusion"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda", help="the CUDA device to check [cuda]")
    p.add_argument("--allow-cpu", action="store_true", help="accept --device cpu (a dry run; for tests)")
    p.add_argument("--streams", default=",".join(s for s, spec in STREAM_SPECS.items() if not spec.optional),
                   help="comma-separated streams to train [the method's four]")
    p.add_argument("--tiny", action="store_true", help="the tiny recipes and small clips (a dry run)")
    p.add_argument("--batch", type=positive_int, default=None, help="clips per step (default: the recipe's)")
    p.add_argument("--precision", choices=("fp32", "bf16", "both"), default="both")
    p.add_argument("--steps", type=positive_int, default=3, help="timed training steps per recipe [3]")
    p.add_argument("--loader-workers", type=non_negative_int, default=None,
                   help="DataLoader workers of the loader measurement (default: the recipe's)")
    p.add_argument("--run", default=None, help="fusion run to predict with (default: runs/demo/fusion, else untrained)")
    p.add_argument("--no-inference", action="store_true", help="skip prediction and live mode")
    p.add_argument("--clip-seconds", type=float, default=8.0, help="length of the generated clip [8]")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--markdown", metavar="PATH", default=None, help="write the results page, e.g. "
                   "docs/results/gpu_check.md")
    add_debug_argument(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    streams = [s.strip() for s in args.streams.split(",") if s.strip()]
    unknown = sorted(set(streams) - set(STREAM_SPECS))
    if unknown:
        raise BenchmarkError(f"--streams: unknown streams {unknown}; choose from {', '.join(STREAM_SPECS)}")
    run = args.run or (DEMO_RUN if (DEMO_RUN / "best").is_dir() else None)
    precisions = ("fp32", "bf16") if args.precision == "both" else (args.precision,)
    result = gpu_check(device=args.device, allow_cpu=args.allow_cpu, streams=streams, tiny=args.tiny,
                       batch=args.batch, precisions=precisions, steps=args.steps, loader_workers=args.loader_workers,
                       run=run, clip_seconds=args.clip_seconds, clip_size=(320, 180) if args.tiny else (1280, 720),
                       inference=not args.no_inference, say=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(result) if args.json else gpu_check_markdown(result))
    if args.markdown:
        write_results_page(args.markdown, "GPU check", "tools/gpu_check.py", argv, gpu_check_markdown(result))
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(run_main(main, user_errors=(BenchmarkError,)))
