"""Speaker-independent splits: the protocol researchers use for datasets of acted clips (RAVDESS,
CREMA-D), where every clip names its speaker (an actor id) and no speaker may be in two splits,
so that a model is scored on voices and faces it never trained on.

:class:`SpeakerSplit` is one layout's protocol: its speaker ids and the default val and test
speakers (every other speaker is train). Reading assigns each clip the split of its speaker
(:meth:`SpeakerSplit.assign`, which refuses val and test lists that share a speaker) and then
checks the records (:func:`refuse_shared_speakers`), which a layout whose splits come from
elsewhere (split folders, a split file) calls the same way.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, Hashable, Iterable, Pattern, Sequence

from media.layouts.base import SPLITS, ClipLayout, ClipRecord, DatasetError, Evidence, SkippedFile
from media.layouts.files import files_of_other_types, most_videos_named

__all__ = ["SpeakerSplit", "SpeakerLayout", "refuse_shared_speakers"]


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


def refuse_shared_speakers(root: str | os.PathLike, records: Iterable[ClipRecord],
                           speaker_of: Callable[[ClipRecord], Hashable], *, dataset: str, kind: str) -> None:
    """Raise a DatasetError naming ``root`` and the speaker when a speaker (``speaker_of(record)``)
    has records in more than one split, with one clip of each split as an example; records of
    split None are not checked."""
    first_clip: dict[Hashable, dict[str, str]] = {}
    for record in records:
        if record.split is None:
            continue
        clips = first_clip.setdefault(speaker_of(record), {})
        clips.setdefault(record.split, record.clip_id)
    for speaker, clips in first_clip.items():
        if len(clips) > 1:
            splits = [s for s in SPLITS if s in clips]
            raise DatasetError(
                f"{root}: {dataset} {kind} {speaker} is in more than one split ("
                + ", ".join(f"{s}: {clips[s]}" for s in splits)
                + f"); a speaker-independent split keeps each {kind} in one split"
            )


class SpeakerLayout(ClipLayout):
    """A layout of acted clips found anywhere under the root, each named in a pattern that codes
    its label and speaker (RAVDESS, CREMA-D), split by speaker (``speakers``): detected when at
    least half of the videos follow ``pattern``; every split is present (each speaker has one);
    skips every file whose type is not one of ``extensions``. A subclass adds ``read``."""

    pattern: ClassVar[Pattern[str]]
    extensions: ClassVar[tuple[str, ...]]
    speakers: ClassVar[SpeakerSplit]

    def detect(self, root: Path) -> Evidence:
        return Evidence.FILE_NAMES if most_videos_named(root, self.pattern) else Evidence.NONE

    def splits(self, root: Path) -> tuple[str, ...]:
        return SPLITS

    def skipped(self, root: Path, splits: Sequence[str]) -> list[SkippedFile]:
        return files_of_other_types([root], self.extensions, "video")
