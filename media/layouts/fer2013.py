"""The FER2013 layout: 48x48 grey face images with 7 expression labels, in either published form.

``'csv'``
    ``fer2013.csv`` (Kaggle "Challenges in Representation Learning"): columns ``emotion``,
    ``pixels``, ``Usage`` in any order (names matched case-insensitively, spaces around them
    ignored). ``emotion`` 0-6 = Angry, Disgust, Fear, Happy, Sad, Surprise, Neutral; ``pixels``
    2304 space-separated grey values 0-255, row by row; ``Usage`` Training, PublicTest or
    PrivateTest.
``'folder'``
    the image-folder release: ``<split>/<emotion>/*.png|jpg|jpeg`` with split ``train``/``test``
    (and ``val`` where a redistribution has one) and the emotion folder names ``angry``,
    ``disgust``, ``fear``, ``happy``, ``sad``, ``surprise``, ``neutral`` (case-insensitive).

Splits: ``'train'`` is the CSV's Training rows or ``train/``; ``'val'`` the PublicTest rows or
``val/``; ``'test'`` the PrivateTest rows or ``test/``. (The Kaggle image-folder release has no
``val/``: its ``test/`` holds PublicTest and PrivateTest together; train with
``data.val_split: null`` or ``test`` there.) The same images written in both forms read the same:
CSV rows keep their order within a split; folder images are ordered by file name (then emotion
folder), so a writer that names files by row position (``00012.png``) reproduces the CSV order.
The faces carry no identity, so no speaker-independent split can be checked.

Unlike the clip layouts, FER2013 reads to arrays (:class:`FaceImages`), for the face stream's
pre-training, and is never guessed from a folder: the tools that read it name it.
"""
from __future__ import annotations

import csv
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from media.layouts.base import IMAGE_EXTENSIONS, DatasetError, DatasetLayout, DatasetWarning, SkippedFile
from media.layouts.files import find_child, other_type

__all__ = ["FER2013_CLASSES", "FER2013_FOLDERS", "FER2013_USAGE", "FER2013_SPLITS", "IMAGE_SIZE", "CSV_NAME",
           "FaceImages", "Fer2013Layout", "LAYOUT", "detect_fer2013_form", "read_fer2013", "read_fer2013_csv",
           "read_fer2013_folder"]

FER2013_CLASSES: tuple[str, ...] = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
"""Class names in label order (the CSV's ``emotion`` value is the index)."""
FER2013_FOLDERS: tuple[str, ...] = tuple(c.lower() for c in FER2013_CLASSES)
"""The image-folder release's emotion folder names, in label order."""
FER2013_USAGE: dict[str, str] = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}
"""Split -> the CSV's ``Usage`` value."""
FER2013_SPLITS: tuple[str, ...] = tuple(FER2013_USAGE)
IMAGE_SIZE = 48
CSV_NAME = "fer2013.csv"
_COLUMNS = ("emotion", "pixels", "usage")
_EXAMPLES = 5


