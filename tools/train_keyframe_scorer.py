#!/usr/bin/env python
"""Fine-tune the sentiment keyframe scorer (ResNet-50) on GroupEmoW-format image folders.

    python tools/train_keyframe_scorer.py --config configs/keyframes/scorer_r50.yaml \
        --data GROUPEMOW_ROOT --out runs/scorer [--set train.epochs=10] [--fresh]

Re-running on the same --out resumes from the last completed epoch (or reuses a finished run).
"""
from __future__ import annotations

import sys

from core.command_line import run_main, run_training, training_parser
from keyframes.training import train_scorer


def main(argv: list[str] | None = None) -> int:
    parser = training_parser(__doc__, data_flag="--data", data_help="GroupEmoW root with train/ and val/")
    return run_training(train_scorer, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(run_main(main))
