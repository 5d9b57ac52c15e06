"""Gated fusion: per-modality sigmoid gates. What it learns: tests/fusion/heads/test_learning.py."""
from __future__ import annotations

from pathlib import Path

import torch

from fusion.heads.gated import create_gated_fusion
from tests.conftest import load_helper

toy = load_helper(Path(__file__).parents[1] / "toy_features.py", "tests_fusion_toy_features")


def test_gates_are_per_modality_per_clip_and_in_0_1():
    head = create_gated_fusion(stream_dims=toy.TOY_DIMS, num_classes=3, hidden_dim=16).eval()
    x, _, _ = toy.toy_batch(5, toy.TOY_DIMS)
    g = head.gates(x)
    assert g.shape == (5, 3, 16)
    assert ((g > 0) & (g < 1)).all()
    y = toy.without(x, "audio", toy.TOY_DIMS)
    assert not torch.allclose(head.gates(y)[:, 0], g[:, 0])  # the mask reaches every modality's gate
