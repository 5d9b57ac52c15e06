"""Score-weighted fusion: fixed or searched weights over the streams' probabilities, never chosen
on a test split."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from core.config import ConfigError
from fusion.heads.score_weighted import create_score_weighted
from fusion.late import FACE_AUDIO_WEIGHTS, weighted_score
from tests.conftest import load_helper

toy = load_helper(Path(__file__).parents[1] / "toy_features.py", "tests_fusion_toy_features")
DIMS = {"visual": 4, "audio": 3, "face": 2}


def _splits(**kwargs):
    return {name: toy.toy_batch(60, DIMS, seed=i, **kwargs)[:2] for i, name in enumerate(("train", "val"))}


def _fit(head, splits):
    x, y = splits["train"]
    return head.fit_inputs(x, y.numpy(), seed=0, split_inputs=lambda name: (splits[name][0], splits[name][1].numpy()))


@pytest.mark.parametrize("split", ["test", "Test", "public_test"])
def test_refuses_to_search_on_a_test_split(split):
    with pytest.raises(ConfigError, match="test split"):
        create_score_weighted(stream_dims=DIMS, num_classes=3, search_on=split)


def test_fixed_weights_are_late_fusion_s_weighted_average():
    head = create_score_weighted(stream_dims=DIMS, num_classes=3, weights=FACE_AUDIO_WEIGHTS)
    splits = _splits(mode="all", missing={"face": 0.3})
    info = _fit(head, splits)
    assert info["weights"] == {"visual": 0.0, "audio": 0.4, "face": 0.6} and info["searched_on"] is None
    x, _ = splits["val"]
    expected = weighted_score({s: x["probs"][:, i].double().numpy() for i, s in enumerate(DIMS)},
                              {s: x["mask"][:, i].numpy() > 0 for i, s in enumerate(DIMS)}, FACE_AUDIO_WEIGHTS)
    np.testing.assert_allclose(torch.softmax(head(x), 1).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_search_weighs_the_informative_stream_and_reads_the_class():
    head = create_score_weighted(stream_dims=DIMS, num_classes=3, search_on="val")
    splits = _splits(mode="one", informative="audio")
    info = _fit(head, splits)
    w = info["weights"]
    assert info["searched_on"] == "val" and w["audio"] == max(w.values()) and w["audio"] > 0
    assert toy.accuracy(head, *splits["val"]) >= 0.9


def test_the_search_uses_the_named_split():
    head = create_score_weighted(stream_dims=DIMS, num_classes=3, search_on="val")
    splits = _splits(mode="one", informative="audio")
    splits["val"] = toy.toy_batch(60, DIMS, mode="one", informative="face", seed=5)[:2]  # another stream reads val
    w = _fit(head, splits)["weights"]
    assert w == head.weight_map()
    assert w["face"] == max(w.values()) and w["face"] > w["audio"]
    assert toy.accuracy(head, *splits["val"]) >= 0.9


def test_predicts_from_the_other_streams_when_one_is_missing_for_every_clip():
    head = create_score_weighted(stream_dims=DIMS, num_classes=3)
    splits = _splits(mode="all")
    _fit(head, splits)
    x, y = splits["val"]
    assert toy.accuracy(head, toy.without(x, "visual", DIMS), y) >= 0.7  # chance: 1/3


def test_weights_are_checked():
    with pytest.raises(ConfigError, match="not fused"):
        create_score_weighted(stream_dims=DIMS, num_classes=3, weights={"speech": 1.0})
    with pytest.raises(ConfigError, match="non-negative"):
        create_score_weighted(stream_dims=DIMS, num_classes=3, weights={"face": -1.0})
    with pytest.raises(ConfigError, match="search"):
        create_score_weighted(stream_dims=DIMS, num_classes=3, weights="grid")
