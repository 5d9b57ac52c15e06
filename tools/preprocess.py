#!/usr/bin/env python
"""Preprocess a dataset into the streams' inputs, decoding each clip once.

    python tools/preprocess.py --config configs/preprocess/default.yaml --videos VGAF_ROOT \
        --scorer runs/scorer --out CACHE [--workers 4] [--shard 0/8] [--streams visual,flow,face,audio] [--device cuda]
    python tools/preprocess.py --verify --config ... --videos VGAF_ROOT --out CACHE [--scorer ...]

Per clip: CACHE/<clip_id>/{keyframes.npy, keyframes.json, flow.npy, faces.npy, mel.npy, meta.json}
(see docs/reference/cache.md). Failures go to CACHE/errors.jsonl and the run goes on; a re-run
redoes only arrays whose part of the config changed. --verify checks that a (sharded) cache is
complete and consistent for this config and exits non-zero if not.
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
from streams.preprocessing import build_preprocess_job, verify_cache, write_pipeline_record
from streams.specs import STREAM_SPECS, parse_streams
from training.label_maps import relabel_records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_batch_arguments(parser)
    parser.add_argument("--scorer", default=None,
                        help="scorer run directory or checkpoint (needed by the streams that read keyframes)")
    parser.add_argument("--streams", default=None,
                        help=f"comma list of {','.join(STREAM_SPECS)} (default: the streams the config enables)")
    parser.add_argument("--contact-sheet", action="store_true", help="also write contact_sheet.png per clip")
    parser.add_argument("--verify", action="store_true", help="check the cache is complete and consistent, then exit")
    add_device_argument(parser, what="the keyframe scorer and MTCNN (optical flow runs on OpenCV, on the CPU)")
    add_debug_argument(parser)
    args = parser.parse_args(argv)

    with naming_config(args.config, args.set):  # a bad key, found where it is used, names the recipe
        cfg = load_config(args.config, args.set)
        try:
            streams = parse_streams(args.streams, cfg)
        except ValueError as e:
            parser.error(str(e))
        readers = [s for s in streams if STREAM_SPECS[s].uses_keyframes]
        if readers and not args.scorer:
            parser.error(f"--scorer is required for the streams that read keyframes ({', '.join(readers)})")
        records = select_records(args.videos, split=args.split, shard=args.shard, allow_missing=args.allow_missing)
        records = relabel_records(records, cfg.get("labels"))   # the recipe's labels: mapping, if any
        make_job = functools.partial(build_preprocess_job, cfg, args.scorer, args.out, streams, args.contact_sheet,
                                     device=args.device)
        if args.verify:
            report = verify_cache(records, make_job())
            print(report.format())
            return 0 if report.ok else 1
        print(f"{len(records)} clips from {args.videos} -> {args.out} (streams: {','.join(streams)})",
              *skipped_lines(args.videos, split=args.split), sep="\n")
        # pipeline.json describes the cache: written once the job is built, so a refused recipe
        # leaves the cache's record of how it was made as it was
        summary = run_batch(records, make_job, errors_log=errors_path(args.out), workers=args.workers,
                            desc="preprocess",
                            ready=functools.partial(write_pipeline_record, args.out, cfg, args.scorer))
    print(summary.format())
    return exit_code(summary)


if __name__ == "__main__":
    sys.exit(run_main(main))
