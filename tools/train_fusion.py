#!/usr/bin/env python
"""Train the Concat-FC fusion head on cached stream features.

    python tools/train_fusion.py --config configs/fusion/concat_fc.yaml --features FEATS --out runs/fusion [--fresh]
"""
from __future__ import annotations

import sys

from core.command_line import run_main, run_training, training_parser
from fusion.training import train_fusion


def main(argv: list[str] | None = None) -> int:
    parser = training_parser(__doc__, data_flag="--features", data_help="tools/extract_features.py --out")
    return run_training(train_fusion, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(run_main(main))
