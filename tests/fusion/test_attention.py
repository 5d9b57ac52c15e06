"""Attention fusion: modality weights over the available streams only; learning toy problems and
predicting with a stream missing."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fusion.heads.attention import create_attention_fusion, masked_softmax
from tests.conftest import load_helper

pytestmark = pytest.mark.slow  # trains the head on toy problems

toy = load_helper(Path(__file__).with_name("toy_features.py"), "tests_fusion_toy_features")


def test_weights_sum_to_one_over_available_streams_and_are_zero_for_missing_ones():
    head = create_attention_fusion(stream_dims=toy.TOY_DIMS, num_classes=3).eval()
    x, _, _ = toy.toy_batch(30, toy.TOY_DIMS, missing={"audio": 0.4, "face": 0.4}, seed=3)
    x["mask"][0] = torch.tensor([0.0, 1.0, 0.0])  # a clip with audio only
    w = head.modality_weights(x)
    assert w.shape == (30, 3)
    assert torch.allclose(w.sum(1), torch.ones(30))
    assert torch.equal(w[x["mask"] == 0], torch.zeros(int((x["mask"] == 0).sum())))
    assert (w[x["mask"] == 1] > 0).all()
    assert torch.equal(w[0], torch.tensor([0.0, 1.0, 0.0]))


def test_weights_follow_the_clip():
    head = create_attention_fusion(stream_dims=toy.TOY_DIMS, num_classes=3).eval()
    x, _, _ = toy.toy_batch(8, toy.TOY_DIMS)
    w = head.modality_weights(x)
    assert not torch.allclose(w, w[:1].expand_as(w))


def test_a_clip_without_any_stream_weighs_the_defaults_evenly():
    assert torch.allclose(masked_softmax(torch.tensor([[3.0, -1.0, 0.5]]), torch.zeros(1, 3)),
                          torch.softmax(torch.tensor([[3.0, -1.0, 0.5]]), 1))


def test_reads_the_class_from_one_stream_and_weighs_it_most():
    head, x, y = toy.trained_head(create_attention_fusion, mode="one")
    assert toy.accuracy(head, x, y) >= 0.9


def test_reads_a_class_only_the_combination_of_two_streams_shows():
    head, x, y = toy.trained_head(create_attention_fusion, mode="pair", separation=6.0)
    assert toy.accuracy(head, x, y) >= 0.8  # either stream alone: at most 2/3


def test_predicts_from_the_other_streams_when_one_is_missing_for_every_clip():
    head, x, y = toy.trained_head(create_attention_fusion, mode="all")
    masked = toy.without(x, "visual", toy.TOY_DIMS)
    assert toy.accuracy(head, masked, y) >= 0.7  # chance: 1/3
    assert torch.equal(head.modality_weights(masked)[:, 0], torch.zeros(len(y)))
    head, x, y = toy.trained_head(create_attention_fusion, mode="all", missing={"visual": 1.0})
    assert toy.accuracy(head, x, y) >= 0.7
