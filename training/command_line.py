"""The command line the three training tools share (tools/train_keyframe_scorer.py,
tools/train_stream.py, tools/train_fusion.py): ``--config --<data> --out [--set] [--fresh]``,
INFO logging, and one line naming the best checkpoint, printed once under ``accelerate launch``."""
from __future__ import annotations

import argparse
import logging
from typing import Any, Callable

from accelerate import PartialState

from training.config import load_config


def training_parser(description: str, *, data_flag: str, data_help: str,
                    config_help: str = "recipe (YAML)") -> argparse.ArgumentParser:
    """A parser with ``--config``, ``data_flag`` (stored as ``args.data``), ``--out``, ``--set``
    and ``--fresh``; ``description`` is the tool's docstring."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help=config_help)
    parser.add_argument(data_flag, dest="data", metavar=data_flag.lstrip("-").upper(), required=True, help=data_help)
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--fresh", action="store_true", help="delete the run directory's contents and start over")
    return parser


def run_training(train: Callable[..., dict[str, Any]], args: argparse.Namespace) -> int:
    """``train(config, args.data, args.out, fresh=args.fresh)`` with the config loaded from
    ``args.config`` and ``args.set``; prints the best val accuracy and where it is. Returns 0."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    metrics = train(load_config(args.config, args.set), args.data, args.out, fresh=args.fresh)
    if PartialState().is_main_process:  # under accelerate launch, say it once
        best = metrics["best_val_acc"]
        where = f"{args.out}/best" if best is not None else f"{args.out}/last (no validation set)"
        print(f"best val accuracy {'n/a' if best is None else f'{best:.3f}'} at epoch {metrics['best_epoch']} -> {where}")
    return 0
