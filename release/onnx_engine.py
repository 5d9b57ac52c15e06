"""ONNX Runtime sessions behind the interfaces the prediction pipeline calls, so a
:class:`fusion.prediction.Predictor` runs a bundle's models without PyTorch networks:

* :class:`OnnxScorer`: ``score(frames) -> (N, C)`` and ``class_names``, like
  :class:`keyframes.scorer.SentimentScorer` (same framing and normalisation, :func:`frames_to_tensor`);
* :class:`OnnxStream`: ``features_and_logits(x) -> (features (B, D), logits (B, C))``, and
  ``last_attention`` (B, 1, *S) after a forward when the stream has spatial attention;
* :class:`OnnxHead`: ``head(inputs) -> logits (B, C)`` with ``inputs`` as in :mod:`fusion.heads.inputs`.

Sessions use ONNX Runtime's CPU provider unless ``providers`` says otherwise
(:func:`default_providers`: CUDA first where this ONNX Runtime has it and ``device`` is cuda).
"""
from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
from torch import nn

from fusion.heads.inputs import MASK_KEY, PROBS_KEY
from keyframes.scorer import frames_to_tensor
from release.onnx_graphs import ATTENTION_OUTPUT
from streams.models.attention import SpatialAttention


def default_providers(device: str = "cpu") -> list[str]:
    """ONNX Runtime execution providers for ``device``: ``CUDAExecutionProvider`` first when
    ``device`` is a CUDA device and this ONNX Runtime build has it, always the CPU provider last."""
    import onnxruntime as ort

    if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def open_session(path: str | os.PathLike, providers: Sequence[str], threads: int | None = None):
    """An ``onnxruntime.InferenceSession`` of ``path`` (all graph optimisations on; ``threads``:
    intra-op threads, default ONNX Runtime's)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        options.intra_op_num_threads = int(threads)
    return ort.InferenceSession(os.fspath(path), sess_options=options, providers=list(providers))


class OnnxScorer:
    """The keyframe scorer from its ONNX graph: ``score(frames)`` -> ``(N, C)`` float32 probabilities
    of ``(H, W, 3)`` uint8 RGB frames, framed and normalised as :class:`SentimentScorer` does."""

    def __init__(self, session, class_names: Sequence[str], *, input_size: int, batch_size: int = 32) -> None:
        self.session = session
        self.class_names = tuple(class_names)
        self.input_size = int(input_size)
        self.batch_size = int(batch_size)
        self.precision = "float32"
        self._input = session.get_inputs()[0].name

    def score(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        if len(frames) == 0:
            return np.zeros((0, len(self.class_names)), dtype=np.float32)
        out = []
        for start in range(0, len(frames), self.batch_size):
            x = frames_to_tensor(frames[start:start + self.batch_size], self.input_size).numpy()
            out.append(self.session.run(None, {self._input: x})[0])
        return np.concatenate(out).astype(np.float32)


class OnnxStream(nn.Module):
    """A stream network from its ONNX graph (an ``nn.Module`` without parameters, so the pipeline
    finds it on the CPU): ``features_and_logits(x (B, *input_shape))`` -> two float32 tensors."""

    def __init__(self, session, *, feature_dim: int, num_classes: int) -> None:
        super().__init__()
        self.session = session
        self.feature_dim = int(feature_dim)
        self.num_classes = int(num_classes)
        self._input = session.get_inputs()[0].name
        self._outputs = [o.name for o in session.get_outputs()]
        self.has_attention = ATTENTION_OUTPUT in self._outputs
        self.last_attention: torch.Tensor | None = None
        #: a stand-in :class:`SpatialAttention` whose ``last_weights`` hold the graph's attention
        #: output, where the live overlay (live_mode) looks for a stream's spatial attention
        self.spatial = SpatialAttention(1) if self.has_attention else None

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = dict(zip(self._outputs, self.session.run(None, {self._input: x.detach().cpu().numpy()})))
        if self.has_attention:
            self.last_attention = torch.from_numpy(out[ATTENTION_OUTPUT])
            self.spatial.last_weights = self.last_attention
        return torch.from_numpy(out["features"]), torch.from_numpy(out["logits"])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(x)[0]


class OnnxHead(nn.Module):
    """A fusion head from its ONNX graph: ``forward(inputs)`` -> logits (B, C) float32, ``inputs`` as in
    :mod:`fusion.heads.inputs`; has ``streams`` and ``stream_dims`` like a :class:`FusionHead`."""

    def __init__(self, session, *, stream_dims: dict[str, int], num_classes: int) -> None:
        super().__init__()
        self.session = session
        self.stream_dims = {s: int(d) for s, d in stream_dims.items()}
        self.streams = tuple(self.stream_dims)
        self.num_classes = int(num_classes)
        self._inputs = [i.name for i in session.get_inputs()]

    def forward(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        feed = {name: inputs[name].detach().cpu().float().numpy() for name in self._inputs}
        return torch.from_numpy(self.session.run(None, feed)[0])


HEAD_INPUTS = (MASK_KEY, PROBS_KEY)
