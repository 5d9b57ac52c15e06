"""Importing the models prints no library warning (every tool imports them), and the filter that
hides fvcore's torch.jit.script FutureWarning does not hide that warning for anyone else."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import warnings
import streams.models.backbones
import torch

def double(x: torch.Tensor) -> torch.Tensor:
    return 2 * x

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    torch.jit.script(double)
print("after-import warnings:", [str(w.message) for w in caught if "torch.jit.script" in str(w.message)])
"""


@pytest.mark.slow  # imports the models in a new interpreter
def test_models_import_without_warnings_and_the_filter_stays_local(tmp_path):
    script = tmp_path / "import_models.py"   # a file: torch.jit.script reads the source
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    # -W default: show every warning once, whatever the environment's settings
    done = subprocess.run([sys.executable, "-W", "default", str(script)], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Warning" not in done.stderr, done.stderr[-3000:]
    # torch.jit.script called by our own code later still warns
    assert "after-import warnings: ['`torch.jit.script`" in done.stdout, done.stdout
