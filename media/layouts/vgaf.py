"""The VGAF layout (Video-level Group AFfect): group videos in split folders, labels in text files.

``<root>/{Train,Val,Test}/*.mp4`` plus ``<root>/Train_labels.txt`` and ``<root>/Val_labels.txt``
(header ``Vid_name Label``, labels 1=Positive, 2=Neutral, 3=Negative). Test is unlabeled unless a
``Test_labels.txt`` in the same format is present. Folder and file names are matched
case-insensitively.

Splits: the dataset's own Train/Val/Test folders (the EmotiW challenge protocol). The clips are
crowds from web videos with no speaker ids, so no speaker-independent split can be checked.
"""
from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

from media.layouts.base import ClipRecord, DatasetError, DatasetWarning, Evidence, sorted_records
from media.layouts.files import clip_id, examples, find_child
from media.layouts.folders import FolderSplitLayout

__all__ = ["VGAF_CLASSES", "VGAF_DIRS", "VGAF_LABEL_NAMES", "VgafLayout", "LAYOUT", "read_vgaf"]

VGAF_CLASSES: tuple[str, ...] = ("Positive", "Neutral", "Negative")
VGAF_DIRS: dict[str, str] = {"train": "Train", "val": "Val", "test": "Test"}
"""Split -> its video folder."""
VGAF_LABEL_NAMES: dict[str, str] = {"train": "Train_labels.txt", "val": "Val_labels.txt", "test": "Test_labels.txt"}
"""Split -> its label file."""
_HEADER = ("vid_name", "label")


def _check_name(name: str, label_file: Path, lineno: int) -> str:
    if name.lower().endswith(".mp4"):
        name = name[:-4]
    if (
        not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\0" in name
        or os.path.isabs(name)
    ):
        raise DatasetError(
            f"{label_file}:{lineno}: invalid video name {name!r}: must be a plain file name "
            "inside the split folder (no path separators, '..' or absolute paths)"
        )
    return name


def _parse_labels(label_file: Path) -> dict[str, int]:
    """Parse a VGAF label file into ``{video name without .mp4: 0-based label}``."""
    try:
        text = label_file.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{label_file}: not UTF-8 text ({exc})") from exc
    labels: dict[str, int] = {}
    first_line: dict[str, int] = {}
    header_seen = False
    for lineno, raw in enumerate(text.split("\n"), start=1):
        fields = raw.split()
        if not fields:
            continue
        if not header_seen:
            if tuple(f.lower() for f in fields) != _HEADER:
                raise DatasetError(
                    f"{label_file}:{lineno}: expected the header 'Vid_name Label', got {raw.strip()!r}"
                )
            header_seen = True
            continue
        if len(fields) != 2:
            raise DatasetError(
                f"{label_file}:{lineno}: expected 2 columns '<video name> <label>', "
                f"got {len(fields)}: {raw.strip()!r}"
            )
        name = _check_name(fields[0], label_file, lineno)
        if not re.fullmatch(r"[+-]?\d+", fields[1]):
            raise DatasetError(f"{label_file}:{lineno}: label {fields[1]!r} is not an integer")
        value = int(fields[1])
        if not 1 <= value <= len(VGAF_CLASSES):
            raise DatasetError(
                f"{label_file}:{lineno}: label {value} out of range 1..{len(VGAF_CLASSES)} "
                "(1=Positive, 2=Neutral, 3=Negative)"
            )
        if name in labels:
            raise DatasetError(
                f"{label_file}:{lineno}: duplicate video name {name!r} (first on line {first_line[name]})"
            )
        labels[name] = value - 1
        first_line[name] = lineno
    if not header_seen:
        raise DatasetError(f"{label_file}: empty label file (expected the header 'Vid_name Label')")
    return labels


def read_vgaf(root: str | os.PathLike, split: str, *, allow_missing: bool = False) -> list[ClipRecord]:
    """Read one VGAF split.

    root: folder holding ``Train/``, ``Val/``, ``Test/`` (``*.mp4``) and ``Train_labels.txt``,
        ``Val_labels.txt`` (folder and file names matched case-insensitively).
    split: ``'train'``, ``'val'`` or ``'test'`` (case-insensitive). Test clips get label None
        unless ``Test_labels.txt`` exists, which is then read like the others.
    allow_missing: labels without a video and videos without a label are an error (one
        DatasetError reporting both, with counts and examples); with True they are skipped and
        the same summary is issued as a :class:`DatasetWarning`.

    Returns records sorted by clip_id (``'Train/100_1'``), labels 0-based into VGAF_CLASSES.
    """
    return LAYOUT.read_one(root, split, allow_missing=allow_missing)


