"""MaskedStreams: the standardisation, modality dropout and learned defaults in front of every
neural head."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fusion.heads.inputs import MaskedStreams, standardisation

DIMS = {"visual": 6, "audio": 4, "face": 5}


def batch(b=4, mask=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = {s: torch.randn(b, d, generator=g) for s, d in DIMS.items()}
    x["mask"] = torch.ones(b, len(DIMS)) if mask is None else mask
    return x


def test_missing_slot_ignores_the_features_and_holds_the_learned_default():
    streams = MaskedStreams(stream_dims=DIMS).eval()
    mask = torch.tensor([[1.0, 0.0, 1.0]] * 4)  # audio missing
    a, b = batch(mask=mask, seed=1), batch(mask=mask, seed=1)
    b["audio"] = b["audio"] * 100 + 7  # garbage where the modality is missing
    fa, ma = streams(a)
    fb, _ = streams(b)
    assert all(torch.equal(x, y) for x, y in zip(fa, fb))
    assert torch.equal(fa[1], streams.defaults["audio"].value.expand(4, -1))
    assert torch.equal(ma, mask)


def test_modality_dropout_acts_on_the_returned_mask_in_training():
    streams = MaskedStreams(stream_dims=DIMS, modality_dropout=0.9).train()
    torch.manual_seed(0)
    features, mask = streams(batch(b=64))
    assert mask.sum() < 64 * 3
    dropped = mask[:, 1] == 0
    assert torch.equal(features[1][dropped], streams.defaults["audio"].value.expand(int(dropped.sum()), -1))


def test_normalisation_uses_available_training_features_only():
    streams = MaskedStreams(stream_dims={"a": 2})
    f = np.array([[1.0, 2.0], [3.0, 6.0], [1000.0, 1000.0]], np.float32)
    streams.set_normalisation({"a": f}, {"a": np.array([True, True, False])})
    assert torch.allclose(streams.mean_a, torch.tensor([2.0, 4.0]))
    assert torch.allclose(streams.std_a, torch.full((2,), float(np.std([-1, -2, 1, 2])) + 1e-6))


def test_normalisation_keeps_a_dead_dimension_bounded():
    """A feature that is constant on the training clips (a dead ReLU) must not blow up a val clip
    where it is slightly active: the scale is the stream's, not the dimension's."""
    streams = MaskedStreams(stream_dims={"a": 3})
    rng = np.random.default_rng(0)
    train = np.concatenate([rng.normal(0, 2, (50, 2)), np.zeros((50, 1))], axis=1).astype(np.float32)
    streams.set_normalisation({"a": train}, {"a": np.ones(50, bool)})
    assert streams.standardise("a", torch.tensor([[0.0, 0.0, 0.5]])).abs().max() < 1.0


def test_a_stream_no_training_clip_has_keeps_the_identity():
    streams = MaskedStreams(stream_dims={"a": 2, "b": 2})
    f = {"a": np.ones((3, 2), np.float32), "b": np.zeros((3, 2), np.float32)}
    streams.set_normalisation(f, {"a": np.ones(3, bool), "b": np.zeros(3, bool)})
    assert torch.equal(streams.mean_b, torch.zeros(2)) and torch.equal(streams.std_b, torch.ones(2))
    assert standardisation(f["b"], np.zeros(3, bool))[1] == 1.0


@pytest.mark.parametrize("name", ["mask", "probs"])
def test_stream_names_cannot_shadow_the_input_keys(name):
    with pytest.raises(ValueError, match=name):
        MaskedStreams(stream_dims={name: 2})
