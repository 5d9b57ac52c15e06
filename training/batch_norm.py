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


#: below this many samples per device, BatchNorm's batch statistics are noisy enough that
#: ``train.sync_batchnorm: auto`` computes them over the batches of all processes
SMALL_DEVICE_BATCH = 8
NO_BATCH_NORM = "the model has no BatchNorm layer"


def has_batch_norm(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def sync_batchnorm_wanted(setting: bool | str, *, model: torch.nn.Module, num_processes: int, per_device: int,
                          device: torch.device) -> tuple[bool, str]:
    """Whether to train with SyncBatchNorm, and why (a sentence for the log).

    ``setting`` is ``train.sync_batchnorm``: ``True``, ``False`` or ``'auto'`` (on when the model has
    BatchNorm, several processes train and each holds fewer than :data:`SMALL_DEVICE_BATCH`
    samples). SyncBatchNorm runs on CUDA only, so ``auto`` stays off on any other device and
    ``True`` there raises :class:`core.config.ConfigError`."""
    from core.config import ConfigError

    if not has_batch_norm(model):
        return False, NO_BATCH_NORM
    small = num_processes > 1 and per_device < SMALL_DEVICE_BATCH
    if setting is True:
        if device.type != "cuda":
            raise ConfigError(f"train.sync_batchnorm: true needs CUDA devices: SyncBatchNorm does not run on "
                              f"{device.type} (use auto or false)")
        return True, "train.sync_batchnorm: true"
    if setting == "auto" and small:
        if device.type != "cuda":
            return False, (f"train.sync_batchnorm: auto would synchronise BatchNorm ({per_device} samples per device), "
                           f"but SyncBatchNorm runs on CUDA only, not on {device.type}")
        return True, (f"train.sync_batchnorm: auto: {per_device} samples per device (< {SMALL_DEVICE_BATCH}) "
                      f"on {num_processes} processes")
    return False, f"train.sync_batchnorm: {str(setting).lower()}"


def convert_to_sync_batchnorm(model: torch.nn.Module) -> list[tuple[torch.nn.Module, str, type]]:
    """Replace, in place, every BatchNorm layer inside ``model`` by a ``torch.nn.SyncBatchNorm``
    holding the same parameters and buffers (``torch.nn.SyncBatchNorm.convert_sync_batchnorm``),
    so the state dict keeps its keys and values. Returns ``(parent, name, original class)`` of
    each layer for :func:`revert_sync_batchnorm`. A bare BatchNorm as ``model`` itself is refused
    (it could not be replaced in place)."""
    if isinstance(model, torch.nn.modules.batchnorm._BatchNorm):
        raise ValueError("cannot convert a bare BatchNorm layer in place; wrap it in a module")
    replaced = [(parent, name, type(child)) for parent in model.modules()
                for name, child in parent.named_children()
                if isinstance(child, torch.nn.modules.batchnorm._BatchNorm)
                and not isinstance(child, torch.nn.SyncBatchNorm)]
    torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return replaced


def revert_sync_batchnorm(replaced: list[tuple[torch.nn.Module, str, type]]) -> None:
    """Undo :func:`convert_to_sync_batchnorm`: each SyncBatchNorm becomes a layer of its original
    class again, holding the (trained) parameters and buffers it holds now."""
    for parent, name, cls in replaced:
        sync = getattr(parent, name)
        layer = cls(sync.num_features, sync.eps, sync.momentum, sync.affine, sync.track_running_stats,
                    bias=sync.bias is not None)
        if sync.affine:
            layer.weight, layer.bias = sync.weight, sync.bias
        layer.running_mean, layer.running_var = sync.running_mean, sync.running_var
        layer.num_batches_tracked = sync.num_batches_tracked
        layer.train(sync.training)
        setattr(parent, name, layer)
