"""Log-mel spectrogram input of the audio stream."""

from __future__ import annotations

import warnings

import librosa
import numpy as np

from media.reuse import ClipReuse

__all__ = ["AMIN", "FLOOR_DB", "MEL_KIND", "log_mel_spectrogram", "shared_log_mel_spectrogram"]

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
    audio = _checked(audio, sample_rate, source)
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
    return _to_db(mel, top_db)


def _to_db(mel: np.ndarray, top_db: float | None) -> np.ndarray:
    """Mel power (n_mels, T) -> dB float32, floored at ``max - top_db`` and at :data:`FLOOR_DB`."""
    # The log in float64, then a clip to the floor: in float32 the floor came out one float32
    # step below -100 (-100.0000076) on some machines, depending on the log10 implementation.
    db = librosa.power_to_db(mel.astype(np.float64), ref=1.0, amin=AMIN, top_db=top_db)
    return np.ascontiguousarray(np.maximum(db, FLOOR_DB), dtype=np.float32)


def _checked(audio: np.ndarray, sample_rate: int, source: str) -> np.ndarray:
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
    return audio


MEL_KIND = "mel_power_column"
"""The kind under which mel power columns are shared between clips (:mod:`media.reuse`)."""


def shared_log_mel_spectrogram(
    audio: np.ndarray,
    sample_rate: int,
    reuse: ClipReuse,
    *,
    n_mels: int = 128,
    n_fft: int = 1024,
    hop_length: int = 512,
    fmin: float = 0.0,
    fmax: float | None = None,
    top_db: float | None = 80.0,
    source: str = "<array>",
) -> np.ndarray:
    """:func:`log_mel_spectrogram` of ``audio``, the same numbers (to float rounding), with the
    mel power columns that lie wholly inside the clip shared with overlapping clips of the same
    source through ``reuse`` (a live window extends the previous windows' analysis instead of
    redoing it).

    ``audio`` must be the source's samples from ``reuse.audio_start`` on, at ``sample_rate`` ==
    ``reuse.audio_rate``. Column ``j`` is centred on clip sample ``j * hop_length``, i.e. source
    sample ``audio_start + j * hop_length``: when ``audio_start`` is a multiple of
    ``hop_length``, clips on that grid have the same interior columns and each is computed once.
    Columns whose ``n_fft`` window reaches past either end of the clip hold its zero padding and
    are computed for each clip; so is everything when the clip is not on the grid. The dB
    conversion (and ``top_db``, relative to the clip's maximum) is per clip.
    """
    audio = _checked(audio, sample_rate, source)
    if reuse.audio_start is None or reuse.audio_rate != int(sample_rate) or reuse.audio_start % hop_length:
        return log_mel_spectrogram(audio, sample_rate, n_mels=n_mels, n_fft=n_fft, hop_length=hop_length, fmin=fmin,
                                   fmax=fmax, top_db=top_db, source=source)
    n, half = audio.size, n_fft // 2
    num_columns = 1 + n // hop_length
    padded = np.pad(audio, half)  # librosa's center=True with pad_mode="constant"
    kind = (MEL_KIND, int(sample_rate), n_mels, n_fft, hop_length, float(fmin), fmax)
    first = reuse.audio_start // hop_length
    columns: list[np.ndarray | None] = []
    for j in range(num_columns):
        interior = j * hop_length >= half and j * hop_length + half <= n
        columns.append(reuse.store.get(kind, first + j) if interior else None)
    j = 0
    while j < num_columns:  # compute each run of missing columns in one call
        if columns[j] is not None:
            j += 1
            continue
        end = j
        while end < num_columns and columns[end] is None:
            end += 1
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r"n_fft=\d+ is too large", category=UserWarning)
            mel = librosa.feature.melspectrogram(
                y=padded[j * hop_length:(end - 1) * hop_length + n_fft], sr=int(sample_rate), n_fft=n_fft,
                hop_length=hop_length, n_mels=n_mels, fmin=fmin, fmax=fmax, power=2.0, center=False)
        for q in range(j, end):
            columns[q] = mel[:, q - j]
            if q * hop_length >= half and q * hop_length + half <= n:
                last = reuse.audio_start + q * hop_length + half - 1
                reuse.store.put(kind, first + q, columns[q], until=reuse.sample_time(last))
        j = end
    return _to_db(np.stack(columns, axis=1), top_db)