@dataclass(frozen=True)
class FaceImages:
    """One split of a face-image dataset.

    images: (N, 48, 48) uint8 grey. labels: (N,) int64, 0-based into ``class_names``.
    class_names: the dataset's classes. sources: per image where it came from
    (``'fer2013.csv:13'`` = line 13, or the image path), for error messages.
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    sources: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def _check_split(split: str) -> str:
    if not isinstance(split, str) or split.lower() not in FER2013_SPLITS:
        raise ValueError(f"FER2013 split must be one of {FER2013_SPLITS}, got {split!r}")
    return split.lower()


def detect_fer2013_form(path: str | os.PathLike) -> str:
    """``'csv'`` for a CSV file or a folder holding ``fer2013.csv``; ``'folder'`` for a folder
    with ``train/`` or ``test/``. A folder with both forms, or neither, is a DatasetError."""
    path = Path(path)
    if path.is_file():
        return "csv"
    if not path.is_dir():
        raise DatasetError(f"{path}: FER2013 data not found (expected fer2013.csv or a folder with train/, test/)")
    has_csv = (path / CSV_NAME).is_file()
    has_folders = any(p.is_dir() and p.name.lower() in FER2013_SPLITS for p in path.iterdir())
    if has_csv and has_folders:
        raise DatasetError(f"{path}: holds both {CSV_NAME} and split folders; pass the CSV file or a folder "
                           "with only one form")
    if has_csv:
        return "csv"
    if has_folders:
        return "folder"
    raise DatasetError(f"{path}: neither {CSV_NAME} nor train/, val/, test/ folders of <emotion>/ images found")


def read_fer2013(path: str | os.PathLike, split: str) -> FaceImages:
    """Read one split (``'train'``, ``'val'``, ``'test'``) of FER2013 in either form (see the
    module docstring): ``path`` is ``fer2013.csv``, a folder holding it, or the image-folder root."""
    form = detect_fer2013_form(path)
    if form == "csv":
        csv_path = Path(path) if Path(path).is_file() else Path(path) / CSV_NAME
        return read_fer2013_csv(csv_path, split)
    return read_fer2013_folder(path, split)


def read_fer2013_csv(path: str | os.PathLike, split: str) -> FaceImages:
    """The rows of ``fer2013.csv`` whose Usage belongs to ``split``, in file order. A malformed
    row (bad emotion, a pixel count other than 2304, a value outside 0-255, an unknown Usage) is
    a DatasetError naming the file and line."""
    path = Path(path)
    split = _check_split(split)
    usage_wanted = FER2013_USAGE[split].lower()
    try:
        handle = open(path, newline="", encoding="utf-8-sig")
    except FileNotFoundError:
        raise DatasetError(f"{path}: FER2013 CSV file not found") from None
    images, labels, sources = [], [], []
    with handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise DatasetError(f"{path}: empty file (expected the header emotion,pixels,Usage)") from None
        names = [h.strip().lower() for h in header]
        missing = [c for c in _COLUMNS if c not in names]
        if missing:
            raise DatasetError(f"{path}:1: header {header!r} lacks the column(s) {missing}; expected emotion, "
                               "pixels, Usage")
        col = {c: names.index(c) for c in _COLUMNS}
        usages = {u.lower() for u in FER2013_USAGE.values()}
        for row in reader:
            line = reader.line_num
            if not row or all(not f.strip() for f in row):
                continue
            if len(row) < len(names):
                raise DatasetError(f"{path}:{line}: {len(row)} fields, expected {len(names)}")
            usage = row[col["usage"]].strip().lower()
            if usage not in usages:
                raise DatasetError(f"{path}:{line}: Usage {row[col['usage']]!r} is not one of "
                                   f"{', '.join(FER2013_USAGE.values())}")
            if usage != usage_wanted:
                continue
            emotion = row[col["emotion"]].strip()
            if not emotion.isdigit() or not 0 <= int(emotion) < len(FER2013_CLASSES):
                raise DatasetError(f"{path}:{line}: emotion {emotion!r} is not a label 0-{len(FER2013_CLASSES) - 1}")
            images.append(_parse_pixels(row[col["pixels"]], f"{path}:{line}"))
            labels.append(int(emotion))
            sources.append(f"{path.name}:{line}")
    if not images:
        raise DatasetError(f"{path}: no {FER2013_USAGE[split]} rows (FER2013 split {split!r})")
    return FaceImages(np.stack(images), np.asarray(labels, np.int64), FER2013_CLASSES, tuple(sources))


def _parse_pixels(text: str, where: str) -> np.ndarray:
    fields = text.split()
    if len(fields) != IMAGE_SIZE * IMAGE_SIZE:
        raise DatasetError(f"{where}: {len(fields)} pixel values, expected {IMAGE_SIZE * IMAGE_SIZE} "
                           f"({IMAGE_SIZE}x{IMAGE_SIZE})")
    try:
        values = np.array(fields, dtype=np.int64)
    except ValueError:
        bad = next(f for f in fields if not f.lstrip("-").isdigit())
        raise DatasetError(f"{where}: pixel value {bad!r} is not an integer") from None
    if values.min() < 0 or values.max() > 255:
        raise DatasetError(f"{where}: pixel values must be 0-255, got {values.min()}..{values.max()}")
    return values.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE)


def read_fer2013_folder(root: str | os.PathLike, split: str) -> FaceImages:
    """The images of ``root/<split>/<emotion>/``, ordered by file name, then emotion. Colour
    images are converted to grey; an image that is not 48x48, or cannot be read, is a
    DatasetError naming it. Unknown emotion folders are an error; other files are skipped with a
    DatasetWarning."""
    root = Path(root)
    split = _check_split(split)
    split_dir = _child(root, split)
    if split_dir is None:
        present = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        hint = " (the Kaggle image-folder release has only train/ and test/)" if split == "val" else ""
        raise DatasetError(f"{root / split}: FER2013 {split} folder not found{hint}; folders here: {present}")
    found: list[tuple[str, int, Path]] = []
    skipped: list[str] = []
    for label, path in _emotion_files(split_dir):
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            found.append((path.name, label, path))
        else:
            skipped.append(path.relative_to(root).as_posix())
    if skipped:
        warnings.warn(f"{split_dir}: skipped {len(skipped)} file(s) that are not images: "
                      + ", ".join(skipped[:_EXAMPLES]) + (" ..." if len(skipped) > _EXAMPLES else ""),
                      DatasetWarning, stacklevel=2)
    if not found:
        raise DatasetError(f"{split_dir}: no images (expected <emotion>/*.png|jpg with emotion in "
                           f"{', '.join(FER2013_FOLDERS)})")
    found.sort(key=lambda item: (item[0], item[1]))
    images = np.empty((len(found), IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    for i, (_, _, path) in enumerate(found):
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise DatasetError(f"{path}: cannot be read as an image")
        if image.shape != (IMAGE_SIZE, IMAGE_SIZE):
            raise DatasetError(f"{path}: image is {image.shape[1]}x{image.shape[0]}, FER2013 images are "
                               f"{IMAGE_SIZE}x{IMAGE_SIZE}")
        images[i] = image
    return FaceImages(images, np.asarray([label for _, label, _ in found], np.int64), FER2013_CLASSES,
                      tuple(str(path) for _, _, path in found))


def _emotion_files(split_dir: Path) -> list[tuple[int, Path]]:
    """``(label, path)`` for every non-hidden file in the emotion folders of ``split_dir``, by
    folder name; a folder that is not a FER2013 emotion is a DatasetError."""
    files = []
    for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if class_dir.name.lower() not in FER2013_FOLDERS:
            raise DatasetError(f"{class_dir}: not a FER2013 emotion folder; expected one of "
                               f"{', '.join(FER2013_FOLDERS)}")
        label = FER2013_FOLDERS.index(class_dir.name.lower())
        files += [(label, p) for p in class_dir.iterdir() if not p.name.startswith(".") and p.is_file()]
    return files


def _child(parent: Path, name: str) -> Path | None:
    return find_child(parent, name, is_dir=True) if parent.is_dir() else None


class Fer2013Layout(DatasetLayout[FaceImages]):
    """FER2013 in either form: never detected (see the module docstring); reads
    :func:`read_fer2013` (one split at a time); skips the files of the image-folder form that are
    not images."""

    name = "fer2013"
    title = "FER2013"
    class_names = FER2013_CLASSES
    split_protocol = "the release's own: Usage Training/PublicTest/PrivateTest, or train/val/test folders"

    def splits(self, root: Path) -> tuple[str, ...]:
        """Every split for the CSV form (its rows say), the split folders present for the other."""
        if detect_fer2013_form(root) == "csv":
            return FER2013_SPLITS
        return tuple(s for s in FER2013_SPLITS if _child(Path(root), s) is not None)

    def read(self, root: str | os.PathLike, split: str | None = None, **options) -> FaceImages:
        """One split (``split`` is required: the splits are read one at a time)."""
        return read_fer2013(root, split, **options)

    def skipped(self, root: Path, splits) -> list[SkippedFile]:
        """The files in the emotion folders of ``splits`` that are not images (none in the CSV
        form), as :func:`read_fer2013_folder` skips them."""
        if detect_fer2013_form(root) == "csv":
            return []
        split_dirs = [_child(Path(root), _check_split(s)) for s in splits]
        found = [other_type(path, IMAGE_EXTENSIONS, "image")
                 for split_dir in split_dirs if split_dir is not None for _, path in _emotion_files(split_dir)]
        return sorted((s for s in found if s is not None), key=lambda s: s.path)


LAYOUT = Fer2013Layout()
