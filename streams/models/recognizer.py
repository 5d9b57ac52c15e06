"""The stream model: backbone -> optional attention neck -> global average pool -> head.

One class and one builder serve all four streams; ``visual.py``, ``audio.py``, ``flow.py`` and
``face.py`` only choose the backbone and defaults.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from streams.models.attention import DualAttention
from streams.models.heads import GlobalAveragePool, create_classification_head


class RepeatChannels(nn.Module):
    """Input adapter (B, 1, *S) -> (B, repeats, *S), e.g. a log-mel image to 3 "colour"
    channels so an ImageNet stem fits unchanged."""

    def __init__(self, repeats: int = 3) -> None:
        super().__init__()
        self.repeats = repeats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() < 3 or x.shape[1] != 1:
            raise ValueError(f"expected a 1-channel input (B, 1, ...), got {tuple(x.shape)}")
        return x.expand(-1, self.repeats, *x.shape[2:])


class StreamRecognizer(nn.Module):
    """backbone -> neck -> pool -> head.

    Attributes:
        input_adapter: applied to the input first (``nn.Identity`` when none).
        backbone: (B, C_in, ...) -> feature map (B, D, *S); has ``out_channels`` = D.
        neck: attention on the feature map (``nn.Identity`` when none), shape-preserving.
        pool: (B, D, *S) -> (B, D).
        head: (B, D) -> logits (B, num_classes).
        feature_dim: D, the length of :meth:`features` vectors (what fusion concatenates).
        num_classes: number of logits.
    """

    def __init__(
        self,
        *,
        backbone: nn.Module,
        neck: nn.Module | None,
        head: nn.Module,
        feature_dim: int,
        num_classes: int,
        input_adapter: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.input_adapter = input_adapter if input_adapter is not None else nn.Identity()
        self.backbone = backbone
        self.neck = neck if neck is not None else nn.Identity()
        self.pool = GlobalAveragePool()
        self.head = head
        self.feature_dim = feature_dim
        self.num_classes = num_classes

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Input -> attended feature map (B, D, *S) before pooling."""
        return self.neck(self.backbone(self.input_adapter(x)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Input -> pooled feature vector (B, D) (no dropout, no classifier)."""
        return self.pool(self.feature_map(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Input -> class logits (B, num_classes)."""
        return self.head(self.features(x))


def create_stream_model(
    *,
    backbone: nn.Module,
    num_classes: int,
    attention: bool | Callable[[int], nn.Module] = False,
    dropout: float = 0.5,
    input_adapter: nn.Module | None = None,
) -> StreamRecognizer:
    """Assemble a :class:`StreamRecognizer` around a backbone.

    Args:
        backbone: a module with an ``out_channels`` attribute mapping the (adapted) input to a
            feature map (B, out_channels, *S), e.g. from ``streams.models.backbones``.
        num_classes: number of logits.
        attention: ``True`` for :class:`~streams.models.attention.DualAttention` (spatial +
            channel), ``False`` for none, or a callable ``channels -> nn.Module`` building a
            shape-preserving neck.
        dropout: dropout rate before the classifier.
        input_adapter: optional module applied to the raw input first.

    Returns:
        The model; ``model(x)`` gives logits (B, num_classes), ``model.features(x)`` the
        (B, backbone.out_channels) vector.
    """
    channels = getattr(backbone, "out_channels", None)
    if not isinstance(channels, int):
        raise ValueError(f"backbone {type(backbone).__name__} has no integer 'out_channels' attribute")
    if attention is True:
        neck: nn.Module | None = DualAttention(channels)
    elif attention is False or attention is None:
        neck = None
    elif callable(attention):
        neck = attention(channels)
    else:
        raise TypeError(f"attention must be a bool or a callable channels -> nn.Module, got {attention!r}")
    head = create_classification_head(in_features=channels, num_classes=num_classes, dropout=dropout)
    return StreamRecognizer(
        backbone=backbone,
        neck=neck,
        head=head,
        feature_dim=channels,
        num_classes=num_classes,
        input_adapter=input_adapter,
    )
