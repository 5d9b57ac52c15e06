"""Gated fusion: per-modality sigmoid gates; learning toy problems and predicting with a stream
missing."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fusion.heads.gated import create_gated_fusion
from tests.conftest import load_helper

pytestmark = pytest.mark.slow  # trains the head on toy problems

toy = load_helper(Path(__file__).with_name("toy_features.py"), "tests_fusion_toy_features")


def test_gates_are_per_modality_per_clip_and_in_0_1():
    head = create_gated_fusion(stream_dims=toy.TOY_DIMS, num_classes=3, hidden_dim=16).eval()
    x, _, _ = toy.toy_batch(5, toy.TOY_DIMS)
    g = head.gates(x)
    assert g.shape == (5, 3, 16)
    assert ((g > 0) & (g < 1)).all()
    y = toy.without(x, "audio", toy.TOY_DIMS)
    assert not torch.allclose(head.gates(y)[:, 0], g[:, 0])  # the mask reaches every modality's gate


def test_reads_the_class_from_one_stream():
    head, x, y = toy.trained_head(create_gated_fusion, mode="one")
    assert toy.accuracy(head, x, y) >= 0.9


def test_reads_a_class_only_the_combination_of_two_streams_shows():
    head, x, y = toy.trained_head(create_gated_fusion, mode="pair", separation=6.0)
    assert toy.accuracy(head, x, y) >= 0.8  # either stream alone: at most 2/3


def test_predicts_from_the_other_streams_when_one_is_missing_for_every_clip():
    head, x, y = toy.trained_head(create_gated_fusion, mode="all")
    assert toy.accuracy(head, toy.without(x, "visual", toy.TOY_DIMS), y) >= 0.7  # chance: 1/3
    head, x, y = toy.trained_head(create_gated_fusion, mode="all", missing={"visual": 1.0})
    assert toy.accuracy(head, x, y) >= 0.7
