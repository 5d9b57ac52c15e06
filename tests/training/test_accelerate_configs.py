"""The shipped Accelerate launch configs leave the GPU choice to the user's CUDA_VISIBLE_DEVICES."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs" / "accelerate").glob("*.yaml"))


@pytest.mark.parametrize("config", [c for c in CONFIGS if c.stem == "single_gpu"], ids=lambda c: c.stem)
def test_single_gpu_launch_keeps_the_visible_devices_the_user_chose(tmp_path, config):
    script = tmp_path / "child.py"
    script.write_text("import os\nprint('CHILD', os.environ.get('CUDA_VISIBLE_DEVICES'))\n")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "3", "TMPDIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config),
                          str(script)], capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "CHILD 3" in out.stdout, out.stdout[-2000:]


def test_no_launch_config_pins_a_gpu():
    import yaml

    assert CONFIGS, "no Accelerate configs found"
    for config in CONFIGS:
        ids = yaml.safe_load(config.read_text()).get("gpu_ids", "all")
        assert ids == "all", f"{config.name} sets gpu_ids: {ids!r}, which overrides CUDA_VISIBLE_DEVICES"
