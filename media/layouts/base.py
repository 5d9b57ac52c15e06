"""What every dataset layout shares: the record types, the split names, the errors, and the
contract a layout module fulfils (:class:`DatasetLayout`).

A layout is one way a dataset sits on disk (VGAF's split folders and label files, RAVDESS's
coded file names, ...). Its module owns four things, as methods of one :class:`DatasetLayout`
subclass: ``detect`` (how strongly a folder looks like it, :class:`Evidence`), ``splits`` (the
splits a folder holds, and the protocol that assigns clips to them), ``read`` (the records, or
for FER2013 the face images) and ``skipped`` (the files in its clip folders that are not its
clips). :mod:`media.layouts` collects one instance of each in its table ``LAYOUTS``. Two kinds
of clip layout share more: :class:`media.layouts.folders.FolderSplitLayout` (splits are folders)
and :class:`media.layouts.speakers.SpeakerLayout` (coded file names, split by speaker).

Readers only look at names on disk (and label text files); none decodes media, so a tree of
empty files is a valid input for tests. Labels are always 0-based indices into
``ClipRecord.class_names``.
"""
from __future__ import annotations

import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Callable, ClassVar, Generic, Iterable, Sequence, TypeVar

from core.errors import UserInputError

__all__ = ["SPLITS", "VIDEO_EXTENSIONS", "IMAGE_EXTENSIONS", "ClipRecord", "SkippedFile", "DatasetError",
           "DatasetWarning", "Evidence", "SpeakerSplit", "DatasetLayout", "ClipLayout", "abs_root",
           "normalize_split", "sorted_records"]

SPLITS: tuple[str, ...] = ("train", "val", "test")
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".flv")
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png")


class DatasetError(UserInputError, ValueError):
    """A dataset folder or label file is malformed; the message names the file (and line)."""


class DatasetWarning(UserWarning):
    """Something was skipped because the caller allowed it (``allow_missing``/``allow_invalid``)."""


@dataclass(frozen=True)
class ClipRecord:
    """One media item of a dataset.

    clip_id: path relative to the dataset root without extension, '/'-separated
        (e.g. ``'Train/100_1'``, ``'Actor_01/01-01-05-01-02-01-01'``, ``'train/positive/img7'``).
    path: absolute path to the media file.
    label: 0-based index into ``class_names``; None when unlabeled.
    class_names: the dataset's class names (``()`` for a plain video folder).
    split: ``'train'``, ``'val'``, ``'test'`` or None (plain video folder).
    """

    clip_id: str
    path: Path
    label: int | None
    class_names: tuple[str, ...]
    split: str | None

    @property
    def label_name(self) -> str | None:
        """The class name of ``label``, or None when unlabeled."""
        return None if self.label is None else self.class_names[self.label]


@dataclass(frozen=True)
class SkippedFile:
    """A file in a dataset's clip folders that the reader does not take as a clip.

    path: absolute path. reason: why, e.g. ``'not a video file (.m4a; expected .mp4)'``.
    """

    path: Path
    reason: str


class Evidence(IntEnum):
    """How strongly a folder looks like a layout (what ``DatasetLayout.detect`` returns).
    :func:`media.layouts.detect_layout` takes the layout with the strongest evidence; on a tie,
    the one listed first in the table."""

    NONE = 0
    ANY_FOLDER = 1  # any folder at all (the plain video folder, the fallback)
    FILE_NAMES = 2  # at least half of the videos found are named in the layout's pattern
    SPLIT_FOLDERS = 3  # split folders that hold the layout's files directly
    CLASS_FOLDERS = 4  # split folders that hold the layout's class folders
    LABEL_FILES = 5  # the layout's label files


def abs_root(root: str | os.PathLike) -> Path:
    """``root`` as an absolute path; a DatasetError when it is not a directory."""
    path = Path(os.path.abspath(os.fspath(root)))
    if not path.is_dir():
        raise DatasetError(f"{path}: dataset root is not a directory")
    return path


def normalize_split(split: str) -> str:
    """``split`` lower-cased; a ValueError unless it is one of :data:`SPLITS` (any case)."""
    if not isinstance(split, str) or split.lower() not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} (case-insensitive), got {split!r}")
    return split.lower()


