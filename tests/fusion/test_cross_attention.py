"""Cross-attention fusion: missing modalities masked as keys and left out of the pooling; learning
toy problems and predicting with a stream missing."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.config import ConfigError
from fusion.heads.cross_attention import create_cross_attention_fusion
from tests.conftest import load_helper

pytestmark = pytest.mark.slow  # trains the head on toy problems

toy = load_helper(Path(__file__).with_name("toy_features.py"), "tests_fusion_toy_features")


def test_a_missing_modality_does_not_reach_the_output():
    head = create_cross_attention_fusion(stream_dims=toy.TOY_DIMS, num_classes=3, num_layers=2).eval()
    x, _, _ = toy.toy_batch(6, toy.TOY_DIMS)
    x["mask"][:, 2] = 0.0
    out = head(x)
    with torch.no_grad():
        head.inputs.defaults["face"].value.add_(5.0)  # what a missing face slot holds
    assert torch.allclose(head(x), out, atol=1e-6)    # masked as a key, left out of the pooling
    x["mask"][:, 2] = 1.0
    assert not torch.allclose(head(x), out, atol=1e-3)


def test_a_clip_without_any_modality_still_gets_finite_logits():
    head = create_cross_attention_fusion(stream_dims=toy.TOY_DIMS, num_classes=3).eval()
    x, _, _ = toy.toy_batch(2, toy.TOY_DIMS)
    x["mask"][:] = 0.0
    assert torch.isfinite(head(x)).all()


def test_layer_settings_are_checked():
    with pytest.raises(ConfigError, match="num_heads"):
        create_cross_attention_fusion(stream_dims=toy.TOY_DIMS, num_classes=3, hidden_dim=30, num_heads=4)
    with pytest.raises(ConfigError, match="num_layers"):
        create_cross_attention_fusion(stream_dims=toy.TOY_DIMS, num_classes=3, num_layers=0)


def test_reads_the_class_from_one_stream():
    head, x, y = toy.trained_head(create_cross_attention_fusion, mode="one")
    assert toy.accuracy(head, x, y) >= 0.9


def test_reads_a_class_only_the_combination_of_two_streams_shows():
    head, x, y = toy.trained_head(create_cross_attention_fusion, mode="pair", separation=6.0)
    assert toy.accuracy(head, x, y) >= 0.8  # either stream alone: at most 2/3


def test_predicts_from_the_other_streams_when_one_is_missing_for_every_clip():
    head, x, y = toy.trained_head(create_cross_attention_fusion, mode="all")
    assert toy.accuracy(head, toy.without(x, "visual", toy.TOY_DIMS), y) >= 0.7  # chance: 1/3
    head, x, y = toy.trained_head(create_cross_attention_fusion, mode="all", missing={"visual": 1.0})
    assert toy.accuracy(head, x, y) >= 0.7
