"""File-level guarantees shared by every batch tool.

* atomic writes: a file is written to a temporary name in the same directory and renamed into
  place, so a killed process never leaves a half-written file under the final name;
* ``errors.jsonl``: one JSON object per failed item, appended, so a long run logs what failed
  and goes on;
* deterministic sharding: ``--shard i/N`` splits a list of items so that the union of the N
  shards is the whole list and no item appears in two shards.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable, Sequence, TypeVar

import numpy as np

from core.errors import UserInputError

T = TypeVar("T")
_UMASK = os.umask(0)
os.umask(_UMASK)


def stage_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to a new temp file beside ``path`` (``.<name>.<random>.tmp``, flushed to disk,
    the usual permissions) and return its path, for the caller to rename onto ``path``
    (``os.replace``, atomic) or remove. A failed write leaves no temp file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
    except BaseException:
        os.unlink(tmp)
        raise
    return Path(tmp)


def is_temp_file_name(name: str) -> bool:
    """Whether ``name`` is a writer's temp file: ours (``.<name>.<random>.tmp``, see
    :func:`stage_bytes`) or safetensors' (its ``save_file`` writes ``.tmp`` + 6 random letters
    and digits, the Rust ``tempfile`` crate's name, then renames it onto the target)."""
    return (name.startswith(".") and name.endswith(".tmp")) or _SAFETENSORS_TEMP.fullmatch(name) is not None


_SAFETENSORS_TEMP = re.compile(r"\.tmp[A-Za-z0-9]{6}")


def remove_temp_files(directory: str | os.PathLike) -> list[Path]:
    """Delete the temp files (:func:`is_temp_file_name`) that writers killed mid-write left in
    ``directory``; returns them. Only for a directory no other process is writing to at the same
    time: its temp file would vanish under it."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    stale = [p for p in sorted(directory.iterdir()) if is_temp_file_name(p.name) and p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def stage_json(path: str | os.PathLike, obj: Any) -> Path:
    """:func:`stage_bytes` of the JSON text :func:`atomic_write_json` writes."""
    return stage_bytes(path, _json_text(obj).encode("utf-8"))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same directory + ``os.replace``).

    A write that fails (a full disk, an I/O error) removes the temp file and raises the
    :class:`WriteError` (an ``OSError`` with the writer's errno) naming ``path`` and saying that its
    previous contents are intact (or that there were none)."""
    path = Path(path)
    try:
        tmp = stage_bytes(path, data)
        try:
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as e:
        if e.errno is None or e.filename is not None:
            raise
        # a failed write() or fsync() names no file; the WriteError names it (and keeps the errno)
        kept = f"the previous {path.name} is intact" if path.exists() else f"no {path.name} was written"
        raise WriteError(e.errno, f"{e.strerror}; {kept}", str(path)) from e


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, _json_text(obj))


def _json_text(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n"


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> None:
    """Save ``array`` in ``.npy`` format to ``path`` atomically (loadable with ``mmap_mode='r'``)."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def append_error(log_path: str | os.PathLike, item: str, error: BaseException | str, *,
                 error_type: str | None = None, **extra: Any) -> None:
    """Append one failure record ``{"time", "item", "error_type", "error", ...}`` to a JSON-lines log.

    ``error_type`` is the exception's class name (``"NoVideoStreamError"``): ``type(error).__name__``
    for an exception; give it with a string ``error`` (a failure reported by a worker process),
    else it is recorded as ``"Error"``.

    Each record is written with a single ``write`` call on a file opened in append mode, so lines
    from concurrent worker processes do not interleave.
    """
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "item": str(item),
        "error_type": error_type or (type(error).__name__ if isinstance(error, BaseException) else "Error"),
        "error": str(error),
        **extra,
    }
    line = json.dumps(record, default=_json_default) + "\n"
    with open(log_path, "a", encoding="utf-8") as f:
        f.write(line)


def parse_shard(spec: str | None) -> tuple[int, int]:
    """Parse ``"i/N"`` (0-based ``i`` < ``N``) into ``(i, N)``; ``None`` means ``(0, 1)``."""
    if spec is None:
        return 0, 1
    try:
        i_str, n_str = spec.split("/")
        i, n = int(i_str), int(n_str)
    except ValueError:
        raise ValueError(f"--shard must look like i/N (e.g. 0/4), got {spec!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {spec!r}: need N >= 1 and 0 <= i < N")
    return i, n


def shard_items(items: Sequence[T], shard: tuple[int, int], key=str) -> list[T]:
    """Deterministic 1/N slice of ``items``.

    An item belongs to shard ``hash(key(item)) mod N`` (SHA-1 of the key), so the assignment
    depends only on the item's key, not on the order or on which other items exist: adding clips
    to a dataset does not move existing clips between shards.
    """
    index, count = shard
    if count == 1:
        return list(items)
    return [it for it in items if _stable_bucket(key(it), count) == index]


def _stable_bucket(key: str, count: int) -> int:
    digest = hashlib.sha1(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def config_hash(obj: Any) -> str:
    """Short stable hash (16 hex chars) of a JSON-serialisable config fragment."""
    text = json.dumps(obj, sort_keys=True, default=_json_default)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def file_hash(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 (first 16 hex chars) of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            h.update(block)
    return h.hexdigest()[:16]


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSON-lines file; a missing file reads as empty."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}:{n}: not valid JSON ({e.msg})") from None
    return out


def iter_chunks(items: Iterable[T], size: int) -> Iterable[list[T]]:
    """Yield consecutive lists of at most ``size`` items."""
    chunk: list[T] = []
    for it in items:
        chunk.append(it)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class StorageError(UserInputError, ValueError):
    """A stored file that cannot be used; the message names the file."""


class WriteError(UserInputError, OSError):
    """Files could not be written (a full disk, an I/O error) and nothing was replaced: the message
    names them and says what is intact; ``__cause__`` is the writer's own error."""


def safe_child(root: str | os.PathLike, relative_id: str) -> Path:
    """``root/<relative_id>`` for a '/'-separated id; refuses ids that would escape ``root``."""
    parts = relative_id.replace("\\", "/").split("/")
    if not relative_id or relative_id.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise StorageError(f"id {relative_id!r} is not a safe relative path inside {root}")
    return Path(root).joinpath(*parts)


def read_json(path: str | os.PathLike) -> dict | None:
    """A JSON file's object, ``None`` if absent; a corrupt file raises ``StorageError`` naming it."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise StorageError(f"{path}: corrupt JSON ({e.msg} at line {e.lineno})") from None
