"""Run directories and model checkpoints (safetensors weights + a JSON sidecar).

Run directory layout (written by :func:`training.loop.fit`)::

    RUN/config.yaml            resolved config of the run (train section with defaults filled in)
    RUN/best/model.safetensors weights of the epoch with the best validation accuracy
    RUN/best/meta.json         config, class_names, epoch, metrics, code_version, created, sha256
    RUN/last/...               same, for the last saved epoch (every ``train.save_every`` epochs and
                               the final one)
    RUN/state/                 Accelerate ``save_state`` (optimizer, scheduler, RNG) of the same epoch
                               as ``last`` for an exact resume, plus progress.json (that epoch,
                               history); its ``model.safetensors`` is a hard link to
                               ``last/model.safetensors`` (the weights are written once)
    RUN/tb/                    TensorBoard event files
    RUN/train.log              one plain-text line per epoch
    RUN/metrics.json           per-epoch history, best epoch, ``finished``

A checkpoint directory holds ``model.safetensors`` and ``meta.json``. The weights are written first
and ``meta.json`` last, both atomically, so the presence of ``meta.json`` marks a complete
checkpoint; ``meta.json`` records the SHA-256 of the weights so a damaged file is detected on load.
Loading never unpickles anything: weights are safetensors, metadata is JSON.
"""
from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from core.errors import UserInputError
from core.storage import WriteError, stage_json

log = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
META_NAME = "meta.json"
FORMAT_VERSION = 1
_ALIASES_KEY = "aliases"


class CheckpointError(UserInputError, ValueError):
    """A checkpoint that cannot be used (missing, incomplete, corrupted); the message names the file."""


def save_checkpoint(directory: str | os.PathLike, *, state_dict: Mapping[str, torch.Tensor],
                    meta: Mapping[str, Any]) -> Path:
    """Write ``state_dict`` and ``meta`` as a checkpoint directory; returns the directory.

    ``state_dict``: name -> tensor (any device/dtype; moved to CPU and made contiguous). Tensors that
    are the same tensor under two names (tied weights) are stored once and restored under both
    names by :func:`load_checkpoint`; other storage-sharing views are stored as copies.
    ``meta``: JSON-serialisable mapping, typically ``config``, ``class_names``, ``epoch`` and
    ``metrics``; ``format_version``, ``code_version`` (unless given), ``created`` (ISO-8601 UTC) and
    ``sha256`` (of ``model.safetensors``) are added.

    Both files are written in full under temp names first; only then is the old ``meta.json``
    removed and the two renamed into place. So a failed write (a full disk, an I/O error) leaves the
    previous checkpoint intact and raises :class:`core.storage.WriteError` saying so, and a process
    killed between the renames leaves an *incomplete* checkpoint (reported as such on load), never
    old metadata next to new weights.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors, aliases = _prepare_tensors(state_dict)
    meta_path = directory / META_NAME
    weights_path = directory / WEIGHTS_NAME

    fd, weights_tmp = tempfile.mkstemp(prefix=f".{WEIGHTS_NAME}.", suffix=".tmp", dir=directory)
    os.close(fd)
    meta_tmp = None
    try:
        save_file(tensors, weights_tmp, metadata={"format": "pt", _ALIASES_KEY: json.dumps(aliases, sort_keys=True)})
        _sort_header_metadata(weights_tmp)
        os.chmod(weights_tmp, 0o644)  # after save_file, which creates its file anew (0600 like mkstemp's)
        with open(weights_tmp, "rb") as f:
            os.fsync(f.fileno())
        full_meta = dict(meta)
        full_meta.setdefault("code_version", code_version())
        full_meta["format_version"] = FORMAT_VERSION
        full_meta["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        full_meta["weights_file"] = WEIGHTS_NAME
        full_meta["num_tensors"] = len(tensors) + len(aliases)
        full_meta["sha256"] = _sha256(Path(weights_tmp))
        meta_tmp = stage_json(meta_path, full_meta)
    except BaseException as e:
        for tmp in (weights_tmp, meta_tmp):
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
        if not isinstance(e, Exception):  # KeyboardInterrupt
            raise
        kept = "the previous checkpoint there is intact" if meta_path.exists() else "no checkpoint was written"
        raise WriteError(f"{directory}: writing the checkpoint failed ({type(e).__name__}: {e}); {kept}") from e
    if meta_path.exists():
        meta_path.unlink()
    os.replace(weights_tmp, weights_path)
    os.replace(meta_tmp, meta_path)
    return directory


def load_checkpoint(path: str | os.PathLike, *, device: str | torch.device = "cpu",
                    which: str = "best") -> tuple[dict[str, torch.Tensor], dict]:
    """Load ``(state_dict, meta)`` from a checkpoint.

    ``path``: a checkpoint directory, its ``model.safetensors``, or a run directory (then
    ``RUN/<which>``, falling back from ``best`` to ``last`` with a logged message). The weights'
    SHA-256 is checked against ``meta.json``. Raises :class:`CheckpointError` naming the file when the
    checkpoint is missing, incomplete (weights without ``meta.json``) or corrupted.
    """
    ckpt_dir = resolve_checkpoint(path, which=which)
    meta = read_meta(ckpt_dir)
    weights_path = ckpt_dir / meta.get("weights_file", WEIGHTS_NAME)
    if not weights_path.is_file():
        raise CheckpointError(f"{weights_path}: weights file missing (meta.json exists: checkpoint damaged)")
    expected = meta.get("sha256")
    if not expected:
        raise CheckpointError(f"{ckpt_dir / META_NAME}: no sha256 recorded, cannot verify {weights_path.name}")
    actual = _sha256(weights_path)
    if actual != expected:
        raise CheckpointError(
            f"{weights_path}: corrupted (sha256 {actual[:16]}... does not match {expected[:16]}... in meta.json)")
    return load_weights_file(weights_path, device=device), meta


def load_weights_file(weights_path: str | os.PathLike, *,
                      device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The state dict in a ``model.safetensors`` written by :func:`save_checkpoint` (tied tensors
    restored under every name), without ``meta.json`` and its hash check (:func:`load_checkpoint`
    does both). Raises :class:`CheckpointError` naming the file when it cannot be read."""
    weights_path = Path(weights_path)
    state_dict: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(weights_path), framework="pt", device=str(device)) as f:
            file_meta = f.metadata() or {}
            for key in f.keys():
                state_dict[key] = f.get_tensor(key)
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{weights_path}: not a readable safetensors file: {e}") from None
    try:
        aliases = json.loads(file_meta.get(_ALIASES_KEY, "{}"))
    except json.JSONDecodeError:
        raise CheckpointError(f"{weights_path}: malformed aliases in the safetensors header") from None
    for name, target in aliases.items():
        if target not in state_dict:
            raise CheckpointError(f"{weights_path}: alias {name!r} points to missing tensor {target!r}")
        state_dict[name] = state_dict[target]
    return state_dict


