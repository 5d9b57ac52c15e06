"""Log-mel spectrogram input of the audio stream."""

from __future__ import annotations

import warnings

import librosa
import numpy as np

__all__ = ["AMIN", "FLOOR_DB", "log_mel_spectrogram"]

# Power floor before the log: 10 * log10(AMIN) = -100 dB is the value of pure silence.
AMIN = 1e-10
FLOOR_DB = -100.0
"""``10 * log10(AMIN)``: the lowest value of :func:`log_mel_spectrogram`, exact."""


def log_mel_spectrogram(
    audio: np.ndarray,
    sample_rate: int,
    *,
    n_mels: int = 128,
    n_fft: int = 1024,
    hop_length: int = 512,
    fmin: float = 0.0,
    fmax: float | None = None,
    top_db: float | None = 80.0,
    source: str = "<array>",
) -> np.ndarray:
    """Log-mel power spectrogram in decibels.

    ``librosa.feature.melspectrogram`` (power 2, Hann window, ``center=True`` with zero padding,
    Slaney mel scale and area-normalised filters) followed by
    ``librosa.power_to_db(ref=1.0, amin=1e-10, top_db=top_db)``.

    Args:
        audio: ``(N,)`` mono waveform, float, nominally in [-1, 1]; N >= 1. Audio shorter than
            ``n_fft`` is fine (the centred frames are zero-padded).
        sample_rate: samples per second of ``audio`` (Hz).
        n_mels: number of mel bands.
        n_fft: FFT window length in samples.
        hop_length: samples between frames.
        fmin, fmax: lowest / highest band edge in Hz (``fmax=None`` -> ``sample_rate / 2``).
        top_db: the output is floored at ``max - top_db`` dB; ``None`` disables that.
        source: name of where the audio came from (e.g. the clip path), used in error messages.

    Returns:
        ``(n_mels, T)`` float32, ``T = 1 + N // hop_length``; units are dB relative to a mel
        power of 1.0, i.e. ``10 * log10(max(mel_power, 1e-10))`` where ``mel_power`` is the
        mel-filtered squared magnitude of the (unnormalised) STFT. Pure silence is exactly
        ``-100`` dB everywhere; a 0.5-amplitude 1 kHz sine at 16 kHz peaks near +28 dB. Row 0
        is the lowest mel band.

    Raises:
        ValueError: empty, non-1-D or non-finite audio, or a non-positive sample rate; the
            message names ``source``.
    """
    audio = np.asarray(audio)
    if audio.ndim != 1:
        raise ValueError(
            f"{source}: audio must be a mono (N,) waveform, got shape {audio.shape} "
            "(mix channels down first)"
        )
    if audio.size == 0:
        raise ValueError(f"{source}: audio has 0 samples; cannot compute a spectrogram")
    if not np.issubdtype(audio.dtype, np.floating):
        raise ValueError(
            f"{source}: audio must be floating point in [-1, 1], got dtype {audio.dtype}"
        )
    audio = audio.astype(np.float32, copy=False)
    if not np.all(np.isfinite(audio)):
        raise ValueError(f"{source}: audio contains NaN or infinite samples")
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"{source}: sample_rate must be a positive integer, got {sample_rate}")

    with warnings.catch_warnings():
        # librosa warns that n_fft is larger than a short input; centred zero padding is the
        # documented behaviour here, not a problem.
        warnings.filterwarnings("ignore", message=r"n_fft=\d+ is too large", category=UserWarning)
        mel = librosa.feature.melspectrogram(
            y=audio,
            sr=int(sample_rate),
            n_fft=n_fft,
            hop_length=hop_length,
            n_mels=n_mels,
            fmin=fmin,
            fmax=fmax,
            power=2.0,
            center=True,
            pad_mode="constant",
        )
    # The log in float64, then a clip to the floor: in float32 the floor came out one float32
    # step below -100 (-100.0000076) on some machines, depending on the log10 implementation.
    db = librosa.power_to_db(mel.astype(np.float64), ref=1.0, amin=AMIN, top_db=top_db)
    return np.ascontiguousarray(np.maximum(db, FLOOR_DB), dtype=np.float32)
