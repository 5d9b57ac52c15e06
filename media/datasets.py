"""Dataset readers: turn a dataset folder into a sorted list of :class:`ClipRecord`.

Every reader only looks at names on disk (and, for VGAF, the label text files); none decodes
media, so a tree of empty files is a valid input for tests.

Supported layouts (``detect_layout`` names them):

``'vgaf'``
    ``<root>/{Train,Val,Test}/*.mp4`` plus ``<root>/Train_labels.txt`` and
    ``<root>/Val_labels.txt`` (header ``Vid_name Label``, labels 1=Positive, 2=Neutral,
    3=Negative). Test is unlabeled unless a ``Test_labels.txt`` in the same format is present.
``'groupemow'``
    ``<root>/{train,val,test}/{positive,neutral,negative}/*.{jpg,jpeg,png}`` (folder names
    case-insensitive). Classes are mapped to the VGAF names so that a keyframe scorer trained on
    GroupEmoW speaks the VGAF class names.
``'ravdess'``
    ``MM-VC-EE-II-SS-RR-AA.mp4`` anywhere under the root; label from EE, split by actor AA.
``'cremad'``
    ``ID_SENTENCE_EMO_LEVEL.{flv,mp4}`` anywhere under the root; label from EMO, split by actor ID.
``'video_folder'``
    any other folder: every video found recursively, unlabeled.

Labels are always 0-based indices into ``ClipRecord.class_names``.
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from core.errors import UserInputError

__all__ = [
    "ClipRecord",
    "SkippedFile",
    "DatasetError",
    "DatasetWarning",
    "VGAF_CLASSES",
    "GROUPEMOW_CLASSES",
    "RAVDESS_CLASSES",
    "CREMAD_CLASSES",
    "CREMAD_EMOTION_CODES",
    "SPLITS",
    "LAYOUTS",
    "VIDEO_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "RAVDESS_DEFAULT_VAL_ACTORS",
    "RAVDESS_DEFAULT_TEST_ACTORS",
    "CREMAD_DEFAULT_VAL_ACTORS",
    "CREMAD_DEFAULT_TEST_ACTORS",
    "read_vgaf",
    "read_groupemow",
    "read_ravdess",
    "read_cremad",
    "read_video_folder",
    "read_dataset",
    "detect_layout",
    "skipped_files",
]

VGAF_CLASSES: tuple[str, ...] = ("Positive", "Neutral", "Negative")
# Deliberately the VGAF names (not the lower-case folder names): a scorer trained on GroupEmoW
# must produce the same class names as the VGAF streams it feeds.
GROUPEMOW_CLASSES: tuple[str, ...] = VGAF_CLASSES
RAVDESS_CLASSES: tuple[str, ...] = (
    "neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised",
)
CREMAD_EMOTION_CODES: tuple[str, ...] = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
CREMAD_CLASSES: tuple[str, ...] = ("anger", "disgust", "fear", "happy", "neutral", "sad")

SPLITS: tuple[str, ...] = ("train", "val", "test")
LAYOUTS: tuple[str, ...] = ("vgaf", "groupemow", "ravdess", "cremad", "video_folder")
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".flv")
IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png")

# RAVDESS has 24 actors (01..24). Default: 1-18 train, 19-21 val, 22-24 test (all three groups
# mix male (odd) and female (even) actors).
RAVDESS_NUM_ACTORS = 24
RAVDESS_DEFAULT_VAL_ACTORS: tuple[int, ...] = (19, 20, 21)
RAVDESS_DEFAULT_TEST_ACTORS: tuple[int, ...] = (22, 23, 24)
# CREMA-D has 91 actors (1001..1091). Default: 1001-1063 train (63), 1064-1077 val (14),
# 1078-1091 test (14), about 70/15/15.
CREMAD_FIRST_ACTOR, CREMAD_LAST_ACTOR = 1001, 1091
CREMAD_DEFAULT_VAL_ACTORS: tuple[int, ...] = tuple(range(1064, 1078))
CREMAD_DEFAULT_TEST_ACTORS: tuple[int, ...] = tuple(range(1078, 1092))

_VGAF_DIRS = {"train": "Train", "val": "Val", "test": "Test"}
_VGAF_HEADER = ("vid_name", "label")
_VGAF_LABEL_NAMES = {"train": "Train_labels.txt", "val": "Val_labels.txt", "test": "Test_labels.txt"}
_EXAMPLES = 5  # how many names an error message lists

_RAVDESS_RE = re.compile(r"(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})")
_CREMAD_RE = re.compile(r"(\d{4})_([A-Za-z]{3})_([A-Za-z]{3})_([A-Za-z]{2})")
_CREMAD_LEVELS = ("LO", "MD", "HI", "XX")


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


# --------------------------------------------------------------------------------------------
# helpers


def _abs_root(root: str | os.PathLike) -> Path:
    path = Path(os.path.abspath(os.fspath(root)))
    if not path.is_dir():
        raise DatasetError(f"{path}: dataset root is not a directory")
    return path


def _normalize_split(split: str) -> str:
    if not isinstance(split, str) or split.lower() not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} (case-insensitive), got {split!r}")
    return split.lower()


def _find_child(parent: Path, name: str, *, is_dir: bool) -> Path | None:
    """``parent/name`` matched case-insensitively (an exact match wins); None when absent."""
    exact = parent / name
    if (exact.is_dir() if is_dir else exact.is_file()):
        return exact
    matches = sorted(
        p for p in parent.iterdir()
        if p.name.lower() == name.lower() and (p.is_dir() if is_dir else p.is_file())
    )
    if len(matches) > 1:
        raise DatasetError(
            f"{parent}: ambiguous {name!r}: several entries differ only in case: "
            + ", ".join(p.name for p in matches)
        )
    return matches[0] if matches else None


def _is_hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def _walk_files(root: Path, extensions: Iterable[str] | None) -> list[Path]:
    """Files under ``root`` (recursively) whose suffix is in ``extensions`` (case-insensitive; None:
    any), skipping hidden files and folders (``.DS_Store``, macOS ``._x.mp4`` resource forks)."""
    exts = None if extensions is None else {e.lower() for e in extensions}
    found = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and (exts is None or os.path.splitext(name)[1].lower() in exts):
                found.append(Path(dirpath) / name)
    return found


def _clip_id(root: Path, path: Path) -> str:
    return path.relative_to(root).with_suffix("").as_posix()


def _examples(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_EXAMPLES])
    return shown + (", ..." if len(names) > _EXAMPLES else "")


def _check_unique(records: list[ClipRecord], where: Path) -> None:
    """Raise when two files map to the same clip_id (same name, different extension)."""
    seen: dict[str, Path] = {}
    for rec in records:
        if rec.clip_id in seen:
            raise DatasetError(
                f"{where}: two files share the clip id {rec.clip_id!r}: {seen[rec.clip_id]} and "
                f"{rec.path}; remove one (or restrict the extensions)"
            )
        seen[rec.clip_id] = rec.path


def _sorted(records: list[ClipRecord]) -> list[ClipRecord]:
    return sorted(records, key=lambda r: r.clip_id)


def _actor_sets(
    val_actors: Iterable[int], test_actors: Iterable[int], first: int, last: int, dataset: str
) -> tuple[frozenset[int], frozenset[int]]:
    val, test = frozenset(int(a) for a in val_actors), frozenset(int(a) for a in test_actors)
    bad = sorted(a for a in val | test if not first <= a <= last)
    if bad:
        raise ValueError(f"{dataset} actors must be in {first}..{last}, got {bad}")
    if val & test:
        raise ValueError(f"{dataset} val_actors and test_actors overlap: {sorted(val & test)}")
    return val, test


def _actor_split(actor: int, val: frozenset[int], test: frozenset[int]) -> str:
    return "val" if actor in val else "test" if actor in test else "train"


def _report_invalid(root: Path, invalid: list[Path], what: str, allow_invalid: bool) -> None:
    if not invalid:
        return
    names = [p.relative_to(root).as_posix() for p in sorted(invalid)]
    msg = (f"{root}: {len(names)} file(s) do not match the {what} naming pattern: "
           f"{_examples(names)}")
    if not allow_invalid:
        raise DatasetError(msg + " (pass allow_invalid=True to skip them)")
    warnings.warn(msg + "; skipped (allow_invalid=True)", DatasetWarning, stacklevel=3)


# --------------------------------------------------------------------------------------------
# VGAF


def _check_vgaf_name(name: str, label_file: Path, lineno: int) -> str:
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


def _parse_vgaf_labels(label_file: Path) -> dict[str, int]:
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
            if tuple(f.lower() for f in fields) != _VGAF_HEADER:
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
        name = _check_vgaf_name(fields[0], label_file, lineno)
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
    root = _abs_root(root)
    split = _normalize_split(split)
    video_dir = _find_child(root, _VGAF_DIRS[split], is_dir=True)
    if video_dir is None:
        raise DatasetError(f"{root / _VGAF_DIRS[split]}: VGAF {split} video folder not found")
    label_file = _find_child(root, _VGAF_LABEL_NAMES[split], is_dir=False)
    if label_file is None and split != "test":
        raise DatasetError(f"{root / _VGAF_LABEL_NAMES[split]}: VGAF {split} label file not found")

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
        labels = dict(_parse_vgaf_labels(label_file))
        no_video = sorted(set(labels) - set(videos))
        no_label = sorted(set(videos) - set(labels))
        if no_video or no_label:
            msg = (
                f"{label_file} vs {video_dir}: {len(no_video)} labelled video(s) missing"
                + (f" ({_examples(no_video)})" if no_video else "")
                + f"; {len(no_label)} video(s) without a label"
                + (f" ({_examples(no_label)})" if no_label else "")
            )
            if not allow_missing:
                raise DatasetError(msg + " (pass allow_missing=True to skip them)")
            warnings.warn(msg + "; skipped (allow_missing=True)", DatasetWarning, stacklevel=2)
            for name in no_video:
                del labels[name]

    records = [
        ClipRecord(_clip_id(root, videos[name]), videos[name], label, VGAF_CLASSES, split)
        for name, label in labels.items()
    ]
    if not records:
        raise DatasetError(f"{video_dir}: no usable VGAF {split} videos")
    return _sorted(records)


# --------------------------------------------------------------------------------------------
# GroupEmoW


def _groupemow_class_dirs(split_dir: Path) -> list[tuple[int, Path]]:
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
    root = _abs_root(root)
    split = _normalize_split(split)
    split_dir = _find_child(root, split, is_dir=True)
    if split_dir is None:
        raise DatasetError(f"{root / split}: GroupEmoW {split} folder not found")
    records = [
        ClipRecord(_clip_id(root, path), path, label, GROUPEMOW_CLASSES, split)
        for label, class_dir in _groupemow_class_dirs(split_dir)
        for path in _walk_files(class_dir, IMAGE_EXTENSIONS)
    ]
    if not records:
        raise DatasetError(
            f"{split_dir}: no GroupEmoW images (expected <class>/*.jpg|.jpeg|.png with class in "
            "positive, neutral, negative)"
        )
    _check_unique(records, split_dir)
    return _sorted(records)


# --------------------------------------------------------------------------------------------
# RAVDESS


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

    Fields (two digits each): MM modality (01 full-AV, 02 video-only, 03 audio-only), VC vocal
    channel (01 speech, 02 song), EE emotion (01..08 -> RAVDESS_CLASSES), II intensity (01..02),
    SS statement (01..02), RR repetition (01..02), AA actor (01..24).

    Only ``.mp4`` files are considered (the audio-only release is ``.wav``). ``modalities``
    keeps the given MM codes; the default (1, 2) keeps full-AV and video-only, so a recording
    present in both releases appears twice (as two clip ids, always in the same split).
    Splits are by actor so that no actor is in two splits: ``val_actors``/``test_actors``
    (defaults 19-21 and 22-24), every other actor is train. ``split=None`` returns all clips,
    each record still carrying its actor's split.
    An ``.mp4`` whose name does not match the pattern (or has an out-of-range field) is a
    DatasetError listing the first few, unless ``allow_invalid=True`` (skipped with a warning).
    The same file name in two folders is an error (the same recording counted twice).

    Returns records sorted by clip_id (``'Actor_01/01-01-05-01-02-01-01'``).
    """
    root = _abs_root(root)
    wanted = None if split is None else _normalize_split(split)
    val, test = _actor_sets(val_actors, test_actors, 1, RAVDESS_NUM_ACTORS, "RAVDESS")
    keep_modalities = {int(m) for m in modalities}
    records, invalid = [], []
    seen: dict[str, Path] = {}
    for path in _walk_files(root, (".mp4",)):
        match = _RAVDESS_RE.fullmatch(path.stem)
        fields = [int(f) for f in match.groups()] if match else None
        if fields is None or not _ravdess_fields_ok(fields):
            invalid.append(path)
            continue
        modality, _, emotion, _, _, _, actor = fields
        if path.name in seen:
            raise DatasetError(f"{root}: RAVDESS file {path.name} appears twice: {seen[path.name]} and {path}")
        seen[path.name] = path
        clip_split = _actor_split(actor, val, test)
        if modality in keep_modalities and (wanted is None or clip_split == wanted):
            records.append(ClipRecord(_clip_id(root, path), path, emotion - 1, RAVDESS_CLASSES, clip_split))
    _report_invalid(root, invalid, "RAVDESS 'MM-VC-EE-II-SS-RR-AA.mp4'", allow_invalid)
    if not records:
        raise DatasetError(
            f"{root}: no RAVDESS videos for split={split!r} with modalities {sorted(keep_modalities)}"
        )
    return _sorted(records)


