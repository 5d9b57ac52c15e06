"""Backbones: a 3D ResNet (pytorchvideo) for clips and a 2D ResNet (torchvision) for images.

Both return the last stage's feature map (no pooling, no classifier) and expose
``out_channels``. Their ``state_dict`` names are those of the library they are built from
(pytorchvideo ``blocks.0 .. blocks.4``; torchvision ``conv1, bn1, layer1 .. layer4``), so
checkpoints in those formats load without renaming (see ``streams/models/pretrained.py``).
"""
from __future__ import annotations

import warnings
from typing import Callable, Sequence

import torch
import torchvision
from torch import nn

with warnings.catch_warnings():
    # pytorchvideo imports fvcore, whose fvcore/nn/focal_loss.py calls torch.jit.script at
    # import time; torch deprecates that call, so every tool printed a FutureWarning at start
    # that concerns fvcore's code (its last release, 0.1.5.post20221221, predates the
    # deprecation), not ours. Silence just that warning, only while this import runs.
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is ", category=FutureWarning,
                            module=r"torch\.jit\._script")
    from pytorchvideo.models.resnet import create_resnet

Kernel3d = tuple[int, int, int]

RESNET3D_DEPTHS = (50, 101, 152)
RESNET2D_DEPTHS = (18, 34, 50, 101, 152)


class ResNet3dBackbone(nn.Module):
    """pytorchvideo ResNet without its head: (B, C_in, T, H, W) -> (B, C, T', H', W').

    ``blocks`` is the pytorchvideo ``Net.blocks`` list minus the head (``blocks.0`` stem,
    ``blocks.1 .. blocks.4`` res2..res5), so names match pytorchvideo checkpoints.
    """

    def __init__(self, blocks: nn.ModuleList, *, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.blocks = blocks
        self.in_channels = in_channels
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"3D backbone expects a clip of shape (B, {self.in_channels}, T, H, W), got {tuple(x.shape)}"
            )
        for block in self.blocks:
            x = block(x)
        return x


def create_resnet3d_backbone(
    *,
    depth: int = 50,
    in_channels: int = 3,
    stem_dim_out: int = 64,
    stem_conv_kernel_size: Kernel3d = (1, 7, 7),
    stem_conv_stride: Kernel3d = (1, 2, 2),
    stage_conv_a_kernel_size: Sequence[Kernel3d] = ((1, 1, 1), (1, 1, 1), (3, 1, 1), (3, 1, 1)),
    stage_spatial_stride: Sequence[int] = (1, 2, 2, 2),
    stage_temporal_stride: Sequence[int] = (1, 1, 1, 1),
    norm: Callable[..., nn.Module] = nn.BatchNorm3d,
    activation: Callable[..., nn.Module] = nn.ReLU,
) -> ResNet3dBackbone:
    """Build a bottleneck 3D ResNet with ``pytorchvideo.models.resnet.create_resnet(head=None)``.

    The defaults are pytorchvideo's ``slow_r50`` ("Slow" pathway of SlowFast): a (1, 7, 7) stem,
    temporal kernels of 3 only in conv_a of res4/res5, and no temporal striding anywhere, so a
    16-keyframe clip keeps T' = T (the keyframes are far apart in time; pooling them early would
    mix unrelated moments). Spatially the net downsamples by 32 (stem conv and max-pool 2 each,
    res3..res5 2 each, stride on the 3x3 conv_b as in torchvision's "v1.5"), so
    224 px -> 7, 112 px -> 4 (rounded up), 32 px -> 1.

    Args:
        depth: 50, 101 or 152 (stage depths (3,4,6,3), (3,4,23,3), (3,8,36,3)).
        in_channels: C_in of the input clip (3 for RGB, 2 for x/y optical flow).
        stem_dim_out: stem width; stage widths follow as 4x, 8x, 16x, 32x of it.
        stem_conv_kernel_size, stem_conv_stride: stem conv (T, H, W) kernel and stride.
        stage_conv_a_kernel_size: conv_a (T, H, W) kernel for res2..res5.
        stage_spatial_stride: spatial (H and W) stride of res2..res5.
        stage_temporal_stride: temporal stride of res2..res5.
        norm, activation: layer constructors, as in pytorchvideo.

    Returns:
        A module mapping (B, in_channels, T, H, W) -> (B, 32 * stem_dim_out, T', H', W')
        with ``out_channels = 32 * stem_dim_out`` (2048 for the standard width 64).
    """
    if depth not in RESNET3D_DEPTHS:
        raise ValueError(f"3D ResNet depth must be one of {RESNET3D_DEPTHS}, got {depth}")
    if len(stage_conv_a_kernel_size) != 4 or len(stage_spatial_stride) != 4 or len(stage_temporal_stride) != 4:
        raise ValueError("stage_conv_a_kernel_size, stage_spatial_stride and stage_temporal_stride "
                         "need 4 entries (res2..res5)")
    net = create_resnet(
        input_channel=in_channels,
        model_depth=depth,
        norm=norm,
        activation=activation,
        stem_dim_out=stem_dim_out,
        stem_conv_kernel_size=tuple(stem_conv_kernel_size),
        stem_conv_stride=tuple(stem_conv_stride),
        stage_conv_a_kernel_size=tuple(tuple(k) for k in stage_conv_a_kernel_size),
        stage_spatial_h_stride=tuple(stage_spatial_stride),
        stage_spatial_w_stride=tuple(stage_spatial_stride),
        stage_temporal_stride=tuple(stage_temporal_stride),
        head=None,
    )
    return ResNet3dBackbone(net.blocks, in_channels=in_channels, out_channels=stem_dim_out * 32)


class ResNet2dBackbone(nn.Module):
    """torchvision ResNet without ``avgpool`` and ``fc``: (B, C_in, H, W) -> (B, C, H', W').

    Submodules keep torchvision's names (``conv1, bn1, layer1 .. layer4``) so torchvision
    ImageNet state dicts load directly (their ``fc.*`` is the only part without a home).
    """

    def __init__(self, resnet: torchvision.models.ResNet) -> None:
        super().__init__()
        self.conv1 = resnet.conv1
        self.bn1 = resnet.bn1
        self.relu = resnet.relu
        self.maxpool = resnet.maxpool
        self.layer1 = resnet.layer1
        self.layer2 = resnet.layer2
        self.layer3 = resnet.layer3
        self.layer4 = resnet.layer4
        self.in_channels = resnet.conv1.in_channels
        self.out_channels = resnet.fc.in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f"2D backbone expects images of shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}"
            )
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)


def create_resnet2d_backbone(*, depth: int = 50, in_channels: int = 3) -> ResNet2dBackbone:
    """Build torchvision ``resnet{depth}(weights=None)`` without pooling and classifier.

    Args:
        depth: 18, 34, 50, 101 or 152.
        in_channels: C_in; 3 keeps the stem compatible with ImageNet weights (feed 1-channel
            spectrograms through a channel-repeating input adapter instead of changing this).

    Returns:
        A module mapping (B, in_channels, H, W) -> (B, C, H/32, W/32) (rounded up), with
        ``out_channels`` C = 512 for depths 18/34 and 2048 for 50/101/152.
    """
    if depth not in RESNET2D_DEPTHS:
        raise ValueError(f"2D ResNet depth must be one of {RESNET2D_DEPTHS}, got {depth}")
    resnet = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    if in_channels != 3:
        old = resnet.conv1
        resnet.conv1 = nn.Conv2d(in_channels, old.out_channels, kernel_size=old.kernel_size,
                                 stride=old.stride, padding=old.padding, bias=False)
    return ResNet2dBackbone(resnet)
