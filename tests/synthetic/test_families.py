"""The keyframe ablation's clip families (synthetic.peaks.draw_moments): each clip's emotion is
where its record says, measured on the decoded frames. Every clip is rendered twice from the same
generator seed, once Positive and once Neutral (the same scene, people, confetti and moments; only
the valence differs), and the per-frame difference in wall warmth (mean red minus mean blue) is
the visual cue's strength at that frame: near full inside the recorded windows, low outside, and
below zero outside when the record says the off-moment frames show the opposite emotion."""
from __future__ import annotations

import numpy as np
import pytest

from synthetic.group import make_clip
from synthetic.peaks import FAMILIES, MAX_OFF_PEAK, draw_moments
from tests.conftest import decode_media

FPS, DURATION = 10.0, 5.0


def cue_strength(tmp_path, family: str, seed: int, off_peak: float = MAX_OFF_PEAK):
    """(record, frame times (s), per-frame warmth difference Positive - Neutral)."""
    warm = {}
    for label, name in ((0, "pos"), (1, "neu")):
        record = make_clip(tmp_path / f"{family}{seed}{name}.mp4", label=label, rng=np.random.default_rng(seed),
                           duration=DURATION, width=160, height=90, fps=FPS, with_audio=False, n_faces=2,
                           cue_jitter=0.0, peak={"family": family, "off_peak": off_peak})
        frames = decode_media(tmp_path / f"{family}{seed}{name}.mp4")[0].astype(np.float64)
        warm[name] = frames[..., 0].mean(axis=(1, 2)) - frames[..., 2].mean(axis=(1, 2))
        if label == 0:
            positive = record
    times = np.arange(len(warm["pos"])) / FPS
    return positive, times, warm["pos"] - warm["neu"]


def inside(times, windows, margin=0.0):
    return np.any([(times >= a + margin) & (times <= b - margin) for a, b in windows], axis=0)


def test_the_steady_clip_is_emotional_everywhere(tmp_path):
    record, times, strength = cue_strength(tmp_path, "steady", 0)
    assert record["peak"]["windows_s"] == [[0.0, DURATION]] and record["class"] == "Positive"
    assert strength.min() > 0.8 * strength.max() > 0


@pytest.mark.parametrize("family", ["peak", "spread"])
def test_the_emotion_is_in_the_recorded_windows_and_only_there(tmp_path, family):
    floors = set()
    full = cue_strength(tmp_path, "steady", 0)[2].mean()  # the cue at full strength
    for seed in range(6):
        record, times, strength = cue_strength(tmp_path, family, seed)
        spec = record["peak"]
        windows = spec["windows_s"]
        assert spec["family"] == family and len(windows) == (1 if family == "peak" else len(spec["centers_s"]))
        assert all(0 <= a < b <= DURATION for a, b in windows)
        # each recorded moment really is there: its centre frames carry most of the full cue
        for a, b in windows:
            centre = np.abs(times - (a + b) / 2) <= 0.1
            assert strength[centre].min() > 0.6 * full, (seed, a, b)
        # and nowhere else: outside every window the cue is under half of it
        outside = ~inside(times, windows)
        assert outside.any() and strength[outside].max() < 0.5 * full, seed
        # far from the moments the frames show Neutral (floor 0) or the opposite emotion (floor < 0)
        far = ~inside(times, windows, margin=-0.8)
        if far.any():
            if spec["floor"] < 0:
                assert np.median(strength[far]) < -0.1 * full, seed
            else:
                assert abs(np.median(strength[far])) < 0.1 * full, seed
        floors.add(spec["floor"] < 0)
    assert floors == {True, False}  # both kinds of off-moment frames were drawn and measured


def test_spread_clips_have_two_or_three_separate_moments():
    counts = set()
    for seed in range(40):
        spec = draw_moments(np.random.default_rng(seed), DURATION, family="spread", off_peak=0.2)
        c = spec["centers_s"]
        counts.add(len(c))
        assert all(b - a >= 1.2 - 1e-9 for a, b in zip(c, c[1:]))
    assert counts == {2, 3}


def test_unknown_family_and_off_peak_out_of_range_are_refused():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="family"):
        draw_moments(rng, DURATION, family="burst", off_peak=0.1)
    with pytest.raises(ValueError, match="off_peak"):
        draw_moments(rng, DURATION, family="peak", off_peak=0.5)
    assert set(FAMILIES) == {"peak", "spread", "steady"}
