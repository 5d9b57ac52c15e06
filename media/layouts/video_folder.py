"""The plain video folder: any folder of videos, found recursively, unlabelled and unsplit (what
:func:`media.layouts.detect_layout` falls back to when no other layout fits).

Splits: none (a video folder holds one set of clips, so no split can share a speaker).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from media.layouts.base import (
    VIDEO_EXTENSIONS,
    ClipLayout,
    ClipRecord,
    DatasetError,
    Evidence,
    SkippedFile,
    abs_root,
    sorted_records,
)
from media.layouts.files import check_unique, clip_id, files_of_other_types, walk_files

__all__ = ["VideoFolderLayout", "LAYOUT", "read_video_folder"]


def read_video_folder(
    root: str | os.PathLike, *, extensions: Sequence[str] = VIDEO_EXTENSIONS
) -> list[ClipRecord]:
    """Every video under ``root`` (recursively, hidden files skipped), unlabeled: label None,
    class_names (), split None. Extensions are matched case-insensitively. An empty folder, or
    two files with the same clip id (``a.mp4`` and ``a.avi``), is a DatasetError."""
    root = abs_root(root)
    records = [ClipRecord(clip_id(root, p), p, None, (), None) for p in walk_files(root, extensions)]
    if not records:
        raise DatasetError(f"{root}: no video files ({', '.join(extensions)}) found")
    check_unique(records, root)
    return sorted_records(records)


class VideoFolderLayout(ClipLayout):
    """Any folder (the weakest evidence, so every other layout wins over it); reads
    :func:`read_video_folder`, refusing a split; skips every file that is not a video."""

    name = "video_folder"
    title = "video folder"
    class_names = ()
    split_protocol = "none: one unlabelled set of clips"
    options = ("extensions",)

    def detect(self, root: Path) -> Evidence:
        return Evidence.ANY_FOLDER

    def splits(self, root: Path) -> tuple[str, ...]:
        return ()

    def read(self, root: str | os.PathLike, split: str | None = None, **options) -> list[ClipRecord]:
        if split is not None:
            raise DatasetError(f"{abs_root(root)}: a plain video folder has no splits; got split={split!r}")
        return read_video_folder(root, **options)

    def skipped(self, root: Path, splits) -> list[SkippedFile]:
        return files_of_other_types([root], VIDEO_EXTENSIONS, "video")


LAYOUT = VideoFolderLayout()
