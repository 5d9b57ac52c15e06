"""Every tool runs as users run it, ``python tools/NAME.py``: then Python puts tools/ first on
sys.path, so a tool named like a top-level package (tools/live.py beside a live/ package) would
import itself instead of the package."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = sorted(p for p in (ROOT / "tools").glob("*.py"))


def test_no_tool_is_named_like_a_top_level_package():
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert packages, "no top-level packages found"
    clashes = sorted(t.stem for t in TOOLS if t.stem in packages)
    assert not clashes, f"tools/{clashes[0]}.py shadows the package {clashes[0]}/ when run as a script"


def test_every_top_level_package_is_installed():
    """A tool run as a script finds the packages through the install (tools/ is first on sys.path,
    not the root); a package missing from setup.cfg's find list imports in the tests, which run
    from the root, and fails for users (tools/explain.py --check did, on explanations/)."""
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    include = cfg["options.packages.find"]["include"].splitlines()
    included = {line.strip().rstrip("*") for line in include if line.strip()}
    packages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file() and p.name != "tests"}
    missing = sorted(packages - included)
    assert not missing, f"setup.cfg [options.packages.find] include lacks {missing}"


@pytest.mark.slow
@pytest.mark.parametrize("tool", TOOLS, ids=lambda p: p.stem)
def test_every_tool_starts_as_a_script(tool):
    out = subprocess.run([sys.executable, str(tool), "--help"], capture_output=True, text=True, timeout=300,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage:" in out.stdout


#: the tools that run a network
NETWORK_TOOLS = ("preprocess", "extract_keyframes", "extract_features", "evaluate", "robustness", "predict", "live")


@pytest.mark.parametrize("tool", NETWORK_TOOLS)
def test_every_network_tool_runs_on_cuda_when_the_machine_has_it(tool, monkeypatch, capsys):
    """--device defaults to CUDA where torch finds it (simulated here), else to the CPU."""
    import torch

    from core.command_line import default_device
    from tests.conftest import load_tool

    assert default_device() == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert default_device() == "cuda"
    with pytest.raises(SystemExit) as stop:
        load_tool(tool).main(["--help"])
    assert stop.value.code == 0
    help_text = " ".join(capsys.readouterr().out.split())
    assert "--device DEVICE torch device for" in help_text and "here cuda)" in help_text
