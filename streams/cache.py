"""The preprocessing cache: one directory per clip, plain ``.npy`` arrays and JSON, readable
without this code.

``CACHE/<clip_id>/`` holds

==============  =========================  =================================================
file            dtype, shape               content
==============  =========================  =================================================
keyframes.npy   uint8 (N, H, W, 3)         the N keyframes, RGB, short side ``visual.short_side``
keyframes.json  JSON                       timestamps, frame indices, scores, class probs, why
flow.npy        uint8 (P, 2, H, W)         x/y flow at P points, quantised: v = (f + b) * 255 / 2b
faces.npy       uint8 (F, S, S, 3)         aligned face crops in temporal order (F = 0: none)
mel.npy         float16 (n_mels, T)        log-mel spectrogram in dB (absent: no audio track)
meta.json       JSON                       everything about the clip, incl. per-array config hashes
==============  =========================  =================================================

``meta.json`` is written last; an array counts as present only when ``meta["arrays"][stream]``
records its config hash, so a killed run never leaves an entry that looks complete.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from media.storage import StorageError, atomic_write_json, read_json, safe_child

STREAMS = ("visual", "flow", "face", "audio")
ARRAY_FILES = {"visual": "keyframes.npy", "flow": "flow.npy", "face": "faces.npy", "audio": "mel.npy"}
META_FILE = "meta.json"
KEYFRAMES_JSON = "keyframes.json"


class CacheError(StorageError):
    """A cache entry that cannot be used; the message names the file."""


def entry_dir(cache_root: str | os.PathLike, clip_id: str) -> Path:
    """``CACHE/<clip_id>``; refuses ids that would escape the cache root."""
    return safe_child(cache_root, clip_id)


def write_meta(directory: Path, meta: dict) -> None:
    atomic_write_json(directory / META_FILE, meta)


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

    def has(self, stream: str) -> bool:
        """The array for ``stream`` was computed (it may still be an empty/missing modality)."""
        return stream in self.meta.get("arrays", {})

    def available(self, stream: str) -> bool:
        """The modality is really there: computed, and for faces at least one face, for audio a
        track."""
        if not self.has(stream):
            return False
        if stream == "face":
            return int(self.meta.get("n_faces", 0)) > 0
        if stream == "audio":
            return bool(self.meta.get("has_audio", False))
        return True

    def load(self, stream: str, *, mmap: bool = True) -> np.ndarray:
        """The stream's array (memory-mapped by default). Raises ``CacheError`` when missing."""
        path = self.directory / ARRAY_FILES[stream]
        if not self.has(stream) or not path.exists():
            raise CacheError(f"{path}: no {stream} array in the cache for clip {self.clip_id}")
        try:
            return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
        except ValueError as e:
            raise CacheError(f"{path}: unreadable array ({e})") from None


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
                 require: tuple[str, ...] = (), labelled: bool = False) -> list[CacheEntry]:
    """Entries of one ``split`` (None: all) that have computed arrays for every stream in
    ``require``; ``labelled`` keeps only clips with a label."""
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
    """A clip's inputs held in memory (prediction on raw video): same interface as a cache
    entry, without files. ``arrays`` maps stream -> array as it would be stored."""

    def __init__(self, clip_id: str, arrays: dict, meta: dict) -> None:
        meta = dict(meta)
        meta.setdefault("arrays", {s: "memory" for s in arrays})
        super().__init__(clip_id=clip_id, directory=Path("."), meta=meta)
        self.arrays = arrays

    def load(self, stream: str, *, mmap: bool = True) -> np.ndarray:
        if stream not in self.arrays:
            raise CacheError(f"{self.clip_id}: no {stream} input")
        return self.arrays[stream]