def _read_split(root: Path, split: str, allow_missing: bool) -> list[ClipRecord]:
    video_dir = find_child(root, VGAF_DIRS[split], is_dir=True)
    if video_dir is None:
        raise DatasetError(f"{root / VGAF_DIRS[split]}: VGAF {split} video folder not found")
    label_file = find_child(root, VGAF_LABEL_NAMES[split], is_dir=False)
    if label_file is None and split != "test":
        raise DatasetError(f"{root / VGAF_LABEL_NAMES[split]}: VGAF {split} label file not found")

    videos: dict[str, Path] = {}
    for path in sorted(video_dir.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() != ".mp4" or not path.is_file():
            continue
        if path.stem in videos:
            raise DatasetError(f"{video_dir}: two videos named {path.stem!r}: {videos[path.stem].name}, {path.name}")
        videos[path.stem] = path

    if label_file is None:
        labels: dict[str, int | None] = {name: None for name in videos}
    else:
        labels = dict(_parse_labels(label_file))
        no_video = sorted(set(labels) - set(videos))
        no_label = sorted(set(videos) - set(labels))
        if no_video or no_label:
            msg = (
                f"{label_file} vs {video_dir}: {len(no_video)} labelled video(s) missing"
                + (f" ({examples(no_video)})" if no_video else "")
                + f"; {len(no_label)} video(s) without a label"
                + (f" ({examples(no_label)})" if no_label else "")
            )
            if not allow_missing:
                raise DatasetError(msg + " (pass allow_missing=True to skip them)")
            # stacklevel: the caller of read_vgaf or read_dataset
            warnings.warn(msg + "; skipped (allow_missing=True)", DatasetWarning, stacklevel=5)
            for name in no_video:
                del labels[name]

    records = [
        ClipRecord(clip_id(root, videos[name]), videos[name], label, VGAF_CLASSES, split)
        for name, label in labels.items()
    ]
    if not records:
        raise DatasetError(f"{video_dir}: no usable VGAF {split} videos")
    return sorted_records(records)

class VgafLayout(FolderSplitLayout):
    """VGAF: detected by its label files, or by split folders holding ``.mp4`` files directly;
    reads a split's folder against its label file (:func:`read_vgaf`); skips what is not
    ``.mp4`` in its split video folders (label files beside them are not clips)."""

    name = "vgaf"
    title = "VGAF"
    class_names = VGAF_CLASSES
    split_protocol = "the dataset's own Train/Val/Test folders (no speaker ids: crowds from web videos)"
    options = ("allow_missing",)
    clip_extensions = (".mp4",)
    nested = False

    def detect(self, root: Path) -> Evidence:
        files = {p.name.lower() for p in root.iterdir() if p.is_file()}
        if any(n.lower() in files for n in VGAF_LABEL_NAMES.values()):
            return Evidence.LABEL_FILES
        entries = {p.name.lower(): p for p in root.iterdir()}
        for folder in VGAF_DIRS.values():
            d = entries.get(folder.lower())
            if d is not None and d.is_dir() and any(p.suffix.lower() == ".mp4" and p.is_file() for p in d.iterdir()):
                return Evidence.SPLIT_FOLDERS
        return Evidence.NONE

    def split_folder(self, root: Path, split: str) -> Path | None:
        return find_child(root, VGAF_DIRS[split], is_dir=True)

    def splits(self, root: Path) -> tuple[str, ...]:
        """A split is present when its video folder or its label file exists (reading it then
        reports the other one missing)."""
        return tuple(
            s for s in VGAF_DIRS
            if self.split_folder(root, s) is not None
            or find_child(root, VGAF_LABEL_NAMES[s], is_dir=False) is not None
        )

    def unused_split(self, root: Path, split: str) -> str | None:
        """A video folder with no ``.mp4`` and no label file (e.g. a ``Test/`` created for later)."""
        video_dir = self.split_folder(root, split)
        if video_dir is None or find_child(root, VGAF_LABEL_NAMES[split], is_dir=False) is not None:
            return None
        if any(p.suffix.lower() == ".mp4" and not p.name.startswith(".") for p in video_dir.iterdir()):
            return None
        return f"the VGAF {split} folder holds no .mp4 and has no label file"

    def read_split(self, root: Path, split: str, *, allow_missing: bool = False) -> list[ClipRecord]:
        return _read_split(root, split, allow_missing)


LAYOUT = VgafLayout()
