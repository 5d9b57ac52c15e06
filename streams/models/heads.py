"""Pooling and classification heads: feature map -> feature vector -> class logits."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class GlobalAveragePool(nn.Module):
    """Adaptive average pooling to one position, flattened: (B, C, *S) -> (B, C).

    Works for 3D maps (B, C, T', H', W'), 2D maps (B, C, H', W') and sequences (B, C, L) of any
    size, including the 1x1 maps that tiny test inputs produce.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 5:
            return F.adaptive_avg_pool3d(x, 1).flatten(1)
        if x.dim() == 4:
            return F.adaptive_avg_pool2d(x, 1).flatten(1)
        if x.dim() == 3:
            return F.adaptive_avg_pool1d(x, 1).flatten(1)
        raise ValueError(f"expected a (B, C, T, H, W), (B, C, H, W) or (B, C, L) feature map, got {tuple(x.shape)}")


class ClassificationHead(nn.Module):
    """Dropout then a linear layer: features (B, D) -> logits (B, num_classes)."""

    def __init__(self, *, in_features: int, num_classes: int, dropout: float = 0.5) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        # "proj" as in pytorchvideo's heads.
        self.proj = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.dropout(x))


def create_classification_head(*, in_features: int, num_classes: int, dropout: float = 0.5) -> ClassificationHead:
    """Build a dropout + linear head mapping (B, in_features) -> logits (B, num_classes)."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    return ClassificationHead(in_features=in_features, num_classes=num_classes, dropout=dropout)
