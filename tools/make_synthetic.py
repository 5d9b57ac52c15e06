"""Write a synthetic dataset (the package synthetic/ says where each cue design lives: see its __init__.py).

    python tools/make_synthetic.py --out data/synthetic --train 60 --val 15 --test 15 --seed 0
    python tools/make_synthetic.py --layout ravdess --out data/ravdess --train 160 --val 48 --test 8
    python tools/make_synthetic.py --layout cremad --out data/cremad --train 120 --val 48 --test 6
    python tools/make_synthetic.py --layout groupemow --out data/stills --stills 40
    python tools/make_synthetic.py --layout fer2013 --form csv --out data/fer2013 --train 700 --val 140 --test 140

Layouts: vgaf (group clips in Train/Val/Test with label files, plus GroupEmoW stills in
groupemow/), ravdess (Actor_XX/MM-VC-EE-II-SS-RR-AA.mp4, 8 emotions, one actor per clip, split
by actor), cremad (VideoMP4/ID_SENTENCE_EMO_LEVEL.mp4, 6 emotions, split by actor), groupemow
(only the stills, out/ being the GroupEmoW root: what the keyframe scorer of a RAVDESS or CREMA-D
run trains on), fer2013 (48x48 grey faces, 7 expressions, --form csv or folder; --train/--val/--test
count images).
"""
from __future__ import annotations

import argparse
import os
import sys

from core.command_line import (
    add_debug_argument,
    fraction,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    run_main,
)

LAYOUTS = ("vgaf", "ravdess", "cremad", "groupemow", "fer2013")
# options that only some layouts take: name -> the layouts
_ONLY = {"stills": ("vgaf", "groupemow"), "faceless_fraction": ("vgaf",), "peak_fraction": ("vgaf",),
         "form": ("fer2013",)}


def frame_side(text: str) -> int:
    """A frame width or height: even (the H.264 encoder's 4:2:0 needs it) and at least 32 px."""
    side = positive_int(text)
    if side < 32 or side % 2:
        raise argparse.ArgumentTypeError(f"must be an even number of pixels >= 32, got {text!r}")
    return side


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layout", choices=LAYOUTS, default="vgaf", help="dataset layout to write (default vgaf)")
    p.add_argument("--out", required=True, help="dataset folder to write")
    p.add_argument("--train", type=non_negative_int, default=None, help="number of train clips (fer2013: images)")
    p.add_argument("--val", type=non_negative_int, default=None, help="number of val clips (fer2013: images)")
    p.add_argument("--test", type=non_negative_int, default=0, help="number of test clips (labelled, a held-out split)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cue-noise", type=fraction, default=0.3,
                   help="per modality, probability that it shows a uniformly drawn class")
    p.add_argument("--cue-jitter", type=non_negative_float, default=0.2, help="half-width of per-clip cue jitter")
    p.add_argument("--duration", type=positive_float, default=3.0, help="clip length in seconds")
    p.add_argument("--width", type=frame_side, default=320, help="frame width, even, >= 32 [320]")
    p.add_argument("--height", type=frame_side, default=180, help="frame height, even, >= 32 [180]")
    p.add_argument("--fps", type=positive_float, default=15)
    p.add_argument("--sample-rate", type=positive_int, default=16000)
    p.add_argument("--stills", type=positive_int, default=None,
                   help="GroupEmoW stills per class in every split (default: 30 train, 10 val, 10 test)")
    p.add_argument("--audio-fraction", type=fraction, default=1.0,
                   help="fraction of clips that get an audio track (the rest have none)")
    p.add_argument("--faceless-fraction", type=fraction, default=None,
                   help="vgaf: fraction of clips without people (no faces to detect; default 0)")
    p.add_argument("--peak-fraction", type=fraction, default=None,
                   help="vgaf: fraction of clips whose cues swell for about 1 s (default 0.25)")
    p.add_argument("--form", choices=("csv", "folder"), default=None,
                   help="fer2013: fer2013.csv or train|val|test/<emotion>/*.png (default csv)")
    p.add_argument("--workers", type=positive_int, default=min(4, os.cpu_count() or 1))
    p.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    add_debug_argument(p)
    args = p.parse_args(argv)
    for option, layouts in _ONLY.items():
        if getattr(args, option) is not None and args.layout not in layouts:
            p.error(f"--{option.replace('_', '-')} applies to --layout {' or '.join(layouts)}, not {args.layout}")
    if args.layout != "groupemow" and (args.train is None or args.val is None):
        p.error(f"--layout {args.layout} needs --train and --val")
    return args


