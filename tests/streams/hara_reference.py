"""A minimal, independent re-statement of Hara et al.'s 3D ResNet (3D-ResNets-PyTorch,
``models/resnet.py``), used by the tests to WRITE checkpoints in the layout of the published
files, so that loading them checks the project's ``resnet3d`` against the paper's code shape
rather than against itself.

Written the way their code is organised (``BasicBlock`` / ``Bottleneck`` with ``conv1..3``,
``bn1..3``, ``downsample`` as ``nn.Sequential(conv1x1x1, BatchNorm3d)`` for shortcut B or a
parameter-free function for shortcut A; ``ResNet`` with ``conv1`` (kernel (t, 7, 7), stride
(t_stride, 2, 2), padding (t // 2, 3, 3)), ``bn1``, ``maxpool`` (3, stride 2, padding 1),
``layer1..layer4`` (stride 2 from layer2 on, on the first block's 3x3x3 conv), ``avgpool``,
``fc``; widths ``[64, 128, 256, 512] * widen_factor``), and saved as their training script saves
(``{"epoch", "arch", "state_dict", "optimizer", ...}``, the model wrapped in ``nn.DataParallel``).
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


def conv3x3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv3d:
    return nn.Conv3d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv3d:
    return nn.Conv3d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_planes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm3d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3x3(planes, planes)
        self.bn2 = nn.BatchNorm3d(planes)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + residual)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_planes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv1x1x1(in_planes, planes)
        self.bn1 = nn.BatchNorm3d(planes)
        self.conv2 = conv3x3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm3d(planes)
        self.conv3 = conv1x1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm3d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + residual)


def downsample_basic_block(x, planes, stride):
    """Shortcut A: 1x1x1 average pooling with a stride (= subsampling), zero channels appended."""
    out = F.avg_pool3d(x, kernel_size=1, stride=stride)
    zero_pads = torch.zeros(out.size(0), planes - out.size(1), out.size(2), out.size(3), out.size(4))
    return torch.cat([out, zero_pads], dim=1)


class ResNet(nn.Module):
    def __init__(self, block, layers, block_inplanes, n_input_channels=3, conv1_t_size=7, conv1_t_stride=1,
                 no_max_pool=False, shortcut_type="B", widen_factor=1.0, n_classes=400):
        super().__init__()
        block_inplanes = [int(x * widen_factor) for x in block_inplanes]
        self.in_planes = block_inplanes[0]
        self.no_max_pool = no_max_pool
        self.conv1 = nn.Conv3d(n_input_channels, self.in_planes, kernel_size=(conv1_t_size, 7, 7),
                               stride=(conv1_t_stride, 2, 2), padding=(conv1_t_size // 2, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(self.in_planes)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, block_inplanes[0], layers[0], shortcut_type)
        self.layer2 = self._make_layer(block, block_inplanes[1], layers[1], shortcut_type, stride=2)
        self.layer3 = self._make_layer(block, block_inplanes[2], layers[2], shortcut_type, stride=2)
        self.layer4 = self._make_layer(block, block_inplanes[3], layers[3], shortcut_type, stride=2)
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.fc = nn.Linear(block_inplanes[3] * block.expansion, n_classes)

    def _make_layer(self, block, planes, blocks, shortcut_type, stride=1):
        downsample = None
        if stride != 1 or self.in_planes != planes * block.expansion:
            if shortcut_type == "A":
                downsample = partial(downsample_basic_block, planes=planes * block.expansion, stride=stride)
            else:
                downsample = nn.Sequential(conv1x1x1(self.in_planes, planes * block.expansion, stride),
                                           nn.BatchNorm3d(planes * block.expansion))
        layers = [block(self.in_planes, planes, stride, downsample)]
        self.in_planes = planes * block.expansion
        for _ in range(1, blocks):
            layers.append(block(self.in_planes, planes))
        return nn.Sequential(*layers)

    def trunk(self, x):
        """(B, C, T, H, W) -> layer4's map."""
        x = self.relu(self.bn1(self.conv1(x)))
        if not self.no_max_pool:
            x = self.maxpool(x)
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def features(self, x):
        """The pooled vector the classifier sees (B, C)."""
        return self.avgpool(self.trunk(x)).flatten(1)

    def forward(self, x):
        return self.fc(self.features(x))


def generate_model(model_depth, **kwargs) -> ResNet:
    layers = {18: [2, 2, 2, 2], 34: [3, 4, 6, 3], 50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3]}[model_depth]
    block = BasicBlock if model_depth in (18, 34) else Bottleneck
    return ResNet(block, layers, [64, 128, 256, 512], **kwargs)


def randomise(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random conv/linear weights and BN affine parameters and running statistics, eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Conv3d, nn.Linear)):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2.0 / fan_in) ** 0.5)
            elif isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.weight.copy_(0.5 + torch.rand(n, generator=generator))
                module.bias.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(n, generator=generator))
    return model.eval()


def save_checkpoint(model: ResNet, path: Path, *, arch: str, legacy: bool = False) -> Path:
    """Save as 3D-ResNets-PyTorch's training script does, the model inside ``nn.DataParallel``
    (keys ``module.conv1.weight``, ...), with its optimizer and scheduler state.

    ``legacy``: as the 2017 Kinetics files: the pre-1.6 serialization and no BatchNorm
    ``num_batches_tracked`` counters (PyTorch 0.3), no scheduler."""
    parallel = nn.DataParallel(model)
    optimizer = torch.optim.SGD(parallel.parameters(), lr=0.1, momentum=0.9)
    state = parallel.state_dict()
    assert all(k.startswith("module.") for k in state)
    checkpoint = {"epoch": 200, "arch": arch, "optimizer": optimizer.state_dict()}
    if legacy:
        checkpoint["state_dict"] = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
        torch.save(checkpoint, path, _use_new_zipfile_serialization=False)
    else:
        checkpoint["state_dict"] = state
        checkpoint["scheduler"] = torch.optim.lr_scheduler.MultiStepLR(optimizer, [50, 100, 150]).state_dict()
        torch.save(checkpoint, path)
    return path
