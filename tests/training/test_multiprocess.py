"""Training on two processes (``accelerate launch`` with configs/accelerate/cpu_2proc.yaml: two CPU
processes, gloo) behaves like training on one: one run directory written by the main process
only, validation metrics equal to a single-process evaluation of the saved checkpoint, a resume
that every process picks up, each sample trained once per epoch across the processes, and the
global batch split across processes (with gradient accumulation) as the log says.

The streams and fusion runs use the real command-line tools on a tiny fabricated cache / feature
directory written here in the documented formats (streams/cache.py, fusion/features.py).
"""
from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import load_helper
from training.evaluation import evaluate
from training.train_config import plan_batches

pytestmark = pytest.mark.slow  # multi-process launches (accelerate launch)

REPO = Path(__file__).resolve().parents[2]
#: ``_launch(script, *args)``: accelerate launch on 2 CPU processes; the output, or the test fails
_launch = load_helper(Path(__file__).with_name("launcher.py"), "tests_training_launcher").launch_ok
CLASSES = ["Positive", "Neutral", "Negative"]
RUN_LAYOUT = {"config.yaml", "best", "last", "state", "tb", "metrics.json", "train.log"}
STREAM_RUN_FILES = frozenset({"train_clips.json"})  # the clips a stream run fitted and held back
CHECKPOINT_FILES = {"meta.json", "model.safetensors"}
# 12 val clips, 2 processes x 4 per batch: the second process's last batch is padded with
# repeated clips, which the gathered validation must drop
EVAL_BATCH = 4


def _metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text(encoding="utf-8"))


def _check_single_writer(run: Path, *, launches: int, epochs: int, extra: frozenset = frozenset()) -> None:
    """One run directory, written once: no per-process copies of checkpoints, logs or event files.
    ``extra``: files a kind of run adds (a stream run's train_clips.json)."""
    assert {p.name for p in run.iterdir()} == RUN_LAYOUT | extra
    # best/ also holds the temperature fitted on val after training (training/run_calibration.py)
    assert {p.name for p in (run / "best").iterdir()} == CHECKPOINT_FILES | {"calibration.json"}
    assert {p.name for p in (run / "last").iterdir()} == CHECKPOINT_FILES
    tb = list((run / "tb").iterdir())
    assert all(p.is_file() and p.name.startswith("events.out.tfevents") for p in tb)
    assert len(tb) == launches  # one event file per launch, not one per process
    log = (run / "train.log").read_text(encoding="utf-8")
    assert log.count("global batch 8 = 2 process(es)") == launches  # the batch plan, logged by one process
    for e in range(1, epochs + 1):
        assert log.count(f"epoch {e}/") == 1
    # both processes ran: Accelerate saved one RNG state per process
    assert sorted(p.name for p in (run / "state").glob("random_states_*.pkl")) == ["random_states_0.pkl",
                                                                                  "random_states_1.pkl"]
    assert _metrics(run)["batch_plan"]["num_processes"] == 2


def _check_val_equals_one_process(run: Path, evaluate_checkpoint) -> None:
    """metrics.json's validation numbers equal one process evaluating the saved checkpoints."""
    metrics = _metrics(run)
    last_epoch = metrics["history"][-1]
    best_epoch = metrics["history"][metrics["best_epoch"] - 1]
    checks = [("last", last_epoch)] + ([("best", best_epoch)] if best_epoch is not last_epoch else [])
    for which, record in checks:
        out = evaluate_checkpoint(run / which)
        assert len(out["labels"]) == 12 and out["indices"].tolist() == list(range(12))
        assert record["val_acc"] == pytest.approx(out["report"]["accuracy"], abs=1e-9), which
        assert record["val_macro_f1"] == pytest.approx(out["report"]["macro_f1"], abs=1e-9), which
        assert record["val_loss"] == pytest.approx(out["loss"], rel=1e-4, abs=1e-6), which
    assert metrics["best_val_acc"] == best_epoch["val_acc"]
    # every val clip counted once in the gathered report (no padding duplicates)
    assert int(np.asarray(metrics["best_val_report"]["confusion_matrix"]).sum()) == 12


