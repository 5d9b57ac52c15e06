#!/usr/bin/env python
"""Train one of the four streams (visual, audio, flow, face) on the preprocessing cache.

    python tools/train_stream.py --config configs/streams/visual.yaml --cache CACHE --out runs/visual \
        [--set train.epochs=10 model.pretrained.path=weights/r101.pth] [--fresh]
    accelerate launch --config_file configs/accelerate/multi_gpu.yaml tools/train_stream.py ...

Re-running on the same --out resumes from the last completed epoch (or reuses a finished run).
"""
from __future__ import annotations

import argparse
import logging
import sys

from accelerate import PartialState

from training.config import load_config
from streams.training import train_stream


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="configs/streams/<stream>.yaml")
    parser.add_argument("--cache", required=True, help="preprocessing cache (tools/preprocess.py --out)")
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE")
    parser.add_argument("--fresh", action="store_true", help="delete the run directory's contents and start over")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    metrics = train_stream(load_config(args.config, args.set), args.cache, args.out, fresh=args.fresh)
    if PartialState().is_main_process:  # under accelerate launch, say it once
        print(f"best val accuracy {metrics['best_val_acc']:.3f} at epoch {metrics['best_epoch']} -> {args.out}/best")
    return 0


if __name__ == "__main__":
    sys.exit(main())
