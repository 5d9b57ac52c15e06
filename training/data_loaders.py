"""The DataLoaders of a training run: the training order, which depends only on (seed, epoch)
(:class:`EpochShuffleSampler`), items asked for as ``(index, epoch)`` so that loader workers living
across epochs see each epoch (:class:`EpochItems`), and building, seeding and stopping the loaders
the way :func:`training.loop.fit` uses them."""
from __future__ import annotations

import logging
from typing import Callable, Iterator

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader, Dataset, Sampler

from training.evaluation import eval_loader
from training.processes import derive_seed

log = logging.getLogger(__name__)


class EpochShuffleSampler(Sampler):
    """Random permutation of ``range(num_samples)`` that depends only on ``(seed, epoch)``.

    Every process computes the same order (Accelerate then gives each process its share of the
    batches), and a resumed run sees the same order as an uninterrupted one. Call
    :meth:`set_epoch` before iterating (Accelerate's prepared loader does it via ``set_epoch``).
    With ``with_epoch`` it yields ``(index, epoch)`` pairs, the keys of :class:`EpochItems`.
    """

    def __init__(self, num_samples: int, *, seed: int = 0, shuffle: bool = True, with_epoch: bool = False):
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.with_epoch = with_epoch
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int] | Iterator[tuple[int, int]]:
        if not self.shuffle:
            order = list(range(self.num_samples))
        else:
            g = torch.Generator()
            g.manual_seed(derive_seed(self.seed, "shuffle", self.epoch))
            order = torch.randperm(self.num_samples, generator=g).tolist()
        if self.with_epoch:
            return iter([(i, self.epoch) for i in order])
        return iter(order)

    def __len__(self) -> int:
        return self.num_samples


class EpochItems(Dataset):
    """A dataset with ``set_epoch`` whose items are asked for as ``(index, epoch)``: before an item
    of another epoch than the last, the dataset's own ``set_epoch(epoch)`` runs in the process
    that builds the item. So DataLoader workers that live across epochs (persistent) see each
    epoch, and items that depend on (seed, epoch, index) are those of a fresh worker, or of the
    main process without workers."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset
        self._epoch: int | None = None

    def set_epoch(self, epoch: int) -> None:
        self._epoch = int(epoch)
        self.dataset.set_epoch(int(epoch))  # type: ignore[attr-defined]

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]):
        index, epoch = key
        if epoch != self._epoch:
            self.set_epoch(epoch)
        return self.dataset[index]


def build_loaders(accelerator: Accelerator, train_dataset: Dataset, val_dataset: Dataset | None, tc: dict,
                  per_device: int, collate_fn: Callable | None) -> tuple[DataLoader, DataLoader | None]:
    """The training loader (order from :class:`EpochShuffleSampler`) and the validation loader
    (``None`` without a validation set), not yet prepared."""
    pin = accelerator.device.type == "cuda"
    # workers live across epochs; the epoch travels with each index to the dataset copy in the worker
    epoch_aware = hasattr(train_dataset, "set_epoch")
    sampler = EpochShuffleSampler(len(train_dataset), seed=tc["seed"], with_epoch=epoch_aware)
    persistent = tc["num_workers"] > 0
    train_loader = DataLoader(EpochItems(train_dataset) if epoch_aware else train_dataset, batch_size=per_device,
                              sampler=sampler, num_workers=tc["num_workers"], collate_fn=collate_fn,
                              drop_last=tc["drop_last"], pin_memory=pin, persistent_workers=persistent)
    if len(train_loader) == 0:
        raise ValueError(f"training set of {len(train_dataset)} items gives no batch of {per_device} (drop_last)")
    if accelerator.num_processes == 1 and not tc["drop_last"] and len(train_dataset) % per_device == 1:
        log.warning("the last training batch holds a single sample; BatchNorm layers fail on it in train mode "
                    "(set train.drop_last: true)")
    val_loader = None
    if val_dataset is not None:
        val_loader = eval_loader(val_dataset, tc["eval_batch_size"] or per_device, collate_fn, tc["num_workers"], pin,
                                 persistent=persistent)
    return train_loader, val_loader


def draw_as_a_fresh_loader_would(loader: DataLoader) -> None:
    """Starting a DataLoader iterator draws its workers' base seed from the global torch RNG;
    restarting persistent workers draws nothing. Draw it here in that case, so the global RNG
    (dropout) of an epoch is the same with persistent workers, without workers, and in a resumed
    run (whose loader starts afresh)."""
    if getattr(loader, "_iterator", None) is not None:
        torch.empty((), dtype=torch.int64).random_()


def stop_workers(loader: DataLoader) -> None:
    """End the persistent worker processes of ``loader`` now, not when it is garbage-collected (an
    exception's traceback can keep it alive, and its workers with it)."""
    iterator = getattr(loader, "_iterator", None)
    if iterator is not None and hasattr(iterator, "_shutdown_workers"):
        iterator._shutdown_workers()
    loader._iterator = None
