"""Score-level fusion: a weighted average of the streams' own class probabilities.

    p = sum_s w_s m_s p_s / sum_s w_s m_s        (m_s: 1 where the clip has stream s)
    logits = log p

Fixed weights (``weights: {face: 0.6, audio: 0.4}``, the real-time design's
:data:`fusion.late.FACE_AUDIO_WEIGHTS`; streams not named weigh 0) or ``weights: search``: a grid
over the simplex (``step``) maximising accuracy on the split ``search_on``, never a test split.
A clip without any weighted stream gets uniform probabilities. Nothing is trained by gradient:
:meth:`ScoreWeightedHead.fit_inputs` sets the weights, the arithmetic is
:func:`fusion.late.weighted_score`'s.
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import torch

from core.config import ConfigError
from fusion.heads.base import FusionHead
from fusion.heads.inputs import MASK_KEY, PROBS_KEY
from fusion.late import refuse_test_split, search_weights, weighted_score

SEARCH = "search"


class ScoreWeightedHead(FusionHead):
    """``forward(inputs) -> logits (B, C)`` = log of the weighted average of ``inputs["probs"]``
    (B, S, C) over the available streams (``inputs["mask"]``); buffer ``weights`` (S,)."""

    def __init__(self, *, stream_dims: Mapping[str, int], num_classes: int,
                 weights: Mapping[str, float] | str = SEARCH, search_on: str = "train", step: float = 0.1) -> None:
        super().__init__(stream_dims=stream_dims, num_classes=num_classes, masked_front=False)
        refuse_test_split(search_on, "model.search_on")
        if isinstance(weights, str):
            if weights != SEARCH:
                raise ConfigError(f"model.weights must be {SEARCH!r} or a mapping stream: weight, got {weights!r}")
        elif isinstance(weights, Mapping):
            unknown = sorted(set(weights) - set(self.streams))
            if unknown:
                raise ConfigError(f"model.weights names streams {unknown} that are not fused "
                                  f"({', '.join(self.streams)})")
            if any(not isinstance(w, (int, float)) or isinstance(w, bool) or w < 0 for w in weights.values()) \
                    or sum(weights.values()) <= 0:
                raise ConfigError("model.weights must be non-negative numbers with a positive sum, "
                                  f"got {dict(weights)}")
        else:
            raise ConfigError(f"model.weights must be {SEARCH!r} or a mapping stream: weight, got {weights!r}")
        if not 0 < step <= 0.5 or abs(round(1 / step) * step - 1) > 1e-9:
            raise ConfigError(f"model.step must divide 1 (0.1, 0.05, 0.25...), got {step!r}")
        self.fixed = None if isinstance(weights, str) else {s: float(weights.get(s, 0.0)) for s in self.streams}
        self.search_on = search_on
        self.step = float(step)
        initial = self.fixed or {s: 1.0 for s in self.streams}
        self.register_buffer("weights", torch.tensor([initial[s] for s in self.streams], dtype=torch.float64))

    def weight_map(self) -> dict[str, float]:
        """``{stream: weight}``."""
        return dict(zip(self.streams, self.weights.tolist()))

    def fit_inputs(self, inputs: Mapping[str, torch.Tensor], labels: np.ndarray, *, seed: int,
                   split_inputs: Callable[[str], tuple[Mapping[str, torch.Tensor], np.ndarray]]) -> dict:
        """Set the weights: the fixed ones, or the grid search's on split ``search_on``
        (``split_inputs(name) -> (inputs, labels)``; ``inputs``/``labels`` are the train split's).
        Returns what was chosen, for the run's record."""
        del inputs, labels, seed  # the weights depend only on the chosen split
        if self.fixed is not None:
            return {"weights": dict(self.fixed), "searched_on": None}
        refuse_test_split(self.search_on, "model.search_on")
        x, y = split_inputs(self.search_on)
        keep = y >= 0
        probs, available = self._per_stream(x)
        weights, acc = search_weights({s: p[keep] for s, p in probs.items()},
                                      {s: a[keep] for s, a in available.items()}, y[keep], step=self.step)
        self.weights.copy_(torch.tensor([weights[s] for s in self.streams], dtype=torch.float64))
        return {"weights": weights, "searched_on": self.search_on, "search_accuracy": acc}

    def _per_stream(self, inputs: Mapping[str, torch.Tensor]) -> tuple[dict, dict]:
        probs = inputs[PROBS_KEY].detach().cpu().double().numpy()
        mask = inputs[MASK_KEY].detach().cpu().numpy() > 0
        return ({s: probs[:, i] for i, s in enumerate(self.streams)},
                {s: mask[:, i] for i, s in enumerate(self.streams)})

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        probs, available = self._per_stream(inputs)
        return self.logits_from_probabilities(weighted_score(probs, available, self.weight_map()), inputs)


#: the builder the head table calls: the class itself. ``configs/fusion/score_weighted.yaml``'s ``model:``
#: section is its keyword arguments (``stream_dims`` {stream: D_s} and ``num_classes`` come from the features)
create_score_weighted = ScoreWeightedHead
