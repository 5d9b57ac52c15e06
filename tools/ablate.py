#!/usr/bin/env python
"""Ablations of the method's design choices, measured on synthetic data built for the question.

    python tools/ablate.py keyframes --scorer RUN --out DIR [--train 120 --val 60 --seed 0]
                                     [--intensity max_prob|non_neutral|both] [--workers 2] [--fresh]
                                     [--set keyframes.precision=bfloat16 ...]
    python tools/ablate.py keyframes --train-scorer --out DIR ...

keyframes: uniform sampling, the literal reading of the rules and the default selection on peak
clips (each clip's cue at full strength for about 1 s, 30 % elsewhere; 5 s at 25 fps): salient
recall (the fraction of keyframes inside the peak second, over the non-neutral clips) and the
keyframe stream's val accuracy when trained with its tiny recipe on each selection. Writes
DIR/ablation.json and DIR/ablation.md (experiments/keyframe_ablation.py says how each number is made).
--scorer takes a trained scorer run (e.g. runs/demo/scorer); --train-scorer trains the demo
recipe on the generated set's stills into DIR/scorer first. A re-run reuses what is up to date.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from benchmarks.timing import BenchmarkError
from core.command_line import add_debug_argument, fraction, positive_float, positive_int, run_main
from core.results_page import write_results_page
from experiments.keyframe_ablation import PREPROCESS_CONFIG, AblationSettings, run_ablation
from keyframes.selection import INTENSITIES


def cmd_keyframes(args: argparse.Namespace) -> int:
    intensities = None if args.intensity is None else (INTENSITIES if args.intensity == "both" else (args.intensity,))
    settings = AblationSettings(n_train=args.train, n_val=args.val, seed=args.seed, duration=args.duration,
                                fps=args.fps, cue_noise=args.cue_noise, intensities=intensities,
                                stills_per_class=args.stills, epochs=args.epochs, workers=args.workers,
                                preprocess_config=args.config, overrides=tuple(args.set))
    result = run_ablation(args.out, settings, scorer=args.scorer, train_scorer=args.train_scorer, fresh=args.fresh,
                          say=lambda msg: print(msg, flush=True))
    if args.json:
        print(json.dumps(result.as_json()))
    else:
        out = Path(args.out)
        print("\n" + (out / "ablation.md").read_text(encoding="utf-8"), end="")
        print(f"-> {out / 'ablation.json'}, {out / 'ablation.md'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    kf = sub.add_parser("keyframes", help="uniform vs literal vs default keyframe selection on peak clips")
    scorer = kf.add_mutually_exclusive_group(required=True)
    scorer.add_argument("--scorer", default=None, help="trained keyframe scorer (run directory or checkpoint)")
    scorer.add_argument("--train-scorer", action="store_true",
                        help="train configs/keyframes/scorer_demo.yaml on the generated stills into OUT/scorer")
    kf.add_argument("--out", required=True, help="output folder (data, caches, runs, ablation.json/.md)")
    kf.add_argument("--train", type=positive_int, default=120, help="train clips [120]")
    kf.add_argument("--val", type=positive_int, default=60, help="val clips [60]")
    kf.add_argument("--seed", type=int, default=0, help="dataset and training seed [0]")
    kf.add_argument("--intensity", choices=(*INTENSITIES, "both"), default=None,
                    help="intensity of the literal and default selections (default: the recipe's keyframes.intensity)")
    kf.add_argument("--config", default=str(PREPROCESS_CONFIG),
                    help="preprocessing recipe [configs/preprocess/demo.yaml]")
    kf.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override of the preprocessing recipe for every selection (repeatable), "
                         "e.g. keyframes.precision=bfloat16")
    kf.add_argument("--duration", type=positive_float, default=5.0, help="clip length in s [5]")
    kf.add_argument("--fps", type=positive_float, default=25.0, help="clip frame rate [25]")
    kf.add_argument("--cue-noise", type=fraction, default=0.0,
                    help="probability that a clip's cue shows a random class [0: the selection is what is compared]")
    kf.add_argument("--stills", type=positive_int, default=40,
                    help="stills per class and split for --train-scorer [40]")
    kf.add_argument("--epochs", type=positive_int, default=None, help="override the stream recipe's train.epochs")
    kf.add_argument("--workers", type=positive_int, default=2,
                    help="processes for generation, preprocessing, training [2]")
    kf.add_argument("--fresh", action="store_true", help="delete what an earlier ablation wrote into OUT first")
    kf.add_argument("--json", action="store_true", help="print ablation.json instead of the table")
    kf.add_argument("--markdown", metavar="PATH", default=None,
                    help="also write ablation.md as a results page (command, commit, machine), "
                         "e.g. docs/results/keyframe_ablation.md")
    add_debug_argument(kf)
    kf.set_defaults(func=cmd_keyframes)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    rc = args.func(args)
    if args.markdown:
        write_results_page(args.markdown, "Keyframe ablation", "tools/ablate.py", argv,
                           (Path(args.out) / "ablation.md").read_text(encoding="utf-8"))
    return rc


if __name__ == "__main__":
    sys.exit(run_main(main, user_errors=(BenchmarkError,)))