def _ravdess_fields_ok(fields: list[int]) -> bool:
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


# --------------------------------------------------------------------------------------------
# CREMA-D


def read_cremad(
    root: str | os.PathLike,
    split: str | None = None,
    *,
    val_actors: Iterable[int] = CREMAD_DEFAULT_VAL_ACTORS,
    test_actors: Iterable[int] = CREMAD_DEFAULT_TEST_ACTORS,
    extensions: Sequence[str] = (".flv", ".mp4"),
    allow_invalid: bool = False,
) -> list[ClipRecord]:
    """Read CREMA-D videos ``ID_SENTENCE_EMO_LEVEL.{flv,mp4}`` found anywhere under ``root``.

    ID is the actor (1001..1091), SENTENCE a 3-letter code, EMO one of ANG DIS FEA HAP NEU SAD
    (-> CREMAD_CLASSES in that order), LEVEL one of LO MD HI XX (codes case-insensitive).
    Splits are by actor: ``val_actors`` (default 1064-1077), ``test_actors`` (default
    1078-1091), all other actors train (1001-1063). ``split=None`` returns all clips.
    A file with one of ``extensions`` whose name does not match is a DatasetError listing the
    first few, unless ``allow_invalid=True`` (skipped with a warning). Two files with the same
    clip id (e.g. ``x.flv`` and ``x.mp4`` side by side) are an error: pass ``extensions`` to
    pick one.

    Returns records sorted by clip_id (``'VideoFlash/1001_DFA_ANG_XX'``).
    """
    root = _abs_root(root)
    wanted = None if split is None else _normalize_split(split)
    val, test = _actor_sets(val_actors, test_actors, CREMAD_FIRST_ACTOR, CREMAD_LAST_ACTOR, "CREMA-D")
    records, invalid = [], []
    for path in _walk_files(root, extensions):
        match = _CREMAD_RE.fullmatch(path.stem)
        if match is None:
            invalid.append(path)
            continue
        actor, emotion, level = int(match.group(1)), match.group(3).upper(), match.group(4).upper()
        if (
            not CREMAD_FIRST_ACTOR <= actor <= CREMAD_LAST_ACTOR
            or emotion not in CREMAD_EMOTION_CODES
            or level not in _CREMAD_LEVELS
        ):
            invalid.append(path)
            continue
        clip_split = _actor_split(actor, val, test)
        if wanted is None or clip_split == wanted:
            records.append(ClipRecord(
                _clip_id(root, path), path, CREMAD_EMOTION_CODES.index(emotion), CREMAD_CLASSES, clip_split
            ))
    _report_invalid(root, invalid, "CREMA-D 'ID_SENTENCE_EMO_LEVEL'", allow_invalid)
    if not records:
        raise DatasetError(f"{root}: no CREMA-D videos ({'/'.join(extensions)}) for split={split!r}")
    _check_unique(records, root)
    return _sorted(records)


