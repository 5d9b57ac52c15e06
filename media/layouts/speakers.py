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
from pathlib import Path
from typing import Callable, ClassVar, Hashable, Iterable, Pattern, Sequence

from media.layouts.base import SPLITS, ClipLayout, ClipRecord, DatasetError, Evidence, SkippedFile, SpeakerSplit
from media.layouts.files import files_of_other_types, most_videos_named

__all__ = ["SpeakerSplit", "SpeakerLayout", "refuse_shared_speakers"]


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
