"""Concat-FC fusion (the method): concatenate the frozen streams' features -> dropout -> linear
(-> softmax in the loss / at prediction).

Missing modalities: a clip with no audio track or no detected face has that stream's slot
replaced by a learned "missing" vector, and a 0/1 availability indicator per stream is appended
to the concatenation, so the classifier knows which slots are real. During training, modality
dropout marks available streams as missing at random (never all of a clip's streams), so the
head learns to predict from any subset, as it must on real group video where faces are often
not found.

Each stream's features are centred with the train split's per-dimension mean and divided by
the stream's overall standard deviation (stored as buffers, so checkpoints carry them); streams
with very different scales then start on equal footing, which only rescales the linear layer's
input.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
from torch import nn


class ConcatFusionHead(nn.Module):
    """``forward(inputs) -> logits (B, C)`` where ``inputs`` has, per stream ``s``, ``inputs[s]``
    (B, D_s) features and ``inputs["mask"]`` (B, S) float, 1 = the stream is available."""

    def __init__(self, *, stream_dims: Mapping[str, int], num_classes: int, dropout: float = 0.5,
                 modality_dropout: float = 0.2) -> None:
        super().__init__()
        if not stream_dims:
            raise ValueError("fusion needs at least one stream")
        self.streams: tuple[str, ...] = tuple(stream_dims)
        self.stream_dims = dict(stream_dims)
        self.modality_dropout = float(modality_dropout)
        self.missing = nn.ParameterDict({s: nn.Parameter(torch.zeros(d)) for s, d in stream_dims.items()})
        for s, d in stream_dims.items():
            self.register_buffer(f"mean_{s}", torch.zeros(d))
            self.register_buffer(f"std_{s}", torch.ones(d))
        total = sum(stream_dims.values()) + len(self.streams)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(total, num_classes)
        self.num_classes = num_classes

    def set_normalisation(self, features: Mapping[str, np.ndarray], available: Mapping[str, np.ndarray]) -> None:
        """Standardise each stream with its available training features: per-dimension mean,
        one standard deviation for the whole stream.

        One scale per stream (not per dimension) on purpose: post-ReLU features have dimensions
        that are (almost) constant on the training clips, and dividing those by their tiny std
        turns any val/test deviation into a huge input that swamps the linear layer.
        """
        for s in self.streams:
            f = np.asarray(features[s], dtype=np.float32)[np.asarray(available[s], dtype=bool)]
            if len(f) == 0:
                continue
            mean = f.mean(0)
            scale = float((f - mean).std()) + 1e-6
            getattr(self, f"mean_{s}").copy_(torch.from_numpy(mean))
            getattr(self, f"std_{s}").fill_(scale)

    def drop_modalities(self, mask: torch.Tensor) -> torch.Tensor:
        """Training-time modality dropout: each available stream is dropped with probability
        ``modality_dropout``; a clip keeps at least one of its available streams."""
        if not self.training or self.modality_dropout <= 0:
            return mask
        keep = (torch.rand_like(mask) >= self.modality_dropout).to(mask.dtype)
        dropped = mask * keep
        none_left = (dropped.sum(1) == 0) & (mask.sum(1) > 0)
        return torch.where(none_left[:, None], mask, dropped)

    def concat(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        mask = self.drop_modalities(inputs["mask"].float())
        parts = []
        for i, s in enumerate(self.streams):
            f = (inputs[s].float() - getattr(self, f"mean_{s}")) / getattr(self, f"std_{s}")
            m = mask[:, i:i + 1]
            parts.append(m * f + (1 - m) * self.missing[s])
        parts.append(mask)
        return torch.cat(parts, dim=1)

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.fc(self.dropout(self.concat(inputs)))


def create_concat_fusion(*, stream_dims: Mapping[str, int], num_classes: int, dropout: float = 0.5,
                         modality_dropout: float = 0.2) -> ConcatFusionHead:
    """Builder for :class:`ConcatFusionHead` (the config's ``model:`` section is its arguments)."""
    return ConcatFusionHead(stream_dims=stream_dims, num_classes=num_classes, dropout=dropout,
                            modality_dropout=modality_dropout)


class FeatureDataset(torch.utils.data.Dataset):
    """Items ``({s: (D_s,) float32, "mask": (S,) float32}, label)`` from a :class:`FeatureSet`."""

    def __init__(self, feature_set, streams: Sequence[str]) -> None:
        self.fs = feature_set
        self.streams = tuple(streams)

    def __len__(self) -> int:
        return len(self.fs)

    def __getitem__(self, i: int):
        x = {s: torch.from_numpy(self.fs.features[s][i]) for s in self.streams}
        x["mask"] = torch.tensor([float(self.fs.available[s][i]) for s in self.streams])
        return x, int(self.fs.labels[i])
