"""GroupEmoW-format image dataset for training the sentiment scorer.

Training items are random-resized crops (scale 0.25-1, aspect 3/4-4/3) with horizontal flips,
drawn from a generator seeded by ``(seed, epoch, index)`` so a resumed run sees exactly the
augmentations an uninterrupted one would; evaluation items are the short side resized to
``input_size`` and a centre crop (:func:`keyframes.scorer.centre_square`, the framing the
scorer later rates video frames with).
"""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from keyframes.scorer import IMAGENET_MEAN, IMAGENET_STD, centre_square
from media.layouts import ClipRecord


def augmentation_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random generator for one item's augmentation in one epoch."""
    return np.random.default_rng([int(seed), int(epoch), int(index)])


class ImageFolderDataset(torch.utils.data.Dataset):
    """Items are ``(image (3, S, S) float32 normalised, label int)``."""

    def __init__(self, records: Sequence[ClipRecord], *, input_size: int, train: bool, seed: int = 0,
                 scale: tuple[float, float] = (0.25, 1.0)) -> None:
        self.records = list(records)
        if any(r.label is None for r in self.records):
            raise ValueError("ImageFolderDataset needs labelled records")
        self.input_size = int(input_size)
        self.train = train
        self.seed = seed
        self.scale = scale
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def _load(self, index: int) -> np.ndarray:
        path = self.records[index].path
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f"{path}: cannot be read as an image")
        _check_jpeg_complete(path)
        return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)

    def __getitem__(self, index: int):
        img = self._load(index)
        s = self.input_size
        if self.train:
            rng = augmentation_rng(self.seed, self.epoch, index)
            img = random_resized_crop(img, s, rng, scale=self.scale)
            if rng.random() < 0.5:
                img = img[:, ::-1]
        else:
            img = centre_square(img, s)  # the framing frames are scored with
        x = (img.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))), int(self.records[index].label)


def _check_jpeg_complete(path) -> None:
    """Raise ValueError naming ``path`` when it is a truncated or damaged JPEG.

    OpenCV decodes a truncated JPEG without an error (the missing rows come out grey), so a
    download cut short would train silently; libjpeg through Pillow reports it. Decoding at 1/8
    scale still reads every compressed byte, at about a quarter of the cost of the full decode."""
    try:
        im = Image.open(path)
    except UnidentifiedImageError:
        return  # OpenCV read it; not a JPEG
    with im:
        if im.format != "JPEG":
            return
        im.draft("RGB", (max(1, im.width // 8), max(1, im.height // 8)))
        try:
            im.load()
        except OSError as e:
            raise ValueError(f"{path}: truncated or damaged JPEG ({e})") from None


def random_resized_crop(img: np.ndarray, size: int, rng: np.random.Generator,
                        scale: tuple[float, float] = (0.08, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> np.ndarray:
    """torchvision's RandomResizedCrop on an (H, W, 3) array, driven by ``rng``; returns (size, size, 3)."""
    h, w = img.shape[:2]
    area = h * w
    for _ in range(10):
        target = area * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = round(math.sqrt(target * aspect)), round(math.sqrt(target / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            x0 = int(rng.integers(0, w - cw + 1))
            y0 = int(rng.integers(0, h - ch + 1))
            return cv2.resize(img[y0:y0 + ch, x0:x0 + cw], (size, size), interpolation=cv2.INTER_AREA)
    side = min(h, w)  # fallback: centre square
    y0, x0 = (h - side) // 2, (w - side) // 2
    return cv2.resize(img[y0:y0 + side, x0:x0 + side], (size, size), interpolation=cv2.INTER_AREA)