def _write_vgaf(args: argparse.Namespace) -> str:
    from synthetic.group import generate_dataset

    summary = generate_dataset(
        args.out, n_train=args.train, n_val=args.val, n_test=args.test, seed=args.seed,
        cue_noise=args.cue_noise, cue_jitter=args.cue_jitter, duration=args.duration,
        width=args.width, height=args.height, fps=args.fps, sample_rate=args.sample_rate,
        n_stills_per_class=args.stills, audio_fraction=args.audio_fraction,
        faceless_fraction=0.0 if args.faceless_fraction is None else args.faceless_fraction,
        peak_fraction=0.25 if args.peak_fraction is None else args.peak_fraction,
        workers=args.workers, overwrite=args.overwrite)
    return format_summary(summary)


def _write_groupemow(args: argparse.Namespace) -> str:
    from synthetic.stills import DEFAULT_STILLS_PER_CLASS, generate_stills

    summary = generate_stills(args.out, n_per_class=DEFAULT_STILLS_PER_CLASS if args.stills is None else args.stills,
                              seed=args.seed, cue_jitter=args.cue_jitter, width=args.width, height=args.height,
                              workers=args.workers, overwrite=args.overwrite)
    return format_counts(f"GroupEmoW-format stills in {summary['out_dir']} ({summary['seconds']} s)",
                         summary["stills"], "stills")


def _write_fer2013(args: argparse.Namespace) -> str:
    from synthetic.fer2013 import generate_fer2013

    summary = generate_fer2013(args.out, form=args.form or "csv", n_train=args.train, n_val=args.val,
                               n_test=args.test, seed=args.seed, cue_jitter=args.cue_jitter,
                               overwrite=args.overwrite)
    return format_counts(f"FER2013-format faces ({summary['form']}) in {summary['out_dir']}", summary["images"],
                         "images")


def _write_individual(args: argparse.Namespace) -> str:
    from synthetic.individual import generate_individual_dataset

    summary = generate_individual_dataset(
        args.out, layout=args.layout, n_train=args.train, n_val=args.val, n_test=args.test, seed=args.seed,
        cue_noise=args.cue_noise, cue_jitter=args.cue_jitter, duration=args.duration, width=args.width,
        height=args.height, fps=args.fps, sample_rate=args.sample_rate, audio_fraction=args.audio_fraction,
        workers=args.workers, overwrite=args.overwrite)
    name = {"ravdess": "RAVDESS", "cremad": "CREMA-D"}[args.layout]
    lines = [format_counts(f"synthetic {name}-format dataset in {summary['out_dir']} "
                           f"({summary['seconds']} s)", summary["clips"], "clips")]
    lines += [f"{split}: {n} actors, {summary['clips_without_audio'][split]} clips without audio"
              for split, n in summary["actors"].items()]
    lines.append(f"metadata (true and shown classes per clip): {summary['paths']['metadata']}")
    return "\n".join(lines)


_WRITERS = {"vgaf": _write_vgaf, "ravdess": _write_individual, "cremad": _write_individual,
            "groupemow": _write_groupemow, "fer2013": _write_fer2013}
"""Each layout's writer: generates the set the parsed arguments ask for, returns the summary to print."""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(_WRITERS[args.layout](args))
    return 0


def format_counts(title: str, counts: dict[str, dict[str, int]], what: str) -> str:
    """A table: one row per split, one column per class, and the total."""
    classes = list(next(iter(counts.values())))
    width = max(10, max(len(c) for c in classes) + 2)
    lines = [title, f"{'':<16}" + "".join(f"{c:>{width}}" for c in classes) + f"{'total':>8}"]
    for split, row in counts.items():
        lines.append(f"{split + ' ' + what:<16}" + "".join(f"{row[c]:>{width}}" for c in classes)
                     + f"{sum(row.values()):>8}")
    return "\n".join(lines)


def format_summary(summary: dict) -> str:
    """The summary of the VGAF-layout generate_dataset as a small text table."""
    from synthetic.group import CLASSES, SPLITS

    header = f"{'':<16}" + "".join(f"{c:>10}" for c in CLASSES) + f"{'total':>8}  where"
    lines = [f"synthetic dataset in {summary['out_dir']} ({summary['seconds']} s)", header]
    for split in SPLITS:
        counts = summary["clips"][split]
        missing = [f"{summary['clips_without_audio'][split]} without audio",
                   f"{summary['clips_without_faces'][split]} without faces"]
        missing = [m for m in missing if not m.startswith("0 ")]
        note = f"  ({', '.join(missing)})" if missing else ""
        lines.append(f"{split + ' clips':<16}" + "".join(f"{counts[c]:>10}" for c in CLASSES)
                     + f"{sum(counts.values()):>8}  {summary['paths']['videos'][split]}{note}")
    for split in SPLITS:
        counts = summary["stills"][split.lower()]
        lines.append(f"{split.lower() + ' stills':<16}" + "".join(f"{counts[c]:>10}" for c in CLASSES)
                     + f"{sum(counts.values()):>8}  {summary['paths']['stills']}/{split.lower()}")
    for split, path in summary["paths"]["labels"].items():
        lines.append(f"{split} labels: {path}")
    lines.append(f"metadata (true and shown classes per clip): {summary['paths']['metadata']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(run_main(main))
