"""tools/gpu_check.py: without a CUDA device it refuses with one ``error:`` line and status 2 (the
CPU only with --allow-cpu); as a CPU dry run at tiny sizes it trains, estimates, predicts, runs
live mode and writes its results page."""
from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools/gpu_check.py"


def run_cli(argv: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", [str(TOOL), *argv])
    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(TOOL), run_name="__main__")
    out, err = capsys.readouterr()
    return info.value.code, out, err


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_refuses_without_a_cuda_device(monkeypatch, capsys):
    rc, out, err = run_cli(["--json"], monkeypatch, capsys)
    assert (rc, out, err.strip()) == (2, "", "error: no CUDA device")


def test_refuses_the_cpu_unless_allowed(monkeypatch, capsys):
    rc, out, err = run_cli(["--device", "cpu", "--json"], monkeypatch, capsys)
    assert rc == 2 and out == "" and err.startswith("error: ") and "--allow-cpu" in err and len(err.splitlines()) == 1


@pytest.mark.slow  # fabricates a cache, trains, builds a pipeline, predicts and runs live mode (~30 s)
def test_cpu_dry_run_writes_the_page(monkeypatch, capsys, tmp_path):
    page = tmp_path / "gpu_check.md"
    rc, out, _ = run_cli(["--device", "cpu", "--allow-cpu", "--tiny", "--streams", "visual", "--precision", "fp32",
                          "--batch", "2", "--steps", "1", "--loader-workers", "0", "--clip-seconds", "3",
                          "--json", "--markdown", str(page)], monkeypatch, capsys)
    assert rc == 0
    r = json.loads(out)
    assert r["failed"] == [] and r["device"] == "cpu"
    [row] = r["training"]
    assert row["stream"] == "visual" and row["batch"] == 2 and row["input_shape"] == [2, 3, 8, 56, 56]
    assert row["step_s"] > 0 and row["loader_clips_per_s"] > 0 and row["estimate_gib"] > 0
    assert "peak_memory_gib" not in row  # read on CUDA only
    inference = r["inference"]
    assert inference["predicted"] in ("Positive", "Neutral", "Negative") and inference["live_windows"] >= 1
    text = page.read_text()
    assert text.startswith("# GPU check") and "python tools/gpu_check.py --device cpu" in text
    assert "| visual | tiny | fp32 | 2 |" in text
