"""The CREMA-D layout: acted clips named ``ID_SENTENCE_EMO_LEVEL.{flv,mp4}`` anywhere under the root.

ID is the actor (1001..1091), SENTENCE a 3-letter code, EMO one of ANG DIS FEA HAP NEU SAD
(-> :data:`CREMAD_CLASSES` in that order), LEVEL one of LO MD HI XX (codes case-insensitive).

Splits: speaker-independent, by actor (:data:`CREMAD_SPEAKERS`): 91 actors, by default
1001-1063 train (63), 1064-1077 val (14), 1078-1091 test (14), about 70/15/15, so no actor is in
two splits; reading refuses val and test actor lists that share an actor.
"""
from __future__ import annotations

import os
import re
from typing import Iterable, Sequence

from media.layouts.base import ClipRecord, DatasetError, abs_root, normalize_split, sorted_records
from media.layouts.files import check_unique, clip_id, report_invalid, walk_files
from media.layouts.speakers import SpeakerLayout, SpeakerSplit, refuse_shared_speakers

__all__ = ["CREMAD_CLASSES", "CREMAD_EMOTION_CODES", "CREMAD_FIRST_ACTOR", "CREMAD_LAST_ACTOR", "CREMAD_SPEAKERS",
           "CREMAD_DEFAULT_VAL_ACTORS", "CREMAD_DEFAULT_TEST_ACTORS", "CremadLayout", "LAYOUT", "read_cremad",
           "cremad_actor"]

CREMAD_EMOTION_CODES: tuple[str, ...] = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
CREMAD_CLASSES: tuple[str, ...] = ("anger", "disgust", "fear", "happy", "neutral", "sad")
CREMAD_FIRST_ACTOR, CREMAD_LAST_ACTOR = 1001, 1091
CREMAD_SPEAKERS = SpeakerSplit("CREMA-D", "actor", CREMAD_FIRST_ACTOR, CREMAD_LAST_ACTOR,
                               val=tuple(range(1064, 1078)), test=tuple(range(1078, 1092)))
"""The speaker-independent split: actors 1001..1091, val 1064-1077, test 1078-1091, train the rest."""
CREMAD_DEFAULT_VAL_ACTORS: tuple[int, ...] = CREMAD_SPEAKERS.val
CREMAD_DEFAULT_TEST_ACTORS: tuple[int, ...] = CREMAD_SPEAKERS.test
CREMAD_EXTENSIONS: tuple[str, ...] = (".flv", ".mp4")

_NAME = re.compile(r"(\d{4})_([A-Za-z]{3})_([A-Za-z]{3})_([A-Za-z]{2})")
_LEVELS = ("LO", "MD", "HI", "XX")


def cremad_actor(record: ClipRecord) -> int:
    """The actor (ID, 1001..1091) of a CREMA-D record, from its file name."""
    return int(record.path.stem[:4])


def read_cremad(
    root: str | os.PathLike,
    split: str | None = None,
    *,
    val_actors: Iterable[int] = CREMAD_DEFAULT_VAL_ACTORS,
    test_actors: Iterable[int] = CREMAD_DEFAULT_TEST_ACTORS,
    extensions: Sequence[str] = CREMAD_EXTENSIONS,
    allow_invalid: bool = False,
) -> list[ClipRecord]:
    """Read CREMA-D videos ``ID_SENTENCE_EMO_LEVEL.{flv,mp4}`` found anywhere under ``root``.

    Splits are by actor: ``val_actors`` (default 1064-1077), ``test_actors`` (default
    1078-1091), all other actors train (1001-1063); lists sharing an actor are a DatasetError
    naming ``root`` and the actor. ``split=None`` returns all clips.
    A file with one of ``extensions`` whose name does not match is a DatasetError listing the
    first few, unless ``allow_invalid=True`` (skipped with a warning). Two files with the same
    clip id (e.g. ``x.flv`` and ``x.mp4`` side by side) are an error: pass ``extensions`` to
    pick one.

    Returns records sorted by clip_id (``'VideoFlash/1001_DFA_ANG_XX'``).
    """
    root = abs_root(root)
    wanted = None if split is None else normalize_split(split)
    split_of = CREMAD_SPEAKERS.assign(root, val_actors, test_actors)
    records, invalid = [], []
    for path in walk_files(root, extensions):
        match = _NAME.fullmatch(path.stem)
        if match is None:
            invalid.append(path)
            continue
        actor, emotion, level = int(match.group(1)), match.group(3).upper(), match.group(4).upper()
        if (
            not CREMAD_FIRST_ACTOR <= actor <= CREMAD_LAST_ACTOR
            or emotion not in CREMAD_EMOTION_CODES
            or level not in _LEVELS
        ):
            invalid.append(path)
            continue
        records.append(ClipRecord(
            clip_id(root, path), path, CREMAD_EMOTION_CODES.index(emotion), CREMAD_CLASSES, split_of(actor)
        ))
    report_invalid(root, invalid, "CREMA-D 'ID_SENTENCE_EMO_LEVEL'", allow_invalid)
    refuse_shared_speakers(root, records, cremad_actor, dataset="CREMA-D", kind="actor")
    records = [r for r in records if wanted is None or r.split == wanted]
    if not records:
        raise DatasetError(f"{root}: no CREMA-D videos ({'/'.join(extensions)}) for split={split!r}")
    check_unique(records, root)
    return sorted_records(records)


class CremadLayout(SpeakerLayout):
    """CREMA-D: reads :func:`read_cremad`; skips every file that is neither ``.flv`` nor ``.mp4``
    (the ``.wav`` audio among them)."""

    name = "cremad"
    title = "CREMA-D"
    class_names = CREMAD_CLASSES
    split_protocol = "speaker-independent by actor: 1001-1063 train, 1064-1077 val, 1078-1091 test"
    speakers = CREMAD_SPEAKERS
    pattern = _NAME
    extensions = CREMAD_EXTENSIONS
    options = ("val_actors", "test_actors", "extensions", "allow_invalid")

    def read(self, root: str | os.PathLike, split: str | None = None, **options) -> list[ClipRecord]:
        return read_cremad(root, split, **options)


LAYOUT = CremadLayout()