# --------------------------------------------------------------------------------------------
# plain folders, detection, dispatch


def read_video_folder(
    root: str | os.PathLike, *, extensions: Sequence[str] = VIDEO_EXTENSIONS
) -> list[ClipRecord]:
    """Every video under ``root`` (recursively, hidden files skipped), unlabeled: label None,
    class_names (), split None. Extensions are matched case-insensitively. An empty folder, or
    two files with the same clip id (``a.mp4`` and ``a.avi``), is a DatasetError."""
    root = _abs_root(root)
    records = [ClipRecord(_clip_id(root, p), p, None, (), None) for p in _walk_files(root, extensions)]
    if not records:
        raise DatasetError(f"{root}: no video files ({', '.join(extensions)}) found")
    _check_unique(records, root)
    return _sorted(records)


def skipped_files(root: str | os.PathLike, split: str | None = None, *, layout: str | None = None
                  ) -> list[SkippedFile]:
    """The files that :func:`read_dataset` passes over because their type is not the layout's clip
    type: an ``.m4a`` or ``.txt`` among the videos, a ``.wav`` in a RAVDESS tree. Looked for where
    the layout keeps its clips: VGAF's split video folders (``split``'s only, when given; label
    files beside them are not clips), GroupEmoW's split folders, the whole tree otherwise. Hidden
    files (``.DS_Store``) are not listed. Returns them sorted by path."""
    root = _abs_root(root)
    layout = detect_layout(root) if layout is None else layout
    splits = SPLITS if split is None else (_normalize_split(split),)
    kind, extensions = "video", VIDEO_EXTENSIONS
    if layout == "vgaf":
        places = [_find_child(root, _VGAF_DIRS[s], is_dir=True) for s in splits]
        extensions = (".mp4",)
    elif layout == "groupemow":
        places = [_find_child(root, s, is_dir=True) for s in splits]
        kind, extensions = "image", IMAGE_EXTENSIONS
    else:
        places = [root]
        extensions = {"ravdess": (".mp4",), "cremad": (".flv", ".mp4")}.get(layout, VIDEO_EXTENSIONS)
    skipped = []
    for place in (p for p in places if p is not None):
        found = _walk_files(place, None) if layout != "vgaf" else [
            p for p in place.iterdir() if p.is_file() and not p.name.startswith(".")]
        for path in found:
            suffix = path.suffix.lower()
            if suffix not in extensions:
                skipped.append(SkippedFile(path, f"not {'an' if kind == 'image' else 'a'} {kind} file "
                                                 f"({suffix or 'no extension'}; expected {'/'.join(extensions)})"))
    return sorted(skipped, key=lambda s: s.path)


