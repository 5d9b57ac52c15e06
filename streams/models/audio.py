"""Audio stream: 2D ResNet-101 on the log-mel spectrogram seen as an image.

Input (B, 1, n_mels, T) log-mel (128 bands) -> repeated to 3 channels (so ImageNet weights fit
unchanged) -> last-stage map (B, 2048, n_mels/32, T/32) -> pooled features (B, 2048) -> logits.
"""
from __future__ import annotations

from typing import Callable, Mapping

from torch import nn

from streams.models.backbones import create_resnet2d_backbone
from streams.models.pretrained import apply_pretrained
from streams.models.recognizer import RepeatChannels, StreamRecognizer, create_stream_model


def create_audio_stream(
    *,
    num_classes: int,
    depth: int = 101,
    stem_dim_out: int = 64,
    attention: bool | Callable[[int], nn.Module] = False,
    dropout: float = 0.5,
    pretrained: Mapping[str, str] | None = None,
) -> StreamRecognizer:
    """Build the log-mel stream.

    Args:
        num_classes: number of emotion classes.
        depth: torchvision ResNet depth (18, 34, 50, 101, 152).
        stem_dim_out: stem width (64: torchvision's, so ImageNet weights fit; 8: a tiny
            network of the same depth); features have 8x (18/34) or 32x (50+) this many dims,
            512 / 2048 at 64.
        attention: as in ``create_stream_model`` (off by default).
        dropout: dropout before the classifier.
        pretrained: optional ``{"path", "format"}`` (formats ``torchvision2d``, ``stream``;
            without ``format`` it is read from the file); the report lands in ``model.load_report``.

    Returns:
        A StreamRecognizer: (B, 1, n_mels, T) -> logits (B, num_classes).
    """
    backbone = create_resnet2d_backbone(depth=depth, in_channels=3, stem_dim_out=stem_dim_out)
    model = create_stream_model(backbone=backbone, num_classes=num_classes, attention=attention,
                                dropout=dropout, input_adapter=RepeatChannels(3))
    return apply_pretrained(model, pretrained)
