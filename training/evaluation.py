"""Scoring a classifier over a dataset, on any number of processes (HF Accelerate).

``evaluate`` runs a model over a dataset of ``(inputs, label)`` items and returns logits,
predictions, labels and a classification report; the training loop (:mod:`training.loop`)
validates with the same pieces: :func:`eval_loader` (the dataset in order, each item with its
index), :func:`gather_predictions` (the predictions of all processes, in dataset order, without
the samples Accelerate repeats to even out the last batch) and :func:`logits_report`.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from torch.utils.data import DataLoader, Dataset, default_collate

from training.metrics import classification_report
from training.processes import make_accelerator


class _Indexed(Dataset):
    """``(index, item)`` so that gathered predictions can be put back in dataset order."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int):
        return i, self.dataset[i]


class _IndexedCollate:
    def __init__(self, collate_fn: Callable | None):
        self.collate_fn = collate_fn or default_collate

    def __call__(self, batch):
        return torch.tensor([i for i, _ in batch], dtype=torch.long), self.collate_fn([item for _, item in batch])


def eval_loader(dataset: Dataset, batch_size: int, collate_fn: Callable | None, num_workers: int,
                pin: bool, *, persistent: bool = False) -> DataLoader:
    """``dataset`` in order, batches of ``(indices (B,), collated items)``, not yet prepared;
    ``persistent``: its workers (if any) live across iterations (validation every epoch)."""
    return DataLoader(_Indexed(dataset), batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      collate_fn=_IndexedCollate(collate_fn), pin_memory=pin,
                      persistent_workers=persistent and num_workers > 0)


def gather_predictions(accelerator: Accelerator, model, loader) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gathered ``(indices (N,), logits (N, C) float32, labels (N,))`` on CPU, in dataset order."""
    model.eval()
    idx_parts, logit_parts, label_parts = [], [], []
    with torch.no_grad():
        for idx, (inputs, labels) in loader:
            logits = model(inputs).float()
            idx, logits, labels = accelerator.gather_for_metrics((idx, logits, labels))
            idx_parts.append(idx.cpu())
            logit_parts.append(logits.cpu())
            label_parts.append(labels.cpu())
    if not idx_parts:
        raise ValueError("evaluation dataset is empty")
    idx = torch.cat(idx_parts)
    # unique also drops any sample a process saw twice to even out the last batch
    uniq, first = np.unique(idx.numpy(), return_index=True)
    order = torch.from_numpy(first)
    return torch.from_numpy(uniq), torch.cat(logit_parts)[order], torch.cat(label_parts)[order].long()


def logits_report(logits: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str]) -> dict:
    """The :func:`classification_report` of ``logits (N, C)`` against ``labels (N,)``; refuses logits
    whose shape does not match ``class_names``."""
    if logits.ndim != 2 or logits.shape[1] != len(class_names):
        raise ValueError(f"model returned logits of shape {tuple(logits.shape)}, expected (N, {len(class_names)}) "
                         f"for classes {list(class_names)}")
    return classification_report(labels.numpy(), logits.argmax(dim=1).numpy(), class_names)


def evaluate(*, model: torch.nn.Module, dataset: Dataset, batch_size: int, collate_fn: Callable | None = None,
             accelerator: Accelerator | None = None, class_names: Sequence[str] | None = None,
             num_workers: int = 0) -> dict:
    """Run ``model`` over ``dataset`` (items ``(inputs, label)``) and score it.

    Works on any number of processes (predictions are gathered, padding duplicates dropped); the
    model is put in eval mode and moved to the accelerator's device. ``batch_size`` is per process.
    Returns ``{"indices" (N,), "logits" (N, C) float32, "predictions" (N,), "labels" (N,)`` (NumPy,
    in dataset order), ``"loss"`` (mean cross-entropy), ``"report"`` (:func:`classification_report`)}.
    ``class_names`` default to ``"0".."C-1"``.
    """
    own = accelerator is None
    if own:
        accelerator = make_accelerator(None, 1, None)
    loader = eval_loader(dataset, batch_size, collate_fn, num_workers, accelerator.device.type == "cuda")
    loader = accelerator.prepare_data_loader(loader)
    try:
        model = model.to(accelerator.device)
        idx, logits, labels = gather_predictions(accelerator, model, loader)
    finally:
        loader.end()
        if own:
            accelerator.free_memory()
    names = list(class_names) if class_names is not None else [str(i) for i in range(logits.shape[1])]
    report = logits_report(logits, labels, names)
    return {"indices": idx.numpy(), "logits": logits.numpy(), "predictions": logits.argmax(dim=1).numpy(),
            "labels": labels.numpy(), "loss": float(F.cross_entropy(logits, labels).item()), "report": report}
