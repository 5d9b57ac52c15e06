"""Where inference tensors live: a module's device, and the one move of its outputs to the host.

Inference code makes every tensor on the device of the network that reads it
(:func:`module_device`) and moves results to the CPU once, at the end, through
:func:`to_host`; callers reach it as ``devices.to_host`` (this module's attribute, not an
imported name), so a test can run a network on the ``meta`` device, which holds shapes but no
numbers, and stand in for that last step.
"""
from __future__ import annotations

import numpy as np
import torch


def module_device(module: torch.nn.Module) -> torch.device:
    """The device of ``module``'s first parameter or buffer; the CPU for a module with neither."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


def to_host(tensor: torch.Tensor) -> np.ndarray:
    """``tensor`` (any device) as a NumPy array on the CPU, same shape and dtype (NumPy's: float
    or int; not bfloat16). The one place inference results leave their device."""
    return tensor.detach().cpu().numpy()


def synchronize(device: torch.device | str) -> None:
    """Wait for the work queued on ``device`` (a CUDA device; elsewhere nothing is queued), so
    that a stage's wall time is its own and not the next host transfer's."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
