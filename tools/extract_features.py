#!/usr/bin/env python
"""Run each frozen stream's features() over every cached clip once, for fusion.

    python tools/extract_features.py --streams visual=runs/visual,audio=runs/audio,flow=runs/flow,face=runs/face \
        --cache CACHE --out FEATS

Writes FEATS/<split>/{<stream>.npy, <stream>_probs.npy, index.json}; streams whose checkpoint
changed are recomputed, the rest reused.
"""
from __future__ import annotations

import argparse
import logging
import sys

from training.command_line import add_debug_argument, run_main
from fusion.features import extract_features, parse_stream_runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", required=True, help="name=RUN_DIR,... for visual, audio, flow, face")
    parser.add_argument("--cache", required=True, help="preprocessing cache")
    parser.add_argument("--out", required=True, help="feature directory")
    parser.add_argument("--splits", default="train,val,test")
    parser.add_argument("--batch-size", type=int, default=8)
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        runs = parse_stream_runs(args.streams)
    except ValueError as e:
        parser.error(str(e))
    status = extract_features(runs, args.cache, args.out, splits=tuple(args.splits.split(",")),
                              batch_size=args.batch_size)
    for split, streams in status.items():
        print(f"{split}: " + ", ".join(f"{s} {v}" for s, v in streams.items()))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
