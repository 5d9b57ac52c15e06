"""Exact stream Shapley values: efficiency (they add up to full minus all-missing), symmetry (two
streams the head treats alike get the same value), a stream the head ignores gets 0, and the
values come from the head's own missing inputs."""
from __future__ import annotations

import itertools

import pytest
import torch

from explanations.shapley import coalitions, head_coalition_values, shapley_values
from fusion.heads import create_fusion_head
from fusion.heads.inputs import MASK_KEY, PROBS_KEY

STREAMS = ("visual", "audio", "flow", "face")


def toy_head(seed: int = 0):
    torch.manual_seed(seed)
    head = create_fusion_head({"name": "concat_fc"}, stream_dims={s: 3 for s in STREAMS}, num_classes=3).eval()
    with torch.no_grad():
        for s in STREAMS:  # a learned "missing" input that is not zero
            head.inputs.defaults[s].value.normal_()
    return head


def inputs_of(features: dict[str, torch.Tensor], mask=(1.0, 1.0, 1.0, 1.0)) -> dict[str, torch.Tensor]:
    return {**{s: f[None] for s, f in features.items()}, MASK_KEY: torch.tensor([list(mask)]),
            PROBS_KEY: torch.full((1, len(STREAMS), 3), 1 / 3)}


def test_four_streams_mean_sixteen_coalitions():
    assert len(coalitions(STREAMS)) == 16
    assert len(set(coalitions(STREAMS))) == 16


def test_efficiency_on_a_toy_head():
    head = toy_head()
    feats = {s: torch.randn(3) for s in STREAMS}
    values = head_coalition_values(head, inputs_of(feats), STREAMS, STREAMS, 2)
    phi, check = shapley_values(STREAMS, values)
    assert check["sum"] == pytest.approx(check["full"] - check["empty"], abs=1e-5)
    # full is the head's own prediction on the clip, empty its prediction with every stream missing
    with torch.no_grad():
        full = torch.softmax(head(inputs_of(feats)).double(), 1)[0, 2].item()
        empty = torch.softmax(head(inputs_of({s: torch.zeros(3) for s in STREAMS}, (0, 0, 0, 0))).double(), 1)[0, 2]
    assert check["full"] == pytest.approx(full, abs=1e-6)
    assert check["empty"] == pytest.approx(empty.item(), abs=1e-6)


def test_symmetric_streams_get_equal_values_and_an_ignored_one_zero():
    # v(S) depends only on how many of visual and audio S holds; flow adds a constant; face nothing
    def value(s):
        return 0.3 * len(s & {"visual", "audio"}) ** 2 + 0.1 * ("flow" in s)

    phi, check = shapley_values(STREAMS, value)
    assert phi["visual"] == pytest.approx(phi["audio"])
    assert phi["flow"] == pytest.approx(0.1)
    assert phi["face"] == pytest.approx(0.0)
    assert check["sum"] == pytest.approx(check["full"] - check["empty"], abs=1e-12)


def test_symmetry_on_a_head_that_treats_two_streams_alike():
    head = toy_head(1)
    with torch.no_grad():  # visual and audio: the same weights, the same defaults, the same features
        w = head.fc.weight
        w[:, 3:6] = w[:, 0:3]
        head.inputs.defaults["audio"].value.copy_(head.inputs.defaults["visual"].value)
        w[:, 12 + 1] = w[:, 12 + 0]  # the availability indicators
    f = torch.randn(3)
    feats = {"visual": f, "audio": f.clone(), "flow": torch.randn(3), "face": torch.randn(3)}
    phi, _ = shapley_values(STREAMS, head_coalition_values(head, inputs_of(feats), STREAMS, STREAMS, 0))
    assert phi["visual"] == pytest.approx(phi["audio"], abs=1e-9)


def test_a_stream_the_clip_lacks_is_no_player():
    head = toy_head()
    feats = {s: torch.randn(3) for s in STREAMS}
    feats["face"] = torch.zeros(3)
    players = ("visual", "audio", "flow")
    values = head_coalition_values(head, inputs_of(feats, (1, 1, 1, 0)), STREAMS, players, 1)
    assert len(values) == 8
    phi, check = shapley_values(players, values)
    assert set(phi) == set(players)
    assert sum(phi.values()) == pytest.approx(check["full"] - check["empty"], abs=1e-5)
    # and the empty coalition is the all-missing prediction, whatever the clip's features
    other = head_coalition_values(head, inputs_of({s: torch.randn(3) for s in STREAMS}), STREAMS, STREAMS, 1)
    assert values[frozenset()] == pytest.approx(other[frozenset()])
    for k in range(4):
        for c in itertools.combinations(players, k):
            assert frozenset(c) in values
