"""A truncated ``.npy`` in the cache (cut short by a full disk, a copy between machines, a writer
other than the tools' atomic ones) is reported with the clip named: ``tools/preprocess.py
--verify`` lists it and exits 1; ``tools/train_stream.py`` and ``tools/extract_features.py`` stop
with one ``error:`` line naming the file and the clip (exit 2); and the same preprocess command
recomputes that one array, to the bytes of the uninterrupted run."""
from __future__ import annotations

import runpy
import shutil
import sys
from pathlib import Path

import pytest

from tests.faults.conftest import ROOT, compare_cache, extract_features_argv, preprocess_argv, runs, train_stream_argv

pytestmark = [pytest.mark.faults, pytest.mark.slow]

CLIP = "Train/train1"  # a training clip: read in the first batch of every stream's first epoch


def run_cli(tool: str, argv: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    """``python tools/<tool>.py argv...`` in this process: ``(exit status, stdout, stderr)``."""
    path = ROOT / "tools" / f"{tool}.py"
    monkeypatch.setattr(sys, "argv", [str(path), *argv])
    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(path), run_name="__main__")
    out, err = capsys.readouterr()
    return info.value.code, out, err


@pytest.fixture
def damaged_cache(tmp_path, reference_cache) -> Path:
    """A copy of the reference cache whose ``CLIP/flow.npy`` lost its second half."""
    cache = tmp_path / "cache"
    shutil.copytree(reference_cache.directory, cache)
    path = cache / CLIP / "flow.npy"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return cache


def test_verify_names_the_clip(fault_stage, damaged_cache, monkeypatch, capsys):
    rc, out, _ = run_cli("preprocess", ["--verify", *preprocess_argv(fault_stage, damaged_cache)], monkeypatch, capsys)
    assert rc == 1
    assert f"stale, incomplete or unreadable {CLIP}: flow" in [line.strip() for line in out.splitlines()]
    assert out.splitlines()[-1].startswith("NOT OK")


@pytest.mark.parametrize("tool", ["train_stream", "extract_features"])
def test_training_and_feature_extraction_stop_naming_the_clip(tool, damaged_cache, stream_runs, tmp_path,
                                                               monkeypatch, capsys):
    argv = (train_stream_argv(damaged_cache, tmp_path / "run") if tool == "train_stream"
            else extract_features_argv(stream_runs, damaged_cache, tmp_path / "features"))
    rc, _, err = run_cli(tool, argv, monkeypatch, capsys)
    assert rc == 2 and "Traceback" not in err, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: ") and str(damaged_cache / CLIP / "flow.npy") in line and f"clip {CLIP}" in line


def test_the_same_preprocess_command_recomputes_that_array(fault_stage, reference_cache, damaged_cache,
                                                           tool_launcher):
    launch = runs().run_tool("preprocess", preprocess_argv(fault_stage, damaged_cache), watch=damaged_cache,
                             log_path=fault_stage["logs"] / "preprocess_truncated_rerun.log", launcher=tool_launcher)
    assert launch.returncode == 0, launch.log_tail
    assert "done 1 | skipped (up to date) 4 | failed 0" in launch.log_tail
    assert compare_cache(reference_cache.directory, damaged_cache) == []
