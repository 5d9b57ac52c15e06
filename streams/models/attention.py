"""Attention necks applied to a backbone's last feature map before global pooling.

All modules take (B, C, *S) maps, where S is the positional shape: (T', H', W') for 3D
backbones, (H', W') for 2D ones. They return a map of the same shape.

* :class:`SpatialAttention`: one softmax weight per position (over all T'·H'·W' positions).
* :class:`ChannelAttention`: DANet's channel attention module (Fu et al., "Dual Attention
  Network for Scene Segmentation", CVPR 2019, CAM).
* :class:`DualAttention`: both, summed (as DANet sums its two branches).
"""
from __future__ import annotations

import torch
from torch import nn


class SpatialAttention(nn.Module):
    """Softmax attention over positions: (B, C, *S) -> (B, C, *S).

    A 1x1(x1) convolution scores each position, a softmax over all N = prod(S) positions turns
    the scores into weights ``a`` (B, 1, *S) that sum to 1 per sample, and the output is
    ``x * a * N``, so that average-pooling the output equals the attention-weighted sum of
    ``x`` over positions.

    The scoring conv starts at zero, so at initialisation the weights are uniform (1/N) and the
    module is the identity: training starts from plain average pooling.

    The weights of the latest forward pass are kept in ``last_weights`` (detached).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        # A kernel-1 Conv1d over the flattened positions is the 1x1x1 (or 1x1) conv, for any S.
        self.score = nn.Conv1d(channels, 1, kernel_size=1)
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)
        self.last_weights: torch.Tensor | None = None

    def attention_weights(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, *S) -> weights (B, 1, *S), non-negative, summing to 1 over positions per sample."""
        b, _, *positions = x.shape
        logits = self.score(x.flatten(2))  # (B, 1, N)
        return torch.softmax(logits, dim=-1).view(b, 1, *positions)

    def forward(
        self, x: torch.Tensor, return_weights: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """(B, C, *S) -> (B, C, *S); with ``return_weights`` also the weights (B, 1, *S)."""
        weights = self.attention_weights(x)
        self.last_weights = weights.detach()
        num_positions = weights[0].numel()
        out = x * weights * num_positions
        return (out, weights) if return_weights else out


class ChannelAttention(nn.Module):
    """DANet channel attention (CAM): (B, C, *S) -> (B, C, *S).

    With X the map flattened to (B, C, N): energy = X Xᵀ (B, C, C); A = softmax over the last
    axis of (rowmax(energy) - energy) (DANet's choice: channels that are *less* similar get
    more weight, which counteracts every channel attending to itself); out = gamma · (A X) + x,
    with the learned scalar gamma initialised to 0, so the module starts as the identity.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The Gram matrix sums N products of activations: in float16 it overflows, so this
        # runs in float32 even under autocast.
        with torch.autocast(device_type=x.device.type, enabled=False):
            flat = x.flatten(2).float()  # (B, C, N)
            energy = torch.bmm(flat, flat.transpose(1, 2))  # (B, C, C)
            energy = energy.amax(dim=-1, keepdim=True) - energy
            attention = torch.softmax(energy, dim=-1)
            out = torch.bmm(attention, flat).view_as(x).to(x.dtype)
        return self.gamma * out + x


class DualAttention(nn.Module):
    """Spatial and channel attention on the same map, summed: (B, C, *S) -> (B, C, *S).

    ``spatial.last_weights`` holds the latest spatial weights (B, 1, *S).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.spatial = SpatialAttention(channels)
        self.channel = ChannelAttention(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(x) + self.channel(x)
