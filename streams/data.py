"""Datasets that feed each stream from the preprocessing cache (arrays memory-mapped).

Items are ``(x, label)`` with ``x`` the stream's input view (its spec's
:meth:`~streams.specs.base.StreamSpec.load_input`; the spec modules document each view and its
augmentation). Augmentation draws from a generator seeded by ``(seed, epoch, index)``, so a resumed
run sees exactly what an uninterrupted run would. Clips whose modality is missing (no face found,
no audio track) are left out of that stream's training and evaluation sets; fusion handles them
instead.
"""
from __future__ import annotations

from typing import Any, Collection, Mapping, Sequence

import numpy as np
import torch

from keyframes.data import augmentation_rng
from streams.cache import CacheEntry, CacheError, load_entries
from streams.specs import get_spec


class StreamDataset(torch.utils.data.Dataset):
    """One stream's ``(x, label)`` items from cache entries. ``data`` is the stream recipe's
    ``data:`` section (or the settings its spec parsed from it)."""

    def __init__(self, entries: Sequence[CacheEntry], stream: str, data: Mapping[str, Any] | Any = None, *,
                 train: bool, seed: int = 0) -> None:
        self.spec = get_spec(stream)
        self.stream = stream
        self.entries = [e for e in entries if e.available(stream)]
        self.settings = self.spec.data_settings(data) if data is None or isinstance(data, Mapping) else data
        self.train = train
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int):
        entry = self.entries[index]
        rng = augmentation_rng(self.seed, self.epoch, index) if self.train else None
        x = self.load_input(entry, rng)
        label = -1 if entry.label is None else int(entry.label)
        return x, label

    def load_input(self, entry: CacheEntry, rng: np.random.Generator | None = None) -> torch.Tensor:
        """The model input for one clip (``rng`` None: deterministic eval view)."""
        return self.spec.load_input(entry.load(self.stream), entry.meta, self.settings, rng)


def build_stream_datasets(cache_root: str, stream: str, data_cfg: dict, *, seed: int = 0,
                          train_split: str = "train", val_split: str = "val", exclude: Collection[str] = ()):
    """``(train_dataset, val_dataset, class_names)`` for one stream from a cache; the train clips
    whose ids are in ``exclude`` are left out (held back for fusion, :mod:`streams.folds`)."""
    exclude = set(exclude)
    train_entries = [e for e in load_entries(cache_root, split=train_split, require=(stream,), labelled=True)
                     if e.clip_id not in exclude]
    val_entries = load_entries(cache_root, split=val_split, require=(stream,), labelled=True)
    if not train_entries:
        raise CacheError(f"{cache_root}: no labelled '{train_split}' clips with {stream} inputs "
                         f"(run tools/preprocess.py with --streams including {stream})")
    class_names = train_entries[0].class_names
    mixed = sorted({e.class_names for e in train_entries + val_entries} - {class_names})
    if mixed:
        raise CacheError(f"{cache_root}: clips of two label sets, {list(class_names)} and {list(mixed[0])} (was the "
                         "cache made again with another labels: mapping? use a fresh cache directory)")
    train = StreamDataset(train_entries, stream, data_cfg, train=True, seed=seed)
    val = StreamDataset(val_entries, stream, data_cfg, train=False, seed=seed)
    if len(train) == 0:
        raise CacheError(f"{cache_root}: every '{train_split}' clip lacks the {stream} modality")
    return train, val, class_names