def _check_resumed(run: Path, before: dict, output: str) -> None:
    metrics = _metrics(run)
    assert metrics["finished"] is True
    assert [r["epoch"] for r in metrics["history"]] == [1, 2, 3]
    assert metrics["history"][:2] == before["history"]  # epochs 1-2 kept, not retrained
    assert (run / "train.log").read_text(encoding="utf-8").count("resuming after epoch 2") == 1
    assert json.loads((run / "state" / "progress.json").read_text(encoding="utf-8"))["epoch"] == 3
    assert json.loads((run / "last" / "meta.json").read_text(encoding="utf-8"))["epoch"] == 3
    assert output.count("resuming after epoch 2") == 1  # said once, by the main process


# -------------------------------------------------------------------------------------------- streams


def _write_visual_cache(root: Path) -> Path:
    """24 train + 12 val clips: (16, 40, 40, 3) uint8 keyframes whose colour depends on the label."""
    colours = np.array([[190, 70, 70], [70, 190, 70], [70, 70, 190]], dtype=np.float32)
    rng = np.random.default_rng(0)
    for split, n in (("train", 24), ("val", 12)):
        for i in range(n):
            label = i % 3
            clip = root / f"{split}_{i:03d}"
            clip.mkdir(parents=True)
            frames = np.clip(colours[label] + rng.normal(0, 50, (16, 40, 40, 3)), 0, 255).astype(np.uint8)
            np.save(clip / "keyframes.npy", frames)
            meta = {"clip_id": clip.name, "split": split, "label": label, "class_names": CLASSES,
                    "arrays": {"visual": "fabricated"}, "has_audio": False, "n_faces": 0}
            (clip / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    return root


STREAM_ARGS = ("--config", "configs/streams/visual_tiny.yaml")
STREAM_SET = ("data.crop=32", "train.max_device_batch=2", "train.grad_accum_steps=auto",
              f"train.eval_batch_size={EVAL_BATCH}")


@pytest.fixture(scope="module")
def stream_run(tmp_path_factory):
    """A visual stream trained for 2 epochs on 2 processes: ``(cache, run, tool output)``."""
    base = tmp_path_factory.mktemp("mp_stream")
    cache = _write_visual_cache(base / "cache")
    run = base / "run"
    out = _launch(REPO / "tools" / "train_stream.py", *STREAM_ARGS, "--cache", str(cache), "--out", str(run),
                  "--set", "train.epochs=2", *STREAM_SET)
    return cache, run, out


def _evaluate_stream(cache: Path):
    from streams.data import build_stream_datasets
    from streams.training import load_trained_stream

    def run_eval(checkpoint: Path) -> dict:
        model, recipe, names, _ = load_trained_stream(checkpoint)
        _, val, _ = build_stream_datasets(str(cache), "visual", recipe["data"], seed=recipe["train"]["seed"])
        return evaluate(model=model, dataset=val, batch_size=EVAL_BATCH, class_names=names)

    return run_eval


def test_stream_on_two_processes_writes_one_run_and_matches_one_process(stream_run):
    cache, run, out = stream_run
    _check_single_writer(run, launches=1, epochs=2, extra=STREAM_RUN_FILES)
    log = (run / "train.log").read_text(encoding="utf-8")
    # global batch 8 over 2 processes with at most 2 samples per device: 2 accumulation steps
    assert "global batch 8 = 2 process(es) x 2 accumulation step(s) x 2 per device" in log
    assert "accumulated over 2 step(s)" in log
    plan = _metrics(run)["batch_plan"]
    assert (plan["grad_accum_steps"], plan["per_device_batch"]) == (2, 2)
    assert out.count("global batch 8 = 2 process(es)") == 1  # the other process does not repeat the log
    _check_val_equals_one_process(run, _evaluate_stream(cache))


def test_stream_on_two_processes_resumes(stream_run, tmp_path):
    cache, first, _ = stream_run
    run = tmp_path / "run"
    shutil.copytree(first, run)
    before = _metrics(run)
    out = _launch(REPO / "tools" / "train_stream.py", *STREAM_ARGS, "--cache", str(cache), "--out", str(run),
                  "--set", "train.epochs=3", *STREAM_SET)
    _check_resumed(run, before, out)
    _check_single_writer(run, launches=2, epochs=3, extra=STREAM_RUN_FILES)
    # both processes resumed from the same state: their shares of the validation set, each scored
    # with that process's own weights, agree with one process scoring the main process's checkpoint
    _check_val_equals_one_process(run, _evaluate_stream(cache))


# --------------------------------------------------------------------------------------------- fusion

FUSION_DIMS = {"visual": 12, "audio": 6, "flow": 6, "face": 6}


def _write_feature_dir(root: Path) -> Path:
    """FEATS/{train,val}/ as fusion.features writes it; features carry a noisy class signal and
    some clips lack audio or faces."""
    rng = np.random.default_rng(1)
    centres = {s: rng.normal(0, 1, (3, d)) for s, d in FUSION_DIMS.items()}
    for split, n in (("train", 24), ("val", 12)):
        d = root / split
        d.mkdir(parents=True)
        labels = [i % 3 for i in range(n)]
        streams = {}
        for s, dim in FUSION_DIMS.items():
            available = np.ones(n, dtype=bool)
            if s == "audio":
                available[::5] = False
            if s == "face":
                available[1::4] = False
            feats = (centres[s][labels] + rng.normal(0, 1.5, (n, dim))).astype(np.float32) * available[:, None]
            probs = np.full((n, 3), 1 / 3, np.float32) * available[:, None]
            np.save(d / f"{s}.npy", feats)
            np.save(d / f"{s}_probs.npy", probs)
            streams[s] = {"run": f"fabricated/{s}", "checkpoint_hash": f"fabricated-{s}", "dim": dim,
                          "class_names": CLASSES, "available": available.tolist()}
        index = {"split": split, "clip_ids": [f"{split}_{i:03d}" for i in range(n)], "labels": labels,
                 "class_names": CLASSES, "streams": streams}
        (d / "index.json").write_text(json.dumps(index), encoding="utf-8")
    return root


def test_fusion_on_two_processes_matches_one_process_and_resumes(tmp_path):
    from fusion.dataset import FeatureDataset
    from fusion.features import FeatureSet
    from fusion.training import load_fusion_head

    feats = _write_feature_dir(tmp_path / "feats")
    run = tmp_path / "run"
    args = ("--config", "configs/fusion/concat_fc.yaml", "--features", str(feats), "--out", str(run))
    settings = (f"train.eval_batch_size={EVAL_BATCH}",)

    def run_eval(checkpoint: Path) -> dict:
        head, recipe, names = load_fusion_head(checkpoint)
        streams = tuple(recipe["streams"])
        val = FeatureDataset(FeatureSet(feats, "val", streams), streams)
        return evaluate(model=head, dataset=val, batch_size=EVAL_BATCH, class_names=names)

    _launch(REPO / "tools" / "train_fusion.py", *args, "--set", "train.epochs=2", *settings)
    _check_single_writer(run, launches=1, epochs=2)
    assert _metrics(run)["batch_plan"]["per_device_batch"] == 4  # global 8 over 2 processes
    _check_val_equals_one_process(run, run_eval)

    before = _metrics(run)
    out = _launch(REPO / "tools" / "train_fusion.py", *args, "--set", "train.epochs=3", *settings)
    _check_resumed(run, before, out)
    _check_single_writer(run, launches=2, epochs=3)
    _check_val_equals_one_process(run, run_eval)


# --------------------------------------------------------------------------- sharding and seeding

_PROBE_SCRIPT = '''
"""Trains a toy model on 2 processes, recording which samples and which dropout draws each saw."""
import json, os, sys
import torch
from torch import nn
from training.loop import fit

out = sys.argv[1]
rank = int(os.environ["RANK"])


class Recording(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n, self.epoch, self.seen = n, 0, []

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.seen.append([self.epoch, i])
        return torch.full((4,), float(i % 3)), i % 3


class Probe(nn.Module):
    """A linear classifier that records one global-RNG draw per training forward."""

    def __init__(self, data):
        super().__init__()
        self.fc, self.data, self.draws = nn.Linear(4, 3), data, []

    def forward(self, x):
        if self.training:
            self.draws.append([self.data.epoch, torch.rand(()).item()])
        return self.fc(x)


torch.manual_seed(rank)  # different initial weights per process: DDP must make them equal
data = Recording(16)
model = Probe(data)
cfg = {"epochs": 2, "batch_size": 8, "optimizer": {"name": "sgd", "lr": 0.1}, "seed": 5}
fit(model=model, train_dataset=data, val_dataset=None, class_names=["a", "b", "c"], cfg=cfg,
    out_dir=os.path.join(out, "run"))
with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
    json.dump({"seen": data.seen, "draws": model.draws,
               "weights": [p.detach().flatten().tolist() for p in model.parameters()]}, f)
'''


def test_two_processes_share_each_epoch_and_draw_their_own_randomness(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(textwrap.dedent(_PROBE_SCRIPT), encoding="utf-8")
    _launch(script, str(tmp_path))
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text(encoding="utf-8")) for r in (0, 1)]
    seen = [{e: [i for ep, i in r["seen"] if ep == e] for e in (1, 2)} for r in ranks]
    for e in (1, 2):
        # every sample once per epoch across the two processes, each process its own half
        assert sorted(seen[0][e] + seen[1][e]) == list(range(16))
        assert len(seen[0][e]) == len(seen[1][e]) == 8
    assert seen[0][1] != seen[0][2]  # reshuffled each epoch
    draws = [{e: [v for ep, v in r["draws"] if ep == e] for e in (1, 2)} for r in ranks]
    assert draws[0][1] != draws[1][1]  # dropout-like randomness differs between processes
    assert draws[0][1] != draws[0][2]  # and between epochs
    assert ranks[0]["weights"] == ranks[1]["weights"]  # the processes trained one model
    assert {p.name for p in (tmp_path / "run").iterdir()} == RUN_LAYOUT - {"best"}  # no validation: no best


