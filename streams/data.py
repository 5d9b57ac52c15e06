"""Datasets that feed each stream from the preprocessing cache (arrays memory-mapped).

Items are ``(x, label)``:

======  ===================  ===========================================================
stream  x                    augmentation (train) / eval
======  ===================  ===========================================================
visual  (3, T, S, S) float   random crop ``crop`` (+ flip) / centre crop; ImageNet-normalised
face    (3, T, S, S) float   same as visual, on the face crops
flow    (2, T, S, S) float   random crop + flip that also negates x / centre crop; f / bound
audio   (1, F, W) float      mel resized to ``resize``, random crop along time and frequency
                             / centre crop; standardised per clip
======  ===================  ===========================================================

``T`` frames are taken evenly from the stored ones (``num_frames``). Augmentation draws from a
generator seeded by ``(seed, epoch, index)``, so a resumed run sees exactly what an uninterrupted
run would. Clips whose modality is missing (no face found, no audio track) are left out of that
stream's training and evaluation sets; fusion handles them instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np
import torch

from keyframes.data import augmentation_rng
from keyframes.scorer import IMAGENET_MEAN, IMAGENET_STD
from streams.cache import CacheEntry, CacheError, load_entries
from streams.inputs.optical_flow import dequantise_flow


@dataclass(frozen=True)
class StreamDataSettings:
    """The ``data:`` section of a stream recipe."""

    num_frames: int = 16
    resize: int | tuple[int, int] | None = None   # int: short side; [H, W]: exact size; None: as stored
    crop: int = 224
    flip: bool = True

    @classmethod
    def from_config(cls, section: dict) -> "StreamDataSettings":
        resize = section.get("resize")
        return cls(num_frames=int(section.get("num_frames", 16)),
                   resize=tuple(resize) if isinstance(resize, (list, tuple)) else resize,
                   crop=int(section.get("crop", 224)), flip=bool(section.get("flip", True)))


def even_indices(available: int, wanted: int) -> np.ndarray:
    """``wanted`` indices spread evenly over ``range(available)`` (repeats when fewer are available)."""
    if available <= 0:
        raise ValueError("no frames stored")
    return np.floor((np.arange(wanted) + 0.5) * available / wanted).astype(int)


def _resize_frames(frames: np.ndarray, resize) -> np.ndarray:
    """(T, H, W, C) -> resized; ``resize`` int = short side, (H, W) = exact size."""
    if resize is None:
        return frames
    h, w = frames.shape[1:3]
    if isinstance(resize, tuple):
        nh, nw = resize
    else:
        s = resize / min(h, w)
        nh, nw = max(1, round(h * s)), max(1, round(w * s))
    if (nh, nw) == (h, w):
        return frames
    out = [cv2.resize(np.ascontiguousarray(f), (nw, nh), interpolation=cv2.INTER_LINEAR) for f in frames]
    return np.stack(out).reshape(len(frames), nh, nw, -1)


def _crop(frames: np.ndarray, size: int, rng: np.random.Generator | None) -> np.ndarray:
    """Random (``rng``) or centre crop of (T, H, W, C) to (T, size, size, C); pads if smaller."""
    t, h, w = frames.shape[:3]
    if h < size or w < size:
        ph, pw = max(0, size - h), max(0, size - w)
        frames = np.pad(frames, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
        t, h, w = frames.shape[:3]
    if rng is None:
        y0, x0 = (h - size) // 2, (w - size) // 2
    else:
        y0, x0 = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return frames[:, y0:y0 + size, x0:x0 + size]


class StreamDataset(torch.utils.data.Dataset):
    """One stream's ``(x, label)`` items from cache entries (see the module docstring)."""

    def __init__(self, entries: Sequence[CacheEntry], stream: str, settings: StreamDataSettings, *,
                 train: bool, seed: int = 0) -> None:
        if stream not in ("visual", "face", "flow", "audio"):
            raise ValueError(f"unknown stream {stream!r}")
        self.stream = stream
        self.entries = [e for e in entries if e.available(stream)]
        self.settings = settings
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
        s = self.settings
        arr = entry.load(self.stream)
        if self.stream in ("visual", "face"):
            frames = np.asarray(arr[even_indices(len(arr), s.num_frames)])            # (T, H, W, 3) uint8
            frames = _crop(_resize_frames(frames, s.resize), s.crop, rng)
            if rng is not None and s.flip and rng.random() < 0.5:
                frames = frames[:, :, ::-1]
            x = (frames.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
            return torch.from_numpy(np.ascontiguousarray(x.transpose(3, 0, 1, 2)))   # (3, T, S, S)
        if self.stream == "flow":
            bound = float(entry.meta.get("flow", {}).get("bound", 20.0))
            q = np.asarray(arr[even_indices(len(arr), s.num_frames)])                   # (T, 2, H, W) uint8
            flow = dequantise_flow(q, bound).transpose(0, 2, 3, 1) / bound              # (T, H, W, 2) in [-1, 1]
            flow = _crop(_resize_frames(flow, s.resize), s.crop, rng)
            if rng is not None and s.flip and rng.random() < 0.5:
                flow = flow[:, :, ::-1].copy()
                flow[..., 0] = -flow[..., 0]   # mirrored motion: x-flow changes sign
            return torch.from_numpy(np.ascontiguousarray(flow.transpose(3, 0, 1, 2), dtype=np.float32))
        mel = np.asarray(arr, dtype=np.float32)                                         # (F, T) dB
        mel = (mel - mel.mean()) / (mel.std() + 1e-5)
        img = _resize_frames(mel[None, :, :, None], s.resize)                           # (1, F', T', 1)
        img = _crop(img, s.crop, rng)
        return torch.from_numpy(np.ascontiguousarray(img[..., 0], dtype=np.float32))    # (1, S, S)


def build_stream_datasets(cache_root: str, stream: str, data_cfg: dict, *, seed: int = 0,
                          train_split: str = "train", val_split: str = "val"):
    """``(train_dataset, val_dataset, class_names)`` for one stream from a cache."""
    settings = StreamDataSettings.from_config(data_cfg)
    train_entries = load_entries(cache_root, split=train_split, require=(stream,), labelled=True)
    val_entries = load_entries(cache_root, split=val_split, require=(stream,), labelled=True)
    if not train_entries:
        raise CacheError(f"{cache_root}: no labelled '{train_split}' clips with {stream} inputs "
                         f"(run tools/preprocess.py with --streams including {stream})")
    class_names = train_entries[0].class_names
    train = StreamDataset(train_entries, stream, settings, train=True, seed=seed)
    val = StreamDataset(val_entries, stream, settings, train=False, seed=seed)
    if len(train) == 0:
        raise CacheError(f"{cache_root}: every '{train_split}' clip lacks the {stream} modality")
    return train, val, class_names
