"""What capture sources hand out (frames, audio chunks, the audio-stopped marker) and their
error: shared by the PyAV/OpenCV sources (:mod:`media.capture`) and the PortAudio microphone
(:mod:`media.portaudio`), so neither imports the other for them."""
from __future__ import annotations

import queue
from dataclasses import dataclass

import numpy as np


def drain(q: queue.Queue) -> list:
    """Everything in ``q`` now, in order, without blocking."""
    out = []
    while True:
        try:
            out.append(q.get_nowait())
        except queue.Empty:
            return out


class LiveSourceError(RuntimeError):
    """A live source that cannot be opened or read; the message names it."""


@dataclass
class LiveFrame:
    """One source frame: ``index`` (0-based, source order), ``time`` (s from the first frame) and
    ``image``, uint8 RGB ``(H, W, 3)``, upright, at the analysis size."""

    index: int
    time: float
    image: np.ndarray


@dataclass
class AudioChunk:
    """Decoded audio: ``samples`` float32 mono ``(N,)`` in [-1, 1] at the source's
    ``audio_rate``, the first of them at ``time`` (s, same timeline as the frames)."""

    time: float
    samples: np.ndarray


@dataclass
class AudioStopped:
    """The audio source stopped delivering (or could not be opened) at ``time`` (s, the frames'
    timeline): from then on the run has no audio. ``reason`` says why."""

    time: float
    reason: str


@dataclass
class SourceDropped:
    """A network source stopped delivering at ``time`` (s, the frames' timeline: just after its
    last frame); ``reason`` says how (read timeout, connection closed, stream ended)."""

    time: float
    reason: str


@dataclass
class SourceReconnected:
    """A dropped network source delivers again: its next frame is at ``time`` (s, the frames'
    timeline, counted on by the wall-clock time it was away), ``gap_s`` after the last frame
    before the drop; it took ``attempts`` connection attempts (the last one succeeded)."""

    time: float
    gap_s: float
    attempts: int
