"""Fusion heads' training and evaluation items from a split of cached stream features."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from fusion.features import FeatureSet
from fusion.heads.inputs import MASK_KEY, PROBS_KEY


class FeatureDataset(torch.utils.data.Dataset):
    """Items ``(inputs, label)`` from a :class:`FeatureSet`, in the layout of
    :mod:`fusion.heads.inputs`: ``{s: (D_s,) float32, "mask": (S,) float32, "probs": (S, C)
    float32}`` for the streams ``streams`` in that order, and the int label (-1 when unlabelled)."""

    def __init__(self, feature_set: FeatureSet, streams: Sequence[str]) -> None:
        self.fs = feature_set
        self.streams = tuple(streams)
        self._mask = np.stack([np.asarray(feature_set.available[s], np.float32) for s in self.streams], axis=1)
        self._probs = np.stack([np.asarray(feature_set.probs[s], np.float32) for s in self.streams], axis=1)

    def __len__(self) -> int:
        return len(self.fs)

    def __getitem__(self, i: int):
        x = {s: torch.from_numpy(self.fs.features[s][i]) for s in self.streams}
        x[MASK_KEY] = torch.from_numpy(self._mask[i])
        x[PROBS_KEY] = torch.from_numpy(self._probs[i])
        return x, int(self.fs.labels[i])

    def batch(self) -> dict[str, torch.Tensor]:
        """Every item's inputs as one batch (N rows), for evaluation and the non-gradient heads
        (the feature tensors share memory with the FeatureSet's arrays: read them only)."""
        x = {s: torch.from_numpy(np.asarray(self.fs.features[s], np.float32)) for s in self.streams}
        x[MASK_KEY] = torch.from_numpy(self._mask.copy())
        x[PROBS_KEY] = torch.from_numpy(self._probs.copy())
        return x
