"""The RAVDESS layout: acted clips named ``MM-VC-EE-II-SS-RR-AA.mp4`` anywhere under the root.

Fields (two digits each): MM modality (01 full-AV, 02 video-only, 03 audio-only), VC vocal
channel (01 speech, 02 song), EE emotion (01..08 -> :data:`RAVDESS_CLASSES`), II intensity
(01..02), SS statement (01..02), RR repetition (01..02), AA actor (01..24).

Splits: speaker-independent, by actor (:data:`RAVDESS_SPEAKERS`): 24 actors, by default 1-18
train, 19-21 val, 22-24 test (each group mixes male (odd) and female (even) actors), so no actor
is in two splits; reading refuses val and test actor lists that share an actor.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable

from media.layouts.base import ClipRecord, DatasetError, abs_root, normalize_split, sorted_records
from media.layouts.files import clip_id, report_invalid, walk_files
from media.layouts.speakers import SpeakerLayout, SpeakerSplit, refuse_shared_speakers

__all__ = ["RAVDESS_CLASSES", "RAVDESS_NUM_ACTORS", "RAVDESS_SPEAKERS", "RAVDESS_DEFAULT_VAL_ACTORS",
           "RAVDESS_DEFAULT_TEST_ACTORS", "RavdessLayout", "LAYOUT", "read_ravdess", "ravdess_actor"]

RAVDESS_CLASSES: tuple[str, ...] = (
    "neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised",
)
RAVDESS_NUM_ACTORS = 24
RAVDESS_SPEAKERS = SpeakerSplit("RAVDESS", "actor", 1, RAVDESS_NUM_ACTORS, val=(19, 20, 21), test=(22, 23, 24))
"""The speaker-independent split: actors 01..24, val 19-21, test 22-24, train the rest."""
RAVDESS_DEFAULT_VAL_ACTORS: tuple[int, ...] = RAVDESS_SPEAKERS.val
RAVDESS_DEFAULT_TEST_ACTORS: tuple[int, ...] = RAVDESS_SPEAKERS.test

_NAME = re.compile(r"(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})")


def ravdess_actor(record: ClipRecord) -> int:
    """The actor (AA, 1..24) of a RAVDESS record, from its file name."""
    return int(record.path.stem.rsplit("-", 1)[1])


def read_ravdess(
    root: str | os.PathLike,
    split: str | None = None,
    *,
    val_actors: Iterable[int] = RAVDESS_DEFAULT_VAL_ACTORS,
    test_actors: Iterable[int] = RAVDESS_DEFAULT_TEST_ACTORS,
    modalities: Iterable[int] = (1, 2),
    allow_invalid: bool = False,
) -> list[ClipRecord]:
    """Read RAVDESS videos ``MM-VC-EE-II-SS-RR-AA.mp4`` found anywhere under ``root``.

    Only ``.mp4`` files are considered (the audio-only release is ``.wav``). ``modalities``
    keeps the given MM codes; the default (1, 2) keeps full-AV and video-only, so a recording
    present in both releases appears twice (as two clip ids, always in the same split).
    Splits are by actor so that no actor is in two splits: ``val_actors``/``test_actors``
    (defaults 19-21 and 22-24), every other actor is train; lists sharing an actor are a
    DatasetError naming ``root`` and the actor. ``split=None`` returns all clips, each record
    still carrying its actor's split.
    An ``.mp4`` whose name does not match the pattern (or has an out-of-range field) is a
    DatasetError listing the first few, unless ``allow_invalid=True`` (skipped with a warning).
    The same file name in two folders is an error (the same recording counted twice).

    Returns records sorted by clip_id (``'Actor_01/01-01-05-01-02-01-01'``).
    """
    root = abs_root(root)
    wanted = None if split is None else normalize_split(split)
    split_of = RAVDESS_SPEAKERS.assign(root, val_actors, test_actors)
    keep_modalities = {int(m) for m in modalities}
    records, invalid = [], []
    seen: dict[str, Path] = {}
    for path in walk_files(root, (".mp4",)):
        match = _NAME.fullmatch(path.stem)
        fields = [int(f) for f in match.groups()] if match else None
        if fields is None or not _fields_ok(fields):
            invalid.append(path)
            continue
        modality, _, emotion, _, _, _, actor = fields
        if path.name in seen:
            raise DatasetError(f"{root}: RAVDESS file {path.name} appears twice: {seen[path.name]} and {path}")
        seen[path.name] = path
        if modality in keep_modalities:
            records.append(ClipRecord(clip_id(root, path), path, emotion - 1, RAVDESS_CLASSES, split_of(actor)))
    report_invalid(root, invalid, "RAVDESS 'MM-VC-EE-II-SS-RR-AA.mp4'", allow_invalid)
    refuse_shared_speakers(root, records, ravdess_actor, dataset="RAVDESS", kind="actor")
    records = [r for r in records if wanted is None or r.split == wanted]
    if not records:
        raise DatasetError(
            f"{root}: no RAVDESS videos for split={split!r} with modalities {sorted(keep_modalities)}"
        )
    return sorted_records(records)


def _fields_ok(fields: list[int]) -> bool:
    modality, channel, emotion, intensity, statement, repetition, actor = fields
    return (
        1 <= modality <= 3
        and 1 <= channel <= 2
        and 1 <= emotion <= len(RAVDESS_CLASSES)
        and 1 <= intensity <= 2
        and 1 <= statement <= 2
        and 1 <= repetition <= 2
        and 1 <= actor <= RAVDESS_NUM_ACTORS
    )


class RavdessLayout(SpeakerLayout):
    """RAVDESS: reads :func:`read_ravdess`; skips every file that is not ``.mp4`` (the ``.wav``
    audio-only release among them)."""

    name = "ravdess"
    title = "RAVDESS"
    class_names = RAVDESS_CLASSES
    split_protocol = "speaker-independent by actor: 1-18 train, 19-21 val, 22-24 test"
    speakers = RAVDESS_SPEAKERS
    pattern = _NAME
    extensions = (".mp4",)
    options = ("val_actors", "test_actors", "modalities", "allow_invalid")

    def read(self, root: str | os.PathLike, split: str | None = None, **options) -> list[ClipRecord]:
        return read_ravdess(root, split, **options)


LAYOUT = RavdessLayout()
