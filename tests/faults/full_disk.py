"""A disk that fills up, simulated in this process: writes into chosen files fail the way a full
disk makes them fail, after part of the data went out.

What a full disk does to each writer the project uses (checked on a small tmpfs):

* a Python file object's ``write``/``flush``: ``OSError(ENOSPC)`` without a file name;
* ``safetensors.torch.save_file`` (Rust): ``SafetensorError("Error while serializing: I/O error: No
  space left on device (os error 28)")``;
* ``torch.save`` (C++), which Accelerate's ``save_state`` uses for the optimizer, scheduler and
  RNG state: a ``RuntimeError`` from its zip writer, the partial file left behind.

:class:`FullDisk` patches, for the duration of a test, the points where those writers are reached:
``open``/``io.open``/``os.fdopen`` (file objects; ``tempfile.mkstemp`` is watched to know which
file a descriptor is), ``training.checkpoints.save_file`` and ``Accelerator.save_state``. A write is
refused when its target path (a temp file's name says which file it becomes) satisfies ``full``;
with ``after`` N, the first N such writes still succeed.
"""
from __future__ import annotations

import builtins
import errno
import io
import os
import tempfile
from typing import Callable

ENOSPC_TEXT = os.strerror(errno.ENOSPC)


def disk_full_error() -> OSError:
    return OSError(errno.ENOSPC, ENOSPC_TEXT)


class _FillingFile:
    """A writable file object whose next write writes half of its data, then fails."""

    def __init__(self, file, disk: "FullDisk", path: str) -> None:
        self._file, self._disk, self._path = file, disk, path

    def write(self, data):
        if self._disk.refuse(self._path):
            self._file.write(data[: len(data) // 2])
            self._file.flush()
            raise disk_full_error()
        return self._file.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()
        return False

    def __iter__(self):
        return iter(self._file)

    def __getattr__(self, name):
        return getattr(self._file, name)


class FullDisk:
    """Fail writes to paths where ``full(path)`` is true (see the module docstring); ``refused``
    lists the paths whose writes failed, so a test can check that its fault really happened."""

    def __init__(self, monkeypatch, full: Callable[[str], bool], *, after: int = 0) -> None:
        self.full, self.after = full, after
        self.refused: list[str] = []
        self._fd_paths: dict[int, str] = {}
        real_open, real_fdopen, real_mkstemp = builtins.open, os.fdopen, tempfile.mkstemp
        self._real_open = real_open

        def mkstemp(*args, **kwargs):
            fd, name = real_mkstemp(*args, **kwargs)
            self._fd_paths[fd] = os.fsdecode(name)
            return fd, name

        def fdopen(fd, mode="r", *args, **kwargs):
            file = real_fdopen(fd, mode, *args, **kwargs)
            path = self._fd_paths.pop(fd, None)
            return self._wrap(file, path, mode)

        def open_(file, mode="r", *args, **kwargs):
            f = real_open(file, mode, *args, **kwargs)
            return self._wrap(f, None if isinstance(file, int) else os.fsdecode(file), mode)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
        monkeypatch.setattr(os, "fdopen", fdopen)
        monkeypatch.setattr(builtins, "open", open_)
        monkeypatch.setattr(io, "open", open_)
        self._patch_safetensors(monkeypatch)
        self._patch_accelerate(monkeypatch)

    def refuse(self, path: str) -> bool:
        """Whether this write to ``path`` fails (and note it)."""
        if not self.full(str(path)):
            return False
        if self.after > 0:
            self.after -= 1
            return False
        self.refused.append(str(path))
        return True

    def _wrap(self, file, path: str | None, mode: str):
        writable = any(c in mode for c in "wax+")
        if path is None or not writable or not self.full(path):
            return file
        return _FillingFile(file, self, path)

    def _patch_safetensors(self, monkeypatch) -> None:
        from safetensors import SafetensorError

        import training.checkpoints

        real = training.checkpoints.save_file

        def save_file(tensors, filename, metadata=None):
            if self.refuse(os.fsdecode(filename)):
                real(tensors, filename, metadata=metadata)
                with self._real_open(filename, "r+b") as f:  # what went out before the disk filled
                    f.truncate(100)
                raise SafetensorError(f"Error while serializing: I/O error: {ENOSPC_TEXT} (os error {errno.ENOSPC})")
            return real(tensors, filename, metadata=metadata)

        monkeypatch.setattr(training.checkpoints, "save_file", save_file)

    def _patch_accelerate(self, monkeypatch) -> None:
        from accelerate import Accelerator

        real = Accelerator.save_state

        def save_state(accelerator, output_dir=None, **kwargs):
            target = os.path.join(os.fsdecode(output_dir), "model.safetensors")
            if self.refuse(target):
                os.makedirs(output_dir, exist_ok=True)
                with self._real_open(target, "wb") as f:  # what a writer had put out before the disk filled
                    f.write(b"\0" * 64)
                raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
            return real(accelerator, output_dir, **kwargs)

        monkeypatch.setattr(Accelerator, "save_state", save_state)
