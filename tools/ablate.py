#!/usr/bin/env python
"""Ablations of the method's design choices, measured on synthetic data built for the question.

    python tools/ablate.py keyframes --scorer RUN --out DIR [--families peak,spread,steady] [--seeds 3]
                                     [--selections uniform,literal,default,no_rule1,...,no_rule5]
                                     [--off-peak 0.3] [--train 120 --val 60 --seed 0]
                                     [--intensity max_prob|non_neutral|both] [--workers 2] [--fresh]
                                     [--set keyframes.precision=bfloat16 ...]
    python tools/ablate.py keyframes --train-scorer --out DIR ...

keyframes: for each clip family (peak: one emotional second; spread: two or three short moments;
steady: emotional throughout, the control; off-moment frames Neutral or the opposite emotion at
--off-peak) and each of --seeds seeds, a generated set on which every selection (uniform, the
literal reading, the default, and the default with each rule switched off, no_rule1..no_rule5) is
made by the real preprocessing and the keyframe stream is trained with its tiny recipe. Per family
and selection: salient recall (keyframes inside the recorded emotion windows) against its
ceiling, val accuracy, the paired difference to uniform, each with a 95 % interval over clips and
seeds, and how often the selection differs from the default's. Writes DIR/ablation.json and
DIR/ablation.md (experiments/keyframe_ablation.py says how each number is made). --scorer takes a
trained scorer run (e.g. runs/demo/scorer); --train-scorer trains the demo recipe on generated
stills into DIR/scorer first. Everything is cached by hash: a re-run, an extra seed or family
recomputes only what is new.
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
from experiments.keyframe_ablation import AblationSettings, run_ablation
from experiments.keyframe_settings import DEFAULT_OFF_PEAK, PREPROCESS_CONFIG, SELECTION_MODES
from keyframes.selection import INTENSITIES
from synthetic.peaks import FAMILIES, MAX_OFF_PEAK


def names(allowed: tuple[str, ...], what: str):
    """An argparse type: a comma-separated list of names among ``allowed``."""
    def parse(text: str) -> tuple[str, ...]:
        got = tuple(n.strip() for n in text.split(",") if n.strip())
        unknown = [n for n in got if n not in allowed]
        if not got or unknown:
            raise argparse.ArgumentTypeError(f"{what} must be among {','.join(allowed)}, got {text!r}")
        return got
    return parse


def off_peak(text: str) -> float:
    value = fraction(text)
    if value > MAX_OFF_PEAK:
        raise argparse.ArgumentTypeError(f"must be between 0 and {MAX_OFF_PEAK}, got {text}")
    return value


def cmd_keyframes(args: argparse.Namespace) -> int:
    intensities = None if args.intensity is None else (INTENSITIES if args.intensity == "both" else (args.intensity,))
    settings = AblationSettings(n_train=args.train, n_val=args.val, seed=args.seed, seeds=args.seeds,
                                families=args.families, modes=args.selections, off_peak=args.off_peak,
                                duration=args.duration,
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
    kf = sub.add_parser("keyframes", help="every keyframe selection and rule ablation on clip families, several seeds")
    scorer = kf.add_mutually_exclusive_group(required=True)
    scorer.add_argument("--scorer", default=None, help="trained keyframe scorer (run directory or checkpoint)")
    scorer.add_argument("--train-scorer", action="store_true",
                        help="train configs/keyframes/scorer_demo.yaml on the generated stills into OUT/scorer")
    kf.add_argument("--out", required=True, help="output folder (data, caches, runs, ablation.json/.md)")
    kf.add_argument("--train", type=positive_int, default=120, help="train clips [120]")
    kf.add_argument("--val", type=positive_int, default=60, help="val clips [60]")
    kf.add_argument("--seed", type=int, default=0, help="first dataset and training seed [0]")
    kf.add_argument("--seeds", type=positive_int, default=3,
                    help="seeds SEED, SEED+1, ...: each regenerates the sets and retrains the streams [3]")
    kf.add_argument("--families", type=names(FAMILIES, "--families"), default=FAMILIES,
                    help=f"clip families, comma-separated [{','.join(FAMILIES)}]")
    kf.add_argument("--selections", type=names(SELECTION_MODES, "--selections"), default=SELECTION_MODES,
                    help="selections, comma-separated (uniform and default always run) [all: "
                         f"{','.join(SELECTION_MODES)}]")
    kf.add_argument("--off-peak", type=off_peak, default=DEFAULT_OFF_PEAK,
                    help=f"strength (0-{MAX_OFF_PEAK}) of the opposite emotion on the off-moment frames of the "
                         f"clips that show it [{DEFAULT_OFF_PEAK}]")
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
