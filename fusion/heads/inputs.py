"""The front every neural fusion head shares: the stream features of a batch, standardised, with
modality dropout in training and learned defaults in the slots of missing streams.

A head's inputs (what :class:`fusion.dataset.FeatureDataset` items collate to, and what
:class:`fusion.prediction.Predictor` builds for one clip) are a dict:

* ``inputs[s]``        (B, D_s) float: stream ``s``'s features (a zero row where it is missing),
* ``inputs["mask"]``   (B, S) float: 1 where the stream is available, in the head's stream order,
* ``inputs["probs"]``  (B, S, C) float: each stream's own class probabilities (zero rows where
  missing), for the heads that fuse scores instead of features.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from torch import nn

from fusion.heads.missing import LearnedDefault, ModalityDropout

MASK_KEY = "mask"
PROBS_KEY = "probs"


def standardisation(features: np.ndarray, available: np.ndarray) -> tuple[np.ndarray, float]:
    """``(mean (D,) float32, scale)`` of one stream's training features ``features`` (N, D) over
    the clips where ``available`` (N,) is true: the per-dimension mean and ONE standard deviation
    for the whole stream (+1e-6). ``(zeros, 1.0)`` when no clip has the stream.

    One scale per stream on purpose: post-ReLU features have dimensions that are (almost)
    constant on the training clips, and dividing those by their tiny std turns any val/test
    deviation into a huge input that swamps the head."""
    f = np.asarray(features, dtype=np.float32)[np.asarray(available, dtype=bool)]
    if len(f) == 0:
        return np.zeros(features.shape[1], np.float32), 1.0
    mean = f.mean(0)
    return mean, float((f - mean).std()) + 1e-6


class MaskedStreams(nn.Module):
    """``forward(inputs) -> (features [(B, D_s) per stream, in stream order], mask (B, S))``.

    Each stream is centred with its training mean and divided by its training scale
    (:func:`standardisation`, buffers ``mean_<s>``/``std_<s>``, so checkpoints carry them); the
    mask passes through :class:`ModalityDropout`; a missing stream's slot holds its
    :class:`LearnedDefault` (``defaults[s]``). The returned mask is the one after dropout: heads
    use it, not ``inputs["mask"]``."""

    def __init__(self, *, stream_dims: Mapping[str, int], modality_dropout: float = 0.2) -> None:
        super().__init__()
        if not stream_dims:
            raise ValueError("fusion needs at least one stream")
        if MASK_KEY in stream_dims or PROBS_KEY in stream_dims:
            raise ValueError(f"a stream may not be called {MASK_KEY!r} or {PROBS_KEY!r}")
        self.streams: tuple[str, ...] = tuple(stream_dims)
        self.defaults = nn.ModuleDict({s: LearnedDefault(int(d)) for s, d in stream_dims.items()})
        for s, d in stream_dims.items():
            self.register_buffer(f"mean_{s}", torch.zeros(int(d)))
            self.register_buffer(f"std_{s}", torch.ones(int(d)))
        self.drop = ModalityDropout(modality_dropout)

    def set_normalisation(self, features: Mapping[str, np.ndarray], available: Mapping[str, np.ndarray]) -> None:
        """Set each stream's mean and scale from its training ``features[s]`` (N, D_s) where
        ``available[s]`` (N,) is true (:func:`standardisation`); a stream no clip has keeps 0 and 1."""
        for s in self.streams:
            if not np.asarray(available[s], dtype=bool).any():
                continue
            mean, scale = standardisation(features[s], available[s])
            getattr(self, f"mean_{s}").copy_(torch.from_numpy(mean))
            getattr(self, f"std_{s}").fill_(scale)

    def standardise(self, s: str, x: torch.Tensor) -> torch.Tensor:
        """Stream ``s``'s features (B, D_s) centred and scaled."""
        return (x.float() - getattr(self, f"mean_{s}")) / getattr(self, f"std_{s}")

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        mask = self.drop(inputs[MASK_KEY].float())
        out = [self.defaults[s](self.standardise(s, inputs[s]), mask[:, i:i + 1]) for i, s in enumerate(self.streams)]
        return out, mask
