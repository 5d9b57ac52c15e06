"""The keyframe settings, candidate times, and what select_from_sample/keyframes_record make of
a scored sample (a hand-built FrameSample and a real SentimentScorer around a tiny network)."""
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch

from core.config import ConfigError
from core.storage import config_hash
from keyframes.extraction import KeyframeSettings, candidate_times, keyframes_hash, keyframes_record, select_from_sample
from keyframes.scorer import SentimentScorer
from media.decoding import VideoInfo
from media.sampling import FrameSample, SampledFrame


def test_settings_reject_unknown_modes_intensities_and_thresholds():
    assert KeyframeSettings.from_config({"mode": "literal", "intensity": "non_neutral"}).mode == "literal"
    modes = r"\['default', 'literal', 'uniform', 'no_rule1', .*'no_rule5'\]"
    with pytest.raises(ValueError, match=r"keyframes.mode must be one of " + modes):
        KeyframeSettings.from_config({"mode": "smart"})
    with pytest.raises(ValueError, match="keyframes.intensity must be one of"):
        KeyframeSettings.from_config({"intensity": "arousal"})
    with pytest.raises(ConfigError, match="keyframes.threshold must be <= 1, got 50.0"):
        KeyframeSettings.from_config({"threshold": 50})
    with pytest.raises(ConfigError, match=r"slots must be between 1 and num_keyframes \(16\)"):
        KeyframeSettings.from_config({"slots": 17})
    with pytest.raises(ConfigError, match=r"keyframes: unknown key\(s\) \['candidates_per_second'\]"):
        KeyframeSettings.from_config({"candidates_per_second": 3})
    with pytest.raises(ConfigError, match="keyframes.motion_width must be >= 1, got 0"):
        KeyframeSettings.from_config({"motion_width": 0})   # 0 would silently drop rule 4's differences


def test_candidates_are_evenly_spaced_and_do_not_grow_with_the_clip():
    s = KeyframeSettings()  # 48 evenly spaced, no extra fps grid
    for duration in (3.0, 5.0, 10.0, 60.0):
        times = candidate_times(duration, s)
        assert len(times) == 48
        np.testing.assert_allclose(np.diff(times), duration / 48, atol=2e-6)
        slot = duration / 16
        # the slot centres are among them (what uniform picks)
        assert all(any(abs(t - (j + 0.5) * slot) < 1e-5 for t in times) for j in range(16))


def test_the_first_sampling_is_one_setting_away():
    old = KeyframeSettings(candidate_fps=4.0, num_candidates=16)
    times = candidate_times(5.0, old)
    assert len(times) == 36  # 20 ticks at 4 fps + 16 slot centres
    assert {0.0, 0.25, 4.75} <= set(times) and 0.15625 in times


class _MeanToClasses(torch.nn.Module):
    """Logits from the mean of the (normalised) red channel: bright frames Positive, dark ones
    Negative, mid-grey ones Neutral."""

    def forward(self, x):
        m = x[:, 0].mean(dim=(1, 2))
        return torch.stack([4 * m, 2 - 4 * m.abs(), -4 * m], dim=1)


def _sample(levels, fps=25.0, size=(24, 40)):
    """A FrameSample whose candidates are flat grey frames of the given levels, one per 1/fps s,
    inter-frame difference = level change."""
    frames = [SampledFrame(index=i, time=i / fps,
                           images={"score": np.full(size + (3,), lv, np.uint8),
                                   "visual": np.full((8, 8, 3), lv, np.uint8)})
              for i, lv in enumerate(levels)]
    motion = np.abs(np.diff(np.asarray(levels, np.float32), prepend=levels[0]))
    info = VideoInfo(path=Path("clip.mp4"), fps=fps, duration=len(levels) / fps, width=size[1], height=size[0],
                     frame_count=len(levels), has_audio=False, audio_sample_rate=None, audio_channels=None, rotation=0)
    return FrameSample(info=info, picks={}, motion=motion, times=np.arange(len(levels)) / fps, num_frames=len(levels),
                       unique_frames={"candidates": frames})


def _scorer(names=("Positive", "Neutral", "Negative")):
    return SentimentScorer(_MeanToClasses(), names, input_size=16)


def test_record_names_the_rule_of_every_pick_and_counts_per_rule():
    # 40 frames: grey (neutral) except a bright stretch in the middle
    levels = [128] * 15 + [250] * 10 + [128] * 15
    sample = _sample(levels)
    settings = KeyframeSettings(intensity="non_neutral", threshold=0.5)
    result = select_from_sample(sample, _scorer(), settings, ["visual"])
    rec = keyframes_record(result, sample.info, clip_id="c", settings_hash="h", scorer_hash="s")
    assert rec["mode"] == "default" and len(rec["keyframes"]) == 16
    bright = [k for k in rec["keyframes"] if 15 <= k["index"] < 25]
    assert len(bright) == 10  # every emotional frame first
    assert all(k["reason"] in ("slot", "fill_above", "top_up_rank") and k["rule"] in (4, 5) for k in bright)
    assert all(k["score"] == pytest.approx(1 - k["probs"]["Neutral"], abs=1e-5) for k in rec["keyframes"])
    assert sum(rec["picks_by_rule"].values()) == 16
    assert rec["picks_by_rule"]["4"] == rec["counts"]["slot"]
    assert rec["counts"]["candidates"] == 40 and rec["counts"]["fill_below"] == 6
    assert len(result.images["visual"]) == 16


def test_uniform_mode_and_a_scorer_without_neutral():
    sample = _sample([128] * 40)
    uni = select_from_sample(sample, _scorer(), KeyframeSettings(mode="uniform"), [])
    # frames nearest the slot centres (j + 0.5) * 2.5 frames (no .5 ties)
    assert [k.index for k in uni.selection.keyframes] == [round((j + 0.5) * 2.5) for j in range(16)]
    with pytest.raises(ValueError, match=r"non_neutral needs a class named 'neutral'.*'happy'"):
        select_from_sample(sample, _scorer(("happy", "sad", "angry")), KeyframeSettings(intensity="non_neutral"), [])


def test_precision_is_checked_and_hashed_only_when_not_float32():
    """``keyframes.precision`` came after caches existed: at its default (float32) the keyframe
    hash is what it was without the field, so those caches stay current; bfloat16 changes it (the
    selection may change, so the streams that read keyframes are recomputed)."""
    with pytest.raises(ConfigError, match=r"keyframes.precision must be one of \['float32', 'bfloat16'\], got 'half'"):
        KeyframeSettings.from_config({"precision": "half"})
    default = KeyframeSettings()
    without_field = {k: v for k, v in asdict(default).items() if k != "precision"}
    assert keyframes_hash(default, "s") == config_hash({"keyframes": without_field, "scorer": "s"})
    assert keyframes_hash(KeyframeSettings(precision="bfloat16"), "s") != keyframes_hash(default, "s")
