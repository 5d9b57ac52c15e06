"""Attention necks applied to a backbone's last feature map before global pooling.

All modules take (B, C, *S) maps, where S is the positional shape: (T', H', W') for 3D
backbones, (H', W') for 2D ones. They return a map of the same shape.

* :class:`SpatialAttention`: one softmax weight per spatial region: a softmax over the H'·W'
  positions of each frame (``per_frame=True``, the default), or over all T'·H'·W' positions
  of the clip (``per_frame=False``). 2D maps have one "frame".
* :class:`ChannelAttention`: DANet's channel attention module (Fu et al., "Dual Attention
  Network for Scene Segmentation", CVPR 2019, CAM).
* :class:`DualAttention`: both; their changes to the map are summed (as DANet sums its two
  branches), the identity counted once, so that the module starts as the identity map.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn


def no_autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """Autocast switched off on ``device``'s type; nothing on a device type autocast does not
    know (e.g. ``meta``, which ``torch.autocast`` refuses), where it cannot be on."""
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


class SpatialAttention(nn.Module):
    """Softmax attention over spatial regions: (B, C, *S) -> (B, C, *S).

    A 1x1(x1) convolution scores each position. With ``per_frame`` (default) and a 3D map
    (S = (T', H', W')), a softmax over the P = H'·W' positions of each frame gives weights ``a``
    (B, 1, *S) that sum to 1 per frame; otherwise (``per_frame=False``, or a 2D map) a softmax
    over all P = prod(S) positions gives weights summing to 1 per sample. The output is
    ``x * a * P``: average-pooling a frame of the output equals the attention-weighted sum of
    that frame of ``x`` (per_frame), or average-pooling the whole output equals the
    attention-weighted sum over all positions (space-time).

    The scoring conv starts at zero, so at initialisation the weights are uniform (1/P) and the
    module is the identity: training starts from plain average pooling.

    The weights of the latest forward pass are kept in ``last_weights`` (detached).
    """

    def __init__(self, channels: int, *, per_frame: bool = True) -> None:
        super().__init__()
        # A kernel-1 Conv1d over the flattened positions is the 1x1x1 (or 1x1) conv, for any S.
        self.score = nn.Conv1d(channels, 1, kernel_size=1)
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)
        self.per_frame = per_frame
        self.last_weights: torch.Tensor | None = None

    def _groups(self, positions: list[int]) -> int:
        """Number of softmax groups per sample: T' frames, or 1."""
        return positions[0] if self.per_frame and len(positions) == 3 else 1

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, *S) -> weights (B, 1, *S), non-negative, summing to 1 over the H'·W' positions of
        each frame (per_frame, 3D maps) or over all positions (otherwise)."""
        b, _, *positions = x.shape
        logits = self.score(x.flatten(2))  # (B, 1, N)
        groups = self._groups(positions)
        return torch.softmax(logits.view(b, groups, -1), dim=-1).view(b, 1, *positions)

    def forward(
        self, x: torch.Tensor, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """(B, C, *S) -> (B, C, *S); with ``return_weights`` also the weights (B, 1, *S)."""
        weights = self.attention_weights(x)
        self.last_weights = weights.detach()
        out = x * self.position_scale(weights)
        return (out, weights) if return_weights else out

    def position_scale(self, weights: torch.Tensor) -> torch.Tensor:
        """The factor (B, 1, *S) the map is multiplied by: weights times positions per softmax."""
        _, _, *positions = weights.shape
        return weights * (weights[0].numel() // self._groups(positions))


class ChannelAttention(nn.Module):
    """DANet channel attention (CAM): (B, C, *S) -> (B, C, *S).

    With X the map flattened to (B, C, N): energy = X Xᵀ (B, C, C); A = softmax over the last
    axis of (rowmax(energy) - energy) (DANet's choice: channels that are *less* similar get
    more weight, which counteracts every channel attending to itself); out = gamma · (A X) + x,
    with the learned scalar gamma initialised to 0, so the module starts as the identity.

    softmax(rowmax(E) - E) is computed as softmax(-E): a softmax does not change when a
    constant is added to a row, and torch's softmax subtracts the row maximum itself, so the
    result is the same without DANet's two extra passes over the (C, C) matrix.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.gamma = nn.Parameter(torch.zeros(1))

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, *S) -> A X reshaped as x (B, C, *S), in x's dtype: the term gamma multiplies."""
        # The Gram matrix sums N products of activations: in float16 it overflows, so this
        # runs in float32 (or wider, for float64 input) even under autocast.
        with no_autocast(x.device):
            flat = x.flatten(2)  # (B, C, N)
            if flat.dtype in (torch.float16, torch.bfloat16):
                flat = flat.float()
            energy = torch.bmm(flat, flat.transpose(1, 2))  # (B, C, C)
            attention = torch.softmax(energy.neg_(), dim=-1)
            return torch.bmm(attention, flat).view_as(x).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gamma * self.attend(x) + x


class DualAttention(nn.Module):
    """Spatial and channel attention on the same map: (B, C, *S) -> (B, C, *S).

    ``out = spatial(x) + channel(x) - x = x · a · P + gamma · (A X)``: the two branches'
    changes to the map are summed as DANet sums its branches, with the identity counted once,
    so that at initialisation (uniform spatial weights, gamma = 0) the module is the identity
    map and training starts from the bare backbone's features (DANet's plain sum would start
    at 2x). ``per_frame`` chooses the spatial softmax (see :class:`SpatialAttention`).

    ``spatial.last_weights`` holds the latest spatial weights (B, 1, *S).
    """

    def __init__(self, channels: int, *, per_frame: bool = True) -> None:
        super().__init__()
        self.spatial = SpatialAttention(channels, per_frame=per_frame)
        self.channel = ChannelAttention(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.spatial.attention_weights(x)
        self.spatial.last_weights = weights.detach()
        return torch.addcmul(self.channel.gamma * self.channel.attend(x), x, self.spatial.position_scale(weights))
