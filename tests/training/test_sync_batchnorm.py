"""train.sync_batchnorm: when it is on, the conversion (same keys and values, so the checkpoints
load into the plain model), its undoing after training, and its refusal on a CPU."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from core.config import ConfigError
from training.batch_norm import convert_to_sync_batchnorm, revert_sync_batchnorm, sync_batchnorm_wanted
from training.train_config import resolve_train_config

CPU, CUDA = torch.device("cpu"), torch.device("cuda", 0)


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv3d(3, 4, 1), torch.nn.BatchNorm3d(4), torch.nn.ReLU(),
                               torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4 * 8, 6),
                                                   torch.nn.BatchNorm1d(6, affine=False)))


@pytest.mark.parametrize("setting, processes, per_device, device, wanted", [
    ("auto", 2, 4, CUDA, True), ("auto", 2, 8, CUDA, False), ("auto", 1, 4, CUDA, False),
    ("auto", 2, 4, CPU, False), (True, 1, 16, CUDA, True), (False, 2, 2, CUDA, False)])
def test_when_sync_batchnorm_is_on(setting, processes, per_device, device, wanted):
    on, why = sync_batchnorm_wanted(setting, model=_net(), num_processes=processes, per_device=per_device,
                                    device=device)
    assert on is wanted
    if setting == "auto" and device == CPU:
        assert "CUDA only" in why
    assert sync_batchnorm_wanted(True, model=torch.nn.Linear(2, 2), num_processes=2, per_device=1,
                                 device=CUDA)[0] is False  # no BatchNorm: nothing to synchronise


def test_true_on_a_cpu_is_a_config_error_and_the_key_takes_three_values():
    with pytest.raises(ConfigError, match="sync_batchnorm: true needs CUDA"):
        sync_batchnorm_wanted(True, model=_net(), num_processes=2, per_device=4, device=CPU)
    assert resolve_train_config(None)["sync_batchnorm"] == "auto"
    assert resolve_train_config({"sync_batchnorm": False})["sync_batchnorm"] is False
    with pytest.raises(ConfigError, match="train.sync_batchnorm"):
        resolve_train_config({"sync_batchnorm": "yes"})


def test_conversion_keeps_the_state_dict_and_is_undone():
    net = _net()
    net.train()
    net(torch.randn(5, 3, 2, 2, 2))  # running statistics that are not the initial ones
    net.eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(3, 3, 2, 2, 2)
    expected = net(x)
    params = list(net.parameters())
    replaced = convert_to_sync_batchnorm(net)
    assert [type(m) for m in (net[1], net[3][2])] == [torch.nn.SyncBatchNorm] * 2 and len(replaced) == 2
    state = net.state_dict()
    assert state.keys() == before.keys() and all(torch.equal(state[k], before[k]) for k in state)
    assert list(net.parameters()) == params  # the optimizer's parameters are the same objects
    assert torch.equal(net(x), expected)  # eval mode: no synchronisation, runs on the CPU
    plain = _net()
    plain.load_state_dict(state)  # a checkpoint of the synchronised model loads into the plain one
    with torch.no_grad():
        net[0].weight.add_(1.0)
        net[1].running_mean.add_(2.0)
    revert_sync_batchnorm(replaced)
    assert type(net[1]) is torch.nn.BatchNorm3d and type(net[3][2]) is torch.nn.BatchNorm1d
    assert net[3][2].affine is False and not net[1].training
    assert torch.equal(net[1].running_mean, before["1.running_mean"] + 2.0)  # what it learned stays
    assert net.state_dict().keys() == before.keys()


@pytest.mark.slow  # trains a toy run
def test_auto_on_a_cpu_trains_plain_batchnorm(tmp_path):
    from tests.conftest import load_helper
    from training.loop import fit

    toy = load_helper(Path(__file__).with_name("toy_training_data.py"), "tests_training_toy_training_data")

    def run(out_dir, setting, model):
        return fit(model=model, train_dataset=toy.ToyDataset(32), val_dataset=None, class_names=["a", "b", "c"],
                   cfg={"epochs": 1, "batch_size": 8, "sync_batchnorm": setting}, out_dir=out_dir)

    model = toy.TinyConv()
    metrics = run(tmp_path / "run", "auto", model)
    assert metrics["batch_plan"]["sync_batchnorm"] is False
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    with pytest.raises(ConfigError, match="sync_batchnorm: true needs CUDA"):
        run(tmp_path / "true", True, toy.TinyConv())
    assert not (tmp_path / "true" / "config.yaml").exists()


def test_small_device_batches_without_sync_batchnorm_are_warned_about(caplog):
    from types import SimpleNamespace

    from training.loop import _log_sync_batchnorm

    two = SimpleNamespace(is_main_process=True, num_processes=2)
    for setting, device in ((False, CUDA), ("auto", CPU)):
        on, why = sync_batchnorm_wanted(setting, model=_net(), num_processes=2, per_device=4, device=device)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="training.loop"):
            _log_sync_batchnorm(two, on, why, 4)
        assert [r.levelname for r in caplog.records] == ["WARNING"] and "4 samples per device" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="training.loop"):
        _log_sync_batchnorm(two, False, "train.sync_batchnorm: auto", 8)
    assert not caplog.records
