"""Backbones: 3D ResNets for clips (two architectures) and a 2D ResNet for images.

* ``resnet3d`` (:func:`create_resnet3d_backbone`): the 3D ResNet of Hara et al. ("Can
  Spatiotemporal 3D CNNs Retrace the History of 2D CNNs and ImageNet?", CVPR 2018; code and
  Kinetics/UCF101/HMDB51 checkpoints in 3D-ResNets-PyTorch), whose checkpoints most video
  emotion work starts from: a 7x7x7 stem (temporal stride 1), a 3x3x3 max-pool, 3x3x3
  convolutions in every block. Built by :func:`create_resnet`, which also builds the 2D ResNet
  (:func:`create_resnet2d_backbone`): both share torchvision's module names.
* ``slow`` (:func:`create_slow_backbone`): pytorchvideo's Slow pathway (``slow_r50``), a 1x7x7
  stem and temporal kernels only in res4/res5.

Every backbone returns the last stage's feature map (no pooling, no classifier) and exposes
``in_channels`` and ``out_channels``. ``state_dict`` names are those of the code whose
checkpoints people hold, so those files load without renaming (``streams/models/pretrained.py``):
``conv1, bn1, layer1 .. layer4`` (``layerS.I.conv1..3 / bn1..3 / downsample.0 / downsample.1``)
for :class:`ResNetBackbone` (Hara's 3D files and torchvision's 2D ImageNet files alike) and
``blocks.0 .. blocks.4`` for :class:`SlowBackbone`.
"""
from __future__ import annotations

import warnings
from typing import Callable, Sequence

import torch
from torch import nn

from core.config import check_widths

with warnings.catch_warnings():
    # pytorchvideo imports fvcore, whose fvcore/nn/focal_loss.py calls torch.jit.script at
    # import time; torch deprecates that call, so every tool printed a FutureWarning at start
    # that concerns fvcore's code (its last release, 0.1.5.post20221221, predates the
    # deprecation), not ours. Silence just that warning, only while this import runs.
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is ", category=FutureWarning,
                            module=r"torch\.jit\._script")
    from pytorchvideo.models.resnet import create_resnet as create_pytorchvideo_resnet

Kernel3d = tuple[int, int, int]

#: blocks per stage (layer1..layer4) for each depth; 18/34 use basic blocks, 50+ bottlenecks.
RESNET_STAGE_DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
BASIC_BLOCK_DEPTHS = (18, 34)
SLOW_DEPTHS = (50, 101, 152)
#: "A": parameter-free shortcut (subsample, zero channels appended) where the shape changes;
#: "B": 1x1 convolution + norm (``downsample.0``/``downsample.1``) there; identity elsewhere.
SHORTCUT_TYPES = ("A", "B")


# --- the torchvision / Hara layout ---------------------------------------------------------------

class ZeroPadShortcut(nn.Module):
    """Shortcut type "A" (He et al. 2016): (B, C_in, *S) -> (B, C_out, *S'), the input subsampled
    by ``stride`` (S' = ceil(S / stride)) with C_out - C_in zero channels appended. No parameters.

    Hara's code detaches this branch (it concatenates ``.data``); here the identity part passes
    gradients, which changes training, not the function computed.
    """

    def __init__(self, *, out_channels: int, stride: Sequence[int]) -> None:
        super().__init__()
        self.out_channels = out_channels
        self.stride = tuple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in self.stride)]
        pad = self.out_channels - x.shape[1]
        return torch.cat([x, x.new_zeros(x.shape[0], pad, *x.shape[2:])], dim=1) if pad else x