def _is_groupemow(root: Path) -> bool:
    classes = {c.lower() for c in GROUPEMOW_CLASSES}
    for split_dir in root.iterdir():
        if split_dir.is_dir() and split_dir.name.lower() in SPLITS:
            if any(c.is_dir() and c.name.lower() in classes for c in split_dir.iterdir()):
                return True
    return False


def _is_vgaf(root: Path) -> bool:
    names = {p.name.lower(): p for p in root.iterdir()}
    if any(names.get(n.lower()) is not None and names[n.lower()].is_file()
           for n in _VGAF_LABEL_NAMES.values()):
        return True
    for folder in _VGAF_DIRS.values():
        d = names.get(folder.lower())
        if d is not None and d.is_dir() and any(
            p.suffix.lower() == ".mp4" and p.is_file() for p in d.iterdir()
        ):
            return True
    return False


def detect_layout(root: str | os.PathLike) -> str:
    """Guess the dataset layout of ``root``; returns one of LAYOUTS.

    In order: ``'vgaf'`` when a ``Train_labels.txt``/``Val_labels.txt``/``Test_labels.txt``
    exists; ``'groupemow'`` when a train/val/test folder holds a positive/neutral/negative
    folder; ``'vgaf'`` when a Train/Val/Test folder holds ``.mp4`` files directly; otherwise,
    among the videos found recursively, ``'ravdess'`` or ``'cremad'`` when at least half of
    them match that dataset's naming pattern; else ``'video_folder'`` (names case-insensitive).
    """
    root = _abs_root(root)
    names = {p.name.lower() for p in root.iterdir() if p.is_file()}
    if any(n.lower() in names for n in _VGAF_LABEL_NAMES.values()):
        return "vgaf"
    if _is_groupemow(root):
        return "groupemow"
    if _is_vgaf(root):
        return "vgaf"
    stems = [p.stem for p in _walk_files(root, VIDEO_EXTENSIONS)]
    if stems:
        for layout, pattern in (("ravdess", _RAVDESS_RE), ("cremad", _CREMAD_RE)):
            if 2 * sum(1 for s in stems if pattern.fullmatch(s)) >= len(stems):
                return layout
    return "video_folder"


