"""What every neural fusion head does about missing modalities.

:class:`LearnedDefault` stands in for a stream a clip does not have (no audio track, no face
found): its slot gets a learned vector instead of the zero row the feature cache stores, the way
pytorchvideo's ``LearnMaskedDefault`` fills masked pathways. :class:`ModalityDropout` marks
available streams as missing at random during training, so the head meets every subset of
streams and learns to predict from each.
"""
from __future__ import annotations

import torch
from torch import nn

from core.config import ConfigError


class LearnedDefault(nn.Module):
    """``forward(x (B, D), available (B, 1) float in [0, 1]) -> (B, D)``: ``x`` where the stream
    is available, the learned vector ``value`` (D,) where it is not.

    ``value`` starts at zero, which is the training mean of standardised features (pytorchvideo
    starts it Gaussian). The mask is a float so that the blend ``m * x + (1 - m) * value`` is
    one expression for every head."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.value = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor, available: torch.Tensor) -> torch.Tensor:
        return available * x + (1 - available) * self.value


class ModalityDropout(nn.Module):
    """``forward(mask (B, S) float, 1 = available) -> (B, S)``: in training mode each available
    stream is dropped with probability ``p``, but a clip keeps at least one of the streams it has
    (it keeps them all when every one was drawn); in eval mode the mask passes unchanged."""

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ConfigError(f"model.modality_dropout must be in [0, 1), got {p!r}")
        self.p = float(p)

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p <= 0:
            return mask
        keep = (torch.rand_like(mask) >= self.p).to(mask.dtype)
        dropped = mask * keep
        none_left = (dropped.sum(1) == 0) & (mask.sum(1) > 0)
        return torch.where(none_left[:, None], mask, dropped)

    def extra_repr(self) -> str:
        return f"p={self.p}"
