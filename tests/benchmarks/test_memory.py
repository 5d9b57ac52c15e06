"""The memory estimate (benchmarks/memory.py, ``tools/benchmark.py memory``): on small networks
whose saved tensors are counted by hand, the activation bytes are exactly those (each storage
once; parameters and the input left out; bfloat16 at 2 bytes); the fake-CUDA estimate agrees with
the same count on real tensors; parameters, gradients and optimizer state follow the recipe;
the tool prints one JSON object, and a bad recipe is one ``error:`` line with status 2."""
from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from benchmarks.memory import GIB, estimate_training_memory, fits, optimizer_buffers, saved_activation_bytes
from core.config import load_config
from streams.training import build_stream_model

ROOT = Path(__file__).resolve().parents[2]
VISUAL_TINY = ROOT / "configs/streams/visual_tiny.yaml"


def shallow_tiny_visual() -> dict:
    """configs/streams/visual_tiny.yaml with an 18-layer 3D ResNet (quicker to build)."""
    cfg = load_config(VISUAL_TINY)
    return {**cfg, "model": {**cfg["model"], "depth": 18}}


def mlp(inplace: bool) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(inplace=inplace), nn.Linear(8, 2)).train()


@pytest.mark.parametrize("inplace", [False, True])
def test_activations_of_a_small_network_are_counted_by_hand(inplace):
    # Saved for backward: the first Linear saves its input (the batch: left out) and its weight (a
    # parameter: left out); ReLU saves its output, 5 x 8 float32 = 160 bytes; the second Linear
    # saves the same tensor as its input (counted once) and its weight (left out). The first
    # Linear's output is not saved (ReLU's backward needs only its own output).
    r = saved_activation_bytes(mlp(inplace), torch.randn(5, 4))
    assert r["bytes"] == 5 * 8 * 4
    assert r["tensors"] == 1
    assert r["saved_bytes_counted_per_save"] == 2 * 5 * 8 * 4  # without de-duplication: twice
    assert r["bytes_by_dtype"] == {"float32": 160}


def test_bfloat16_autocast_counts_two_bytes_and_the_weight_copies():
    # Under bfloat16 autocast each Linear runs on bf16 copies of its input and weight (new
    # storages, not the batch or the parameters). The first saves its input copy, 5 x 4 x 2 = 40
    # bytes (not its weight copy: the batch needs no gradient); the ReLU output is bf16, 5 x 8 x 2
    # = 80; the second Linear saves it (counted once) and its weight copy, 2 x 8 x 2 = 32; biases
    # are not saved. 40 + 80 + 32 = 152.
    r = saved_activation_bytes(mlp(True), torch.randn(5, 4), autocast_dtype=torch.bfloat16)
    assert r["bytes"] == 152 and r["bytes_by_dtype"] == {"bfloat16": 152}
    assert not torch.is_autocast_enabled("cpu")  # the state is restored


def test_the_loss_is_included_and_the_labels_are_left_to_the_input():
    x, y = torch.randn(5, 4), torch.zeros(5, dtype=torch.long)
    without = saved_activation_bytes(mlp(False), x)["bytes"]
    # cross_entropy = log_softmax (saves its 5 x 2 float32 output, 40 bytes) + nll_loss (saves the
    # labels, left out as part of the batch, and its float32 total weight, 4 bytes)
    assert saved_activation_bytes(mlp(False), x, y)["bytes"] == without + 5 * 2 * 4 + 4


def test_fake_cuda_estimate_matches_real_tensors_on_the_tiny_visual_recipe():
    cfg = shallow_tiny_visual()
    est = estimate_training_memory(cfg, batch=2, precision="fp32")
    recipe = {"stream": "visual", "model": {k: v for k, v in cfg["model"].items() if k != "pretrained"}}
    model = build_stream_model(recipe, 3).train()
    x = torch.randint(0, 256, est["input_shape"], dtype=torch.uint8)  # as the visual loader delivers it
    real = saved_activation_bytes(model, x, torch.zeros(2, dtype=torch.long))
    # The same tensors are saved on CPU as on (fake) CUDA, but for the dropout mask before the
    # classifier, (2, features): float32 on CPU, bool on CUDA. cuDNN's batch norm adds empty buffers.
    mask = 2 * model.feature_dim
    assert est["activations_by_dtype_gib"]["float32"] * GIB == real["bytes_by_dtype"]["float32"] - 4 * mask
    assert est["activations_by_dtype_gib"]["bool"] * GIB == mask
    params = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    assert est["params_gib"] * GIB == params
    assert est["input_shape"][0] == 2 and est["inputs_gib"] * GIB == x.numel() + 2 * 8


