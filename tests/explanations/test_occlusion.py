"""Occlusion replaces a part by its neighbour; a frame the stream ignores contributes 0, a frame
it reads does not; each second of a spectrogram is occluded in turn."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from explanations.occlusion import contributions, occlude_seconds, replace_by_neighbours


def test_replace_by_neighbours():
    a = np.arange(5)[:, None] * np.ones((5, 2))
    assert replace_by_neighbours(a, {0})[0, 0] == 1
    assert replace_by_neighbours(a, {4})[4, 0] == 3
    assert replace_by_neighbours(a, {2})[2, 0] == 3   # a tie goes to the later frame
    assert replace_by_neighbours(a, {1, 2})[1, 0] == 0 and replace_by_neighbours(a, {1, 2})[2, 0] == 3
    assert (replace_by_neighbours(a, range(5), fill=7) == 7).all()
    assert (a[:, 0] == np.arange(5)).all()  # the original is untouched


class FrameReader(nn.Module):
    """A 'stream' whose class-0 logit is the mean of frames ``reads`` of a (B, T, 4) input."""

    def __init__(self, reads):
        super().__init__()
        self.reads = list(reads)
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        v = x[:, self.reads].float().mean(dim=(1, 2))
        return torch.stack([v, -v], dim=1)


VIEW = SimpleNamespace(spec=SimpleNamespace(load_input=lambda a, meta, settings, rng: torch.from_numpy(np.asarray(a))),
                       settings=None)


def test_a_frame_the_stream_ignores_contributes_zero():
    frames = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    model = FrameReader(reads=[0, 2, 4]).eval()
    variants = [replace_by_neighbours(frames, {i}) for i in range(6)]
    c = contributions(model, VIEW, frames, variants, {}, 0)
    assert c[1] == 0.0 and c[3] == 0.0 and c[5] == 0.0
    # a frame it reads, replaced by a different neighbour, changes its output by the difference it makes
    for i in (0, 2, 4):
        expected = (frames[i].mean() - variants[i][i].mean()) / 3
        assert c[i] == pytest.approx(expected, abs=1e-5)
        assert c[i] != 0.0


def test_each_second_of_a_spectrogram_is_occluded():
    mel = np.tile(np.arange(100, dtype=np.float32), (4, 1))   # 100 columns, 31.25 per second: 3 seconds
    secs = occlude_seconds(mel, 31.25)
    assert len(secs) == 3
    assert secs[0][0] == 0.0 and secs[-1][1] == pytest.approx(100 / 31.25)
    for a, b, m in secs:
        changed = np.flatnonzero((m != mel).any(0))
        assert changed.min() == int(round(a * 31.25)) and changed.max() == int(round(b * 31.25)) - 1
    assert (secs[1][2][:, 31:62] == mel[:, 0:31]).all()  # the second before stands in
