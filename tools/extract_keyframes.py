#!/usr/bin/env python
"""Extract the sentiment keyframes of every clip (the keyframes-only subset of preprocessing).

    python tools/extract_keyframes.py --config configs/preprocess/default.yaml --videos DIR_OR_VGAF_ROOT \
        --scorer runs/scorer --out CACHE [--workers K] [--shard i/N] [--contact-sheet]

Writes CACHE/<clip_id>/keyframes.json (the selection: times, scores, why each frame was chosen),
the keyframe images (keyframes.npy (N, H, W, 3) uint8) and meta.json, exactly as
tools/preprocess.py does for these streams, so a later preprocess run on the same CACHE reuses
them; failures go to CACHE/errors.jsonl and the run goes on. Re-running skips clips already done
with this config.
"""
from __future__ import annotations

import argparse
import functools
import sys

from core.batch import exit_code, run_batch
from core.command_line import add_debug_argument, add_device_argument, naming_config, run_main
from core.config import load_config
from media.selection import add_batch_arguments, select_records, skipped_lines
from streams.cache import errors_path
from streams.preprocessing import build_preprocess_job
from streams.specs import STREAM_SPECS
from training.label_maps import relabel_records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_batch_arguments(parser)
    parser.add_argument("--scorer", required=True, help="scorer run directory (uses its best checkpoint) or checkpoint")
    parser.add_argument("--contact-sheet", action="store_true", help="also write contact_sheet.png per clip")
    add_device_argument(parser, what="the keyframe scorer")
    add_debug_argument(parser)
    args = parser.parse_args(argv)

    with naming_config(args.config, args.set):  # a bad key, found where it is used, names the recipe
        cfg = load_config(args.config, args.set)
        streams = tuple(name for name, spec in STREAM_SPECS.items() if spec.stores_keyframes)
        records = select_records(args.videos, split=args.split, shard=args.shard, allow_missing=args.allow_missing)
        records = relabel_records(records, cfg.get("labels"))   # the recipe's labels: mapping, if any
        print(f"{len(records)} clips from {args.videos} -> {args.out}", *skipped_lines(args.videos, split=args.split),
              sep="\n")
        make_job = functools.partial(build_preprocess_job, cfg, args.scorer, args.out, streams, args.contact_sheet,
                                     device=args.device)
        summary = run_batch(records, make_job, errors_log=errors_path(args.out), workers=args.workers,
                            desc="keyframes")
    print(summary.format())
    return exit_code(summary)


if __name__ == "__main__":
    sys.exit(run_main(main))
