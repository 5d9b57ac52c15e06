"""Finding and naming the files of a dataset tree, for the layout modules: case-insensitive
folder look-up, the recursive walk that skips hidden files, clip ids, and the reports of files a
reader refuses (duplicate ids, names out of pattern, files of another type)."""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Iterable, Pattern, Sequence

from media.layouts.base import VIDEO_EXTENSIONS, ClipRecord, DatasetError, DatasetWarning, SkippedFile

__all__ = ["EXAMPLES", "find_child", "walk_files", "clip_id", "examples", "check_unique", "report_invalid",
           "files_of_other_types", "other_type", "most_videos_named"]

EXAMPLES = 5
"""How many names an error message lists."""


def find_child(parent: Path, name: str, *, is_dir: bool) -> Path | None:
    """``parent/name`` matched case-insensitively (an exact match wins); None when absent. Two
    entries that differ only in case are a DatasetError."""
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


def walk_files(root: Path, extensions: Iterable[str] | None) -> list[Path]:
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


def clip_id(root: Path, path: Path) -> str:
    """``path`` relative to ``root``, without its extension, '/'-separated."""
    return path.relative_to(root).with_suffix("").as_posix()


def examples(names: Sequence[str]) -> str:
    """The first :data:`EXAMPLES` of ``names``, comma-separated, with ``...`` when there are more."""
    shown = ", ".join(names[:EXAMPLES])
    return shown + (", ..." if len(names) > EXAMPLES else "")


def check_unique(records: list[ClipRecord], where: Path) -> None:
    """Raise when two files map to the same clip_id (same name, different extension)."""
    seen: dict[str, Path] = {}
    for rec in records:
        if rec.clip_id in seen:
            raise DatasetError(
                f"{where}: two files share the clip id {rec.clip_id!r}: {seen[rec.clip_id]} and "
                f"{rec.path}; remove one (or restrict the extensions)"
            )
        seen[rec.clip_id] = rec.path


def report_invalid(root: Path, invalid: list[Path], what: str, allow_invalid: bool) -> None:
    """Files under ``root`` whose names do not match the ``what`` naming pattern: a DatasetError
    listing the first few, or with ``allow_invalid`` a DatasetWarning (the files are skipped)."""
    if not invalid:
        return
    names = [p.relative_to(root).as_posix() for p in sorted(invalid)]
    msg = (f"{root}: {len(names)} file(s) do not match the {what} naming pattern: "
           f"{examples(names)}")
    if not allow_invalid:
        raise DatasetError(msg + " (pass allow_invalid=True to skip them)")
    warnings.warn(msg + "; skipped (allow_invalid=True)", DatasetWarning, stacklevel=3)


def files_of_other_types(places: Iterable[Path | None], extensions: Sequence[str], kind: str, *,
                         recursive: bool = True) -> list[SkippedFile]:
    """The non-hidden files in ``places`` (None entries ignored; sub-folders too when
    ``recursive``) whose suffix is not in ``extensions`` (lower-case), as :func:`other_type`
    reports them; sorted by path."""
    skipped = []
    for place in (p for p in places if p is not None):
        found = walk_files(place, None) if recursive else [
            p for p in place.iterdir() if p.is_file() and not p.name.startswith(".")]
        skipped += [s for s in (other_type(path, extensions, kind) for path in found) if s is not None]
    return sorted(skipped, key=lambda s: s.path)


def other_type(path: Path, extensions: Sequence[str], kind: str) -> SkippedFile | None:
    """None when ``path``'s suffix (any case) is in ``extensions`` (lower-case); else ``path``
    with the reason ``'not a <kind> file (<suffix>; expected <extensions>)'``."""
    suffix = path.suffix.lower()
    if suffix in extensions:
        return None
    return SkippedFile(path, f"not {'an' if kind == 'image' else 'a'} {kind} file "
                             f"({suffix or 'no extension'}; expected {'/'.join(extensions)})")


def most_videos_named(root: Path, pattern: Pattern[str]) -> bool:
    """True when ``root`` holds videos (recursively, any of :data:`VIDEO_EXTENSIONS`) and at least
    half of them have a name (without extension) that ``pattern`` matches in full."""
    stems = [p.stem for p in walk_files(root, VIDEO_EXTENSIONS)]
    return bool(stems) and 2 * sum(1 for s in stems if pattern.fullmatch(s)) >= len(stems)
