"""Dataset layouts: how each supported dataset sits on disk, one module per layout, collected in
one table, :data:`LAYOUTS`.

======================  ===================================================================
``'vgaf'``              :mod:`media.layouts.vgaf`: ``{Train,Val,Test}/*.mp4`` + label files
``'groupemow'``         :mod:`media.layouts.groupemow`: ``{train,val,test}/<class>/*.jpg`` stills
``'ravdess'``           :mod:`media.layouts.ravdess`: ``MM-VC-EE-II-SS-RR-AA.mp4``, split by actor
``'cremad'``            :mod:`media.layouts.cremad`: ``ID_SENTENCE_EMO_LEVEL.flv``, split by actor
``'fer2013'``           :mod:`media.layouts.fer2013`: 48x48 faces (CSV or image folders), as arrays
``'video_folder'``      :mod:`media.layouts.video_folder`: any folder of videos, unlabelled
======================  ===================================================================

Each module holds one :class:`media.layouts.base.DatasetLayout` (detect, splits, read,
skipped) and the layout's own reader functions and constants, re-exported here. The functions
below dispatch through the table: :func:`detect_layout` (the layout with the strongest
:class:`Evidence`, ties to the earlier row), :func:`read_dataset` and :func:`skipped_files`.
Adding a layout is one module and one row (docs/develop/extending_layouts.md).
"""
from __future__ import annotations

import os

from media.layouts import cremad, fer2013, groupemow, ravdess, vgaf, video_folder
from media.layouts.base import (
    IMAGE_EXTENSIONS,
    SPLITS,
    VIDEO_EXTENSIONS,
    ClipLayout,
    ClipRecord,
    DatasetError,
    DatasetLayout,
    DatasetWarning,
    Evidence,
    SkippedFile,
    abs_root,
    normalize_split,
)
from media.layouts.cremad import (
    CREMAD_CLASSES,
    CREMAD_DEFAULT_TEST_ACTORS,
    CREMAD_DEFAULT_VAL_ACTORS,
    CREMAD_EMOTION_CODES,
    CREMAD_SPEAKERS,
    read_cremad,
)
from media.layouts.fer2013 import (
    CSV_NAME,
    FER2013_CLASSES,
    FER2013_FOLDERS,
    FER2013_SPLITS,
    FER2013_USAGE,
    FaceImages,
    detect_fer2013_form,
    read_fer2013,
    read_fer2013_csv,
    read_fer2013_folder,
)
from media.layouts.folders import FolderSplitLayout
from media.layouts.groupemow import GROUPEMOW_CLASSES, read_groupemow
from media.layouts.ravdess import (
    RAVDESS_CLASSES,
    RAVDESS_DEFAULT_TEST_ACTORS,
    RAVDESS_DEFAULT_VAL_ACTORS,
    RAVDESS_SPEAKERS,
    read_ravdess,
)
from media.layouts.speakers import SpeakerLayout, SpeakerSplit, refuse_shared_speakers
from media.layouts.vgaf import VGAF_CLASSES, read_vgaf
from media.layouts.video_folder import read_video_folder

__all__ = [
    "LAYOUTS", "get_layout", "detect_layout", "read_dataset", "skipped_files",
    "DatasetLayout", "ClipLayout", "FolderSplitLayout", "SpeakerLayout", "Evidence", "SpeakerSplit",
    "refuse_shared_speakers",
    "ClipRecord", "SkippedFile", "DatasetError", "DatasetWarning", "SPLITS", "VIDEO_EXTENSIONS", "IMAGE_EXTENSIONS",
    "VGAF_CLASSES", "read_vgaf",
    "GROUPEMOW_CLASSES", "read_groupemow",
    "RAVDESS_CLASSES", "RAVDESS_SPEAKERS", "RAVDESS_DEFAULT_VAL_ACTORS", "RAVDESS_DEFAULT_TEST_ACTORS", "read_ravdess",
    "CREMAD_CLASSES", "CREMAD_EMOTION_CODES", "CREMAD_SPEAKERS", "CREMAD_DEFAULT_VAL_ACTORS",
    "CREMAD_DEFAULT_TEST_ACTORS", "read_cremad",
    "FER2013_CLASSES", "FER2013_FOLDERS", "FER2013_USAGE", "FER2013_SPLITS", "CSV_NAME", "FaceImages",
    "detect_fer2013_form", "read_fer2013", "read_fer2013_csv", "read_fer2013_folder",
    "read_video_folder",
]

