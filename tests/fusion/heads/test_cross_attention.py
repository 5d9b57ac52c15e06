"""Cross-attention fusion: missing modalities masked as keys and left out of the pooling.
What it learns: tests/fusion/heads/test_learning.py."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.config import ConfigError
from fusion.heads.cross_attention import create_cross_attention_fusion
from tests.conftest import load_helper

toy = load_helper(Path(__file__).parents[1] / "toy_features.py", "tests_fusion_toy_features")


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
