"""Log-mel spectrogram input of the audio stream."""

import librosa
import numpy as np
import pytest

from streams.inputs.spectrogram import log_mel_spectrogram

SR = 16000


def test_shape_and_dtype():
    audio = np.random.default_rng(0).uniform(-0.5, 0.5, SR * 2 + 123).astype(np.float32)
    spec = log_mel_spectrogram(audio, SR)
    assert spec.shape == (128, 1 + audio.size // 512)
    assert spec.dtype == np.float32
    assert np.all(np.isfinite(spec))
    small = log_mel_spectrogram(audio, SR, n_mels=64, hop_length=256)
    assert small.shape == (64, 1 + audio.size // 256)


def test_tone_peaks_in_its_mel_band():
    t = np.arange(SR) / SR
    tone = (0.5 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    spec = log_mel_spectrogram(tone, SR)
    # Centre frequencies of the 128 triangular filters (edges excluded).
    centres = librosa.mel_frequencies(n_mels=128 + 2, fmin=0.0, fmax=SR / 2)[1:-1]
    expected = int(np.argmin(np.abs(centres - 1000.0)))
    peak = int(np.argmax(spec.mean(axis=1)))
    assert abs(peak - expected) <= 1
    # The tone stands far above the rest of the spectrum.
    assert spec[peak].mean() - np.median(spec) > 40.0


def test_silence_is_the_floor():
    spec = log_mel_spectrogram(np.zeros(SR, np.float32), SR)
    np.testing.assert_array_equal(spec, np.full_like(spec, -100.0))


def test_top_db_floors_relative_to_the_peak():
    t = np.arange(SR // 2) / SR
    tone = (0.5 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    spec = log_mel_spectrogram(tone, SR, top_db=50.0)
    assert spec.min() >= spec.max() - 50.0 - 1e-3


def test_short_audio_is_padded():
    spec = log_mel_spectrogram(np.full(100, 0.1, np.float32), SR)
    assert spec.shape == (128, 1)
    assert spec.max() > -100.0  # the samples contribute energy
    assert log_mel_spectrogram(np.zeros(1, np.float32), SR).shape == (128, 1)


def test_bad_audio_raises_naming_the_source():
    with pytest.raises(ValueError, match=r"clip\.mp4.*0 samples"):
        log_mel_spectrogram(np.zeros(0, np.float32), SR, source="clip.mp4")
    with pytest.raises(ValueError, match=r"clip\.mp4.*mono"):
        log_mel_spectrogram(np.zeros((2, 100), np.float32), SR, source="clip.mp4")
    with pytest.raises(ValueError, match="NaN"):
        log_mel_spectrogram(np.array([0.0, np.nan], np.float32), SR)
    with pytest.raises(ValueError, match="sample_rate"):
        log_mel_spectrogram(np.zeros(100, np.float32), 0)
