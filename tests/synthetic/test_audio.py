"""Tests for synthetic.audio: both voices are mono float32 in [-1, 1] of the asked length, fade in
and out, and the speech pitch contours are named."""
from __future__ import annotations

import numpy as np
import pytest

from synthetic.audio import CONTOURS, pitch_contour, synthesize_speech, synthesize_tone


def test_tone_and_speech_are_float32_of_the_asked_length_and_fade_at_both_ends():
    tone = synthesize_tone(valence=1.0, peak=None, duration=0.5, ref_hz=300.0, gain=0.4, noise_gain=0.01,
                           n_samples=8000, sample_rate=16000, rng=np.random.default_rng(0))
    speech = synthesize_speech(level=0.0, contour="arch", rate=4.0, voice_hz=200.0, duration=0.5, sample_rate=16000,
                               sentence_seed=1, rng=np.random.default_rng(0))
    for audio in (tone, speech):
        assert audio.shape == (8000,) and audio.dtype == np.float32
        assert np.abs(audio).max() <= 1.0 and np.abs(audio).max() > 0.01
        assert audio[0] == 0.0 and audio[-1] == 0.0


def test_pitch_contours_glide_as_named():
    position = np.linspace(0.0, 1.0, 5)
    assert set(CONTOURS) == {"flat", "rise", "fall", "arch"}
    assert np.all(pitch_contour("flat", position) == 0)
    assert np.all(np.diff(pitch_contour("rise", position)) > 0) and np.all(np.diff(pitch_contour("fall", position)) < 0)
    assert pitch_contour("arch", position).argmax() == 2
    with pytest.raises(ValueError, match="unknown pitch contour"):
        pitch_contour("zigzag", position)
