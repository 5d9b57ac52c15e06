"""The preprocessing cache: its layout, and the one place that reads and writes it.

::

    CACHE/pipeline.json          the preprocessing config and scorer that made the cache
    CACHE/errors.jsonl           clips that failed, one JSON object each
    CACHE/<clip_id>/meta.json    everything about the clip, incl. the config hash of each array
    CACHE/<clip_id>/keyframes.json   the keyframe selection (times, scores, why each was chosen)
    CACHE/<clip_id>/<array>      one array per stream, named by its spec (``StreamSpec.array_file``)

Everything is plain ``.npy`` and JSON, readable without this code (docs/reference/cache.md).
``meta.json`` is written last; an array counts as present only when ``meta["arrays"][stream]``
records its config hash, so a killed run never leaves an entry that looks complete.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from core.storage import StorageError, atomic_save_npy, atomic_write_json, read_json, safe_child
from streams.specs import STREAM_SPECS, StreamSpec

META_FILE = "meta.json"
KEYFRAMES_JSON = "keyframes.json"
PIPELINE_FILE = "pipeline.json"
ERRORS_FILE = "errors.jsonl"
CONTACT_SHEET = "contact_sheet.png"
#: ``meta.json`` key: stream -> why its modality is missing for the clip although its step ran
#: (e.g. the source has no decodable video frames); such a stream stores no array
MISSING_MODALITIES = "missing_modalities"


class CacheError(StorageError):
    """A cache entry that cannot be used; the message names the file."""


def entry_dir(cache_root: str | os.PathLike, clip_id: str) -> Path:
    """``CACHE/<clip_id>``; refuses ids that would escape the cache root."""
    return safe_child(cache_root, clip_id)


def array_path(directory: Path, stream: str) -> Path:
    """Where stream ``stream``'s array of the entry at ``directory`` lives."""
    return directory / STREAM_SPECS[stream].array_file


def read_meta(directory: Path) -> dict | None:
    """The entry's ``meta.json`` (``None`` when there is none); a corrupt one raises naming it."""
    return read_json(directory / META_FILE)


def write_meta(directory: Path, meta: dict) -> None:
    atomic_write_json(directory / META_FILE, meta)


def write_array(directory: Path, stream: str, array: np.ndarray) -> None:
    atomic_save_npy(array_path(directory, stream), array)


def remove_array(directory: Path, stream: str) -> None:
    path = array_path(directory, stream)
    if path.exists():
        path.unlink()


def read_keyframes_record(directory: Path) -> dict | None:
    return read_json(directory / KEYFRAMES_JSON)


def write_keyframes_record(directory: Path, record: dict) -> None:
    atomic_write_json(directory / KEYFRAMES_JSON, record)


def pipeline_path(cache_root: str | os.PathLike) -> Path:
    return Path(cache_root) / PIPELINE_FILE


def errors_path(cache_root: str | os.PathLike) -> Path:
    return Path(cache_root) / ERRORS_FILE


def missing_reason(meta: dict | None, stream: str) -> str | None:
    """Why ``stream``'s modality is missing for the clip of ``meta`` (``None``: it is not recorded
    as missing; the spec may still find it unavailable, e.g. no face found)."""
    return ((meta or {}).get(MISSING_MODALITIES) or {}).get(stream)


def array_intact(path: Path) -> bool:
    """Whether ``path`` is a readable ``.npy`` whose size matches its header (not truncated)."""
    try:
        np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError):
        return False
    return True


@dataclass
class CacheEntry:
    """A clip in the cache. ``meta`` is the parsed ``meta.json``."""

    clip_id: str
    directory: Path
    meta: dict

    @property
    def label(self) -> int | None:
        return self.meta.get("label")

    @property
    def split(self) -> str | None:
        return self.meta.get("split")

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(self.meta.get("class_names", ()))

    def array_hash(self, stream: str) -> str | None:
        """The config hash of the stream's array (``None``: not computed)."""
        return self.meta.get("arrays", {}).get(stream)

    def has(self, stream: str) -> bool:
        """The array for ``stream`` was computed (it may still be an empty/missing modality)."""
        return self.array_hash(stream) is not None

    def available(self, stream: str) -> bool:
        """The modality is really there: computed, and present for this clip (e.g. faces found)."""
        return self.has(stream) and missing_reason(self.meta, stream) is None and _spec(stream).available(self.meta)

    def load(self, stream: str, *, mmap: bool = True) -> np.ndarray:
        """The stream's array (memory-mapped by default). Raises ``CacheError`` naming the file when
        it is missing or unreadable (e.g. truncated)."""
        path = array_path(self.directory, stream)
        if not self.has(stream) or not path.exists():
            raise CacheError(f"{path}: no {stream} array in the cache for clip {self.clip_id}")
        try:
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise CacheError(f"{path}: unreadable array of clip {self.clip_id} ({e}); re-run tools/preprocess.py "
                             "to recompute it") from None


def _spec(stream: str) -> StreamSpec:
    if stream not in STREAM_SPECS:
        raise CacheError(f"unknown stream {stream!r}; known streams: {', '.join(STREAM_SPECS)}")
    return STREAM_SPECS[stream]


def iter_entries(cache_root: str | os.PathLike) -> Iterator[CacheEntry]:
    """Every clip directory with a ``meta.json`` under ``cache_root``, sorted by clip id."""
    root = Path(cache_root)
    if not root.is_dir():
        raise CacheError(f"{root}: cache directory not found")
    for meta_path in sorted(root.rglob(META_FILE)):
        meta = read_json(meta_path)
        if meta is None:
            continue
        clip_id = meta_path.parent.relative_to(root).as_posix()
        yield CacheEntry(clip_id=clip_id, directory=meta_path.parent, meta=meta)


def load_entries(cache_root: str | os.PathLike, *, split: str | None = None,
                 require: Iterable[str] = (), labelled: bool = False) -> list[CacheEntry]:
    """Entries of one ``split`` (None: all) that have computed arrays for every stream in
    ``require``; ``labelled`` keeps only clips with a label."""
    require = tuple(require)
    out = []
    for e in iter_entries(cache_root):
        if split is not None and (e.split or "").lower() != split.lower():
            continue
        if labelled and e.label is None:
            continue
        if all(e.has(s) for s in require):
            out.append(e)
    return out


class MemoryEntry(CacheEntry):
    """A clip's inputs held in memory (prediction on raw video, live windows): same interface as
    a cache entry, without files. ``arrays`` maps stream -> array as it would be stored."""

    def __init__(self, clip_id: str, arrays: dict, meta: dict) -> None:
        meta = dict(meta)
        meta.setdefault("arrays", {s: "memory" for s in arrays})
        super().__init__(clip_id=clip_id, directory=Path("."), meta=meta)
        self.arrays = arrays

    def load(self, stream: str, *, mmap: bool = True) -> np.ndarray:
        if stream not in self.arrays:
            raise CacheError(f"{self.clip_id}: no {stream} input")
        return self.arrays[stream]
