"""The fault-injection suite (``pytest -m faults``): kill -9 during the tools and re-run them, a
truncated cache array, a disk that fills up. Its tests are marked ``faults``.

Environment:

* ``FAULTS_KILLS`` (default 5): kills per tool (preprocess, train_stream, extract_features,
  train_fusion). ``make test`` runs the default; run the suite alone with more, e.g.
  ``FAULTS_KILLS=20 PYTHONPATH=$PWD .venv/bin/python -m pytest -m faults``.
* ``FAULTS_SEED`` (default 0): seeds the kill moments; another seed draws other moments.
* ``FAULTS_LAUNCH`` (default ``fork``): how the killed runs and their re-runs start. ``fork``:
  as forks of one interpreter that imported the tools' modules once (tests/faults/fork_launcher.py;
  a run then starts in milliseconds, not the 3-8 s of importing torch, torchvision, scikit-learn
  and librosa); ``exec``: each a new ``python tools/<tool>.py``. The uninterrupted run each tool
  is compared with is always a new ``python tools/<tool>.py``, so the fork runs are also checked
  against the plain command.

The uninterrupted runs every tool is compared with are made once per session, on tiny inputs:
five 2 s clips (3 train, 2 val), the demo preprocessing recipe, the tiny flow stream for 2 epochs,
random-init tiny visual/audio/face streams beside it, Concat-FC fusion for 6 epochs.

What must be equal between an uninterrupted run and a killed-and-re-run one (``compare_*``):

* the cache: every file, byte for byte (arrays, ``keyframes.json``, ``pipeline.json``), and
  every ``meta.json`` except ``timings_s`` (the wall-clock seconds each stage took);
* a training run: every file byte for byte (``config.yaml``, ``metrics.json`` with the whole
  history, ``best/`` and ``last/`` weights, the resume state: weights, optimizer, scheduler, RNG,
  progress) except ``meta.json``'s ``created`` (the time it was written), ``train.log`` (a line per
  event with its time; a re-run adds "resuming after epoch N") and ``tb/`` (TensorBoard event files
  carry wall-clock times; a re-run starts a second file);
* the features: every file, byte for byte.

Paths written into the outputs compare equal because each uninterrupted run is made at the very
path the kill runs use, and moved away afterwards.

At the end pytest prints one line per tool (kills, the moment each hit, re-runs identical) and the
path of a JSON file holding every launch.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from tests.conftest import CLASSES, load_helper, make_scene_clip

ROOT = Path(__file__).resolve().parents[2]
SPLITS = {"Train": (0, 1, 2), "Val": (1, 2)}  # VGAF labels 1..3 of each split's clips
FUSION_EPOCHS = 6
STREAM_EPOCHS = 2

_reports: list[dict] = []
_summary_path: list[Path] = []


def runs() -> object:
    """The helper module ``tool_runs.py`` next to this file."""
    return load_helper(Path(__file__).with_name("tool_runs.py"), "tests_faults_tool_runs")


def kills_per_tool() -> int:
    value = os.environ.get("FAULTS_KILLS", "5")
    try:
        kills = int(value)
    except ValueError:
        raise pytest.UsageError(f"FAULTS_KILLS must be an integer, got {value!r}") from None
    if kills < 1:
        raise pytest.UsageError(f"FAULTS_KILLS must be at least 1, got {kills}")
    return kills


def fault_seed() -> str:
    return os.environ.get("FAULTS_SEED", "0")


def compare_cache(reference: Path, out: Path) -> list[str]:
    return runs().compare_trees(reference, out,
                                json_ignore=lambda rel: ("timings_s",) if Path(rel).name == "meta.json" else ())


def compare_run(reference: Path, out: Path) -> list[str]:
    return runs().compare_trees(
        reference, out, skip=lambda rel: rel == "train.log" or rel.startswith("tb/"),
        json_ignore=lambda rel: ("created",) if rel in ("best/meta.json", "last/meta.json") else ())


def compare_features(reference: Path, out: Path) -> list[str]:
    return runs().compare_trees(reference, out)


@pytest.fixture(scope="session")
def fault_stage(tmp_path_factory, tiny_scorer_run) -> dict[str, Path]:
    """A tiny VGAF-layout dataset and the random-init scorer: the inputs of the first tool."""
    base = tmp_path_factory.mktemp("faults")
    data = base / "data"
    for split, labels in SPLITS.items():
        (data / split).mkdir(parents=True)
        lines = ["Vid_name Label"]
        for i, label in enumerate(labels):
            name = f"{split.lower()}{i}"
            make_scene_clip(data / split / f"{name}.mp4", n_frames=20, fps=10.0, size=(160, 96), faces=2,
                            seed=i + (100 if split == "Val" else 0), motion=(1, 2))
            lines.append(f"{name} {label + 1}")
        (data / f"{split}_labels.txt").write_text("\n".join(lines) + "\n")
    return {"base": base, "data": data, "scorer": tiny_scorer_run, "logs": base / "logs"}


def preprocess_argv(stage: dict, out: Path) -> list[str]:
    return ["--config", str(ROOT / "configs/preprocess/demo.yaml"), "--videos", str(stage["data"]),
            "--scorer", str(stage["scorer"]), "--out", str(out)]


def train_stream_argv(cache: Path, out: Path) -> list[str]:
    return ["--config", str(ROOT / "configs/streams/flow_tiny.yaml"), "--set", f"train.epochs={STREAM_EPOCHS}",
            "--cache", str(cache), "--out", str(out)]


def extract_features_argv(stream_runs: dict[str, Path], cache: Path, out: Path) -> list[str]:
    return ["--streams", ",".join(f"{s}={p}" for s, p in stream_runs.items()), "--cache", str(cache),
            "--out", str(out), "--splits", "train,val"]


def train_fusion_argv(features: Path, out: Path) -> list[str]:
    return ["--config", str(ROOT / "configs/fusion/concat_fc.yaml"), "--set", f"train.epochs={FUSION_EPOCHS}",
            "--features", str(features), "--out", str(out)]


@pytest.fixture(scope="session")
def reference_cache(fault_stage):
    """The uninterrupted ``tools/preprocess.py`` run (all four streams)."""
    out = fault_stage["base"] / "cache"
    return runs().reference_run("preprocess", preprocess_argv(fault_stage, out), out=out,
                                keep_as=fault_stage["base"] / "cache.reference", logs=fault_stage["logs"])


@pytest.fixture(scope="session")
def reference_stream(fault_stage, reference_cache):
    """The uninterrupted ``tools/train_stream.py`` run: the tiny flow stream, 2 epochs."""
    out = fault_stage["base"] / "flow_run"
    return runs().reference_run("train_stream", train_stream_argv(reference_cache.directory, out), out=out,
                                keep_as=fault_stage["base"] / "flow_run.reference", logs=fault_stage["logs"])


@pytest.fixture(scope="session")
def stream_runs(fault_stage, reference_stream) -> dict[str, Path]:
    """The four stream runs features are extracted with: the trained flow run, and random-init tiny
    visual, audio and face checkpoints (what they output does not matter here, only that a
    re-run outputs it again)."""
    from core.config import load_config
    from streams.training import build_stream_model
    from training.checkpoints import save_checkpoint

    out = {}
    for stream in ("visual", "audio", "face"):
        recipe = {k: v for k, v in load_config(ROOT / f"configs/streams/{stream}_tiny.yaml").items() if k != "train"}
        torch.manual_seed(0)
        model = build_stream_model(recipe, len(CLASSES))
        run = fault_stage["base"] / "streams" / stream
        save_checkpoint(run / "best", state_dict=model.state_dict(),
                        meta={"config": recipe, "class_names": list(CLASSES), "epoch": 1, "metrics": {}})
        out[stream] = run
    out["flow"] = reference_stream.directory
    return out


@pytest.fixture(scope="session")
def reference_features(fault_stage, reference_cache, stream_runs):
    """The uninterrupted ``tools/extract_features.py`` run over the four streams."""
    out = fault_stage["base"] / "features"
    return runs().reference_run("extract_features", extract_features_argv(stream_runs, reference_cache.directory, out),
                                out=out, keep_as=fault_stage["base"] / "features.reference", logs=fault_stage["logs"])


@pytest.fixture(scope="session")
def reference_fusion(fault_stage, reference_features):
    """The uninterrupted ``tools/train_fusion.py`` run (Concat-FC, 6 epochs)."""
    out = fault_stage["base"] / "fusion_run"
    return runs().reference_run("train_fusion", train_fusion_argv(reference_features.directory, out), out=out,
                                keep_as=fault_stage["base"] / "fusion_run.reference", logs=fault_stage["logs"])


@pytest.fixture(scope="session")
def tool_launcher(fault_stage):
    """The :class:`ForkLauncher` the kill runs start from (``None`` with ``FAULTS_LAUNCH=exec``)."""
    mode = os.environ.get("FAULTS_LAUNCH", "fork")
    if mode not in ("fork", "exec"):
        raise pytest.UsageError(f"FAULTS_LAUNCH must be fork or exec, got {mode!r}")
    if mode == "exec":
        yield None
        return
    fault_stage["logs"].mkdir(parents=True, exist_ok=True)
    launcher = runs().ForkLauncher(fault_stage["logs"] / "fork_launcher.log")
    yield launcher
    launcher.close()


@pytest.fixture(scope="session")
def fault_summary(pytestconfig, tmp_path_factory):
    """``record(report)``: keep a tool's :class:`KillReport` for the end-of-run lines and rewrite
    the JSON summary, ``.pytest_cache/d/faults/summary.json`` (pytest's own cache folder: a green
    run deletes its temp dirs, and the summary is what one reads after a green run); under the
    temp dir when the cache plugin is off (``-p no:cacheprovider``)."""
    cache = getattr(pytestconfig, "cache", None)
    path = (cache.mkdir("faults") if cache is not None else tmp_path_factory.getbasetemp()) / "summary.json"

    def record(report) -> None:
        _reports.append(report.as_json())
        path.write_text(json.dumps(_reports, indent=2, default=str) + "\n")
        if not _summary_path:
            _summary_path.append(path)

    return record


def pytest_terminal_summary(terminalreporter):
    if not _reports:
        return
    terminalreporter.section("fault injection: kill -9 and re-run")
    for report in _reports:
        terminalreporter.write_line(report["summary"])
    terminalreporter.write_line(f"every launch: {_summary_path[0]}")
