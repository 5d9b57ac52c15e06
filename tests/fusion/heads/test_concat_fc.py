"""Concat-FC (the method's fusion): shapes, the concatenation layout.
What it learns: tests/fusion/heads/test_learning.py."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fusion.heads.concat_fc import create_concat_fc
from tests.conftest import load_helper

toy = load_helper(Path(__file__).parents[1] / "toy_features.py", "tests_fusion_toy_features")


@pytest.mark.parametrize("classes", [3, 6, 8])
def test_output_shape_for_any_class_count(classes):
    x, _, _ = toy.toy_batch(4, toy.TOY_DIMS)
    assert create_concat_fc(stream_dims=toy.TOY_DIMS, num_classes=classes).eval()(x).shape == (4, classes)


def test_concatenation_is_the_features_in_stream_order_then_the_mask():
    head = create_concat_fc(stream_dims=toy.TOY_DIMS, num_classes=3).eval()
    x, _, _ = toy.toy_batch(4, toy.TOY_DIMS)
    x["mask"][1, 1] = 0.0
    z = head.concat(x)
    assert z.shape == (4, 8 + 6 + 5 + 3)
    assert torch.equal(z[:, -3:], x["mask"])
    assert torch.equal(z[1, 8:14], head.inputs.defaults["audio"].value.detach())
    assert torch.allclose(z[0, :8], head.inputs.standardise("visual", x["visual"][:1])[0])
