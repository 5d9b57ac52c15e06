#!/usr/bin/env python
"""Run each frozen stream's features() over every cached clip once, for fusion.

    python tools/extract_features.py --streams visual=runs/visual,audio=runs/audio,flow=runs/flow,face=runs/face \
        --cache CACHE --out FEATS [--config configs/features/holdout.yaml]
    python tools/extract_features.py --streams visual=runs/visual,... --cache CACHE --out FEATS \
        --fold-runs visual=runs/visual_fold0,visual=runs/visual_fold1,visual=runs/visual_fold2,audio=...

Writes FEATS/<split>/{<stream>.npy, <stream>_probs.npy, index.json}; streams whose checkpoints
changed are recomputed, the rest reused. How the train split's features are made follows from the
runs (each records the clips it fitted, streams/folds.py): runs on all of train give in-sample
features; runs trained with an exclude: {fraction: F} section give the held-back clips' features
(holdout); --fold-runs (one run per fold per stream, exclude: {folds: K, fold: k}) give every train
clip's features from the fold run that held it back (cross_fit), val/test from --streams.
--config checks the runs against a features recipe (docs/concepts/leakage.md).
"""
from __future__ import annotations

import argparse
import logging
import sys

from core.command_line import add_debug_argument, add_device_argument, positive_int, run_main
from fusion.features import extract_features, load_feature_plan, parse_fold_runs, parse_stream_runs
from media.layouts import SPLITS


def split_list(text: str) -> tuple[str, ...]:
    """``train,val`` -> ``("train", "val")``; an unknown or repeated split is a usage error."""
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    unknown = [s for s in names if s not in SPLITS]
    if unknown or not names or len(set(names)) != len(names):
        raise argparse.ArgumentTypeError(
            f"must be a comma list of distinct splits from {','.join(SPLITS)}, got {text!r}")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--streams", required=True, help="name=RUN_DIR,... for visual, audio, flow, face")
    parser.add_argument("--fold-runs", default=None,
                        help="name=RUN_DIR,... with K cross-fitting runs per stream (repeat the name)")
    parser.add_argument("--config", default=None,
                        help="features recipe (configs/features/*.yaml) to check the runs against")
    parser.add_argument("--cache", required=True, help="preprocessing cache")
    parser.add_argument("--out", required=True, help="feature directory")
    parser.add_argument("--splits", type=split_list, default="train,val,test",
                        help=f"comma list of {','.join(SPLITS)} [all]")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="clips per forward pass [8]")
    add_device_argument(parser, what="the streams (the fold runs' too)")
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        runs = parse_stream_runs(args.streams)
        fold_runs = parse_fold_runs(args.fold_runs) if args.fold_runs else None
    except ValueError as e:
        parser.error(str(e))
    plan = load_feature_plan(args.config) if args.config else None
    status = extract_features(runs, args.cache, args.out, fold_runs=fold_runs, plan=plan,
                              splits=args.splits, batch_size=args.batch_size, device=args.device)
    for split, streams in status.items():
        print(f"{split}: " + ", ".join(f"{s} {v}" for s, v in streams.items()))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
