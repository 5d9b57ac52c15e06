"""The shared training loop on a tiny toy task: learning, run directory, exact resume, reuse,
refusal of a changed config, NaN handling, gradient accumulation, bf16 on CPU."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core.config import ConfigError
from training.checkpoints import load_checkpoint
from training.data_loaders import EpochShuffleSampler
from training.evaluation import evaluate
from training.loop import NonFiniteLossError, fit
from training.run_directory import RunConfigMismatchError
from training.train_config import plan_batches, resolve_train_config


def _helper():
    from tests.conftest import load_helper

    return load_helper(Path(__file__).with_name("toy_training_data.py"), "tests_training_toy_training_data")


toy = _helper()
NAMES = ["Positive", "Neutral", "Negative"]
BASE_CFG = {"epochs": 4, "batch_size": 16, "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
            "schedule": {"name": "step", "step_size": 2, "gamma": 0.5}, "seed": 3}


def run(out_dir, cfg=None, *, model=None, train=None, val=None, **kw):
    return fit(model=model if model is not None else toy.make_model(0, dropout=0.2),
               train_dataset=train if train is not None else toy.ToyDataset(64, augment=True),
               val_dataset=val if val is not None else toy.ToyDataset(30, data_seed=1),
               class_names=NAMES, cfg=cfg or BASE_CFG, out_dir=out_dir, **kw)


def weights(path, which="last"):
    return load_checkpoint(path, which=which)[0]


def test_learns_the_toy_task_and_writes_the_run_dir(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata as hparams_metadata
    from tensorboard.util import tensor_util

    run_dir = tmp_path / "run"
    val = toy.ToyDataset(30, data_seed=1)
    model = toy.make_model(0, dropout=0.2)
    before = evaluate(model=model, dataset=val, batch_size=8, class_names=NAMES)["report"]["accuracy"]
    metrics = run(run_dir, model=model, val=val)
    assert metrics["finished"] is True and len(metrics["history"]) == 4
    assert metrics["best_val_acc"] >= 0.9 > before  # chance is 1/3
    h = metrics["history"]
    assert h[-1]["train_loss"] < h[0]["train_loss"]
    assert [r["lr"] for r in h] == pytest.approx([0.05, 0.05, 0.025, 0.025])  # step schedule per epoch
    assert set(h[0]) >= {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr"}

    for name in ("config.yaml", "metrics.json", "train.log", "best/model.safetensors", "best/meta.json",
                 "last/model.safetensors", "last/meta.json", "state/progress.json"):
        assert (run_dir / name).is_file(), name
    assert json.loads((run_dir / "metrics.json").read_text()) == json.loads(json.dumps(metrics))
    log_lines = [line for line in (run_dir / "train.log").read_text().splitlines() if " INFO epoch " in line]
    assert len(log_lines) == 4 and "val_acc" in log_lines[0]

    # the best checkpoint reproduces the recorded best accuracy
    state, meta = load_checkpoint(run_dir)
    assert meta["epoch"] == metrics["best_epoch"] and meta["class_names"] == NAMES
    assert meta["config"]["train"]["batch_size"] == 16
    fresh_model = toy.make_model(7)
    fresh_model.load_state_dict(state)
    result = evaluate(model=fresh_model, dataset=val, batch_size=7, class_names=NAMES)
    assert result["report"]["accuracy"] == pytest.approx(metrics["best_val_acc"])

    events = EventAccumulator(str(run_dir / "tb"), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss", "train/acc", "val/loss", "val/acc", "lr", "train/loss_step"} <= scalars
    assert [e.step for e in events.Scalars("val/acc")] == [1, 2, 3, 4]
    images = events.Images("val/confusion_matrix")  # drawn for the improving epochs and the last one
    best_steps = [h["epoch"] for i, h in enumerate(metrics["history"])
                  if h["val_acc"] > max([0.0] + [g["val_acc"] for g in metrics["history"][:i]])]
    assert [im.step for im in images] == sorted(set(best_steps) | {4}) and images[0].width > 50

    # per-class PR curves of every validation: rows TP, FP, TN, FN, precision, recall per threshold
    for name in NAMES:
        curves = events.Tensors(f"val/pr_curve/{name}")
        assert [c.step for c in curves] == [1, 2, 3, 4]
        tp, fp, _, fn = tensor_util.make_ndarray(curves[-1].tensor_proto)[:4, 0]  # lowest threshold
        assert (tp + fn, tp + fp) == (10, 30)  # 10 clips of each class among the 30
    # one HParams session in tb/ itself (no sub-run), with the recipe and the best val accuracy
    assert [p.name for p in (run_dir / "tb").iterdir() if p.is_dir()] == []
    content = events.PluginTagToContent("hparams")
    assert set(content) == {"_hparams_/session_start_info", "_hparams_/session_end_info"}
    hp = hparams_metadata.parse_session_start_info_plugin_data(content["_hparams_/session_start_info"]).hparams
    assert hp["train.optimizer.lr"].number_value == pytest.approx(0.05) and hp["train.seed"].number_value == 3
    assert json.loads(hp["class_names"].string_value) == NAMES and "train.grad_clip" not in hp  # None: unset
    best = events.Scalars("hparams/best_val_acc")
    assert len(best) == 1 and best[0].value == pytest.approx(metrics["best_val_acc"])


@pytest.mark.slow  # trains and re-trains toy runs
def test_kill_and_resume_matches_an_uninterrupted_run(tmp_path):
    cfg = {**BASE_CFG, "grad_accum_steps": 2}
    reference = run(tmp_path / "straight", cfg)

    def kill_after_epoch_2(epoch, record):
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "killed", cfg, callbacks=[kill_after_epoch_2])
    progress = json.loads((tmp_path / "killed" / "state" / "progress.json").read_text())
    assert progress["epoch"] == 2
    assert json.loads((tmp_path / "killed" / "metrics.json").read_text())["finished"] is False

    # a kill in the middle of swapping in a new state: the previous state is still found
    killed = tmp_path / "killed"
    (killed / "state").rename(killed / ".state.old")
    (killed / ".state.tmp").mkdir()
    (killed / ".state.tmp" / "model.safetensors").write_bytes(b"partial")
    # ... and the temp files of checkpoint and metrics writes a SIGKILL interrupted (no cleanup ran)
    litter = [killed / "last" / ".model.safetensors.k1ll3d.tmp", killed / "best" / ".meta.json.k1ll3d.tmp",
              killed / ".metrics.json.k1ll3d.tmp"]
    for path in litter:
        path.write_bytes(b"partial")

    seen = []
    resumed = run(tmp_path / "killed", cfg, model=toy.make_model(123, dropout=0.2),  # other init: state wins
                  callbacks=[lambda e, r: seen.append(e)])
    assert seen == [3, 4]
    a, b = weights(tmp_path / "straight"), weights(tmp_path / "killed")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed["history"] == reference["history"]
    assert "resuming after epoch 2" in (tmp_path / "killed" / "train.log").read_text()
    assert not [p for p in litter if p.exists()]

    # the augmentation and shuffling are really in play: another seed ends elsewhere
    other = run(tmp_path / "other_seed", {**cfg, "seed": 4})
    c = weights(tmp_path / "other_seed")
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert other["history"] != reference["history"]


@pytest.mark.slow  # trains and re-trains toy runs
def test_finished_run_is_reused_and_can_be_extended(tmp_path):
    cfg = {**BASE_CFG, "epochs": 2}
    first = run(tmp_path / "run", cfg)
    mtime = (tmp_path / "run" / "last" / "meta.json").stat().st_mtime_ns
    calls = []
    again = run(tmp_path / "run", cfg, callbacks=[lambda e, r: calls.append(e)])
    assert again == json.loads(json.dumps(first)) and calls == []
    assert (tmp_path / "run" / "last" / "meta.json").stat().st_mtime_ns == mtime
    assert "already finished" in (tmp_path / "run" / "train.log").read_text()

    longer = run(tmp_path / "run", {**cfg, "epochs": 3}, callbacks=[lambda e, r: calls.append(e)])
    assert calls == [3] and len(longer["history"]) == 3 and longer["finished"]
    assert load_checkpoint(tmp_path / "run", which="last")[1]["epoch"] == 3
    with pytest.raises(RunConfigMismatchError, match="completed 3 epochs"):
        run(tmp_path / "run", {**cfg, "epochs": 1})


@pytest.mark.slow  # trains and re-trains toy runs
def test_without_validation_best_falls_back_to_last_and_eval_every(tmp_path):
    cfg = {**BASE_CFG, "epochs": 1}
    metrics = fit(model=toy.make_model(0), train_dataset=toy.ToyDataset(32), val_dataset=None, class_names=NAMES,
                  cfg=cfg, out_dir=tmp_path / "noval")
    assert metrics["best_epoch"] is None and metrics["history"][0]["val_acc"] is None
    assert not (tmp_path / "noval" / "best").exists()
    assert load_checkpoint(tmp_path / "noval")[1]["epoch"] == 1  # best -> last

    noval_tb = _events(tmp_path / "noval" / "tb")
    assert "_hparams_/session_start_info" in noval_tb.PluginTagToContent("hparams")  # the recipe, no metric
    assert "hparams/best_val_acc" not in noval_tb.Tags()["scalars"] and noval_tb.Tags()["tensors"] == []

    every = run(tmp_path / "every", {**BASE_CFG, "epochs": 3, "eval_every": 2}, train=toy.ToyDataset(32))
    assert [r["val_acc"] is not None for r in every["history"]] == [False, True, True]  # and always the last
    assert every["best_epoch"] in (2, 3)
    assert [c.step for c in _events(tmp_path / "every" / "tb").Tensors("val/pr_curve/Neutral")] == [2, 3]


def _events(tb_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(tb_dir), size_guidance={"tensors": 0, "scalars": 0})
    events.Reload()
    return events


def _lagging_bn_model() -> torch.nn.Sequential:
    torch.manual_seed(0)  # momentum 0.001: the running statistics barely move in 16 steps
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.BatchNorm1d(16, momentum=0.001), torch.nn.ReLU(),
                               torch.nn.Dropout(0.5), torch.nn.Linear(16, 3))


@pytest.mark.slow  # trains and re-trains toy runs
def test_precise_bn_sets_the_statistics_of_the_final_weights(tmp_path):
    from training.data_loaders import EpochShuffleSampler

    cfg = {**BASE_CFG, "precise_bn_batches": 100}  # more than an epoch has: all 4 batches
    train, val = toy.ToyDataset(64, augment=True), toy.ToyDataset(30, data_seed=1)
    metrics = run(tmp_path / "precise", cfg, model=_lagging_bn_model(), train=train, val=val)
    state = weights(tmp_path / "precise")
    model = _lagging_bn_model()
    model.load_state_dict(state)
    # what the statistics must be: per-batch moments of the last epoch's batches, averaged
    train.set_epoch(4)
    sampler = EpochShuffleSampler(len(train), seed=BASE_CFG["seed"])
    sampler.set_epoch(4)
    order = list(sampler)
    with torch.no_grad():
        h = model[0](torch.stack([train[i][0] for i in order]))
    batches = h.view(4, 16, 16)
    assert torch.allclose(state["1.running_mean"], batches.mean(1).mean(0), atol=1e-5)
    assert torch.allclose(state["1.running_var"], batches.var(1, unbiased=True).mean(0), rtol=1e-4)
    # validation ran with those statistics: re-evaluating the checkpoint gives the logged accuracy
    again = evaluate(model=model, dataset=val, batch_size=8, class_names=NAMES)["report"]["accuracy"]
    assert again == metrics["history"][-1]["val_acc"] >= 0.9

    lagging = weights(run(tmp_path / "plain", BASE_CFG, model=_lagging_bn_model(), train=train, val=val)["run_dir"])
    assert not torch.allclose(lagging["1.running_mean"], batches.mean(1).mean(0), atol=0.1)


@pytest.mark.slow  # trains and re-trains toy runs
def test_changed_config_is_refused_unless_fresh(tmp_path):
    cfg = {**BASE_CFG, "epochs": 1}
    run(tmp_path / "run", cfg)
    changed = {**cfg, "optimizer": {"name": "sgd", "lr": 0.01}}
    with pytest.raises(RunConfigMismatchError,
                       match=r"(?s)config\.yaml.*train\.optimizer\.lr: 0\.05 -> 0\.01.*--fresh"):
        run(tmp_path / "run", changed)
    with pytest.raises(RunConfigMismatchError, match="model.width"):
        run(tmp_path / "run", cfg, recipe={"model": {"width": 8}})
    (tmp_path / "run" / "keep.txt").write_text("not part of the run")
    metrics = run(tmp_path / "run", changed, fresh=True)
    assert metrics["history"][0]["lr"] == pytest.approx(0.01)
    assert (tmp_path / "run" / "keep.txt").exists()  # fresh removes only the run's own files


@pytest.mark.slow  # trains and re-trains toy runs
def test_run_from_before_a_new_train_key_is_reused_while_the_key_keeps_its_default(tmp_path):
    import yaml

    cfg = {**BASE_CFG, "epochs": 1}
    first = run(tmp_path / "run", cfg)
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    del saved["train"]["precise_bn_batches"]  # as written by a version without the key
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(saved))
    assert run(tmp_path / "run", cfg)["history"] == first["history"]  # reused, not refused
    with pytest.raises(RunConfigMismatchError, match=r"precise_bn_batches: \(absent\) -> 4"):
        run(tmp_path / "run", {**cfg, "precise_bn_batches": 4})


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    train = toy.ToyDataset(64, augment=True, nan_from_epoch=2)
    with pytest.raises(NonFiniteLossError, match="epoch 2, batch 1") as info:
        run(tmp_path / "run", model=toy.make_model(0), train=train)
    assert info.value.epoch == 2 and info.value.step == 1
    state, meta = load_checkpoint(tmp_path / "run", which="last")
    assert meta["epoch"] == 1 and all(torch.isfinite(t).all() for t in state.values())
    assert json.loads((tmp_path / "run" / "state" / "progress.json").read_text())["epoch"] == 1
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["finished"] is False


def test_nan_loss_in_an_accumulated_batch_names_that_batch_and_stops_before_the_update(tmp_path):
    # checked once per optimizer step: the NaN of batch 3 is found at the step that ends with batch 4
    train = toy.ToyDataset(64, augment=True, nan_from_epoch=2)
    model = toy.make_model(0)
    cfg = {**BASE_CFG, "epochs": 2, "grad_accum_steps": 4, "batch_size": 16}
    first = run(tmp_path / "ok", {**cfg, "epochs": 1}, model=toy.make_model(0), train=toy.ToyDataset(64, augment=True))
    with pytest.raises(NonFiniteLossError, match="epoch 2, batch 1;") as info:
        run(tmp_path / "run", cfg, model=model, train=train)
    assert info.value.step == 1 and not torch.isfinite(torch.tensor(info.value.loss))
    after = {k: v for k, v in model.state_dict().items()}
    expected = weights(tmp_path / "ok")
    assert all(torch.equal(after[k], expected[k]) for k in expected)  # epoch 1's weights: no update with NaN
    assert first["history"][0]["train_loss"] == json.loads(
        (tmp_path / "run" / "metrics.json").read_text())["history"][0]["train_loss"]


@pytest.mark.slow  # trains and re-trains toy runs
def test_gradient_accumulation_keeps_the_global_batch(tmp_path):
    # momentum-free SGD, no dropout, no augmentation: accumulating 2 x 8 equals one batch of 16
    cfg = {"epochs": 1, "batch_size": 16, "optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.0}, "seed": 1}
    whole = run(tmp_path / "whole", cfg, model=toy.make_model(0), train=toy.ToyDataset(64))
    auto = run(tmp_path / "auto", {**cfg, "grad_accum_steps": "auto", "max_device_batch": 8},
               model=toy.make_model(0), train=toy.ToyDataset(64))
    assert auto["batch_plan"]["grad_accum_steps"] == 2 and auto["batch_plan"]["per_device_batch"] == 8
    assert "accumulated over 2 step(s)" in (tmp_path / "auto" / "train.log").read_text()
    a, b = weights(tmp_path / "whole"), weights(tmp_path / "auto")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert whole["history"][0]["train_loss"] == pytest.approx(auto["history"][0]["train_loss"], abs=1e-6)


@pytest.mark.slow  # trains and re-trains toy runs
def test_persistent_workers_see_each_epoch_and_build_what_the_main_process_builds(tmp_path):
    import os

    def items(log):  # (epoch, index) -> (process, augmented input's sum), from the log the dataset appends to
        rows = [line.split() for line in log.read_text().splitlines()]
        return {(int(e), int(i)): (int(pid), float(v)) for e, i, pid, v in rows}

    cfg = {**BASE_CFG, "epochs": 2}
    logs = {w: tmp_path / f"items_{w}.txt" for w in (0, 2)}
    results = {w: run(tmp_path / f"run_{w}", {**cfg, "num_workers": w},
                      train=toy.ToyDataset(32, augment=True, epoch_log=logs[w])) for w in (0, 2)}
    workers, main = items(logs[2]), items(logs[0])
    assert set(workers) == set(main) == {(e, i) for e in (1, 2) for i in range(32)}
    assert {k: v for k, (_, v) in workers.items()} == {k: v for k, (_, v) in main.items()}
    assert all(workers[2, i][1] != workers[1, i][1] for i in range(32))  # epoch 2 is augmented anew
    pids = {e: {workers[e, i][0] for i in range(32)} for e in (1, 2)}
    assert pids[1] == pids[2] and len(pids[1]) == 2 and os.getpid() not in pids[1]  # the same two workers
    assert {pid for pid, _ in main.values()} == {os.getpid()}
    assert results[2]["history"] == results[0]["history"]
    a, b = weights(tmp_path / "run_0"), weights(tmp_path / "run_2")
    assert all(torch.equal(a[k], b[k]) for k in a)

    def kill_after_epoch_1(epoch, record):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # killed and resumed with workers: the weights of the straight run
        run(tmp_path / "killed", {**cfg, "num_workers": 2}, train=toy.ToyDataset(32, augment=True),
            callbacks=[kill_after_epoch_1])
    resumed = run(tmp_path / "killed", {**cfg, "num_workers": 2}, train=toy.ToyDataset(32, augment=True))
    assert resumed["history"] == results[0]["history"]
    c = weights(tmp_path / "killed")
    assert all(torch.equal(a[k], c[k]) for k in a)


def test_bf16_mixed_precision_on_cpu(tmp_path):
    if not torch.amp.is_autocast_available("cpu"):
        pytest.skip("this torch build has no CPU autocast")
    torch.manual_seed(0)
    model = toy.TinyConv()
    metrics = run(tmp_path / "run", {**BASE_CFG, "epochs": 2, "mixed_precision": "bf16"}, model=model,
                  train=toy.ToyDataset(32, augment=True))
    assert all(torch.isfinite(torch.tensor(r["train_loss"])) for r in metrics["history"])
    assert metrics["best_val_acc"] > 0.5
    assert "_original_forward" not in model.__dict__  # the caller's model is no longer autocast-wrapped
    assert model(torch.randn(2, 8)).dtype == torch.float32
    assert all(t.dtype == torch.float32 for t in weights(tmp_path / "run").values() if t.is_floating_point())


def test_epoch_shuffle_sampler_depends_only_on_seed_and_epoch():
    a, b = EpochShuffleSampler(50, seed=1), EpochShuffleSampler(50, seed=1)
    a.set_epoch(3)
    b.set_epoch(3)
    assert list(a) == list(b) and sorted(a) == list(range(50))
    b.set_epoch(4)
    assert list(a) != list(b)
    assert list(EpochShuffleSampler(5, seed=1, shuffle=False)) == [0, 1, 2, 3, 4]


def test_batch_plan():
    assert plan_batches(32, 1, 1)[:2] == (1, 32)
    assert plan_batches(32, 2, 2)[:2] == (2, 8)
    assert plan_batches(64, 1, "auto", 24)[:2] == (4, 16)  # 3 steps would not divide 64 evenly
    accum, per_device, text = plan_batches(30, 1, "auto", 8)
    assert (accum, per_device) == (5, 6) and "accumulated over 5" in text
    accum, per_device, text = plan_batches(17, 2, 1)
    assert per_device == 8 and "effective global batch is 16" in text
    with pytest.raises(ConfigError, match="nothing left per device"):
        plan_batches(2, 2, 2)
    with pytest.raises(ConfigError, match="exceeds max_device_batch"):
        plan_batches(32, 1, 1, 8)


@pytest.mark.parametrize("cfg, message", [
    ({"lr": 0.1}, r"unknown key\(s\) \['lr'\]"),
    ({"mixed_precision": "fp8"}, "train.mixed_precision"),
    ({"optimizer": {"name": "adam"}}, "train.optimizer.name"),
    ({"optimizer": {"name": "sgd", "betas": [0.9, 0.99]}}, r"train.optimizer: unknown key\(s\) \['betas'\]"),
    ({"optimizer": {"name": "sgd", "lr": "1e-3"}}, "train.optimizer.lr must be a positive number"),
    ({"grad_accum_steps": "auto"}, "max_device_batch"),
    ({"epochs": 0}, "train.epochs"),
    ({"schedule": {"name": "step", "step_size": 0}}, "train.schedule.step_size"),
])
def test_bad_train_config_names_the_key(cfg, message):
    with pytest.raises(ConfigError, match=message):
        resolve_train_config(cfg)


def test_resolved_config_fills_defaults():
    tc = resolve_train_config({"optimizer": {"name": "adamw"}, "schedule": "cosine"})
    assert tc["optimizer"] == {"name": "adamw", "lr": 0.001, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01}
    assert tc["schedule"] == {"name": "cosine", "min_lr": 0.0}
    assert tc["epochs"] == 10 and tc["mixed_precision"] == "no" and tc["grad_clip"] is None


@pytest.mark.slow  # trains and re-trains toy runs
def test_each_epoch_writes_the_weights_once_and_save_every_resumes_after_the_last_saved_epoch(tmp_path):
    import os

    from safetensors.torch import save_file

    cfg = {**BASE_CFG, "epochs": 5}
    straight = run(tmp_path / "straight", cfg)
    one = tmp_path / "straight"
    assert os.path.samefile(one / "state" / "model.safetensors", one / "last" / "model.safetensors")
    if straight["best_epoch"] == 5:
        assert os.path.samefile(one / "best" / "model.safetensors", one / "last" / "model.safetensors")

    every = {**cfg, "save_every": 2}
    seen = []

    def kill_after_epoch_3(epoch, record):
        seen.append(epoch)
        if epoch == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "every", every, callbacks=[kill_after_epoch_3])
    killed = tmp_path / "every"
    assert json.loads((killed / "state" / "progress.json").read_text())["epoch"] == 2
    assert load_checkpoint(killed, which="last")[1]["epoch"] == 2
    assert json.loads((killed / "metrics.json").read_text())["history"][-1]["epoch"] == 3
    resumed = run(killed, every, model=toy.make_model(123, dropout=0.2), callbacks=[lambda e, r: seen.append(e)])
    assert seen == [1, 2, 3, 3, 4, 5]  # epoch 3 was not saved: trained again
    assert resumed["history"] == straight["history"] and resumed["best_epoch"] == straight["best_epoch"]
    for which in ("last", "best"):
        a, b = weights(one, which), weights(killed, which)
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert load_checkpoint(killed, which="last")[1]["epoch"] == 5

    # a resume state written by Accelerate itself (earlier versions) still resumes
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "old", cfg, callbacks=[kill_after_epoch_3])
    state_weights = tmp_path / "old" / "state" / "model.safetensors"
    tensors = {k: v.contiguous() for k, v in weights(tmp_path / "old", "last").items()}
    state_weights.unlink()
    save_file(tensors, str(state_weights), metadata={"format": "pt"})
    assert run(tmp_path / "old", cfg, model=toy.make_model(123, dropout=0.2))["history"] == straight["history"]
    c = weights(tmp_path / "old")
    assert all(torch.equal(weights(one)[k], c[k]) for k in c)


@pytest.mark.slow  # trains and re-trains toy runs
def test_a_resumed_run_may_split_the_batch_otherwise_and_change_precision_not_the_batch(tmp_path):
    import yaml

    cfg = {**BASE_CFG, "epochs": 3}

    def kill_after_epoch_1(epoch, record):
        if epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "run", cfg, callbacks=[kill_after_epoch_1])
    with pytest.raises(RunConfigMismatchError, match=r"train\.batch_size: 16 -> 32"):
        run(tmp_path / "run", {**cfg, "batch_size": 32})
    split = {**cfg, "max_device_batch": 8, "grad_accum_steps": "auto", "save_every": 2, "tf32": False,
             "sync_batchnorm": False, "channels_last_3d": True, "cudnn_benchmark": False}
    if torch.amp.is_autocast_available("cpu"):
        split["mixed_precision"] = "bf16"
    resumed = run(tmp_path / "run", split)
    assert [r["epoch"] for r in resumed["history"]] == [1, 2, 3] and resumed["finished"]
    plan = json.loads((tmp_path / "run" / "metrics.json").read_text())["batch_plan"]
    assert (plan["grad_accum_steps"], plan["per_device_batch"]) == (2, 8)
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["train"]["max_device_batch"] == 8
    assert "resuming after epoch 1" in (tmp_path / "run" / "train.log").read_text()
    assert run(tmp_path / "run", split) == json.loads(json.dumps(resumed))  # finished: reused
