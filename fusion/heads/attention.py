"""Attention fusion: per-clip modality weights from a small scoring network, softmax over the
streams the clip has.

    streams --MaskedStreams--> f_s --project_s--> z_s (B, H)   one projection per stream
    z_s --score (shared: H -> score_dim -> tanh -> 1)--> e_s
    a = softmax over AVAILABLE streams of e  (a missing stream gets weight 0)
    sum_s a_s z_s --dropout--> linear --> logits (B, C)

A clip with no stream at all (nothing decodable) weighs the learned defaults evenly.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from core.config import check_widths
from fusion.heads.base import FusionHead


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax of ``scores`` (B, S) over the entries where ``mask`` (B, S) > 0; the others get 0.
    A row with no entry set is a softmax over all of them."""
    allowed = mask > 0
    allowed = allowed | ~allowed.any(dim=1, keepdim=True)
    return torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=1)


class AttentionFusionHead(FusionHead):
    """``forward(inputs) -> logits (B, C)``; ``inputs`` as in :mod:`fusion.heads.inputs`.
    :meth:`modality_weights` gives the per-clip weights (B, S)."""

    def __init__(self, *, stream_dims: Mapping[str, int], num_classes: int, hidden_dim: int = 64,
                 score_dim: int = 32, dropout: float = 0.3, modality_dropout: float = 0.2) -> None:
        check_widths(hidden_dim=hidden_dim, score_dim=score_dim)
        super().__init__(stream_dims=stream_dims, num_classes=num_classes, modality_dropout=modality_dropout)
        self.project = nn.ModuleDict({s: nn.Sequential(nn.Linear(d, hidden_dim), nn.ReLU())
                                      for s, d in self.stream_dims.items()})
        self.score = nn.Sequential(nn.Linear(hidden_dim, score_dim), nn.Tanh(), nn.Linear(score_dim, 1))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden_dim, num_classes)

    def _tokens_and_weights(self, inputs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        features, mask = self.masked_features(inputs)
        z = torch.stack([self.project[s](f) for s, f in zip(self.streams, features)], dim=1)  # (B, S, H)
        return z, masked_softmax(self.score(z).squeeze(-1), mask)

    def modality_weights(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """(B, S): each clip's weight per stream (rows sum to 1; 0 for a missing stream)."""
        return self._tokens_and_weights(inputs)[1]

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        z, w = self._tokens_and_weights(inputs)
        return self.fc(self.dropout((w.unsqueeze(-1) * z).sum(dim=1)))


#: the builder the head table calls: the class itself. ``configs/fusion/attention.yaml``'s ``model:``
#: section is its keyword arguments (``stream_dims`` {stream: D_s} and ``num_classes`` come from the features)
create_attention_fusion = AttentionFusionHead
