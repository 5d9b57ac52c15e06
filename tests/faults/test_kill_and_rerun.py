"""kill -9 at seeded random moments during preprocess, train_stream, extract_features and
train_fusion (``FAULTS_KILLS`` per tool), the same command re-run after each kill, and every run
that finishes compared with an uninterrupted one (what must be equal, and what is left out, is
said in tests/faults/conftest.py; how the kills are placed in tests/faults/tool_runs.py). A kill's
moment is described by what it left on disk (``describe_*`` below)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.faults.conftest import (
    SPLITS,
    compare_cache,
    compare_features,
    compare_run,
    extract_features_argv,
    fault_seed,
    kills_per_tool,
    preprocess_argv,
    runs,
    train_fusion_argv,
    train_stream_argv,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow]

CACHE_STREAMS = {"visual", "flow", "face", "audio"}  # what configs/preprocess/demo.yaml enables
CLIPS = sum(len(labels) for labels in SPLITS.values())


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


# ------------------------------------------------------------------------- what a kill left on disk


def describe_cache(out: Path) -> str:
    complete = partial = 0
    for entry in {p.parent for p in out.rglob("*") if p.is_file() and p.parent != out}:
        meta = _read(entry / "meta.json")
        if meta is not None and set(meta.get("arrays", {})) >= CACHE_STREAMS:
            complete += 1
        else:
            partial += 1
    parts = [f"{complete}/{CLIPS} clips complete"]
    if partial:
        parts.append(f"{partial} entr{'y' if partial == 1 else 'ies'} without a complete meta.json")
    temps = runs().temp_files(out)
    if temps:
        parts.append(f"{len(temps)} temp file(s)")
    return ", ".join(parts)


def describe_run(out: Path) -> str:
    progress = _read(out / "state" / "progress.json")
    parts = [f"state after epoch {progress['epoch']}" if progress else "no state"]
    for which in ("best", "last"):
        meta = _read(out / which / "meta.json")
        if meta is not None:
            parts.append(f"{which} epoch {meta['epoch']}")
        elif (out / which / "model.safetensors").exists():
            parts.append(f"{which} incomplete (weights without meta.json)")
    if (out / ".state.old").exists():
        parts.append("state swap half done (.state.old)")
    metrics = _read(out / "metrics.json")
    if metrics is not None:
        parts.append(f"metrics.json {len(metrics['history'])} epoch(s){' finished' if metrics['finished'] else ''}")
    temps = runs().temp_files(out)
    if temps:
        parts.append(f"{len(temps)} temp file(s)")
    return ", ".join(parts)


def describe_features(out: Path) -> str:
    parts = []
    for split in ("train", "val"):
        index = _read(out / split / "index.json") or {}
        done = list(index.get("streams", {}))
        loose = sorted(p.stem for p in (out / split).glob("*.npy") if p.stem.split("_")[0] not in done)
        parts.append(f"{split}: {','.join(done) or 'none'} indexed" + (f" (+{','.join(loose)}.npy)" if loose else ""))
    temps = runs().temp_files(out)
    if temps:
        parts.append(f"{len(temps)} temp file(s)")
    return "; ".join(parts)


@pytest.fixture
def kill(fault_stage, fault_summary, tool_launcher):
    """``kill(tool, argv, out, reference, describe, compare)``: the kill chains of one tool."""

    def run(tool: str, argv: list[str], out: Path, reference, describe, compare) -> None:
        report = runs().kill_and_rerun(tool, argv, out=out, reference=reference, kills=kills_per_tool(),
                                       seed=f"{fault_seed()}-{tool}", logs=fault_stage["logs"], describe=describe,
                                       compare=compare, record=fault_summary, launcher=tool_launcher)
        assert len(report.kills) == kills_per_tool() and report.identical == report.compared >= 1

    return run


def test_preprocess_killed_and_rerun_writes_the_same_cache(fault_stage, reference_cache, kill):
    out = fault_stage["base"] / "cache"
    kill("preprocess", preprocess_argv(fault_stage, out), out, reference_cache, describe_cache, compare_cache)


def test_train_stream_killed_and_rerun_trains_the_same_weights(fault_stage, reference_cache, reference_stream, kill):
    out = fault_stage["base"] / "flow_run"
    kill("train_stream", train_stream_argv(reference_cache.directory, out), out, reference_stream, describe_run,
         compare_run)


def test_extract_features_killed_and_rerun_writes_the_same_features(fault_stage, reference_cache, stream_runs,
                                                                     reference_features, kill):
    out = fault_stage["base"] / "features"
    kill("extract_features", extract_features_argv(stream_runs, reference_cache.directory, out), out,
         reference_features, describe_features, compare_features)


def test_train_fusion_killed_and_rerun_trains_the_same_head(fault_stage, reference_features, reference_fusion, kill):
    out = fault_stage["base"] / "fusion_run"
    kill("train_fusion", train_fusion_argv(reference_features.directory, out), out, reference_fusion, describe_run,
         compare_run)


def test_the_rerun_of_extract_features_removes_the_temp_file_a_kill_left(fault_stage, reference_cache, stream_runs,
                                                                         reference_features, tool_launcher, tmp_path):
    """A kill mid-write leaves ``.<name>.<random>.tmp`` (no cleanup runs on SIGKILL); the random kills
    above hit that moment only now and then, so here it is made on purpose."""
    out = tmp_path / "features"
    shutil.copytree(reference_features.directory, out)
    stale = out / "train" / ".visual_probs.npy.k1ll3d.tmp"
    stale.write_bytes(b"half of an array")
    launch = runs().run_tool("extract_features", extract_features_argv(stream_runs, reference_cache.directory, out),
                             watch=out, log_path=fault_stage["logs"] / "extract_features_litter.log",
                             launcher=tool_launcher)
    assert launch.returncode == 0, launch.log_tail
    assert compare_features(reference_features.directory, out) == []