def test_optimizer_state_and_precision_follow_the_recipe():
    cfg = shallow_tiny_visual()

    def with_optimizer(optimizer: dict) -> dict:
        return {**cfg, "train": {**cfg["train"], "optimizer": optimizer}}

    sgd = estimate_training_memory(with_optimizer({"name": "sgd", "momentum": 0.9}), batch=2, precision="fp32")
    assert sgd["optimizer"] == "sgd" and sgd["optimizer_gib"] == sgd["grads_gib"] > 0  # one momentum buffer
    adamw = estimate_training_memory(with_optimizer({"name": "adamw"}), batch=2, precision="fp32")
    assert adamw["optimizer_gib"] == pytest.approx(2 * adamw["grads_gib"])  # two moments
    assert adamw["activations_gib"] == sgd["activations_gib"]
    # at a batch where activations outweigh autocast's bf16 copies of the weights, bf16 saves memory
    fp32 = estimate_training_memory(cfg, batch=16, precision="fp32")
    bf16 = estimate_training_memory(cfg, batch=16, precision="bf16")
    assert 0 < bf16["activations_gib"] < fp32["activations_gib"]
    assert bf16["activations_by_dtype_gib"]["bfloat16"] > 0 and "bfloat16" not in fp32["activations_by_dtype_gib"]
    assert bf16["params_gib"] == fp32["params_gib"] and bf16["inputs_gib"] == fp32["inputs_gib"]  # float32
    parts = ("params_gib", "grads_gib", "optimizer_gib", "activations_gib", "inputs_gib")
    assert sgd["total_gib"] == pytest.approx(sum(sgd[k] for k in parts))
    assert optimizer_buffers({"name": "sgd", "momentum": 0.0}) == 0


def test_fits_uses_the_stated_margin():
    assert fits(12.5, (16, 24)) == {"16GiB": True, "24GiB": True}     # 12.5 x 1.2 + 1 = 16
    assert fits(12.6, (16, 24)) == {"16GiB": False, "24GiB": True}


def run_cli(argv: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", [str(ROOT / "tools/benchmark.py"), *argv])
    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(ROOT / "tools/benchmark.py"), run_name="__main__")
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_tool_prints_one_json_object(monkeypatch, capsys):
    rc, out, _ = run_cli(["memory", "--config", str(VISUAL_TINY), "--set", "model.depth=18", "--batch", "2",
                          "--precision", "bf16", "--json"], monkeypatch, capsys)
    assert rc == 0
    lines = out.strip().splitlines()
    assert len(lines) == 1
    r = json.loads(lines[0])
    assert r["stream"] == "visual" and r["batch"] == 2 and r["precision"] == "bf16"
    assert r["recipe"].endswith("visual_tiny.yaml")
    assert set(r["fits"]) == {"16GiB", "24GiB", "40GiB", "48GiB", "80GiB"}


@pytest.mark.parametrize("argv, names", [
    (["--config", "configs/streams/nope.yaml"], ["nope.yaml"]),
    (["--config", "configs/fusion/concat_fc.yaml"], ["concat_fc.yaml", "stream"]),
    (["--config", str(VISUAL_TINY), "--set", "model.depth=7"], ["visual_tiny.yaml"]),
    ([], ["--config"]),
])
def test_tool_refuses_a_bad_recipe_with_one_error_line(monkeypatch, capsys, argv, names):
    rc, out, err = run_cli(["memory", *argv, "--json"], monkeypatch, capsys)
    assert rc == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err
    for name in names:
        assert name in lines[0]
