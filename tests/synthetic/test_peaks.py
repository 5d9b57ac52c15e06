"""Tests for synthetic.peaks: the envelope peaks at the drawn centre and stays at the floor far
from it, and a peak clip records its peak."""
from __future__ import annotations

import numpy as np
import pytest

from synthetic.group import render_clip
from synthetic.peaks import PEAK_FLOOR, draw_peak, peak_envelope


def test_the_envelope_is_one_at_the_centre_and_the_floor_far_away():
    peak = draw_peak(np.random.default_rng(0), duration=5.0)
    assert 1.5 <= peak["center_s"] <= 3.5
    t = np.array([0.0, peak["center_s"], 10.0])
    env = peak_envelope(peak, t)
    assert env.shape == (3,) and env[1] == pytest.approx(1.0)
    assert env[0] == pytest.approx(PEAK_FLOOR, abs=1e-3) and env[2] == pytest.approx(PEAK_FLOOR, abs=1e-3)
    assert np.array_equal(peak_envelope(None, t), np.ones(3))


def test_a_peak_clip_records_its_peak_and_a_plain_one_none():
    kwargs = dict(label=0, duration=2.0, width=64, height=48, fps=5, with_audio=False, n_faces=1)
    _, _, peaked = render_clip(rng=np.random.default_rng(1), peak=True, **kwargs)
    _, _, plain = render_clip(rng=np.random.default_rng(1), **kwargs)
    assert 0.6 <= peaked["peak"]["center_s"] <= 1.4 and peaked["peak"]["floor"] == PEAK_FLOOR
    assert plain["peak"] is None
