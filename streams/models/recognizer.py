"""The stream model: backbone -> optional attention neck -> global average pool -> head.

One class serves all four streams; :mod:`streams.models.builders` assembles it, and the specs
(``visual.py``, ``audio.py``, ``flow.py``, ``face.py``) only choose the backbone and defaults.
"""
from __future__ import annotations

import torch
from torch import nn

from keyframes.scorer import IMAGENET_MEAN, IMAGENET_STD
from streams.models.heads import GlobalAveragePool


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


class ImageNetNormalize(nn.Module):
    """Input adapter for RGB clips that travel as uint8: ``(B, 3, T, H, W)`` uint8 (0-255) ->
    float32 ``(x / 255 - mean) / std`` with the ImageNet mean and std, computed on the input's
    device (the same float32 operations as :func:`streams.views.rgb_clip` did on the CPU before,
    so a batch normalised here equals it bit for bit on the CPU). A floating-point input is taken
    as already normalised and passed through. The mean and std are not in the state dict."""

    def __init__(self) -> None:
        super().__init__()
        shape = (1, 3, 1, 1, 1)
        self.register_buffer("scale", torch.full(shape, 255.0), persistent=False)
        self.register_buffer("mean", torch.as_tensor(IMAGENET_MEAN).reshape(shape), persistent=False)
        self.register_buffer("std", torch.as_tensor(IMAGENET_STD).reshape(shape), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.uint8:
            return x
        if x.dim() != 5 or x.shape[1] != 3:
            raise ValueError(f"expected uint8 RGB clips (B, 3, T, H, W), got {tuple(x.shape)}")
        return (x.to(torch.float32) / self.scale.float() - self.mean.float()) / self.std.float()


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
        load_report: what was loaded from a pretrained file, as the JSON-ready dict of
            :meth:`training.weights.LoadReport.as_dict` (set by the builders' ``pretrained``
            argument; None when the model was not initialised from a file).
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
        self.load_report: dict | None = None

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """Input -> attended feature map (B, D, *S) before pooling."""
        return self.neck(self.backbone(self.input_adapter(x)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Input -> pooled feature vector (B, D) (no dropout, no classifier)."""
        return self.pool(self.feature_map(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Input -> class logits (B, num_classes)."""
        return self.head(self.features(x))
