"""Precise BatchNorm: recomputing the running statistics with a model's final weights."""
from __future__ import annotations

from typing import Iterable

import torch
from accelerate import Accelerator


def recompute_bn_statistics(accelerator: Accelerator, model: torch.nn.Module, loader: Iterable,
                            num_batches: int, *, epoch: int | None = None) -> int:
    """Replace every training-mode BatchNorm layer's running mean/var by the plain average of the
    batch statistics over the first ``num_batches`` batches of ``loader`` (``(inputs, labels)``
    items), computed with the current weights under ``no_grad`` with dropout off, then averaged
    over processes so all of them hold the same statistics. Layers in eval mode (frozen BN) and
    the weights are untouched; the model's train/eval modes are restored. Returns the number of
    batches used on this process (0 if the model has no such layer). With ``epoch`` the loader
    (and its dataset) is set to that epoch first, so the batches are that epoch's, augmentation
    included (an Accelerate loader otherwise moves on to the next epoch at each iteration)."""
    net = accelerator.unwrap_model(model)  # forward without DDP: it would broadcast rank 0's buffers
    layers = [m for m in net.modules()
              if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats and m.training]
    if not layers:
        return 0
    was_training = {m: m.training for m in net.modules()}
    net.train()
    momenta = {m: m.momentum for m in layers}
    for m in net.modules():
        if isinstance(m, torch.nn.modules.dropout._DropoutNd):
            m.eval()
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches seen since the reset
    used = 0
    if epoch is not None and hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    try:
        with torch.no_grad():
            for inputs, _ in loader:
                if used >= num_batches:
                    break
                with accelerator.autocast():
                    net(inputs)
                used += 1
    finally:
        if hasattr(loader, "end"):
            loader.end()  # leaving an Accelerate loader early keeps it registered in GradientState
        for m in layers:
            m.momentum = momenta[m]
        for m, training in was_training.items():
            m.train(training)
    for m in layers:
        m.running_mean.copy_(accelerator.reduce(m.running_mean.clone(), reduction="mean"))
        m.running_var.copy_(accelerator.reduce(m.running_var.clone(), reduction="mean"))
    return used
