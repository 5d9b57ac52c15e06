"""The contract every fusion head shares, written once.

A head maps the inputs of :mod:`fusion.heads.inputs` (stream features, availability mask,
stream probabilities) to logits (B, C). :class:`FusionHead` owns what is the same for all of
them:

* its inputs: ``streams`` (the stream names, in the order of the mask's columns) and
  ``stream_dims`` {stream: D_s};
* its output width: ``num_classes`` (C);
* the missing-stream front, for heads that fuse features by gradient (``masked_front=True``):
  ``inputs``, a :class:`~fusion.heads.inputs.MaskedStreams` (standardisation, modality dropout,
  a learned default in the slot of a missing stream), whose training statistics
  :meth:`FusionHead.set_normalisation` sets;
* save/load: a head is saved as its state dict (safetensors, :mod:`training.checkpoints`) beside
  the recipe's ``model:`` section and ``stream_dims``, and a fresh head of that recipe takes the
  weights back (:func:`fusion.training.load_fusion_head`). Buffers whose shape is only known once
  the head is fitted (the stacking ensemble's arrays) are declared with
  :meth:`FusionHead.register_fitted` and take their shape from the checkpoint on load.

So a head subclass checks its own arguments, calls ``super().__init__`` and then builds its own
layers (in that order: the front draws no random numbers, the layers do), and writes its forward
pass.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from torch import nn

from fusion.heads.inputs import MASK_KEY, MaskedStreams

#: the smallest probability a head's log turns into a logit (log 0 would be -inf)
MIN_PROBABILITY = 1e-12


class FusionHead(nn.Module):
    """Base of the fusion heads: ``forward(inputs) -> logits (B, C)``, ``inputs`` as documented in
    :mod:`fusion.heads.inputs`.

    ``stream_dims`` {stream: D_s} (its order is the head's stream order), ``num_classes`` C.
    ``masked_front``: build the shared missing-stream front ``self.inputs``
    (:class:`~fusion.heads.inputs.MaskedStreams` with ``modality_dropout``); heads that fuse the
    streams' probabilities, or impute missing streams themselves, leave it off."""

    def __init__(self, *, stream_dims: Mapping[str, int], num_classes: int, masked_front: bool = True,
                 modality_dropout: float = 0.2) -> None:
        super().__init__()
        if masked_front:
            self.inputs = MaskedStreams(stream_dims=stream_dims, modality_dropout=modality_dropout)
            self.streams: tuple[str, ...] = self.inputs.streams
        else:
            self.streams = tuple(stream_dims)
        self.stream_dims = {s: int(d) for s, d in stream_dims.items()}
        self.num_classes = int(num_classes)
        self._fitted: dict[str, torch.dtype] = {}

    # ------------------------------------------------------------------------------- the front

    def masked_features(self, inputs: Mapping[str, torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """``(features [(B, D_s) per stream, in stream order], mask (B, S))`` from the front: each
        stream standardised, a learned default where it is missing, the mask after modality
        dropout (heads use this mask, not ``inputs["mask"]``)."""
        return self.inputs(inputs)

    def set_normalisation(self, features: Mapping[str, np.ndarray], available: Mapping[str, np.ndarray]) -> None:
        """Set the front's per-stream mean and scale from the training ``features[s]`` (N, D_s)
        where ``available[s]`` (N,) is true (:meth:`MaskedStreams.set_normalisation`)."""
        self.inputs.set_normalisation(features, available)

    # ------------------------------------------------------------------------------ the output

    def logits_from_probabilities(self, p: np.ndarray, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """Logits (B, C) float32 = log of class probabilities ``p`` (B, C) (floored at
        :data:`MIN_PROBABILITY`), on the device of ``inputs``: for the heads that compute
        probabilities rather than logits."""
        return torch.from_numpy(np.log(np.maximum(p, MIN_PROBABILITY))).float().to(inputs[MASK_KEY].device)

    # ------------------------------------------------------------------------------- save/load

    def register_fitted(self, dtypes: Mapping[str, torch.dtype]) -> None:
        """Register an empty buffer per name of ``dtypes`` {name: dtype}: arrays a one-pass fit
        sets (any shape), saved with the state dict and shaped like the checkpoint's on load."""
        for name, dtype in dtypes.items():
            self.register_buffer(name, torch.empty(0, dtype=dtype))
            self._fitted[name] = dtype

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # fitted arrays have the shapes of that fit: take them from the checkpoint
        for name, dtype in self._fitted.items():
            value = state_dict.get(prefix + name)
            if isinstance(value, torch.Tensor):
                self._buffers[name] = torch.empty(value.shape, dtype=dtype, device=self._buffers[name].device)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