def written_by_save_checkpoint(weights_path: str | os.PathLike) -> bool:
    """Whether the safetensors file was written by :func:`save_checkpoint` (its header carries the
    aliases entry), not by another writer such as Accelerate's ``save_state``."""
    try:
        with safe_open(str(weights_path), framework="pt", device="cpu") as f:
            return _ALIASES_KEY in (f.metadata() or {})
    except (SafetensorError, OSError):
        return False


def link_file(source: str | os.PathLike, target: str | os.PathLike) -> None:
    """Make ``target`` the same file as ``source`` (a hard link: no byte written), or a copy where
    the filesystem has no hard links. ``target`` must not exist."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def link_checkpoint(source: str | os.PathLike, directory: str | os.PathLike) -> Path:
    """Make ``directory`` a checkpoint with the same weights and ``meta.json`` as the checkpoint
    directory ``source`` (the weights hard-linked, so they are not written twice), replacing the
    checkpoint there as :func:`save_checkpoint` does: the new files are staged under temp names,
    then the old ``meta.json`` is removed and the two renamed into place."""
    source, directory = Path(source), Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights_tmp = directory / f".{WEIGHTS_NAME}.{os.getpid()}.link.tmp"
    meta_path = directory / META_NAME
    meta_tmp = None
    try:
        if weights_tmp.exists():
            weights_tmp.unlink()
        link_file(source / WEIGHTS_NAME, weights_tmp)
        meta_tmp = stage_json(meta_path, read_meta(source))
    except BaseException as e:
        for tmp in (weights_tmp, meta_tmp):
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)
        if not isinstance(e, Exception):
            raise
        kept = "the previous checkpoint there is intact" if meta_path.exists() else "no checkpoint was written"
        raise WriteError(f"{directory}: writing the checkpoint failed ({type(e).__name__}: {e}); {kept}") from e
    if meta_path.exists():
        meta_path.unlink()
    os.replace(weights_tmp, directory / WEIGHTS_NAME)
    os.replace(meta_tmp, meta_path)
    return directory


def read_meta(path: str | os.PathLike) -> dict:
    """Read and check ``meta.json`` of the checkpoint at ``path`` (any form :func:`resolve_checkpoint` takes)."""
    ckpt_dir = resolve_checkpoint(path)
    meta_path = ckpt_dir / META_NAME
    if not meta_path.is_file():
        if (ckpt_dir / WEIGHTS_NAME).is_file():
            raise CheckpointError(
                f"{meta_path}: missing, so {ckpt_dir / WEIGHTS_NAME} is an incomplete checkpoint "
                "(the writer was interrupted before finishing)")
        raise CheckpointError(f"{ckpt_dir}: no checkpoint here (neither {WEIGHTS_NAME} nor {META_NAME})")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{meta_path}: not valid JSON ({e})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{meta_path}: expected a JSON object, got {type(meta).__name__}")
    return meta


def resolve_checkpoint(path: str | os.PathLike, which: str = "best") -> Path:
    """Return the checkpoint directory that ``path`` designates.

    ``path`` may be a checkpoint directory (holds ``meta.json`` or ``model.safetensors``), its
    ``model.safetensors`` file, or a run directory holding ``best/`` and/or ``last/``; for a run
    directory ``which`` (``'best'`` or ``'last'``) picks one, and ``'best'`` falls back to ``'last'``
    (with a logged message) when the run has no best checkpoint (e.g. trained without validation).
    """
    if which not in ("best", "last"):
        raise ValueError(f"which must be 'best' or 'last', got {which!r}")
    path = Path(path)
    if path.is_file():
        if path.name != WEIGHTS_NAME:
            raise CheckpointError(f"{path}: expected a checkpoint directory or a {WEIGHTS_NAME} file")
        return path.parent
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    if (path / META_NAME).exists() or (path / WEIGHTS_NAME).exists():
        return path
    chosen = path / which
    if _has_checkpoint_files(chosen):
        return chosen
    if which == "best" and _has_checkpoint_files(path / "last"):
        log.warning("%s: run has no best checkpoint, using %s", path, path / "last")
        return path / "last"
    raise CheckpointError(f"{path}: no checkpoint found (looked for {META_NAME} here and in {which}/, last/)")


def checkpoint_hash(path: str | os.PathLike) -> str:
    """Short (16 hex chars) SHA-256 of a checkpoint's weights, from ``meta.json`` or else the file.

    Use it to key caches derived from a checkpoint (e.g. features extracted with a trained stream).
    """
    path = Path(path)
    ckpt_dir = resolve_checkpoint(path)
    meta_path = ckpt_dir / META_NAME
    if meta_path.is_file():
        sha = read_meta(ckpt_dir).get("sha256")
        if sha:
            return str(sha)[:16]
    weights = ckpt_dir / WEIGHTS_NAME
    if not weights.is_file():
        raise CheckpointError(f"{weights}: weights file missing")
    return _sha256(weights)[:16]


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """Git short hash of this repository (``-dirty`` when tracked files changed), else the package version."""
    repo = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        if head:
            return f"{head}-dirty" if status else head
    except (OSError, subprocess.SubprocessError):
        pass  # not a git checkout or git not installed: fall back to the package version
    try:
        from importlib.metadata import PackageNotFoundError, version
        return f"groupemotion-{version('groupemotion')}"
    except PackageNotFoundError:
        return "unknown"


def _sort_header_metadata(path: str | os.PathLike) -> None:
    """Rewrite the header metadata of the safetensors file at ``path`` with its keys sorted.

    safetensors writes that map in hash-map order, which changes from one save to the next
    (safetensors issue #584), so the same weights gave files with other bytes and another sha256
    (and features keyed by it were recomputed). Sorting only permutes the entries of the header:
    its length, and the tensor data after it, stay as they are."""
    with open(path, "r+b") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
        metadata = header.get("__metadata__") or {}
        if list(metadata) == sorted(metadata):
            return
        header["__metadata__"] = dict(sorted(metadata.items()))
        text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        if len(text) > size:  # not safetensors' compact JSON after all: keep its header
            return
        f.seek(8)
        f.write(text.ljust(size))  # safetensors pads its header with spaces too


def _has_checkpoint_files(directory: Path) -> bool:
    return (directory / META_NAME).exists() or (directory / WEIGHTS_NAME).exists()


def _sha256(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _prepare_tensors(state_dict: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """CPU, contiguous, no shared storage; tied tensors (the very same view) become ``aliases``."""
    tensors: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    views: dict[tuple, str] = {}  # exact view signature -> first name holding it
    for name in sorted(state_dict):
        t = state_dict[name]
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"state_dict[{name!r}] is a {type(t).__name__}, not a tensor")
        t = t.detach()
        if t.numel():
            key = (t.device, t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.stride(), t.dtype)
            if key in views:
                aliases[name] = views[key]
                continue
            views[key] = name
        t = t.to("cpu").contiguous()
        if t.numel() and t.untyped_storage().nbytes() != t.numel() * t.element_size():
            t = t.clone()  # a slice of a larger storage: store only its own bytes
        tensors[name] = t
    # different views of one storage (e.g. a weight and its reshape) must not share memory in the file
    owners: set[int] = set()
    for name, t in tensors.items():
        if not t.numel():
            continue
        ptr = t.untyped_storage().data_ptr()
        if ptr in owners:
            tensors[name] = t.clone()
        else:
            owners.add(ptr)
    return tensors, aliases
