"""``accelerate launch`` of a script on two CPU processes (configs/accelerate/cpu_2proc.yaml, gloo),
for the tests that train on several processes."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
CPU_2PROC = REPO / "configs" / "accelerate" / "cpu_2proc.yaml"


def launch(script: Path, *args: str, cwd: Path = REPO, timeout: float = 300) -> tuple[int, str]:
    """``accelerate launch --config_file cpu_2proc.yaml script args``: ``(exit status, output)``
    (stdout and stderr of both processes together)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("ACCELERATE_") and k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE",
                                                           "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    if torch.accelerator.is_available():  # on a GPU machine keep the two processes on the CPU, as the config says
        env["ACCELERATE_USE_CPU"] = "1"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CPU_2PROC), str(script), *args]
    # torchrun leaves a torchelastic_* log directory in the temp dir at every launch: give it one that goes
    with tempfile.TemporaryDirectory(prefix="launch_") as launch_tmp:
        env["TMPDIR"] = launch_tmp
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=timeout)
    return proc.returncode, proc.stdout


def launch_ok(script: Path, *args: str, cwd: Path = REPO) -> str:
    """:func:`launch`, failing the test (with the end of the output) unless the exit status is 0;
    returns the output."""
    rc, out = launch(script, *args, cwd=cwd)
    assert rc == 0, f"accelerate launch {script} {' '.join(args)} failed (rc {rc}):\n{out[-6000:]}"
    return out
