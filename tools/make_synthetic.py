"""Write the synthetic VGAF/GroupEmoW dataset (see media/synthetic.py for the cue design).

    python tools/make_synthetic.py --out data/synthetic --train 60 --val 15 --test 15 --seed 0
"""
from __future__ import annotations

import argparse
import os
import sys

from media.synthetic import CLASSES, SPLITS, generate_dataset
from training.command_line import add_debug_argument, run_main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="dataset folder to write")
    p.add_argument("--train", type=int, required=True, help="number of Train clips")
    p.add_argument("--val", type=int, required=True, help="number of Val clips")
    p.add_argument("--test", type=int, default=0, help="number of Test clips (labelled, a held-out split)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cue-noise", type=float, default=0.3,
                   help="per modality, probability that it shows a uniformly drawn class")
    p.add_argument("--cue-jitter", type=float, default=0.2, help="half-width of per-clip valence jitter")
    p.add_argument("--duration", type=float, default=3.0, help="clip length in seconds")
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=180)
    p.add_argument("--fps", type=float, default=15)
    p.add_argument("--sample-rate", type=int, default=16000)
    p.add_argument("--stills", type=int, default=None,
                   help="GroupEmoW stills per class in every split (default: 30 train, 10 val, 10 test)")
    p.add_argument("--audio-fraction", type=float, default=1.0,
                   help="fraction of clips that get an audio track (the rest have none)")
    p.add_argument("--faceless-fraction", type=float, default=0.0,
                   help="fraction of clips without people (no faces to detect)")
    p.add_argument("--peak-fraction", type=float, default=0.25,
                   help="fraction of clips whose cues swell for about 1 s")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    p.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    add_debug_argument(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    summary = generate_dataset(
        args.out, n_train=args.train, n_val=args.val, n_test=args.test, seed=args.seed,
        cue_noise=args.cue_noise, cue_jitter=args.cue_jitter, duration=args.duration,
        width=args.width, height=args.height, fps=args.fps, sample_rate=args.sample_rate,
        n_stills_per_class=args.stills, audio_fraction=args.audio_fraction,
        faceless_fraction=args.faceless_fraction,
        peak_fraction=args.peak_fraction, workers=args.workers, overwrite=args.overwrite)
    print(format_summary(summary))
    return 0


def format_summary(summary: dict) -> str:
    """The summary of generate_dataset as a small text table."""
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
