"""What every head trained by gradient learns, on the toy problems of ``tests/fusion/toy_features.py``:
the class from one stream, a class only two streams together show, and predictions from the
streams that are left when one is missing. A head added to the table is tested here as it is."""
from __future__ import annotations

from pathlib import Path

import pytest

from fusion.heads import FUSION_HEADS
from tests.conftest import load_helper

toy = load_helper(Path(__file__).parents[1] / "toy_features.py", "tests_fusion_toy_features")
NEURAL = [name for name, kind in FUSION_HEADS.items() if kind.gradient]
# the method's head stays in make test-fast; the others train for minutes on 2 cores
LEARNING = [pytest.param(name, marks=() if name == "concat_fc" else pytest.mark.slow) for name in NEURAL]


def test_the_neural_heads_are_the_four_of_the_family():
    assert NEURAL == ["concat_fc", "attention", "gated", "cross_attention"]


@pytest.mark.parametrize("name", LEARNING)
def test_reads_the_class_from_one_stream(name):
    head, x, y = toy.trained_head(FUSION_HEADS[name].create, mode="one")
    assert toy.accuracy(head, x, y) >= 0.9


@pytest.mark.parametrize("name", LEARNING)
def test_reads_a_class_only_the_combination_of_two_streams_shows(name):
    head, x, y = toy.trained_head(FUSION_HEADS[name].create, mode="pair", separation=6.0)
    assert toy.accuracy(head, x, y) >= 0.8  # either stream alone: at most 2/3


@pytest.mark.parametrize("name", LEARNING)
def test_predicts_from_the_other_streams_when_one_is_missing_for_every_clip(name):
    create = FUSION_HEADS[name].create
    head, x, y = toy.trained_head(create, mode="all")
    assert toy.accuracy(head, toy.without(x, "visual", toy.TOY_DIMS), y) >= 0.7  # chance: 1/3
    head, x, y = toy.trained_head(create, mode="all", missing={"visual": 1.0})
    assert toy.accuracy(head, x, y) >= 0.7
