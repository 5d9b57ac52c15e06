"""TensorBoard records beyond scalars: per-class precision-recall curves of a validation, and a
run's hyperparameters for the HParams tab.

``log_hparams`` does not use ``SummaryWriter.add_hparams``: that opens a second writer in a
sub-directory ``<log_dir>/<timestamp>`` and writes there, with an experiment summary naming only
its own hyperparameters. TensorBoard would then list every run twice (``tb`` with the curves,
``tb/<timestamp>`` with the hparams), and its HParams tab takes the first experiment summary it
finds as the whole experiment's, hiding the keys of recipes that differ from that one run (the
streams' recipes differ). Here the session start/end records go into the run's own event files
(``<run>/tb``) and no experiment summary is written, so TensorBoard builds the experiment from all
runs' sessions: every key of every recipe, and every scalar of the run (its last value) as a
metric next to ``hparams/best_val_acc``.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from training.metrics import check_labels

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter


def log_pr_curves(writer: SummaryWriter, step: int, probabilities: np.ndarray, labels: np.ndarray,
                  class_names: Sequence[str], *, tag: str = "val/pr_curve") -> None:
    """One one-vs-rest PR curve per class at ``step`` (tags ``<tag>/<class name>``).

    ``probabilities`` (N, C) in [0, 1] (e.g. the softmax of the validation logits), ``labels``
    (N,) class indices ``0..C-1``.
    """
    probs = np.asarray(probabilities, dtype=np.float64)
    names = [str(c) for c in class_names]
    if probs.ndim != 2 or probs.shape[1] != len(names):
        raise ValueError(f"probabilities must be (N, {len(names)}) for classes {names}, got shape {probs.shape}")
    if not (np.isfinite(probs).all() and probs.min(initial=0.0) >= 0.0 and probs.max(initial=0.0) <= 1.0):
        raise ValueError("probabilities must be finite and within [0, 1] (pass softmax(logits), not logits)")
    t = check_labels(labels, "labels", len(names))
    if t.size != probs.shape[0]:
        raise ValueError(f"labels has {t.size} entries but probabilities has {probs.shape[0]} rows")
    for k, name in enumerate(names):
        writer.add_pr_curve(f"{tag}/{name}", t == k, probs[:, k], global_step=step)
    writer.flush()


def hparam_values(config: Mapping[str, Any]) -> dict[str, float | str]:
    """A nested config (the run's recipe) as the flat ``{dotted.key: value}`` the HParams plugin
    stores: numbers stay numbers; booleans become ``"true"``/``"false"`` (TensorBoard would store
    them as 1.0/0.0); lists become their JSON text; ``None`` (an unset option) and empty sections
    are left out."""
    out: dict[str, float | str] = {}
    for key, value in config.items():
        if isinstance(value, Mapping):
            out.update({f"{key}.{k}": v for k, v in hparam_values(value).items()})
        elif value is None:
            continue
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, (int, float, str)):
            out[key] = value
        else:
            out[key] = json.dumps(value, default=str)
    return out


def log_hparams(writer: SummaryWriter, config: Mapping[str, Any], metrics: Mapping[str, float | None], *,
                step: int = 0) -> None:
    """Record the run as one HParams session in ``writer``'s own log dir (see the module docstring).

    ``config``: the run's nested config (flattened by :func:`hparam_values`); ``metrics``: name
    -> value, written as scalars ``hparams/<name>`` at ``step`` (``None``, e.g. no validation, is
    left out). Pass the last epoch as ``step``: a run extended later records its new values at a
    later step, and TensorBoard shows a scalar's latest.
    """
    from torch.utils.tensorboard.summary import hparams

    scalars = {f"hparams/{name}": float(v) for name, v in metrics.items() if v is not None}
    _experiment, session_start, session_end = hparams(hparam_values(config), scalars)
    file_writer = writer.file_writer
    if file_writer is None:
        raise ValueError("log_hparams needs an open SummaryWriter (it was closed)")
    file_writer.add_summary(session_start, step)
    file_writer.add_summary(session_end, step)
    for tag, value in scalars.items():
        writer.add_scalar(tag, value, step)
    writer.flush()
