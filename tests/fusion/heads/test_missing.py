"""The missing-modality pieces every neural head shares: the learned default and modality dropout."""
from __future__ import annotations

import pytest
import torch

from core.config import ConfigError
from fusion.heads.missing import LearnedDefault, ModalityDropout


def test_learned_default_replaces_only_missing_rows():
    d = LearnedDefault(3)
    with torch.no_grad():
        d.value.copy_(torch.tensor([7.0, 8.0, 9.0]))
    x = torch.arange(6.0).view(2, 3)
    out = d(x, torch.tensor([[1.0], [0.0]]))
    assert torch.equal(out[0], x[0])
    assert torch.equal(out[1], d.value.detach())


def test_learned_default_gets_gradient_only_from_missing_rows():
    d = LearnedDefault(2)
    d(torch.ones(3, 2), torch.ones(3, 1)).sum().backward()
    assert torch.equal(d.value.grad, torch.zeros(2))
    d.value.grad = None
    d(torch.ones(3, 2), torch.tensor([[1.0], [0.0], [0.0]])).sum().backward()
    assert torch.equal(d.value.grad, torch.full((2,), 2.0))


def test_modality_dropout_only_in_training_and_never_drops_everything():
    drop = ModalityDropout(0.9)
    mask = torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]] * 50)
    torch.manual_seed(0)
    dropped = drop.train()(mask)
    assert (dropped <= mask).all()                     # never invents a modality
    assert (dropped.sum(1) >= 1).all()                 # every clip keeps one
    assert dropped.sum() < mask.sum()                  # and some were dropped
    assert torch.equal(drop.eval()(mask), mask)


def test_modality_dropout_reaches_every_subset():
    torch.manual_seed(0)
    dropped = ModalityDropout(0.4).train()(torch.ones(2000, 3))
    subsets = {tuple(row.int().tolist()) for row in dropped}
    assert len(subsets) == 7                           # all non-empty subsets of 3 streams


def test_clip_without_any_stream_stays_without():
    torch.manual_seed(0)
    assert torch.equal(ModalityDropout(0.5).train()(torch.zeros(4, 3)), torch.zeros(4, 3))


@pytest.mark.parametrize("p", [-0.1, 1.0])
def test_modality_dropout_probability_is_checked(p):
    with pytest.raises(ConfigError, match="modality_dropout"):
        ModalityDropout(p)
