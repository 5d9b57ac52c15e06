"""Reading external weight files and loading them into models with a report."""
from __future__ import annotations

import logging

import pytest
import safetensors.torch
import torch
from torch import nn

from training.weights import LoadReport, WeightsError, load_into, load_state_file


class NotATensor:
    """A pickled Python object that weights_only loading must refuse."""

    def __init__(self) -> None:
        self.payload = "anything"


def small_net() -> nn.Sequential:
    return nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".pyth", ".bin"])
def test_torch_file_round_trip(tmp_path, suffix):
    state = small_net().state_dict()
    path = tmp_path / f"w{suffix}"
    torch.save(state, path)
    assert_same_state(load_state_file(path), state)


def test_safetensors_round_trip(tmp_path):
    state = small_net().state_dict()
    path = tmp_path / "w.safetensors"
    safetensors.torch.save_file(state, str(path))
    assert_same_state(load_state_file(path), state)


@pytest.mark.parametrize("container", ["model_state", "state_dict", "model"])
def test_nested_containers_are_unwrapped(tmp_path, container):
    state = small_net().state_dict()
    path = tmp_path / "ckpt.pyth"
    torch.save({container: state, "epoch": 7, "optimizer_state": {"lr": 0.1}}, path)
    assert_same_state(load_state_file(path), state)


def test_doubly_nested_and_module_prefix_stripped(tmp_path):
    state = small_net().state_dict()
    path = tmp_path / "ddp.pt"
    torch.save({"model": {"state_dict": {f"module.{k}": v for k, v in state.items()}}}, path)
    assert_same_state(load_state_file(path), state)


def test_missing_file_names_it(tmp_path):
    path = tmp_path / "nope.pt"
    with pytest.raises(WeightsError, match="nope.pt.*not found"):
        load_state_file(path)


def test_unknown_suffix_refused(tmp_path):
    path = tmp_path / "weights.txt"
    path.write_text("hello")
    with pytest.raises(WeightsError, match="weights.txt.*unknown weights file type"):
        load_state_file(path)


@pytest.mark.parametrize("name", ["garbage.pt", "garbage.safetensors"])
def test_not_a_checkpoint_names_file(tmp_path, name):
    path = tmp_path / name
    path.write_text("this is not a checkpoint")
    with pytest.raises(WeightsError, match=name):
        load_state_file(path)


def test_pickled_object_refused_by_weights_only(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.zeros(2), "extra": NotATensor()}, path)
    with pytest.raises(WeightsError) as info:
        load_state_file(path)
    message = str(info.value)
    assert "evil.pt" in message
    assert "weights_only=True" in message
    assert "NotATensor" in message
    assert "weights_only=False" not in message  # never advise the unsafe way


def test_non_tensor_entries_refused(tmp_path):
    path = tmp_path / "hparams.pt"
    torch.save({"lr": 0.1, "weight": torch.zeros(2)}, path)
    with pytest.raises(WeightsError, match="hparams.pt.*lr"):
        load_state_file(path)


def test_non_mapping_refused(tmp_path):
    path = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], path)
    with pytest.raises(WeightsError, match="list.pt.*expected a state dict"):
        load_state_file(path)


def test_load_into_reports_every_category(caplog):
    source = small_net()
    target = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 5))  # other class count
    state = dict(source.state_dict())
    state["extra.weight"] = torch.ones(1)
    del state["1.running_var"]
    state["aux.bias"] = torch.ones(1)
    before = {k: v.clone() for k, v in target.state_dict().items()}

    with caplog.at_level(logging.INFO, logger="training.weights"):
        report = load_into(target, state, skip_prefixes=("aux.",), source="file.pt", skip_reason="test")

    assert isinstance(report, LoadReport)
    assert sorted(report.loaded) == sorted(["0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                            "1.num_batches_tracked"])
    assert report.missing == ["1.running_var"]
    assert report.unexpected == ["extra.weight"]
    assert report.skipped_on_purpose == ["aux.bias"]
    assert {m.key: (m.file_shape, m.model_shape) for m in report.skipped_shape} == {
        "2.weight": ((2, 3), (5, 3)), "2.bias": ((2,), (5,))}
    assert not report.complete

    after = target.state_dict()
    for key in report.loaded:
        torch.testing.assert_close(after[key], source.state_dict()[key], rtol=0, atol=0)
    for key in ["1.running_var", "2.weight", "2.bias"]:
        torch.testing.assert_close(after[key], before[key], rtol=0, atol=0)

    text = report.summary()
    for name in ["1.running_var", "extra.weight", "aux.bias", "2.weight: file (2, 3) vs model (5, 3)", "file.pt"]:
        assert name in text
    assert "1.running_var" in caplog.text and any(r.levelno == logging.WARNING for r in caplog.records)


def test_load_into_complete_and_summary_truncation():
    source, target = small_net(), small_net()
    report = load_into(target, source.state_dict())
    assert report.complete and not report.missing and not report.skipped_shape
    assert_same_state(target.state_dict(), source.state_dict())

    many = LoadReport(missing=[f"k{i}" for i in range(30)])
    assert "k29" in many.summary(max_names=None)
    short = many.summary(max_names=5)
    assert "k4" in short and "k5" not in short and "25 more" in short


def test_load_into_casts_dtype():
    source, target = small_net(), small_net()
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in source.state_dict().items()}
    load_into(target, half)
    assert target[0].weight.dtype == torch.float32
    torch.testing.assert_close(target[0].weight, source[0].weight.half().float(), rtol=0, atol=0)