# ------------------------------------------------------------------------------------ batch plan


@pytest.mark.parametrize("processes, max_device_batch, accum, per_device", [
    (1, None, 1, 32), (2, None, 1, 16), (4, None, 1, 8),     # the global batch is divided, not multiplied
    (1, 4, 8, 4), (2, 4, 4, 4), (4, 4, 2, 4),                # accumulation fills in what a device cannot hold
    (4, 8, 1, 8),                                            # enough room: no accumulation
])
def test_global_batch_plan(processes, max_device_batch, accum, per_device):
    steps = "auto" if max_device_batch is not None else 1
    got_accum, got_per_device, text = plan_batches(32, processes, steps, max_device_batch)
    assert (got_accum, got_per_device) == (accum, per_device)
    assert got_accum * got_per_device * processes == 32
    assert text.startswith(f"global batch 32 = {processes} process(es) x {accum} accumulation step(s) x "
                           f"{per_device} per device")
    if accum > 1:
        assert f"a device holds at most {max_device_batch} samples, so gradients are accumulated over {accum}" in text
    elif max_device_batch is not None:
        assert "no accumulation needed" in text
    assert "NOTE" not in text


# ------------------------------------------------------------------------- launcher settings


def test_processes_launched_without_a_gpu_go_to_the_cpu_and_must_form_one_group(monkeypatch):
    from types import SimpleNamespace

    import training.processes as processes

    asked = []

    def fake_state(cpu):
        asked.append(cpu)
        return SimpleNamespace(num_processes=1, distributed_type="NO")

    monkeypatch.setattr(processes, "PartialState", fake_state)
    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)
    monkeypatch.setattr(torch.accelerator, "is_available", lambda: False)
    monkeypatch.setenv("WORLD_SIZE", "1")
    processes.partial_state()
    monkeypatch.setenv("WORLD_SIZE", "2")
    # two processes that did not join one group would overwrite each other's run files
    with pytest.raises(RuntimeError, match="launched as 2 processes .* set up 1"):
        processes.partial_state()
    assert asked == [False, True]  # several processes and no GPU: Accelerate is asked for the CPU (gloo)


def _toy():
    from tests.conftest import load_helper

    return load_helper(Path(__file__).with_name("toy_training_data.py"), "tests_training_toy_training_data")


def test_recipe_precision_wins_over_the_launcher_and_the_log_says_so(tmp_path, monkeypatch):
    from training.loop import fit

    toy = _toy()
    monkeypatch.setenv("ACCELERATE_MIXED_PRECISION", "bf16")  # what `accelerate launch` with multi_gpu.yaml sets
    cfg = {"epochs": 1, "batch_size": 8, "mixed_precision": "no"}
    metrics = fit(model=toy.make_model(0), train_dataset=toy.ToyDataset(16), val_dataset=None, class_names=CLASSES,
                  cfg=cfg, out_dir=tmp_path / "run")
    assert metrics["finished"]
    log = (tmp_path / "run" / "train.log").read_text(encoding="utf-8")
    assert "accelerate launch asked for mixed_precision=bf16, but the recipe says train.mixed_precision=no" in log
    assert "--set train.mixed_precision=bf16" in log
