"""Concat-FC (the method's fusion): the frozen streams' features, concatenated with a 0/1
availability indicator per stream -> dropout -> linear (-> softmax in the loss / at prediction).

    streams --MaskedStreams--> [f_1 | ... | f_S | mask] --dropout--> linear --> logits (B, C)

A clip missing a stream (no audio track, no face found) has that slot filled by the stream's
learned default and the indicator tells the linear layer which slots are real
(:mod:`fusion.heads.inputs`). Modality dropout in training makes every subset of streams one the
head has seen.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from fusion.heads.base import FusionHead


class ConcatFusionHead(FusionHead):
    """``forward(inputs) -> logits (B, C)``; ``inputs`` as documented in :mod:`fusion.heads.inputs`."""

    def __init__(self, *, stream_dims: Mapping[str, int], num_classes: int, dropout: float = 0.5,
                 modality_dropout: float = 0.2) -> None:
        super().__init__(stream_dims=stream_dims, num_classes=num_classes, modality_dropout=modality_dropout)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(sum(self.stream_dims.values()) + len(self.streams), num_classes)

    def concat(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B, sum_s D_s + S): the standardised (or default) features of every stream, then the mask."""
        features, mask = self.masked_features(inputs)
        return torch.cat([*features, mask], dim=1)

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.fc(self.dropout(self.concat(inputs)))


#: the builder the head table calls: the class itself. ``configs/fusion/concat_fc.yaml``'s ``model:``
#: section is its keyword arguments (``stream_dims`` {stream: D_s} and ``num_classes`` come from the features)
create_concat_fc = ConcatFusionHead
