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


def test_overlapping_clips_share_interior_columns_and_equal_the_plain_spectrogram():
    from media.reuse import ClipReuse, ReuseStore
    from streams.inputs.spectrogram import shared_log_mel_spectrogram

    rng = np.random.default_rng(3)
    signal = (0.3 * np.sin(2 * np.pi * 440 * np.arange(5 * SR) / SR)
              + 0.05 * rng.standard_normal(5 * SR)).astype(np.float32)
    store = ReuseStore()
    hop, length = 512, 3 * SR
    computed = []
    for start in (0, 31 * hop, 62 * hop, 94 * hop):       # ~1 s apart, on the hop grid
        clip = signal[start:start + length]
        reuse = ClipReuse(store=store, frame_ids=[], audio_rate=SR, audio_start=start)
        before = store.misses
        shared = shared_log_mel_spectrogram(clip, SR, reuse)
        np.testing.assert_allclose(shared, log_mel_spectrogram(clip, SR), atol=1e-3)
        computed.append(store.misses - before)
    # the first clip computes all its interior columns; the next ones only the ~1 s not seen yet
    assert computed[0] == 1 + length // hop - 2      # all but the two zero-padded edge columns
    assert all(c <= 32 + 1 for c in computed[1:])
    # off the grid nothing is shared, and the result is still the plain spectrogram
    off = ClipReuse(store=store, frame_ids=[], audio_rate=SR, audio_start=100)
    hits = store.hits
    np.testing.assert_allclose(shared_log_mel_spectrogram(signal[100:100 + length], SR, off),
                               log_mel_spectrogram(signal[100:100 + length], SR), atol=1e-3)
    assert store.hits == hits
