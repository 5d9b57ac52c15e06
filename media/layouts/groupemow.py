"""The GroupEmoW layout: group photos (stills) in split folders of class folders.

``<root>/{train,val,test}/{positive,neutral,negative}/*.{jpg,jpeg,png}`` (folder names
case-insensitive; images may sit in sub-folders of a class folder). The classes are mapped to the
VGAF names so that a keyframe scorer trained on GroupEmoW speaks the VGAF class names.

Splits: the dataset's own train/val/test folders. The photos are crowds with no speaker or
person ids, so no speaker-independent split can be checked.
"""
from __future__ import annotations

import os
from pathlib import Path

from media.layouts.base import IMAGE_EXTENSIONS, SPLITS, ClipRecord, DatasetError, Evidence, sorted_records
from media.layouts.files import check_unique, clip_id, find_child, walk_files
from media.layouts.folders import FolderSplitLayout
from media.layouts.vgaf import VGAF_CLASSES

__all__ = ["GROUPEMOW_CLASSES", "GroupEmoWLayout", "LAYOUT", "read_groupemow"]

# Deliberately the VGAF names (not the lower-case folder names): a scorer trained on GroupEmoW
# must produce the same class names as the VGAF streams it feeds.
GROUPEMOW_CLASSES: tuple[str, ...] = VGAF_CLASSES


def _class_dirs(split_dir: Path) -> list[tuple[int, Path]]:
    """``(label, folder)`` for each class folder of a GroupEmoW split folder."""
    index = {name.lower(): i for i, name in enumerate(GROUPEMOW_CLASSES)}
    found: dict[int, Path] = {}
    for child in sorted(split_dir.iterdir()):
        if child.name.startswith(".") or not child.is_dir():
            continue
        label = index.get(child.name.lower())
        if label is None:
            raise DatasetError(
                f"{child}: unknown GroupEmoW class folder {child.name!r}; expected one of "
                f"{[n.lower() for n in GROUPEMOW_CLASSES]} (case-insensitive)"
            )
        if label in found:
            raise DatasetError(
                f"{split_dir}: class folders {found[label].name!r} and {child.name!r} differ only in case"
            )
        found[label] = child
    return sorted(found.items())


def read_groupemow(root: str | os.PathLike, split: str) -> list[ClipRecord]:
    """Read one GroupEmoW split.

    root: folder with ``train/``, ``val/``, ``test/``, each holding class folders ``positive/``,
        ``neutral/``, ``negative/`` of ``.jpg``/``.jpeg``/``.png`` images (all folder names
        case-insensitive; images may sit in sub-folders of a class folder).
    split: ``'train'``, ``'val'`` or ``'test'`` (case-insensitive).

    Returns records sorted by clip_id (``'train/positive/img7'``); labels 0-based into
    GROUPEMOW_CLASSES == VGAF_CLASSES (0=Positive, 1=Neutral, 2=Negative).
    """
    return LAYOUT.read_one(root, split)


class GroupEmoWLayout(FolderSplitLayout):
    """GroupEmoW: detected by a split folder holding a class folder; reads a split folder's
    class folders (:func:`read_groupemow`); skips what is not an image in its split folders."""

    name = "groupemow"
    title = "GroupEmoW"
    class_names = GROUPEMOW_CLASSES
    split_protocol = "the dataset's own train/val/test folders (no person ids: group photos)"
    clip_extensions = IMAGE_EXTENSIONS
    clip_kind = "image"

    def detect(self, root: Path) -> Evidence:
        classes = {c.lower() for c in GROUPEMOW_CLASSES}
        for split_dir in root.iterdir():
            if split_dir.is_dir() and split_dir.name.lower() in SPLITS:
                if any(c.is_dir() and c.name.lower() in classes for c in split_dir.iterdir()):
                    return Evidence.CLASS_FOLDERS
        return Evidence.NONE

    def split_folder(self, root: Path, split: str) -> Path | None:
        return find_child(root, split, is_dir=True)

    def read_split(self, root: Path, split: str) -> list[ClipRecord]:
        split_dir = self.split_folder(root, split)
        if split_dir is None:
            raise DatasetError(f"{root / split}: GroupEmoW {split} folder not found")
        records = [
            ClipRecord(clip_id(root, path), path, label, GROUPEMOW_CLASSES, split)
            for label, class_dir in _class_dirs(split_dir)
            for path in walk_files(class_dir, IMAGE_EXTENSIONS)
        ]
        if not records:
            raise DatasetError(
                f"{split_dir}: no GroupEmoW images (expected <class>/*.jpg|.jpeg|.png with class in "
                "positive, neutral, negative)"
            )
        check_unique(records, split_dir)
        return sorted_records(records)


LAYOUT = GroupEmoWLayout()