class BasicBlock(nn.Module):
    """Two convolutions and a shortcut: ``act(bn2(conv2(act(bn1(conv1(x))))) + shortcut(x))``.

    Module names (``conv1, bn1, conv2, bn2, downsample``) are torchvision's and Hara's.
    ``downsample`` is None for the identity shortcut.
    """

    def __init__(self, *, conv1: nn.Module, bn1: nn.Module, conv2: nn.Module, bn2: nn.Module,
                 downsample: nn.Module | None, activation: nn.Module) -> None:
        super().__init__()
        self.conv1, self.bn1, self.conv2, self.bn2 = conv1, bn1, conv2, bn2
        self.act = activation
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.act(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act(out + shortcut)


class Bottleneck(nn.Module):
    """1x1 reduce, kxk (strided) conv, 1x1 expand, plus a shortcut:
    ``act(bn3(conv3(act(bn2(conv2(act(bn1(conv1(x)))))))) + shortcut(x))``.

    The stride sits on ``conv2`` (torchvision "v1.5" and Hara alike). Module names are theirs.
    """

    def __init__(self, *, conv1: nn.Module, bn1: nn.Module, conv2: nn.Module, bn2: nn.Module, conv3: nn.Module,
                 bn3: nn.Module, downsample: nn.Module | None, activation: nn.Module) -> None:
        super().__init__()
        self.conv1, self.bn1, self.conv2, self.bn2, self.conv3, self.bn3 = conv1, bn1, conv2, bn2, conv3, bn3
        self.act = activation
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.act(self.bn1(self.conv1(x)))
        out = self.act(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.act(out + shortcut)


class ResNetBackbone(nn.Module):
    """``conv1 -> bn1 -> act -> maxpool -> layer1 .. layer4``: (B, C_in, *S) -> (B, C, *S').

    S is (T, H, W) for a 3D net (``dims == 3``) and (H, W) for a 2D one. Attributes:
    ``in_channels``, ``out_channels`` (C), ``dims``.
    """

    def __init__(self, *, conv1: nn.Module, bn1: nn.Module, activation: nn.Module, maxpool: nn.Module | None,
                 layers: Sequence[nn.Module], in_channels: int, out_channels: int, dims: int) -> None:
        super().__init__()
        if len(layers) != 4:
            raise ValueError(f"a ResNet has 4 stages, got {len(layers)}")
        self.conv1, self.bn1, self.act = conv1, bn1, activation
        self.maxpool = maxpool if maxpool is not None else nn.Identity()
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.in_channels, self.out_channels, self.dims = in_channels, out_channels, dims

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != self.dims + 2 or x.shape[1] != self.in_channels:
            expected = "a clip of shape (B, {}, T, H, W)" if self.dims == 3 else "images of shape (B, {}, H, W)"
            raise ValueError(f"{self.dims}D backbone expects {expected.format(self.in_channels)}, got {tuple(x.shape)}")
        x = self.maxpool(self.act(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)


def _same_padding(kernel_size: Sequence[int]) -> tuple[int, ...]:
    return tuple(k // 2 for k in kernel_size)


def create_resnet_block(
    *,
    bottleneck: bool,
    dim_in: int,
    dim_inner: int,
    dim_out: int,
    stride: Sequence[int],
    conv_kernel_size: Sequence[int],
    shortcut_type: str,
    conv: Callable[..., nn.Module],
    norm: Callable[[int], nn.Module],
    activation: Callable[[], nn.Module],
) -> BasicBlock | Bottleneck:
    """One residual block (B, dim_in, *S) -> (B, dim_out, *S / stride).

    Args:
        bottleneck: True for 1x1 -> k -> 1x1 (dim_in -> dim_inner -> dim_inner -> dim_out), False
            for two k convolutions (dim_in -> dim_inner -> dim_out; dim_inner == dim_out).
        stride: per positional dim, on the first k conv (``conv1`` of a basic block, ``conv2``
            of a bottleneck) and on the shortcut.
        conv_kernel_size: the k of the k convolutions, e.g. (3, 3, 3) or (3, 3).
        shortcut_type: "A" or "B" (see :data:`SHORTCUT_TYPES`), used where the shape changes.
        conv: called as ``conv(c_in, c_out, kernel_size=, stride=, padding=, bias=False)``.
        norm: called with the channel count. activation: called without arguments.
    """
    stride, kernel = tuple(stride), tuple(conv_kernel_size)
    ones = (1,) * len(kernel)
    downsample: nn.Module | None = None
    if any(s != 1 for s in stride) or dim_in != dim_out:
        if shortcut_type == "A":
            if dim_out < dim_in:
                raise ValueError(f"shortcut A cannot reduce channels ({dim_in} -> {dim_out})")
            downsample = ZeroPadShortcut(out_channels=dim_out, stride=stride)
        elif shortcut_type == "B":
            downsample = nn.Sequential(conv(dim_in, dim_out, kernel_size=ones, stride=stride, padding=0, bias=False),
                                       norm(dim_out))
        else:
            raise ValueError(f"shortcut_type must be one of {SHORTCUT_TYPES}, got {shortcut_type!r}")
    pad = _same_padding(kernel)
    if bottleneck:
        return Bottleneck(
            conv1=conv(dim_in, dim_inner, kernel_size=ones, stride=ones, padding=0, bias=False), bn1=norm(dim_inner),
            conv2=conv(dim_inner, dim_inner, kernel_size=kernel, stride=stride, padding=pad, bias=False),
            bn2=norm(dim_inner),
            conv3=conv(dim_inner, dim_out, kernel_size=ones, stride=ones, padding=0, bias=False), bn3=norm(dim_out),
            downsample=downsample, activation=activation())
    return BasicBlock(
        conv1=conv(dim_in, dim_inner, kernel_size=kernel, stride=stride, padding=pad, bias=False), bn1=norm(dim_inner),
        conv2=conv(dim_inner, dim_out, kernel_size=kernel, stride=ones, padding=pad, bias=False), bn2=norm(dim_out),
        downsample=downsample, activation=activation())


def create_resnet(
    *,
    depth: int = 50,
    in_channels: int = 3,
    stem_dim_out: int = 64,
    stem_conv_kernel_size: Sequence[int] = (7, 7, 7),
    stem_conv_stride: Sequence[int] = (1, 2, 2),
    stem_pool_kernel_size: Sequence[int] | None = (3, 3, 3),
    stem_pool_stride: Sequence[int] = (2, 2, 2),
    stage_conv_kernel_size: Sequence[int] = (3, 3, 3),
    stage_stride: Sequence[Sequence[int]] = ((1, 1, 1), (2, 2, 2), (2, 2, 2), (2, 2, 2)),
    shortcut_type: str = "B",
    zero_init_residual: bool = False,
    conv: Callable[..., nn.Module] = nn.Conv3d,
    norm: Callable[[int], nn.Module] = nn.BatchNorm3d,
    pool: Callable[..., nn.Module] = nn.MaxPool3d,
    activation: Callable[[], nn.Module] = nn.ReLU,
) -> ResNetBackbone:
    """A ResNet in the torchvision / Hara layout, 3D by default (Hara's 3D ResNet), 2D when given
    2-tuples and 2D layers.

    The defaults are those of Hara's ``generate_model`` (3D-ResNets-PyTorch ``models/resnet.py``
    with its defaults ``conv1_t_size=7, conv1_t_stride=1``, max-pool on): stem conv kernel
    (7, 7, 7), stride (1, 2, 2), padding (3, 3, 3); max-pool kernel 3, stride 2, padding 1 over
    T, H and W; stages layer2..layer4 stride 2 over T, H and W on their first k conv; every
    k conv (3, 3, 3) with padding 1. So space shrinks by 32 (224 -> 7, 112 -> 4, 32 -> 1) and
    time by 16, rounded up (16 -> 1, 8 -> 1). Convolutions are initialised as both codes do
    (Kaiming normal, fan-out), norms to weight 1, bias 0.

    Args:
        depth: 18, 34 (basic blocks), 50, 101, 152 (bottlenecks); blocks per stage in
            :data:`RESNET_STAGE_DEPTHS`.
        in_channels: C_in (3 for RGB, 2 for x/y optical flow).
        stem_dim_out: stem width w; stage widths w, 2w, 4w, 8w, times 4 at the output of a
            bottleneck. 64 is the published width; tiny recipes use 8.
        stem_conv_kernel_size, stem_conv_stride: stem conv kernel and stride (padding k // 2).
        stem_pool_kernel_size: max-pool kernel after the stem (padding k // 2), None for none
            (Hara's ``no_max_pool``). stem_pool_stride: its stride.
        stage_conv_kernel_size: kernel of the k convolutions in every block.
        stage_stride: stride of layer1..layer4 (on the first block).
        shortcut_type: "B" (a 1x1 conv + norm where the shape changes; Hara's default, every
            bottleneck checkpoint and the 2020 r3d18/r3d34 ones) or "A" (zero-padding, no
            parameters; Hara's 2017 resnet-18/34-kinetics.pth).
        zero_init_residual: start the last norm of every block at weight 0, so each block
            starts as its shortcut (Goyal et al. 2017, torchvision's option of the same name).
            Off in Hara's and torchvision's defaults, and irrelevant when pretrained weights
            are loaded; a deep, narrow network trained from random init on a few hundred clips
            needs it (the tiny recipes: a 101-layer visual stream at width 8 stayed near chance
            on the test-size demo without it, and reached its cue ceiling with it).
        conv, norm, pool, activation: layer constructors (``nn.Conv2d, nn.BatchNorm2d,
            nn.MaxPool2d`` with 2-tuples for a 2D ResNet).

    Returns:
        A :class:`ResNetBackbone` (B, in_channels, *S) -> (B, out_channels, *S') with
        ``out_channels`` 8 w for depths 18/34 and 32 w for 50+ (512 / 2048 at w = 64).
    """
    if depth not in RESNET_STAGE_DEPTHS:
        raise ValueError(f"ResNet depth must be one of {sorted(RESNET_STAGE_DEPTHS)}, got {depth}")
    check_widths(in_channels=in_channels, stem_dim_out=stem_dim_out)
    dims = len(stem_conv_kernel_size)
    sizes = {"stem_conv_stride": stem_conv_stride, "stem_pool_stride": stem_pool_stride,
             "stage_conv_kernel_size": stage_conv_kernel_size,
             **{f"stage_stride[{i}]": s for i, s in enumerate(stage_stride)}}
    if stem_pool_kernel_size is not None:
        sizes["stem_pool_kernel_size"] = stem_pool_kernel_size
    wrong = [name for name, value in sizes.items() if len(value) != dims]
    if wrong or len(stage_stride) != 4:
        raise ValueError(f"stem_conv_kernel_size has {dims} dims; these do not: {wrong}" if wrong
                         else f"stage_stride needs 4 entries (layer1..layer4), got {len(stage_stride)}")
    bottleneck = depth not in BASIC_BLOCK_DEPTHS
    expansion = 4 if bottleneck else 1
    stem = conv(in_channels, stem_dim_out, kernel_size=tuple(stem_conv_kernel_size), stride=tuple(stem_conv_stride),
                padding=_same_padding(stem_conv_kernel_size), bias=False)
    maxpool = None
    if stem_pool_kernel_size is not None:
        maxpool = pool(kernel_size=tuple(stem_pool_kernel_size), stride=tuple(stem_pool_stride),
                       padding=_same_padding(stem_pool_kernel_size))
    layers, dim_in = [], stem_dim_out
    for stage, (num_blocks, stride) in enumerate(zip(RESNET_STAGE_DEPTHS[depth], stage_stride)):
        dim_inner = stem_dim_out * 2 ** stage
        blocks = []
        for i in range(num_blocks):
            blocks.append(create_resnet_block(
                bottleneck=bottleneck, dim_in=dim_in, dim_inner=dim_inner, dim_out=dim_inner * expansion,
                stride=stride if i == 0 else (1,) * dims, conv_kernel_size=stage_conv_kernel_size,
                shortcut_type=shortcut_type, conv=conv, norm=norm, activation=activation))
            dim_in = dim_inner * expansion
        layers.append(nn.Sequential(*blocks))
    net = ResNetBackbone(conv1=stem, bn1=norm(stem_dim_out), activation=activation(), maxpool=maxpool, layers=layers,
                         in_channels=in_channels, out_channels=dim_in, dims=dims)
    for module in net.modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(module, nn.modules.batchnorm._NormBase) and module.affine:
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    if zero_init_residual:
        for layer in layers:
            for block in layer:
                nn.init.zeros_((block.bn3 if bottleneck else block.bn2).weight)
    return net


def create_resnet3d_backbone(
    *,
    depth: int = 50,
    in_channels: int = 3,
    stem_dim_out: int = 64,
    shortcut_type: str = "B",
    zero_init_residual: bool = False,
    norm: Callable[[int], nn.Module] = nn.BatchNorm3d,
    activation: Callable[[], nn.Module] = nn.ReLU,
) -> ResNetBackbone:
    """Hara's 3D ResNet (arch ``resnet3d``): :func:`create_resnet` with its 3D defaults.

    (B, in_channels, T, H, W) -> (B, C, ceil(T / 16), ceil(H / 32), ceil(W / 32)) with C =
    ``32 * stem_dim_out`` (``8 * stem_dim_out`` for depths 18/34). Checkpoints of
    3D-ResNets-PyTorch load into it without renaming (format ``hara3d``).
    """
    return create_resnet(depth=depth, in_channels=in_channels, stem_dim_out=stem_dim_out,
                         shortcut_type=shortcut_type, zero_init_residual=zero_init_residual, norm=norm,
                         activation=activation)


def create_resnet2d_backbone(*, depth: int = 50, in_channels: int = 3, stem_dim_out: int = 64,
                             zero_init_residual: bool = False) -> ResNetBackbone:
    """torchvision's ResNet-``depth`` layout without pooling and classifier, at any width.

    At ``stem_dim_out=64`` it is torchvision's ``resnet{depth}`` (same module names, shapes and
    computation: 7x7 stem stride 2, 3x3 max-pool stride 2, stride on the 3x3 conv, 1x1-conv
    shortcuts), so torchvision ImageNet state dicts load directly (their ``fc.*`` aside).
    torchvision's own ``width_per_group`` only narrows the bottlenecks' inner convs, which is why
    this is built by :func:`create_resnet` instead.

    Args:
        depth: 18, 34, 50, 101 or 152.
        in_channels: C_in; 3 keeps the stem compatible with ImageNet weights (feed 1-channel
            spectrograms through a channel-repeating input adapter instead of changing this).
        stem_dim_out: stem width (64 published; e.g. 8 for a tiny ResNet-101).
        zero_init_residual: see :func:`create_resnet`.

    Returns:
        A module mapping (B, in_channels, H, W) -> (B, C, H/32, W/32) (rounded up), with
        ``out_channels`` C = 8 * stem_dim_out for depths 18/34 and 32 * stem_dim_out for 50+.
    """
    return create_resnet(depth=depth, in_channels=in_channels, stem_dim_out=stem_dim_out,
                         stem_conv_kernel_size=(7, 7), stem_conv_stride=(2, 2), stem_pool_kernel_size=(3, 3),
                         stem_pool_stride=(2, 2), stage_conv_kernel_size=(3, 3),
                         stage_stride=((1, 1), (2, 2), (2, 2), (2, 2)), shortcut_type="B",
                         zero_init_residual=zero_init_residual, conv=nn.Conv2d, norm=nn.BatchNorm2d, pool=nn.MaxPool2d)


# --- pytorchvideo's Slow pathway -----------------------------------------------------------------

class SlowBackbone(nn.Module):
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


def create_slow_backbone(
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
) -> SlowBackbone:
    """pytorchvideo's Slow pathway (arch ``slow``), by ``pytorchvideo.models.resnet.create_resnet(head=None)``.

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
    if depth not in SLOW_DEPTHS:
        raise ValueError(f"3D ResNet depth must be one of {SLOW_DEPTHS}, got {depth}")
    check_widths(in_channels=in_channels, stem_dim_out=stem_dim_out)
    if len(stage_conv_a_kernel_size) != 4 or len(stage_spatial_stride) != 4 or len(stage_temporal_stride) != 4:
        raise ValueError("stage_conv_a_kernel_size, stage_spatial_stride and stage_temporal_stride "
                         "need 4 entries (res2..res5)")
    net = create_pytorchvideo_resnet(
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
    return SlowBackbone(net.blocks, in_channels=in_channels, out_channels=stem_dim_out * 32)
