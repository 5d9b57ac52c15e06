#!/usr/bin/env python
"""Evaluate a fusion run: Concat-FC, each stream, late-fusion baselines, availability breakdown.

    python tools/evaluate.py --run runs/fusion --split val
    python tools/evaluate.py --bundle runs/demo/bundle --split val --out eval_bundle [--features FEATS]

Writes RUN/eval_<split>/{metrics.json, confusion_matrix.png, predictions.jsonl} and prints tables.
The head's probabilities there (and their ECE, NLL, Brier) are calibrated with the run's
temperature, fitted on val; --no-calibration gives the raw ones. With --bundle (tools/export.py)
the bundle's fusion head is evaluated (ONNX Runtime unless --engine torch) on a feature directory
(--features, default the one its fusion run was trained on), written to --out.
"""
from __future__ import annotations

import argparse
import sys

from core.command_line import add_calibration_argument, add_debug_argument, add_device_argument, run_main
from fusion.evaluation import evaluate_run, format_summary
from release.bundle_evaluation import evaluate_bundle
from release.pipeline_source import add_pipeline_arguments


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_pipeline_arguments(parser)
    parser.add_argument("--features", default=None, help="with --bundle: feature directory (default: the run's)")
    parser.add_argument("--out", default=None, help="with --bundle: where the metrics go (required)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--weights-split", default="val", help="split the late-fusion weights are searched on")
    add_device_argument(parser, what="the fusion head (the stacking and score-weighted heads compute in NumPy)")
    add_calibration_argument(parser)
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    if args.run is not None:
        if args.engine == "onnxruntime" or args.out or args.features:
            parser.error("--engine onnxruntime, --out and --features go with --bundle")
        metrics = evaluate_run(args.run, args.split, weights_split=args.weights_split, device=args.device,
                               calibrated=args.calibrated)
        out = f"{args.run}/eval_{args.split}"
    else:
        if not args.out:
            parser.error("--bundle needs --out DIR (the bundle's files are fixed by its manifest)")
        metrics = evaluate_bundle(args.bundle, args.split, out=args.out, features=args.features,
                                  weights_split=args.weights_split, engine=args.engine or "onnxruntime",
                                  device=args.device, calibrated=args.calibrated)
        out = args.out
    print(format_summary(metrics))
    print(f"\nwrote {out}/metrics.json, confusion_matrix.png, predictions.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
