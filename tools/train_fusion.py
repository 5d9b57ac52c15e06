#!/usr/bin/env python
"""Train the Concat-FC fusion head on cached stream features.

    python tools/train_fusion.py --config configs/fusion/concat_fc.yaml --features FEATS --out runs/fusion [--fresh]
"""
from __future__ import annotations

import argparse
import logging
import sys

from accelerate import PartialState

from training.config import load_config
from fusion.training import train_fusion


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True)
    parser.add_argument("--features", required=True, help="tools/extract_features.py --out")
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--fresh", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    metrics = train_fusion(load_config(args.config, args.set), args.features, args.out, fresh=args.fresh)
    if PartialState().is_main_process:  # under accelerate launch, say it once
        print(f"best val accuracy {metrics['best_val_acc']:.3f} at epoch {metrics['best_epoch']} -> {args.out}/best")
    return 0


if __name__ == "__main__":
    sys.exit(main())
