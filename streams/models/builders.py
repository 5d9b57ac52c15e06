"""The builders of stream models: a backbone (and optional attention neck) wrapped into a
:class:`~streams.models.recognizer.StreamRecognizer`, with local pretrained weights applied here,
so the recognizer itself does not know how weights are loaded.
"""
from __future__ import annotations

from typing import Callable, Mapping

from torch import nn

from core.config import ConfigError
from streams.models.attention import DualAttention
from streams.models.backbones import create_resnet3d_backbone, create_slow_backbone
from streams.models.heads import create_classification_head
from streams.models.pretrained import apply_pretrained
from streams.models.recognizer import ImageNetNormalize, StreamRecognizer


def create_stream_model(
    *,
    backbone: nn.Module,
    num_classes: int,
    attention: bool | Callable[[int], nn.Module] = False,
    attention_per_frame: bool = True,
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
        attention_per_frame: with ``attention=True``, the spatial softmax runs over the H'xW'
            regions of each frame (True) or over all T'xH'xW' positions of the clip (False).
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
        neck: nn.Module | None = DualAttention(channels, per_frame=attention_per_frame)
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


#: ``arch`` values of :func:`create_resnet3d_stream`.
RESNET3D_ARCHS = ("slow", "resnet3d")


def create_resnet3d_stream(
    *,
    num_classes: int,
    arch: str = "slow",
    in_channels: int = 3,
    depth: int = 50,
    stem_dim_out: int = 64,
    shortcut_type: str = "B",
    zero_init_residual: bool = False,
    attention: bool | Callable[[int], nn.Module] = False,
    attention_per_frame: bool = True,
    dropout: float = 0.5,
    pretrained: Mapping[str, str] | None = None,
    uint8_rgb_input: bool = False,
) -> StreamRecognizer:
    """The one builder of the 3D-ResNet streams (visual, flow, face; they differ only in these
    arguments; their specs in :mod:`streams.specs` choose them).

    Args:
        num_classes: number of emotion classes.
        arch: ``"resnet3d"``: Hara et al.'s 3D ResNet, the network of the 3D-ResNets-PyTorch
            Kinetics/UCF101/HMDB51 checkpoints (7x7x7 stem, 3x3x3 max-pool and convolutions,
            time downsampled by 16: T' = ceil(T / 16)); ``"slow"``: pytorchvideo's Slow pathway
            (1x7x7 stem, temporal kernels in res4/res5 only, T' = T). See
            :mod:`streams.models.backbones`.
        in_channels: input channels (3 for RGB keyframes and faces, 2 for x/y flow).
        depth: 3D ResNet depth: 18, 34, 50, 101, 152 for ``resnet3d``; 50, 101, 152 for ``slow``.
        stem_dim_out: stem width; features have ``32 * stem_dim_out`` dims (2048 at 64), or
            ``8 * stem_dim_out`` for ``resnet3d`` depths 18/34.
        shortcut_type: ``resnet3d`` only: "B" (1x1-conv shortcuts; Hara's default and every
            published checkpoint but the 2017 resnet-18/34-kinetics.pth) or "A" (those two).
        zero_init_residual: ``resnet3d`` only: every block starts as its shortcut (see
            :func:`streams.models.backbones.create_resnet`); for training from random init.
        attention: True for spatial + channel attention on the last-stage map, False for none,
            or a callable ``channels -> nn.Module``.
        attention_per_frame: spatial softmax per frame (True) or over the whole clip (False).
        dropout: dropout before the classifier.
        pretrained: optional ``{"path", "format"}``; formats ``hara3d`` (``resnet3d``),
            ``pytorchvideo3d`` (``slow``), ``inflate2d`` (both; a 2-channel stem is built from
            RGB weights averaged over channels) or ``stream``; without ``format`` it is read
            from the file. See :mod:`streams.models.pretrained`. The report lands in
            ``model.load_report``.
        uint8_rgb_input: the input is uint8 RGB clips, normalised inside the model on its device
            (:class:`~streams.models.recognizer.ImageNetNormalize`; the visual and face streams).

    Returns:
        A StreamRecognizer: ``(B, in_channels, T, H, W)`` -> logits ``(B, num_classes)``;
        ``features`` ``(B, backbone.out_channels)``.
    """
    if arch == "resnet3d":
        backbone: nn.Module = create_resnet3d_backbone(depth=depth, in_channels=in_channels,
                                                       stem_dim_out=stem_dim_out, shortcut_type=shortcut_type,
                                                       zero_init_residual=zero_init_residual)
    elif arch == "slow":
        if shortcut_type != "B":
            raise ConfigError(f"shortcut_type {shortcut_type!r} is an option of arch 'resnet3d'; "
                             "the slow pathway has 1x1-conv shortcuts (B)")
        if zero_init_residual:
            raise ConfigError("zero_init_residual is an option of arch 'resnet3d'")
        backbone = create_slow_backbone(depth=depth, in_channels=in_channels, stem_dim_out=stem_dim_out)
    else:
        raise ConfigError(f"model.arch must be one of {RESNET3D_ARCHS}, got {arch!r}")
    model = create_stream_model(backbone=backbone, num_classes=num_classes, attention=attention,
                                attention_per_frame=attention_per_frame, dropout=dropout,
                                input_adapter=ImageNetNormalize() if uint8_rgb_input else None)
    return apply_pretrained(model, pretrained)
