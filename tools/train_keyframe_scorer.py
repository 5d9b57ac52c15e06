#!/usr/bin/env python
"""Fine-tune the sentiment keyframe scorer (ResNet-50) on GroupEmoW-format image folders.

    python tools/train_keyframe_scorer.py --config configs/keyframes/scorer_r50.yaml \
        --data GROUPEMOW_ROOT --out runs/scorer [--set train.epochs=10] [--fresh]

Re-running on the same --out resumes from the last completed epoch (or reuses a finished run).
"""
from __future__ import annotations

import argparse
import logging
import sys

from accelerate import PartialState

from training.config import load_config
from keyframes.training import train_scorer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--data", required=True, help="GroupEmoW root with train/ and val/")
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--fresh", action="store_true", help="delete the run directory's contents and start over")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    metrics = train_scorer(load_config(args.config, args.set), args.data, args.out, fresh=args.fresh)
    if PartialState().is_main_process:  # under accelerate launch, say it once
        print(f"best val accuracy {metrics['best_val_acc']:.3f} at epoch {metrics['best_epoch']} -> {args.out}/best")
    return 0


if __name__ == "__main__":
    sys.exit(main())
