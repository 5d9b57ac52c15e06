#!/usr/bin/env python
"""Evaluate a fusion run: Concat-FC, each stream, late-fusion baselines, availability breakdown.

    python tools/evaluate.py --run runs/fusion --split val

Writes RUN/eval_<split>/{metrics.json, confusion_matrix.png, predictions.jsonl} and prints tables.
The head's probabilities there (and their ECE, NLL, Brier) are calibrated with the run's
temperature, fitted on val; --no-calibration gives the raw ones.
"""
from __future__ import annotations

import argparse
import sys

from core.command_line import add_calibration_argument, add_debug_argument, add_device_argument, run_main
from fusion.evaluation import evaluate_run, format_summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="fusion run directory")
    parser.add_argument("--split", default="val")
    parser.add_argument("--weights-split", default="val", help="split the late-fusion weights are searched on")
    add_device_argument(parser, what="the fusion head (the stacking and score-weighted heads compute in NumPy)")
    add_calibration_argument(parser)
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    metrics = evaluate_run(args.run, args.split, weights_split=args.weights_split, device=args.device,
                           calibrated=args.calibrated)
    print(format_summary(metrics))
    print(f"\nwrote {args.run}/eval_{args.split}/metrics.json, confusion_matrix.png, predictions.jsonl")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
