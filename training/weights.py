"""Loading external state-dict files (ImageNet / Kinetics weights, other people's checkpoints)
into a model, with a report a person can read.

Two steps, kept apart so that callers can rename keys in between (e.g. I3D inflation):

* :func:`load_state_file` reads a file into a flat ``{name: tensor}`` dict. ``.safetensors`` is
  read with safetensors; ``.pt/.pth/.pyth/.bin`` with ``torch.load(weights_only=True)``, so a
  file holding pickled Python objects other than tensors and plain containers is refused, never
  executed.
* :func:`load_into` copies the tensors whose names and shapes match into a model and returns a
  :class:`LoadReport` naming everything that did not load and why.

Run checkpoints of this project (model + optimizer + JSON metadata) live in
``training/checkpoints.py``; this module is for weights that come from elsewhere.
"""
from __future__ import annotations

import logging
import os
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import safetensors
import safetensors.torch
import torch
from torch import nn

from core.errors import UserInputError

logger = logging.getLogger(__name__)

SAFETENSORS_SUFFIXES = (".safetensors",)
TORCH_SUFFIXES = (".pt", ".pth", ".pyth", ".bin")

# Keys under which common training frameworks nest the model's state dict
# (pytorchvideo / PySlowFast: "model_state"; Lightning and many repos: "state_dict"; others: "model").
CONTAINER_KEYS = ("model_state", "state_dict", "model")


class WeightsError(UserInputError, ValueError):
    """A weights file that cannot be used; the message names the file and the problem."""


