"""Concat-FC with missing modalities, and the late-fusion baselines."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fusion.head import create_concat_fusion
from fusion.late import FACE_AUDIO_WEIGHTS, search_weights, weighted_score

DIMS = {"visual": 6, "audio": 4, "face": 5}


def batch(b=4, mask=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = {s: torch.randn(b, d, generator=g) for s, d in DIMS.items()}
    x["mask"] = torch.ones(b, len(DIMS)) if mask is None else mask
    return x


def test_output_shape_for_any_class_count():
    for c in (3, 6, 8):
        head = create_concat_fusion(stream_dims=DIMS, num_classes=c).eval()
        assert head(batch()).shape == (4, c)


def test_missing_slot_ignores_the_features_and_uses_the_learned_vector():
    head = create_concat_fusion(stream_dims=DIMS, num_classes=3, dropout=0.0).eval()
    mask = torch.tensor([[1.0, 0.0, 1.0]] * 4)  # audio missing
    a, b = batch(mask=mask, seed=1), batch(mask=mask, seed=1)
    b["audio"] = b["audio"] * 100 + 7  # garbage where the modality is missing
    assert torch.allclose(head(a), head(b))
    before = head(a)
    with torch.no_grad():
        head.missing["audio"].add_(1.0)  # the learned vector does matter
    assert not torch.allclose(head(a), before)
    z = head.concat(a)
    assert torch.allclose(z[:, 6:10], head.missing["audio"].expand(4, -1))
    assert torch.equal(z[:, -3:], mask)  # availability indicators are appended


def test_modality_dropout_only_in_training_and_never_drops_everything():
    head = create_concat_fusion(stream_dims=DIMS, num_classes=3, modality_dropout=0.9)
    mask = torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]] * 50)
    torch.manual_seed(0)
    head.train()
    dropped = head.drop_modalities(mask)
    assert (dropped <= mask).all()                     # never invents a modality
    assert (dropped.sum(1) >= 1).all()                 # every clip keeps one
    assert dropped.sum() < mask.sum()                  # and some were dropped
    head.eval()
    assert torch.equal(head.drop_modalities(mask), mask)


def test_normalisation_uses_available_training_features_only():
    head = create_concat_fusion(stream_dims={"a": 2}, num_classes=3)
    f = np.array([[1.0, 2.0], [3.0, 6.0], [1000.0, 1000.0]], np.float32)
    head.set_normalisation({"a": f}, {"a": np.array([True, True, False])})
    assert torch.allclose(head.mean_a, torch.tensor([2.0, 4.0]))


def test_normalisation_keeps_a_dead_dimension_bounded():
    """A feature that is constant on the training clips (a dead ReLU) must not blow up a val clip
    where it is slightly active: the scale is the stream's, not the dimension's."""
    head = create_concat_fusion(stream_dims={"a": 3}, num_classes=3)
    rng = np.random.default_rng(0)
    train = np.concatenate([rng.normal(0, 2, (50, 2)), np.zeros((50, 1))], axis=1).astype(np.float32)
    head.set_normalisation({"a": train}, {"a": np.ones(50, bool)})
    val = torch.tensor([[0.0, 0.0, 0.5]])
    scaled = (val - head.mean_a) / head.std_a
    assert scaled.abs().max() < 1.0


def test_weighted_score_renormalises_over_available_streams():
    probs = {"face": np.array([[0.9, 0.1], [0.9, 0.1]]), "audio": np.array([[0.2, 0.8], [0.2, 0.8]])}
    avail = {"face": np.array([True, False]), "audio": np.array([True, True])}
    out = weighted_score(probs, avail, FACE_AUDIO_WEIGHTS)
    np.testing.assert_allclose(out[0], 0.6 * probs["face"][0] + 0.4 * probs["audio"][0])
    np.testing.assert_allclose(out[1], probs["audio"][1])  # no face: audio alone
    none = weighted_score(probs, {"face": np.array([False] * 2), "audio": np.array([False] * 2)}, FACE_AUDIO_WEIGHTS)
    np.testing.assert_allclose(none, 0.5)


def test_weight_search_finds_the_informative_stream():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    good = np.eye(3)[labels] * 0.7 + 0.1
    noise = rng.dirichlet(np.ones(3), 60)
    probs = {"visual": noise, "audio": good}
    avail = {s: np.ones(60, bool) for s in probs}
    w, acc = search_weights(probs, avail, labels, step=0.1)
    assert acc == pytest.approx(1.0)
    assert w["audio"] > w["visual"]
    assert sum(w.values()) == pytest.approx(1.0)
