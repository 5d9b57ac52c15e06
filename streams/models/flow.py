"""Optical-flow stream: 3D ResNet-50 with a 2-channel stem over x/y flow fields.

Input (B, 2, 8, 224, 224) flow at 8 time points -> last-stage map (B, 2048, 8, 7, 7) -> pooled
features (B, 2048) -> logits.
"""
from __future__ import annotations

from typing import Callable, Mapping

from torch import nn

from streams.models.backbones import create_resnet3d_backbone
from streams.models.pretrained import apply_pretrained
from streams.models.recognizer import StreamRecognizer, create_stream_model


def create_flow_stream(
    *,
    num_classes: int,
    depth: int = 50,
    stem_dim_out: int = 64,
    attention: bool | Callable[[int], nn.Module] = False,
    dropout: float = 0.5,
    pretrained: Mapping[str, str] | None = None,
) -> StreamRecognizer:
    """Build the optical-flow stream.

    Args:
        num_classes: number of emotion classes.
        depth: 3D ResNet depth (50, 101, 152).
        stem_dim_out: stem width; features have 32 * stem_dim_out dims.
        attention: as in ``create_stream_model`` (off by default).
        dropout: dropout before the classifier.
        pretrained: optional ``{"path", "format"}``; ``inflate2d`` builds the 2-channel stem
            from RGB weights averaged over channels.

    Returns:
        A StreamRecognizer: (B, 2, T, H, W) -> logits (B, num_classes).
    """
    backbone = create_resnet3d_backbone(depth=depth, in_channels=2, stem_dim_out=stem_dim_out)
    model = create_stream_model(backbone=backbone, num_classes=num_classes, attention=attention, dropout=dropout)
    return apply_pretrained(model, pretrained)