LAYOUTS: dict[str, DatasetLayout] = {
    layout.name: layout
    for layout in (
        vgaf.LAYOUT,
        groupemow.LAYOUT,
        ravdess.LAYOUT,  # before cremad: on a tie of file-name evidence, RAVDESS wins
        cremad.LAYOUT,
        fer2013.LAYOUT,
        video_folder.LAYOUT,
    )
}
"""Every supported layout by name, in the order that breaks ties of detection evidence."""


def get_layout(name: str) -> DatasetLayout:
    """The layout called ``name`` (a key of :data:`LAYOUTS`); a ValueError naming the known ones."""
    try:
        return LAYOUTS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown layout {name!r}; expected one of {tuple(LAYOUTS)}") from None


def detect_layout(root: str | os.PathLike) -> str:
    """Guess the dataset layout of ``root``: the name of the layout whose ``detect`` finds the
    strongest :class:`Evidence`, ties to the earlier row of :data:`LAYOUTS`.

    In effect: ``'vgaf'`` when a ``Train_labels.txt``/``Val_labels.txt``/``Test_labels.txt``
    exists; ``'groupemow'`` when a train/val/test folder holds a positive/neutral/negative
    folder; ``'vgaf'`` when a Train/Val/Test folder holds ``.mp4`` files directly; otherwise,
    among the videos found recursively, ``'ravdess'`` or ``'cremad'`` when at least half of
    them match that dataset's naming pattern; else ``'video_folder'`` (names case-insensitive).
    FER2013 is never guessed (its tools name it).
    """
    root_path = abs_root(root)
    best, best_evidence = "video_folder", Evidence.NONE
    for name, layout in LAYOUTS.items():
        evidence = layout.detect(root_path)
        if evidence > best_evidence:
            best, best_evidence = name, evidence
    return best


def read_dataset(
    root: str | os.PathLike, split: str | None = None, *, layout: str | None = None, **kw
) -> list[ClipRecord]:
    """Read any supported clip dataset: ``layout`` (a key of :data:`LAYOUTS`) or
    ``detect_layout(root)``.

    split: ``'train'``/``'val'``/``'test'``, or None for every split present (VGAF: the splits
        whose video folder or label file exists; GroupEmoW: the split folders present; RAVDESS/CREMA-D: all
        actors). A plain video folder has no splits: it accepts only ``split=None``.
    kw: passed to the reader (the layout's ``options``: ``allow_missing`` for VGAF,
        ``val_actors``/``test_actors``/``allow_invalid`` for RAVDESS and CREMA-D, ``extensions``
        for CREMA-D and video folders).

    Returns records sorted by clip_id. FER2013, which reads to arrays, is a DatasetError here
    (read it with :func:`read_fer2013`).
    """
    root_path = abs_root(root)
    chosen = get_layout(detect_layout(root_path) if layout is None else layout)
    if not isinstance(chosen, ClipLayout):
        raise DatasetError(f"{root_path}: the {chosen.title} layout holds no clips; read it with "
                           f"LAYOUTS[{chosen.name!r}].read(root, split)")
    return chosen.read(root_path, split, **kw)


def skipped_files(root: str | os.PathLike, split: str | None = None, *, layout: str | None = None
                  ) -> list[SkippedFile]:
    """The files that :func:`read_dataset` passes over because their type is not the layout's clip
    type: an ``.m4a`` or ``.txt`` among the videos, a ``.wav`` in a RAVDESS tree. Looked for where
    the layout keeps its clips (``DatasetLayout.skipped``): VGAF's split video folders
    (``split``'s only, when given; label files beside them are not clips), GroupEmoW's split
    folders, the whole tree otherwise. Hidden files (``.DS_Store``) are not listed. Returns them
    sorted by path."""
    root_path = abs_root(root)
    chosen = get_layout(detect_layout(root_path) if layout is None else layout)
    splits = SPLITS if split is None else (normalize_split(split),)
    return chosen.skipped(root_path, splits)
