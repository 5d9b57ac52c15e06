"""CUDA-only speed settings of a training run (``train.cudnn_benchmark``, ``train.tf32``,
``train.channels_last_3d``): applied while :func:`training.loop.fit` runs on a CUDA device and
restored afterwards; on any other device they do nothing (a debug log line says so)."""
from __future__ import annotations

import contextlib
import logging
from typing import Any, Iterator, Mapping

import torch

log = logging.getLogger(__name__)


@contextlib.contextmanager
def cuda_speed_settings(tc: Mapping[str, Any], device: torch.device) -> Iterator[None]:
    """Set ``torch.backends.cudnn.benchmark`` and TF32 (cuDNN convolutions and matmuls) from the
    resolved ``train:`` mapping ``tc`` while the block runs on a CUDA ``device``; the previous
    process-wide values come back afterwards."""
    if device.type != "cuda":
        log.debug("train.cudnn_benchmark, train.tf32: not applied on %s (CUDA only)", device)
        yield
        return
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    before = (cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32)
    cudnn.benchmark = bool(tc["cudnn_benchmark"])
    cudnn.allow_tf32 = matmul.allow_tf32 = bool(tc["tf32"])
    try:
        yield
    finally:
        cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32 = before


def use_channels_last_3d(model: torch.nn.Module, tc: Mapping[str, Any], device: torch.device) -> bool:
    """With ``train.channels_last_3d`` on a CUDA ``device``: store every 5-D parameter (the Conv3d
    weights) of ``model`` channels-last (NDHWC) in place and return True (the loop then passes 5-D
    inputs channels-last too, :func:`channels_last_inputs`); else change nothing and return False."""
    if not tc["channels_last_3d"]:
        return False
    if device.type != "cuda":
        log.debug("train.channels_last_3d: not applied on %s (CUDA only)", device)
        return False
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 5:
                p.data = p.data.contiguous(memory_format=torch.channels_last_3d)
    return True


def channels_last_inputs(inputs: Any) -> Any:
    """A batch's inputs (a Tensor or a dict of Tensors) with each 5-D tensor ``(B, C, T, H, W)``
    made channels-last; other tensors unchanged."""
    if isinstance(inputs, Mapping):
        return {k: channels_last_inputs(v) for k, v in inputs.items()}
    if isinstance(inputs, torch.Tensor) and inputs.dim() == 5:
        return inputs.contiguous(memory_format=torch.channels_last_3d)
    return inputs
