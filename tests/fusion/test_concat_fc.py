"""Concat-FC (the method's fusion): shapes, the concatenation layout, learning toy problems and
predicting with a stream missing."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fusion.heads.concat_fc import create_concat_fc
from tests.conftest import load_helper

pytestmark = pytest.mark.slow  # trains the head on toy problems

toy = load_helper(Path(__file__).with_name("toy_features.py"), "tests_fusion_toy_features")


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


def test_reads_the_class_from_one_stream():
    head, x, y = toy.trained_head(create_concat_fc, mode="one")
    assert toy.accuracy(head, x, y) >= 0.9


def test_reads_a_class_only_the_combination_of_two_streams_shows():
    head, x, y = toy.trained_head(create_concat_fc, mode="pair", separation=6.0)
    assert toy.accuracy(head, x, y) >= 0.8  # either stream alone: at most 2/3


def test_predicts_from_the_other_streams_when_one_is_missing_for_every_clip():
    head, x, y = toy.trained_head(create_concat_fc, mode="all")
    assert toy.accuracy(head, toy.without(x, "visual", toy.TOY_DIMS), y) >= 0.7  # chance: 1/3
    head, x, y = toy.trained_head(create_concat_fc, mode="all", missing={"visual": 1.0})
    assert toy.accuracy(head, x, y) >= 0.7
