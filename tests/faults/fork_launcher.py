"""Start tools/<name>.py runs as forks of one interpreter that has already imported what they
import, so that a run starts in milliseconds instead of the seconds torch, torchvision, scikit-learn
and librosa take to import (the fault suite starts dozens of runs).

    python tests/faults/fork_launcher.py      (started by tool_runs.ForkLauncher)

Protocol, one JSON object per line: the launcher reads ``{"tool", "argv", "log"}`` on stdin, forks,
and answers ``{"started": pid}`` at once and ``{"exited": pid, "returncode": rc}`` when the run
ends (``rc`` negative: killed by that signal). The child starts its own session (so a SIGKILL of
its process group reaches anything it starts), runs from the repository root with stdout and
stderr in ``log`` and stdin from /dev/null, and executes the tool file as ``__main__`` with
``argv``, exactly as ``python tools/<tool>.py argv`` does after its imports. Nothing runs in the
launcher but imports and one spectrogram of silence, so its forks start without threads or other
state of a previous run.
"""
from __future__ import annotations

import atexit
import json
import os
import runpy
import sys
import threading
import traceback
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ("preprocess", "train_stream", "extract_features", "train_fusion")
# imported inside functions the tools call (decoding audio, TensorBoard), so not by the tool files
LAZY_IMPORTS = ("av", "librosa", "soundfile", "PIL.Image", "torch.utils.tensorboard")


def preload() -> None:
    for tool in TOOLS:
        runpy.run_path(str(ROOT / "tools" / f"{tool}.py"), run_name=f"preload_{tool}")  # imports, defines main
    for name in LAZY_IMPORTS:
        __import__(name)
    # librosa imports most of itself and scipy.signal lazily, at the first spectrogram: 3-8 s that
    # every preprocess run would spend again (this runs numpy on one thread and starts no thread)
    from streams.inputs.spectrogram import log_mel_spectrogram

    log_mel_spectrogram(np.zeros(16000, np.float32), 16000)
    if threading.active_count() != 1:
        raise RuntimeError(f"importing the tools started threads {threading.enumerate()}; forking is unsafe")


def child(tool: str, argv: list[str], log: str) -> None:
    """The forked run; never returns."""
    code = 1
    try:
        os.setsid()
        os.chdir(ROOT)
        null = os.open(os.devnull, os.O_RDONLY)
        out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(out, 2)
        os.close(null)
        os.close(out)
        path = str(ROOT / "tools" / f"{tool}.py")
        sys.argv = [path, *argv]
        try:
            runpy.run_path(path, run_name="__main__")
            code = 0
        except SystemExit as e:
            if e.code is None or isinstance(e.code, int):
                code = e.code or 0
            else:
                print(e.code, file=sys.stderr)
        except BaseException:  # noqa: BLE001 - the tool's own uncaught error, reported as Python would
            traceback.print_exc()
        atexit._run_exitfuncs()  # what the interpreter runs at a normal exit (logging, TensorBoard flush)
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def main() -> None:
    preload()
    print(json.dumps({"ready": os.getpid()}), flush=True)
    for line in iter(sys.stdin.readline, ""):
        command = json.loads(line)
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            child(command["tool"], command["argv"], command["log"])
        print(json.dumps({"started": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"exited": pid, "returncode": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    main()
