#!/usr/bin/env python
"""The robustness report card: every stream, late fusion and fusion head of a runs directory on
its test clips damaged in the media files (noise, babble, no audio track, blur, low bit rate,
darkness, a quarter of the pixels, half the frames, hidden faces), each clip re-preprocessed with
the runs' own recipe and scorer, and with every set of streams marked missing.

    python tools/robustness.py --runs runs/demo --out runs/demo/robustness [--damages KEY,KEY]
                               [--no-missing] [--max-clips N] [--workers K] [--device cpu]
                               [--markdown docs/results/robustness.md]

Writes OUT/robustness.json, OUT/robustness.md and OUT/robustness_heatmap.png; the damaged caches
and features go to OUT/cache/ and OUT/features/ (a re-run reuses them: nothing is recomputed), a
damaged clip that fails to OUT/cache/<recipe>/<damage>/errors.jsonl. --markdown also writes the
tables as a results page (command, commit, machine and the run's wall time beside them). See experiments/robustness.py
and docs/guides/robustness.md.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

from core.command_line import add_debug_argument, add_device_argument, non_negative_int, positive_int, run_main
from core.results_page import code_commit, command_text, write_results_page
from experiments.report_runs import ReportError
from experiments.robustness import build_robustness
from experiments.robustness_output import format_markdown, write_robustness
from media.damage import DAMAGES
from training.statistics import DRAWS


def damage_list(text: str) -> tuple[str, ...]:
    """``blur_sigma2,dark_30pct`` -> the keys; an unknown or repeated key is a usage error."""
    keys = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in keys if k not in DAMAGES]
    if unknown or not keys or len(set(keys)) != len(keys):
        raise argparse.ArgumentTypeError(f"must be a comma list of distinct damages from {','.join(DAMAGES)}, "
                                         f"got {text!r}")
    return keys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", required=True,
                        help="runs directory (e.g. runs/demo), searched as tools/report.py does")
    parser.add_argument("--out", required=True, help="output directory (its cache/ and features/ are reused)")
    parser.add_argument("--method", default=None,
                        help="the method's fusion run (default: the one Concat-FC run under --runs)")
    parser.add_argument("--damages", type=damage_list, default=None,
                        help=f"comma list of damages (default all: {','.join(DAMAGES)})")
    parser.add_argument("--no-missing", action="store_true", help="leave out the rows of streams marked missing")
    parser.add_argument("--max-clips", type=positive_int, default=None,
                        help="only the first N labelled test clips (a quick look; default all)")
    parser.add_argument("--draws", type=positive_int, default=DRAWS, help=f"bootstrap resamples (default {DRAWS})")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="clips per stream forward pass [8]")
    parser.add_argument("--workers", type=non_negative_int, default=0,
                        help="processes that damage and preprocess clips (0: this one) [0]")
    parser.add_argument("--markdown", metavar="PATH", default=None,
                        help="also write the tables as a results page here (e.g. docs/results/robustness.md)")
    add_device_argument(parser, what="the keyframe scorer, MTCNN and the streams")
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.monotonic()
    data = build_robustness(args.runs, args.out, method=args.method, damages=args.damages,
                            missing=not args.no_missing, max_clips=args.max_clips, draws=args.draws, seed=args.seed,
                            device=str(args.device), batch_size=args.batch_size,
                            workers=args.workers)
    data = {"command": command_text("tools/robustness.py", argv), "commit": code_commit(),
            "wall_s": time.monotonic() - started, "workers": args.workers, **data}
    written = write_robustness(data, args.out)
    if args.markdown:
        written["page"] = str(write_results_page(args.markdown, f"Robustness: {args.runs}", "tools/robustness.py",
                                                 argv, format_markdown(data, heat_map=False)))
    failed = {k: v["clips"]["failed"] for k, v in data["damages"].items() if v["clips"]["failed"]}
    for key, n in failed.items():
        print(f"warning: {key}: {n} clips failed (see {data['damages'][key]['errors_log']})")
    print(f"{len(data['rows'])} rows ({data['clips']} {data['split']} clips); wrote "
          + ", ".join(written.values()))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, user_errors=(ReportError,)))
