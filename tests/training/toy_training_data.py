"""Tiny synthetic classification data and models for the training tests (fast on CPU)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch.utils.data import Dataset


def _seed(*parts) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:4], "big")


def toy_arrays(n: int, num_classes: int = 3, dim: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Linearly separable blobs: ``x (n, dim)`` float32 around well-separated class centres, ``y (n,)``."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(num_classes, dim, generator=torch.Generator().manual_seed(1234)) * 3.0
    y = torch.arange(n) % num_classes
    x = centres[y] + 0.5 * torch.randn(n, dim, generator=g)
    return x.float(), y.long()


class ToyDataset(Dataset):
    """Items ``(x (dim,), label)``; with ``augment`` adds noise seeded from (seed, epoch, index)."""

    def __init__(self, n: int, *, num_classes: int = 3, dim: int = 8, data_seed: int = 0, augment: bool = False,
                 aug_seed: int = 0, nan_from_epoch: int | None = None, epoch_log: Path | None = None):
        self.x, self.y = toy_arrays(n, num_classes, dim, data_seed)
        self.augment, self.aug_seed = augment, aug_seed
        self.nan_from_epoch = nan_from_epoch
        self.epoch_log = epoch_log
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        x = self.x[i].clone()
        if self.augment:
            g = torch.Generator().manual_seed(_seed(self.aug_seed, self.epoch, i))
            x = x + 0.3 * torch.randn(x.shape, generator=g)
        if self.epoch_log is not None:  # appended from whichever process (worker) builds the item
            with open(self.epoch_log, "a") as f:
                f.write(f"{self.epoch} {i} {os.getpid()} {x.sum().item()!r}\n")
        if self.nan_from_epoch is not None and self.epoch >= self.nan_from_epoch:
            x = torch.full_like(x, float("nan"))
        return x, int(self.y[i])


class DictToyDataset(ToyDataset):
    """Same data with ``inputs`` split into a dict ``{"a": x[:k], "b": x[k:]}``."""

    def __getitem__(self, i: int):
        x, y = super().__getitem__(i)
        return {"a": x[:3], "b": x[3:]}, y


class TinyMLP(torch.nn.Module):
    def __init__(self, dim: int = 8, num_classes: int = 3, hidden: int = 16, dropout: float = 0.0):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.ReLU(), torch.nn.Dropout(dropout),
                                       torch.nn.Linear(hidden, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class DictMLP(TinyMLP):
    def forward(self, inputs: dict) -> torch.Tensor:  # type: ignore[override]
        return self.net(torch.cat([inputs["a"], inputs["b"]], dim=1))


class TinyConv(torch.nn.Module):
    """Treats the 8 features as a 1x2x4 image: exercises conv + batch norm under autocast."""

    def __init__(self, num_classes: int = 3):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(4 * 2 * 4, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn(self.conv(x.view(-1, 1, 2, 4))))
        return self.fc(h.flatten(1))


def make_model(seed: int = 0, **kw) -> TinyMLP:
    torch.manual_seed(seed)
    return TinyMLP(**kw)
