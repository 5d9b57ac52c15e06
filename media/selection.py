"""Which clips of a dataset a per-clip batch tool works on: the arguments every such tool takes
(``--videos --split --shard --allow-missing`` ...), the records they select and the files they
skip. The tools run the selected clips with :func:`core.batch.run_batch`."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from core.storage import parse_shard, shard_items
from media.layouts import SPLITS, ClipRecord, detect_layout, get_layout, read_dataset, skipped_files


def add_batch_arguments(parser) -> None:
    """The arguments every per-clip batch tool takes: --config, --set, --videos, --out, --workers,
    --shard, --split, --allow-missing."""
    parser.add_argument("--config", required=True, help="preprocessing recipe (YAML)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config values")
    parser.add_argument("--videos", required=True, help="dataset root (VGAF, RAVDESS, CREMA-D) or a folder of videos")
    parser.add_argument("--out", required=True, help="cache directory")
    parser.add_argument("--workers", type=int, default=0, help="worker processes (0: this process)")
    parser.add_argument("--shard", default=None, type=_shard_argument,
                        help="i/N: process a deterministic 1/N slice (cluster arrays)")
    parser.add_argument("--split", default=None, type=str.lower, choices=SPLITS, help="only this split")
    parser.add_argument("--allow-missing", action="store_true",
                        help="skip labelled clips whose video is missing and videos without a label")


def _shard_argument(text: str) -> str:
    try:
        parse_shard(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def select_records(videos: str, *, split: str | None, shard: str | None,
                   allow_missing: bool = False) -> list[ClipRecord]:
    """The dataset's records (layout detected), restricted to ``split`` and to shard ``i/N``.
    ``allow_missing`` reaches the layouts that take it (VGAF: labels without a video, videos
    without a label) and is ignored by the others."""
    layout = detect_layout(videos)
    kwargs = {"allow_missing": True} if allow_missing and "allow_missing" in get_layout(layout).options else {}
    records = read_dataset(videos, split, layout=layout, **kwargs)
    return shard_items(records, parse_shard(shard), key=lambda r: r.clip_id)


def skipped_lines(videos: str, *, split: str | None, limit: int = 10) -> list[str]:
    """The files of dataset ``videos`` that are not clips (:func:`media.layouts.skipped_files`),
    as lines to print after the clip count: how many, then up to ``limit`` of them with the reason.
    ``[]`` when there are none."""
    skipped = skipped_files(videos, split)
    if not skipped:
        return []
    root = Path(os.path.abspath(videos))
    lines = [f"skipped {len(skipped)} file(s) in {videos} that are not clips:"]
    lines += [f"  {s.path.relative_to(root).as_posix()}: {s.reason}" for s in skipped[:limit]]
    if len(skipped) > limit:
        lines.append(f"  ... and {len(skipped) - limit} more")
    return lines
