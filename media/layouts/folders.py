"""Layouts whose splits are folders of the dataset (VGAF, GroupEmoW): :class:`FolderSplitLayout`
reads split by split, finds the splits present, and lists the files of other types in the split
folders."""
from __future__ import annotations

import os
import warnings
from abc import abstractmethod
from pathlib import Path
from typing import ClassVar, Sequence

from media.layouts.base import (
    SPLITS,
    ClipLayout,
    ClipRecord,
    DatasetError,
    DatasetWarning,
    SkippedFile,
    abs_root,
    normalize_split,
    sorted_records,
)
from media.layouts.files import files_of_other_types

__all__ = ["FolderSplitLayout"]


class FolderSplitLayout(ClipLayout):
    """A clip layout whose splits are folders: ``read`` reads one split with ``read_split`` or,
    with no split given, every split ``splits`` finds but those ``unused_split`` names (skipped
    with a DatasetWarning). Subclasses say where a split's clips are (``split_folder``), which
    file types are clips (``clip_extensions``, lower-case; ``clip_kind`` names them in
    messages), and whether clips may sit in sub-folders of the split folder (``nested``)."""

    clip_extensions: ClassVar[tuple[str, ...]]
    clip_kind: ClassVar[str] = "video"
    nested: ClassVar[bool] = True

    @abstractmethod
    def split_folder(self, root: Path, split: str) -> Path | None:
        """The folder of ``split``'s clips under ``root`` (absolute), or None when absent."""

    @abstractmethod
    def read_split(self, root: Path, split: str, **options) -> list[ClipRecord]:
        """The records of one split (lower-case) of the dataset at ``root`` (absolute), sorted by
        clip_id; a split with no clips is a DatasetError."""

    def splits(self, root: Path) -> tuple[str, ...]:
        """The splits whose folder exists."""
        return tuple(s for s in SPLITS if self.split_folder(root, s) is not None)

    def unused_split(self, root: Path, split: str) -> str | None:
        """Why split ``split``, although present, holds nothing to read (None: it does); such a
        split is skipped when every split is read, and an error when asked for by name."""
        return None

    def read_one(self, root: str | os.PathLike, split: str, **options) -> list[ClipRecord]:
        """The records of ``split`` (any case) of the dataset at ``root``."""
        return self.read_split(abs_root(root), normalize_split(split), **options)

    def read(self, root: str | os.PathLike, split: str | None = None, **options) -> list[ClipRecord]:
        root = abs_root(root)
        if split is not None:
            return self.read_split(root, normalize_split(split), **options)
        splits = self.splits(root)
        if not splits:
            raise DatasetError(f"{root}: no {self.name} split folders found")
        records = []
        for name in splits:
            reason = self.unused_split(root, name)
            if reason is not None:
                warnings.warn(f"{root}: {reason}; skipped", DatasetWarning, stacklevel=3)
                continue
            records += self.read_split(root, name, **options)
        if not records:
            raise DatasetError(f"{root}: no usable {self.name} videos in any split")
        return sorted_records(records)

    def skipped(self, root: Path, splits: Sequence[str]) -> list[SkippedFile]:
        """The files in the split folders of ``splits`` that are not of ``clip_extensions``."""
        places = [self.split_folder(root, s) for s in splits]
        return files_of_other_types(places, self.clip_extensions, self.clip_kind, recursive=self.nested)
