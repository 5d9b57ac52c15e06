"""Gated fusion (a gated multimodal unit): each stream's projection is scaled by a sigmoid gate
computed from all streams and the availability mask.

    streams --MaskedStreams--> f_s --project_s, tanh--> h_s (B, H)
    g = sigmoid(gate([h_1 | ... | h_S | mask]))  split into g_s (B, H), one gate per modality
    sum_s g_s * h_s --dropout--> linear --> logits (B, C)

A missing stream's h_s comes from its learned default; the mask in the gates' input lets them
learn to close (or use) that slot.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from core.config import check_widths
from fusion.heads.base import FusionHead


class GatedFusionHead(FusionHead):
    """``forward(inputs) -> logits (B, C)``; ``inputs`` as in :mod:`fusion.heads.inputs`.
    :meth:`gates` gives the per-clip gate values (B, S, H)."""

    def __init__(self, *, stream_dims: Mapping[str, int], num_classes: int, hidden_dim: int = 64,
                 dropout: float = 0.3, modality_dropout: float = 0.2) -> None:
        check_widths(hidden_dim=hidden_dim)
        super().__init__(stream_dims=stream_dims, num_classes=num_classes, modality_dropout=modality_dropout)
        self.hidden_dim = int(hidden_dim)
        n = len(self.streams)
        self.project = nn.ModuleDict({s: nn.Linear(d, hidden_dim) for s, d in self.stream_dims.items()})
        self.gate = nn.Linear(n * hidden_dim + n, n * hidden_dim)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden_dim, num_classes)

    def _projections_and_gates(self, inputs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        features, mask = self.masked_features(inputs)
        h = torch.stack([torch.tanh(self.project[s](f)) for s, f in zip(self.streams, features)], dim=1)  # (B, S, H)
        g = torch.sigmoid(self.gate(torch.cat([h.flatten(1), mask], dim=1))).view_as(h)
        return h, g

    def gates(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B, S, H) gate values in (0, 1)."""
        return self._projections_and_gates(inputs)[1]

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        h, g = self._projections_and_gates(inputs)
        return self.fc(self.dropout((g * h).sum(dim=1)))


#: the builder the head table calls: the class itself. ``configs/fusion/gated.yaml``'s ``model:``
#: section is its keyword arguments (``stream_dims`` {stream: D_s} and ``num_classes`` come from the features)
create_gated_fusion = GatedFusionHead
