"""Visual stream: 3D ResNet-101 with spatial + channel attention over the 16 keyframes.

Input (B, 3, 16, 224, 224) RGB keyframes -> last-stage map (B, 2048, 16, 7, 7) -> DualAttention
-> pooled features (B, 2048) -> logits (B, num_classes).
"""
from __future__ import annotations

from typing import Callable, Mapping

from torch import nn

from streams.models.backbones import create_resnet3d_backbone
from streams.models.pretrained import apply_pretrained
from streams.models.recognizer import StreamRecognizer, create_stream_model


def create_visual_stream(
    *,
    num_classes: int,
    depth: int = 101,
    stem_dim_out: int = 64,
    attention: bool | Callable[[int], nn.Module] = True,
    dropout: float = 0.5,
    pretrained: Mapping[str, str] | None = None,
) -> StreamRecognizer:
    """Build the keyframe stream.

    Args:
        num_classes: number of emotion classes (3 for VGAF).
        depth: 3D ResNet depth (50, 101, 152).
        stem_dim_out: stem width; features have 32 * stem_dim_out dims (2048 at 64).
        attention: True for spatial + channel attention on the last-stage map, False for none,
            or a callable channels -> module.
        dropout: dropout before the classifier.
        pretrained: optional ``{"path", "format"}`` (formats ``pytorchvideo3d``, ``inflate2d``,
            ``stream``), see ``streams.models.pretrained``.

    Returns:
        A StreamRecognizer: (B, 3, T, H, W) -> logits (B, num_classes); ``features`` (B, 32*stem_dim_out).
    """
    backbone = create_resnet3d_backbone(depth=depth, in_channels=3, stem_dim_out=stem_dim_out)
    model = create_stream_model(backbone=backbone, num_classes=num_classes, attention=attention, dropout=dropout)
    return apply_pretrained(model, pretrained)
