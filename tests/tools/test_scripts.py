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


@pytest.mark.slow
@pytest.mark.parametrize("tool", TOOLS, ids=lambda p: p.stem)
def test_every_tool_starts_as_a_script(tool):
    out = subprocess.run([sys.executable, str(tool), "--help"], capture_output=True, text=True, timeout=300,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "usage:" in out.stdout
