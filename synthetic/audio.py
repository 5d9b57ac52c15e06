"""The synthetic sets' sound: the group set's chord tone (:func:`synthesize_tone`) and the
individual sets' speech-like voice (:func:`synthesize_speech`), and babble, several such voices at
once (:func:`synthesize_babble`, the robustness report's crowd noise), all mono float32 in [-1, 1]."""
from __future__ import annotations

from typing import Mapping

import numpy as np

from synthetic.peaks import peak_envelope

CONTOURS: tuple[str, ...] = ("flat", "rise", "fall", "arch")
"""The pitch contours :func:`synthesize_speech` knows."""
_VOWELS = ((800, 1200), (500, 1900), (300, 2300), (500, 900), (350, 800), (650, 1700))   # (F1, F2) Hz


def _fade_and_clip(signal: np.ndarray, sample_rate: int) -> np.ndarray:
    """``signal`` with 20 ms linear fades at both ends (in place), clipped to [-1, 1], as float32."""
    n = len(signal)
    fade = min(n // 2, int(0.02 * sample_rate))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        signal[:fade] *= ramp
        signal[-fade:] *= ramp[::-1]
    return np.clip(signal, -1.0, 1.0).astype(np.float32)


def synthesize_tone(*, valence: float, peak: Mapping[str, float] | None, duration: float, ref_hz: float,
                    gain: float, noise_gain: float, n_samples: int, sample_rate: int,
                    rng: np.random.Generator) -> np.ndarray:
    """The group set's audio cue, float32 ``(n_samples,)`` in [-1, 1]: a tone whose root pitch
    (around ``ref_hz``), glide and chord follow the audio ``valence`` (major third above 0, minor
    third below) scaled by the ``peak`` envelope (:func:`synthetic.peaks.peak_envelope`), with
    tremolo, a noise floor of ``noise_gain`` (drawn from ``rng``) and fades; ``gain`` scales the
    tone and ``duration`` (s) sets the glide's span."""
    t = np.arange(n_samples) / sample_rate
    v = valence * peak_envelope(peak, t)
    position = t / max(duration, 1e-6) - 0.5                   # -0.5 .. 0.5 over the clip
    # the root sits 0.9 octave above/below the reference at full valence and glides by 0.4
    # octave over the clip: up for positive, down for negative
    f0 = ref_hz * 2.0 ** (0.9 * v + 0.4 * v * position)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    # (frequency ratio, amplitude) partials; amplitudes may depend on the valence
    partials = [
        (1.0, np.ones_like(v)),
        (2.0 ** (4 / 12), 0.6 * np.clip(v, 0, None)),    # major third
        (2.0 ** (3 / 12), 0.6 * np.clip(-v, 0, None)),   # minor third
        (2.0 ** (7 / 12), 0.5 * np.abs(v)),              # fifth
        (2.0, 0.25 * np.ones_like(v)),                   # octave, for timbre
    ]
    tone = sum(amp * np.sin(ratio * phase) for ratio, amp in partials)
    tremolo_hz = 2.0 + 3.0 * np.clip(v, 0, None)
    tremolo = 1.0 - 0.3 * (0.5 + 0.5 * np.sin(2 * np.pi * np.cumsum(tremolo_hz) / sample_rate))
    signal = tone / 2.6 * tremolo * gain
    signal = signal + noise_gain * rng.standard_normal(n_samples)
    return _fade_and_clip(signal, sample_rate)


def pitch_contour(contour: str, position: np.ndarray) -> np.ndarray:
    """Octaves relative to the clip's level at ``position`` in [0, 1] along the clip, range +-0.5."""
    if contour == "flat":
        return np.zeros_like(position)
    if contour == "rise":
        return position - 0.5
    if contour == "fall":
        return 0.5 - position
    if contour == "arch":
        return 0.5 * (1.0 - 8.0 * (position - 0.5) ** 2)
    raise ValueError(f"unknown pitch contour {contour!r}; expected one of {CONTOURS}")


def _syllables(t: np.ndarray, duration: float, n_syll: int,
               sentence: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per sample at times ``t`` (s): the syllable envelope and the first two formants (Hz) of
    ``n_syll`` syllables, their lengths, loudness and vowels drawn from ``sentence``."""
    n = len(t)
    bounds = np.linspace(0.05 * duration, 0.95 * duration, n_syll + 1)
    envelope = np.zeros(n)
    f1 = np.full(n, 500.0)
    f2 = np.full(n, 1500.0)
    for i in range(n_syll):
        a, b = bounds[i], bounds[i + 1]
        length = (b - a) * sentence.uniform(0.65, 0.9)
        inside = (t >= a) & (t < a + length)
        envelope[inside] = np.sin(np.pi * (t[inside] - a) / length) ** 0.7 * sentence.uniform(0.7, 1.0)
        vowel = _VOWELS[int(sentence.integers(0, len(_VOWELS)))]
        f1[(t >= a) & (t < b)] = vowel[0]
        f2[(t >= a) & (t < b)] = vowel[1]
    return envelope, f1, f2


def _voice(f0: np.ndarray, phase: np.ndarray, f1: np.ndarray, f2: np.ndarray) -> np.ndarray:
    """Harmonics of ``f0`` up to 4 kHz shaped by the formants ``f1``/``f2``, peak-normalised."""
    n_harm = int(4000.0 // float(f0.max())) or 1
    voice = np.zeros(len(f0))
    for h in range(1, n_harm + 1):
        freq = h * f0
        gain = (np.exp(-0.5 * ((freq - f1) / 130.0) ** 2) + 0.7 * np.exp(-0.5 * ((freq - f2) / 200.0) ** 2)
                + 0.08) / np.sqrt(h)
        voice += gain * np.sin(h * phase)
    voice /= max(1e-6, float(np.abs(voice).max()))
    return voice


def synthesize_speech(*, level: float, contour: str, rate: float, voice_hz: float, duration: float,
                      sample_rate: int, sentence_seed: int, rng: np.random.Generator,
                      loudness: float = 1.0) -> np.ndarray:
    """Speech-like mono audio, float32 ``(round(duration * sample_rate),)`` in [-1, 1].

    Syllables (about ``rate`` per second; their lengths, loudness and vowels fixed by
    ``sentence_seed``) of a harmonic voice whose partials up to 4 kHz are shaped by the vowel's
    two formants; the pitch is ``voice_hz * 2 ** (level + contour)`` with the contour's glide
    (:func:`pitch_contour`) over the clip and a little random wander. ``loudness`` scales the
    amplitude (intensity); a noise floor and short fades are added. ``rng`` draws the per-clip
    nuisances (speaking rate +-5 %, wander, gain, noise)."""
    n = int(round(duration * sample_rate))
    t = np.arange(n) / sample_rate
    position = t / max(duration, 1e-6)
    wander = np.cumsum(rng.standard_normal(n)) / np.sqrt(sample_rate) * 0.04
    f0 = voice_hz * 2.0 ** (level + pitch_contour(contour, position) + wander)
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate

    sentence = np.random.default_rng([int(sentence_seed), 77])
    rate = rate * sentence.uniform(0.9, 1.1) * rng.uniform(0.95, 1.05)
    envelope, f1, f2 = _syllables(t, duration, max(1, int(duration * rate)), sentence)
    voice = _voice(f0, phase, f1, f2)
    signal = 0.5 * loudness * rng.uniform(0.6, 1.0) * envelope * voice
    signal += rng.uniform(0.002, 0.01) * rng.standard_normal(n)
    return _fade_and_clip(signal, sample_rate)


def synthesize_babble(n_samples: int, sample_rate: int, *, voices: int = 6, seed: int = 0) -> np.ndarray:
    """Babble, float32 ``(n_samples,)``: ``voices`` speech-like voices (:func:`synthesize_speech`,
    each with its own pitch, contour, speaking rate and sentence, drawn from ``seed``) talking at
    once, each started at a random point of its sentence (circularly shifted) so their syllables
    do not line up; peak-normalised to 0.5. What a crowd sounds like behind a group's own audio."""
    rng = np.random.default_rng([int(seed), 4242])
    duration = n_samples / sample_rate
    mix = np.zeros(n_samples, np.float64)
    for _ in range(voices):
        contour = CONTOURS[int(rng.integers(len(CONTOURS)))]
        voice = synthesize_speech(level=float(rng.uniform(-0.3, 0.3)), contour=contour,
                                  rate=float(rng.uniform(3.0, 5.0)), voice_hz=float(rng.uniform(100.0, 240.0)),
                                  duration=duration, sample_rate=sample_rate,
                                  sentence_seed=int(rng.integers(1 << 31)), rng=rng)
        mix += np.roll(voice, int(rng.integers(max(1, n_samples))))
    return (0.5 * mix / max(1e-9, float(np.abs(mix).max()))).astype(np.float32)