def sorted_records(records: list[ClipRecord]) -> list[ClipRecord]:
    """``records`` sorted by clip_id."""
    return sorted(records, key=lambda r: r.clip_id)


Items = TypeVar("Items")


@dataclass(frozen=True)
class SpeakerSplit:
    """A speaker-independent split of one dataset.

    dataset: its title for messages (``'RAVDESS'``). kind: what a speaker is called there
    (``'actor'``). first, last: the speaker ids, ``first..last`` inclusive. val, test: the
    default val and test speakers; every other id is train.
    """

    dataset: str
    kind: str
    first: int
    last: int
    val: tuple[int, ...]
    test: tuple[int, ...]

    def members(self) -> dict[str, tuple[int, ...]]:
        """The default speakers of each split: ``{'train': (...), 'val': (...), 'test': (...)}``."""
        taken = set(self.val) | set(self.test)
        train = tuple(a for a in range(self.first, self.last + 1) if a not in taken)
        return {"train": train, "val": tuple(self.val), "test": tuple(self.test)}

    def assign(self, root: str | os.PathLike, val: Iterable[int], test: Iterable[int]) -> Callable[[int], str]:
        """The split of each speaker: ``val``/``test`` as given, every other speaker train.

        A speaker outside ``first..last`` is a ValueError; one in both ``val`` and ``test`` is a
        DatasetError naming ``root`` and the speaker (the split would share it). Returns a
        function ``speaker id -> 'train'|'val'|'test'``.
        """
        val_set, test_set = frozenset(int(a) for a in val), frozenset(int(a) for a in test)
        bad = sorted(a for a in val_set | test_set if not self.first <= a <= self.last)
        if bad:
            raise ValueError(f"{self.dataset} {self.kind}s must be in {self.first}..{self.last}, got {bad}")
        shared = sorted(val_set & test_set)
        if shared:
            raise DatasetError(
                f"{root}: {self.dataset} val_{self.kind}s and test_{self.kind}s overlap: {self.kind} "
                f"{', '.join(map(str, shared))} would be in both val and test; a speaker-independent split "
                f"keeps each {self.kind} in one split"
            )

        def split_of(speaker: int) -> str:
            return "val" if speaker in val_set else "test" if speaker in test_set else "train"

        return split_of


class DatasetLayout(ABC, Generic[Items]):
    """The contract of one dataset layout; one instance of each subclass sits in
    :data:`media.layouts.LAYOUTS` under its ``name``.

    Class attributes: ``name`` (the table key, e.g. ``'ravdess'``), ``title`` (for messages, e.g.
    ``'RAVDESS'``), ``class_names`` (label order; ``()`` when unlabelled), ``split_protocol`` (how
    researchers split the dataset, in words), ``speakers`` (the speaker-independent split, a
    :class:`SpeakerSplit`, where the dataset has speakers; else None) and
    ``options`` (the keyword options ``read`` accepts).
    """

    name: ClassVar[str]
    title: ClassVar[str]
    class_names: ClassVar[tuple[str, ...]]
    split_protocol: ClassVar[str]
    speakers: ClassVar[SpeakerSplit | None] = None
    options: ClassVar[tuple[str, ...]] = ()

    def detect(self, root: Path) -> Evidence:
        """How strongly the existing folder ``root`` (absolute) looks like this layout."""
        return Evidence.NONE

    @abstractmethod
    def splits(self, root: Path) -> tuple[str, ...]:
        """The splits (of :data:`SPLITS`) that ``read(root)`` reads when given no split."""

    @abstractmethod
    def read(self, root: str | os.PathLike, split: str | None = None, **options) -> Items:
        """The dataset's items under ``root``: of ``split`` (``'train'``, ``'val'``, ``'test'``,
        any case) or, with None, of every split present. A malformed dataset is a DatasetError."""

    def skipped(self, root: Path, splits: Sequence[str]) -> list[SkippedFile]:
        """The files in the folders where the layout keeps the clips of ``splits`` that ``read``
        passes over because their type is not the layout's; sorted by path. Default: none."""
        return []


class ClipLayout(DatasetLayout[list[ClipRecord]]):
    """A layout whose items are media files, read as :class:`ClipRecord` lists sorted by clip_id."""
