"""The heads' shared base: the inputs, the missing-stream front, the output width and save/load
are the base's, and a head written on it is its forward pass."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from fusion.heads import FUSION_HEADS, create_fusion_head
from fusion.heads.base import MIN_PROBABILITY, FusionHead
from fusion.heads.inputs import MaskedStreams

DIMS = {"visual": 4, "audio": 3}


class MeanHead(FusionHead):
    """The smallest head on the base: the mean of the front's features through one linear layer."""

    def __init__(self, *, stream_dims, num_classes, modality_dropout=0.0):
        super().__init__(stream_dims=stream_dims, num_classes=num_classes, modality_dropout=modality_dropout)
        self.fc = nn.Linear(max(stream_dims.values()), num_classes)

    def forward(self, inputs):
        features, _ = self.masked_features(inputs)
        padded = [nn.functional.pad(f, (0, self.fc.in_features - f.shape[1])) for f in features]
        return self.fc(torch.stack(padded).mean(0))


class FittedHead(FusionHead):
    """A head whose array is sized by its fit."""

    def __init__(self, *, stream_dims, num_classes):
        super().__init__(stream_dims=stream_dims, num_classes=num_classes, masked_front=False)
        self.register_fitted({"table": torch.float64})


def batch(n=2):
    return {"visual": torch.ones(n, 4), "audio": torch.ones(n, 3), "mask": torch.tensor([[1.0, 0.0]] * n),
            "probs": torch.full((n, 2, 3), 1 / 3)}


@pytest.mark.parametrize("name", list(FUSION_HEADS))
def test_every_head_in_the_table_is_a_fusion_head_with_the_front_iff_it_trains_by_gradient(name):
    head = create_fusion_head({"name": name}, stream_dims=DIMS, num_classes=3)
    assert isinstance(head, FusionHead)
    assert isinstance(getattr(head, "inputs", None), MaskedStreams) == FUSION_HEADS[name].gradient


def test_the_base_keeps_the_stream_order_widths_and_output_width():
    head = MeanHead(stream_dims={"audio": 3, "visual": 4}, num_classes=5)
    assert head.streams == ("audio", "visual") and head.stream_dims == {"audio": 3, "visual": 4}
    assert head.num_classes == 5 and head.inputs.streams == head.streams


def test_building_the_front_draws_no_random_numbers():
    # the heads' layers are built after the front: their initial weights must not depend on it
    torch.manual_seed(0)
    FusionHead(stream_dims=DIMS, num_classes=3)
    drawn = torch.rand(3)
    torch.manual_seed(0)
    assert torch.equal(drawn, torch.rand(3))


def test_a_missing_stream_gets_its_learned_default_from_the_front():
    head = MeanHead(stream_dims=DIMS, num_classes=2).eval()
    with torch.no_grad():
        head.inputs.defaults["audio"].value.fill_(7.0)
    features, mask = head.masked_features(batch())
    assert torch.equal(features[1], torch.full((2, 3), 7.0)) and torch.equal(mask, batch()["mask"])
    assert head(batch()).shape == (2, 2)


def test_set_normalisation_reaches_the_front():
    head = MeanHead(stream_dims=DIMS, num_classes=2)
    rng = np.random.default_rng(0)
    features = {"visual": rng.normal(3.0, 2.0, (50, 4)).astype(np.float32), "audio": np.zeros((50, 3), np.float32)}
    head.set_normalisation(features, {"visual": np.ones(50, bool), "audio": np.zeros(50, bool)})
    assert np.allclose(head.inputs.mean_visual.numpy(), features["visual"].mean(0), atol=1e-5)
    assert torch.equal(head.inputs.mean_audio, torch.zeros(3))  # no clip has audio: left at 0 and 1
    assert torch.equal(head.inputs.std_audio, torch.ones(3))


def test_logits_from_probabilities_are_logs_floored_at_the_minimum():
    head = FittedHead(stream_dims=DIMS, num_classes=2)
    logits = head.logits_from_probabilities(np.array([[0.25, 0.75], [1.0, 0.0]]), batch())
    assert logits.dtype == torch.float32
    assert torch.allclose(logits[0], torch.log(torch.tensor([0.25, 0.75])))
    assert logits[1, 1].item() == pytest.approx(math.log(MIN_PROBABILITY))


def test_fitted_arrays_take_their_shape_from_the_checkpoint():
    fitted = FittedHead(stream_dims=DIMS, num_classes=2)
    fitted.table = torch.arange(6, dtype=torch.float64).reshape(2, 3)
    fresh = FittedHead(stream_dims=DIMS, num_classes=2)
    assert fresh.table.shape == (0,)
    fresh.load_state_dict(fitted.state_dict())
    assert torch.equal(fresh.table, fitted.table) and fresh.table.dtype == torch.float64
    assert list(fresh.state_dict()) == ["table"]


def test_a_head_on_the_base_saves_and_loads_its_weights():
    torch.manual_seed(0)
    head = MeanHead(stream_dims=DIMS, num_classes=2).eval()
    torch.manual_seed(1)
    again = MeanHead(stream_dims=DIMS, num_classes=2).eval()
    assert not torch.equal(head(batch()), again(batch()))
    again.load_state_dict(head.state_dict())
    assert torch.equal(head(batch()), again(batch()))