def read_dataset(
    root: str | os.PathLike, split: str | None = None, *, layout: str | None = None, **kw
) -> list[ClipRecord]:
    """Read any supported dataset: ``layout`` (one of LAYOUTS) or ``detect_layout(root)``.

    split: ``'train'``/``'val'``/``'test'``, or None for every split present (VGAF: the splits
        whose video folder or label file exists; GroupEmoW: the split folders present; RAVDESS/CREMA-D: all
        actors). A plain video folder has no splits: it accepts only ``split=None``.
    kw: passed to the reader (``allow_missing`` for VGAF, ``val_actors``/``test_actors``/
        ``allow_invalid`` for RAVDESS and CREMA-D, ``extensions`` for CREMA-D and video folders).

    Returns records sorted by clip_id.
    """
    root_path = _abs_root(root)
    layout = detect_layout(root_path) if layout is None else layout
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    if layout == "ravdess":
        return read_ravdess(root_path, split, **kw)
    if layout == "cremad":
        return read_cremad(root_path, split, **kw)
    if layout == "video_folder":
        if split is not None:
            raise DatasetError(f"{root_path}: a plain video folder has no splits; got split={split!r}")
        return read_video_folder(root_path, **kw)
    if split is not None:
        splits = [_normalize_split(split)]
    elif layout == "vgaf":
        # a split is present when its video folder or its label file exists (read_vgaf then
        # reports the other one missing)
        splits = [
            s for s in SPLITS
            if _find_child(root_path, _VGAF_DIRS[s], is_dir=True) is not None
            or _find_child(root_path, _VGAF_LABEL_NAMES[s], is_dir=False) is not None
        ]
    else:
        splits = [s for s in SPLITS if _find_child(root_path, s, is_dir=True) is not None]
    if not splits:
        raise DatasetError(f"{root_path}: no {layout} split folders found")
    reader = read_vgaf if layout == "vgaf" else read_groupemow
    records = []
    for s in splits:
        if layout == "vgaf" and split is None and _empty_unlabelled_vgaf_split(root_path, s):
            # e.g. a Test/ folder created for later: nothing to read, nothing wrong with the rest
            warnings.warn(f"{root_path}: the VGAF {s} folder holds no .mp4 and has no label file; skipped",
                          DatasetWarning, stacklevel=2)
            continue
        records += reader(root_path, s, **kw)
    if not records:
        raise DatasetError(f"{root_path}: no usable {layout} videos in any split")
    return _sorted(records)


def _empty_unlabelled_vgaf_split(root: Path, split: str) -> bool:
    video_dir = _find_child(root, _VGAF_DIRS[split], is_dir=True)
    if video_dir is None or _find_child(root, _VGAF_LABEL_NAMES[split], is_dir=False) is not None:
        return False
    return not any(p.suffix.lower() == ".mp4" and not p.name.startswith(".") for p in video_dir.iterdir())