def load_state_file(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from a local ``.safetensors`` or ``.pt/.pth/.pyth/.bin`` file.

    Nested checkpoints are unwrapped: while the object is a mapping holding one of
    ``model_state``, ``state_dict`` or ``model`` whose value is a mapping, that value is taken
    (other entries such as ``epoch`` or ``optimizer_state`` are ignored). A leading ``module.``
    (left by ``DataParallel``/``DistributedDataParallel``) is stripped from every key.

    Returns:
        ``{parameter or buffer name: tensor}``, tensors on the CPU.

    Raises:
        WeightsError: the file is missing, has an unknown suffix, is not a readable checkpoint,
            holds pickled objects other than tensors (refused by ``weights_only=True``), or does
            not contain a flat mapping of names to tensors.
    """
    return read_checkpoint(path)[0]


def read_checkpoint(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str | int | float | bool]]:
    """:func:`load_state_file` plus the checkpoint's scalar entries.

    Returns:
        ``(state, info)``: the state dict as :func:`load_state_file` returns it, and the str /
        int / float / bool entries found beside the state dict on the way down, e.g.
        ``{"arch": "resnet-101", "epoch": 200}`` for a 3D-ResNets-PyTorch ``.pth`` (empty for a
        bare state dict or a safetensors file).

    Raises:
        WeightsError: as :func:`load_state_file`.
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        try:
            obj: object = safetensors.torch.load_file(str(path), device="cpu")
        except safetensors.SafetensorError as e:
            raise WeightsError(f"{path}: not a readable safetensors file: {e}") from None
    elif suffix in TORCH_SUFFIXES:
        obj = _torch_load_weights_only(path)
    else:
        known = ", ".join(SAFETENSORS_SUFFIXES + TORCH_SUFFIXES)
        raise WeightsError(f"{path}: unknown weights file type {suffix!r} (expected one of {known})")
    return _as_flat_state(obj, path)


def _torch_load_weights_only(path: Path) -> object:
    # torch.save writes a zip archive (or, before torch 1.6, a pickle stream: protocol byte
    # 0x80 first); anything else is rejected before the unpickler sees it.
    with open(path, "rb") as f:
        head = f.read(1)
    if not (zipfile.is_zipfile(path) or head == b"\x80"):
        raise WeightsError(f"{path}: not a PyTorch checkpoint (neither a torch.save zip archive nor a pickle stream)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's own message recommends weights_only=False, which we never do; keep only the
        # line that says which object was refused.
        detail = next(
            (line.strip() for line in str(e).splitlines() if "Unsupported" in line or "global" in line.lower()),
            str(e).splitlines()[0] if str(e) else type(e).__name__,
        )
        raise WeightsError(
            f"{path}: refused to load: the file holds pickled Python objects, not only tensors, and "
            f"is read with torch.load(weights_only=True), which will not run them ({detail}). "
            "Re-save it as a plain state dict (e.g. safetensors) in an environment you trust."
        ) from None
    except (RuntimeError, EOFError, KeyError, IndexError, ValueError, OSError) as e:
        # torch raises these (even KeyError) for files that are not torch checkpoints at all.
        raise WeightsError(f"{path}: not a readable PyTorch checkpoint ({type(e).__name__}: {e})") from None


def _as_flat_state(obj: object, path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str | int | float | bool]]:
    unwrapped, info = [], {}
    while isinstance(obj, Mapping):
        key = next((k for k in CONTAINER_KEYS if isinstance(obj.get(k), Mapping)), None)
        if key is None:
            break
        info.update({k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, (str, int, float, bool))})
        unwrapped.append(key)
        obj = obj[key]
    where = f" (inside {'/'.join(unwrapped)})" if unwrapped else ""
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{path}: expected a state dict (mapping of names to tensors){where}, "
                           f"got {type(obj).__name__}")
    bad = [str(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        shown = ", ".join(bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise WeightsError(f"{path}: not a state dict{where}: entries that are not named tensors: {shown}")
    if not obj:
        raise WeightsError(f"{path}: the state dict{where} is empty")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}, info


@dataclass
class ShapeMismatch:
    """A tensor present in both file and model under the same name but with different shapes."""

    key: str
    file_shape: tuple[int, ...]
    model_shape: tuple[int, ...]

    def __str__(self) -> str:
        return f"{self.key}: file {tuple(self.file_shape)} vs model {tuple(self.model_shape)}"


@dataclass
class LoadReport:
    """What :func:`load_into` did, key by key.

    Attributes:
        loaded: model keys that received the file's tensor (inflated ones included).
        missing: model keys the file has no entry for (they keep their initial values).
        unexpected: file keys the model has no entry for (ignored).
        skipped_shape: keys in both whose shapes differ (the model keeps its initial values).
        skipped_on_purpose: file keys deliberately not loaded (e.g. another task's classifier).
        inflated: the ``loaded`` keys whose tensor was built from a 2D one (I3D inflation), set
            by the caller that inflated them.
        new: keys of what a method adds on top of the loaded part (attention, its own head)
            that the file did not fill, set by the caller; not counted as missing.
        notes: why things were skipped on purpose, in words, and anything else worth saying.
        source: the file (or description) the weights came from, for the summary.
        format: how the file was read (e.g. ``hara3d``), when the caller says so.
    """

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    skipped_shape: list[ShapeMismatch] = field(default_factory=list)
    skipped_on_purpose: list[str] = field(default_factory=list)
    inflated: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    source: str = ""
    format: str = ""

    @property
    def complete(self) -> bool:
        """True when every model key was loaded and nothing was skipped by accident."""
        return not (self.missing or self.unexpected or self.skipped_shape)

    @property
    def backbone_complete(self) -> bool:
        """True when nothing is missing or shape-mismatched (for the stream formats of
        ``streams.models.pretrained`` those lists hold backbone tensors only): the part the
        file is for was filled completely. Unexpected file tensors do not count."""
        return not (self.missing or self.skipped_shape)

    def as_dict(self) -> dict:
        """JSON-ready: ``loaded`` and ``inflated`` as counts; ``missing``, ``unexpected``,
        ``new``, ``dropped`` (= ``skipped_on_purpose``) and ``notes`` as lists of strings;
        ``mismatched`` as ``[{"key", "file_shape", "model_shape"}]``; ``source``, ``format``."""
        return {
            "loaded": len(self.loaded),
            "inflated": len(self.inflated),
            "missing": list(self.missing),
            "unexpected": list(self.unexpected),
            "mismatched": [{"key": m.key, "file_shape": list(m.file_shape), "model_shape": list(m.model_shape)}
                           for m in self.skipped_shape],
            "new": list(self.new),
            "dropped": list(self.skipped_on_purpose),
            "notes": list(self.notes),
            "source": self.source,
            "format": self.format,
        }

    def summary(self, max_names: int | None = 50) -> str:
        """Multi-line text: counts, then the names of keys in each non-empty category.

        ``max_names`` limits the names shown per category (``None``: all); the lists on the
        report always hold every name.
        """
        head = f"weights from {self.source}" if self.source else "weights"
        head += f" (format {self.format}): " if self.format else ": "
        inflated = f" ({len(self.inflated)} inflated from 2D)" if self.inflated else ""
        lines = [
            head + f"{len(self.loaded)} loaded{inflated}, {len(self.missing)} missing from file, "
            f"{len(self.unexpected)} unexpected, {len(self.skipped_shape)} skipped (shape mismatch), "
            f"{len(self.skipped_on_purpose)} skipped on purpose, {len(self.new)} new"
        ]
        sections: list[tuple[str, list[str]]] = [
            ("skipped on purpose", self.skipped_on_purpose),
            ("skipped, shape mismatch", [str(m) for m in self.skipped_shape]),
            ("missing from file (model keeps its initial values)", self.missing),
            ("unexpected in file (ignored)", self.unexpected),
            ("new (added by the method, initial values)", self.new),
        ]
        for title, names in sections:
            if not names:
                continue
            lines.append(f"  {title}:")
            shown = names if max_names is None else names[:max_names]
            lines.extend(f"    {name}" for name in shown)
            if len(shown) < len(names):
                lines.append(f"    ... and {len(names) - len(shown)} more")
        lines.extend(f"  note: {note}" for note in self.notes)
        return "\n".join(lines)


def load_into(
    model: nn.Module,
    state: Mapping[str, torch.Tensor],
    *,
    skip_prefixes: Iterable[str] = (),
    source: str = "",
    skip_reason: str = "",
    notes: Iterable[str] = (),
) -> LoadReport:
    """Copy the tensors of ``state`` whose names and shapes match into ``model``.

    Args:
        model: the module to fill (its ``state_dict()`` names are matched exactly).
        state: ``{name: tensor}``, e.g. from :func:`load_state_file`. dtypes are cast to the
            model's.
        skip_prefixes: file keys starting with any of these are deliberately not loaded
            (reported under ``skipped_on_purpose``), e.g. ``("fc.",)`` for an ImageNet classifier.
        source: where the weights came from, shown in the summary (usually the file path).
        skip_reason: words for the report saying why ``skip_prefixes`` are skipped.
        notes: further sentences for the report (e.g. how the tensors were transformed).

    Returns:
        A :class:`LoadReport`; its summary is also logged (WARNING when something did not load
        that was not skipped on purpose, INFO otherwise).
    """
    skip_prefixes = tuple(skip_prefixes)
    model_state = model.state_dict()
    report = LoadReport(source=source)
    to_load: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if skip_prefixes and key.startswith(skip_prefixes):
            report.skipped_on_purpose.append(key)
        elif key not in model_state:
            report.unexpected.append(key)
        elif tuple(tensor.shape) != tuple(model_state[key].shape):
            report.skipped_shape.append(ShapeMismatch(key, tuple(tensor.shape), tuple(model_state[key].shape)))
        else:
            to_load[key] = tensor
    if skip_prefixes and report.skipped_on_purpose:
        reason = f" ({skip_reason})" if skip_reason else ""
        report.notes.append(f"keys under {', '.join(skip_prefixes)} not loaded on purpose{reason}")
    report.notes.extend(notes)
    # BatchNorm's step counter came with PyTorch 0.4.1; files saved before it (Hara's 2017
    # Kinetics models) lack it. It only matters for momentum=None, so it is not "missing".
    counters = [k for k in model_state if k not in state and k.endswith(".num_batches_tracked")]
    if counters:
        report.notes.append(f"{len(counters)} BatchNorm step counters (num_batches_tracked) are not in the file "
                            "(saved before PyTorch 0.4.1); they keep their initial value 0")
    report.missing = [k for k in model_state if k not in state and not k.endswith(".num_batches_tracked")]
    report.loaded = list(to_load)
    # strict=False because the filtering above already decided what loads; the call copies
    # (and casts) in place, keeping parameters' identity for optimizers built later.
    model.load_state_dict(to_load, strict=False)
    level = logging.INFO if report.complete else logging.WARNING
    logger.log(level, "%s", report.summary())
    return report
