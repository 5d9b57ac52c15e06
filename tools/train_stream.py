#!/usr/bin/env python
"""Train one of the four streams (visual, audio, flow, face) on the preprocessing cache.

    python tools/train_stream.py --config configs/streams/visual.yaml --cache CACHE --out runs/visual \
        [--set train.epochs=10 model.pretrained.path=weights/r101.pth] [--fresh]
    accelerate launch --config_file configs/accelerate/multi_gpu.yaml tools/train_stream.py ...

Re-running on the same --out resumes from the last completed epoch (or reuses a finished run).

To keep part of the train split unseen for fusion (docs/concepts/leakage.md), the recipe's
exclude section holds it back, e.g. --set exclude.fraction=0.25 (holdout) or
--set exclude.folds=3 exclude.fold=0 (one cross-fitting fold); OUT/train_clips.json records the
clips the run fitted and held back.
"""
from __future__ import annotations

import sys

from core.command_line import run_main, run_training, training_parser
from streams.training import train_stream


def main(argv: list[str] | None = None) -> int:
    parser = training_parser(__doc__, data_flag="--cache", data_help="preprocessing cache (tools/preprocess.py --out)",
                             config_help="configs/streams/<stream>.yaml")
    return run_training(train_stream, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(run_main(main))
