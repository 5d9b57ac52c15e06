"""Scoring a model over a dataset: gathered predictions in dataset order, dict inputs, the report."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from training.evaluation import evaluate


def _helper():
    from tests.conftest import load_helper

    return load_helper(Path(__file__).with_name("toy_training_data.py"), "tests_training_toy_training_data")


toy = _helper()
NAMES = ["Positive", "Neutral", "Negative"]


def test_evaluate_dict_inputs_in_dataset_order():
    ds = toy.DictToyDataset(23, data_seed=5)
    torch.manual_seed(0)
    model = toy.DictMLP()
    out = evaluate(model=model, dataset=ds, batch_size=4, class_names=NAMES)
    assert out["indices"].tolist() == list(range(23))
    assert out["labels"].tolist() == ds.y.tolist()
    with torch.no_grad():
        expected = model({"a": ds.x[:, :3], "b": ds.x[:, 3:]})
    assert torch.allclose(torch.from_numpy(out["logits"]), expected, atol=1e-5)
    assert out["predictions"].tolist() == expected.argmax(1).tolist()
    assert out["report"]["accuracy"] == pytest.approx((expected.argmax(1) == ds.y).float().mean().item())
