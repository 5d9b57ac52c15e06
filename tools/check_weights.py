#!/usr/bin/env python
"""Check a pretrained weights file against a stream recipe before a long training run.

    python tools/check_weights.py --config configs/streams/visual.yaml --weights weights/r3d101_K_200ep.pth \
        [--format hara3d] [--set model.arch=resnet3d] [--json]

Builds the recipe's model (without its own ``model.pretrained``), loads the file as training
would (streams/models/pretrained.py) and prints what loaded: tensors loaded and inflated,
backbone tensors missing from the file or of another shape, file tensors the model has no place
for, what the method adds on top of the backbone (attention, head) and the file's own classifier,
which is dropped. ``--json`` prints one object {"loaded", "inflated", "missing", "unexpected",
"mismatched", "new", "dropped", "notes", "source", "format"}. Exit status: 0 when every backbone
tensor was filled with the right shape, 1 when some are missing or mismatched, 2 when the file or
recipe cannot be used at all.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from core.command_line import add_debug_argument, naming_config, positive_int, run_main
from core.config import load_config
from streams.models.pretrained import PRETRAINED_FORMATS, init_from_pretrained
from streams.training import build_stream_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="stream recipe, configs/streams/<stream>.yaml")
    parser.add_argument("--weights", required=True, help="local weights file (.pth/.pt/.pyth/.bin/.safetensors)")
    parser.add_argument("--format", choices=PRETRAINED_FORMATS, default=None,
                        help="how to read the file (default: from its key names)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="recipe overrides")
    parser.add_argument("--num-classes", type=positive_int, default=3, help="classes of the stream's head (VGAF: 3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the text report")
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    weights_log = logging.getLogger("training.weights")
    level = weights_log.level
    weights_log.setLevel(logging.ERROR)  # it logs the report too; it is printed below, once
    try:
        with naming_config(args.config, args.set):
            cfg = load_config(args.config, args.set)
            cfg["model"] = {k: v for k, v in dict(cfg.get("model") or {}).items() if k != "pretrained"}
            model = build_stream_model(cfg, args.num_classes)
        report = init_from_pretrained(model, path=args.weights, format=args.format)
    finally:
        weights_log.setLevel(level)
    print(json.dumps(report.as_dict()) if args.json else report.summary(max_names=None))
    return 0 if report.backbone_complete else 1


if __name__ == "__main__":
    sys.exit(run_main(main))
