"""Cross-attention fusion: one token per modality, the tokens attend to one another through
multi-head attention (1-2 pre-norm transformer layers), missing modalities masked as keys.

    streams --MaskedStreams--> f_s --project_s--> t_s + e_s (B, H)   e_s: learned modality embedding
    [t_1 .. t_S] --layers x (LN -> MHA(keys: available tokens) -> +, LN -> MLP -> +)--> [u_1 .. u_S]
    mean of the AVAILABLE u_s --LN, dropout--> linear --> logits (B, C)

A missing modality's token (its learned default, projected) still asks questions, but no token
attends to it and it is left out of the pooling. A clip with no modality at all uses every token.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from core.config import ConfigError
from fusion.heads.base import FusionHead


class _AttentionLayer(nn.Module):
    """Pre-norm transformer layer: ``forward(x (B, S, H), key_missing (B, S) bool) -> (B, S, H)``."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_missing: torch.Tensor) -> torch.Tensor:
        y = self.norm1(x)
        x = x + self.dropout(self.attn(y, y, y, key_padding_mask=key_missing, need_weights=False)[0])
        return x + self.dropout(self.mlp(self.norm2(x)))


class CrossAttentionFusionHead(FusionHead):
    """``forward(inputs) -> logits (B, C)``; ``inputs`` as in :mod:`fusion.heads.inputs`."""

    def __init__(self, *, stream_dims: Mapping[str, int], num_classes: int, hidden_dim: int = 64,
                 num_heads: int = 4, num_layers: int = 1, dropout: float = 0.1,
                 modality_dropout: float = 0.2) -> None:
        for name, value in (("num_layers", num_layers), ("num_heads", num_heads), ("hidden_dim", hidden_dim)):
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"model.{name} must be an integer >= 1, got {value!r}")
        if hidden_dim % num_heads:
            raise ConfigError(f"model.hidden_dim {hidden_dim} must be a multiple of num_heads {num_heads}")
        super().__init__(stream_dims=stream_dims, num_classes=num_classes, modality_dropout=modality_dropout)
        self.project = nn.ModuleDict({s: nn.Linear(d, hidden_dim) for s, d in self.stream_dims.items()})
        self.modality_embedding = nn.Parameter(torch.randn(len(self.streams), hidden_dim) * 0.02)
        self.layers = nn.ModuleList(_AttentionLayer(hidden_dim, num_heads, dropout) for _ in range(num_layers))
        self.norm = nn.LayerNorm(hidden_dim)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden_dim, num_classes)

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        features, mask = self.masked_features(inputs)
        x = torch.stack([self.project[s](f) for s, f in zip(self.streams, features)], dim=1) + self.modality_embedding
        present = mask > 0
        present = present | ~present.any(dim=1, keepdim=True)  # a clip with nothing: attend to every token
        for layer in self.layers:
            x = layer(x, ~present)
        w = present.to(x.dtype).unsqueeze(-1)
        pooled = (x * w).sum(dim=1) / w.sum(dim=1)
        return self.fc(self.dropout(self.norm(pooled)))


#: the builder the head table calls: the class itself. ``configs/fusion/cross_attention.yaml``'s ``model:``
#: section is its keyword arguments (``stream_dims`` {stream: D_s} and ``num_classes`` come from the features)
create_cross_attention_fusion = CrossAttentionFusionHead
