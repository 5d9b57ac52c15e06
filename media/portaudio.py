"""The microphone through PortAudio (the ``sounddevice`` package), for platforms whose PyAV
build has no capture format (see :func:`media.capture.open_microphone`). Same interface
and time stamps as :class:`media.capture.AudioCapture`."""
from __future__ import annotations

import importlib.util
import queue
import time
from typing import Callable

import numpy as np

from media.capture_types import AudioChunk, AudioStopped, LiveSourceError, drain


def sounddevice_available() -> bool:
    """Whether the ``sounddevice`` package can be imported (it needs the PortAudio library)."""
    if importlib.util.find_spec("sounddevice") is None:
        return False
    try:
        import sounddevice  # noqa: F401
    except OSError:  # the package is there, the PortAudio library is not
        return False
    return True


class SoundDeviceCapture:
    """Microphone ``device`` (a PortAudio device name or index; ``"default"``: the default
    input) recorded mono at ``sample_rate`` Hz by PortAudio's callback thread."""

    def __init__(self, device: str, *, sample_rate: int, clock: Callable[[], float] = time.monotonic) -> None:
        import sounddevice

        self.name = f"portaudio:{device}"
        self.sample_rate = int(sample_rate)
        self._clock = clock
        self._queue: queue.Queue = queue.Queue()
        self._origin = 0.0
        self._first: float | None = None
        self._produced = 0
        chosen = None if device in ("", "default") else (int(device) if str(device).isdigit() else device)
        try:
            self._stream = sounddevice.InputStream(device=chosen, samplerate=self.sample_rate, channels=1,
                                                   dtype="float32", callback=self._callback,
                                                   finished_callback=self._finished)
        except (sounddevice.PortAudioError, ValueError) as e:
            raise LiveSourceError(f"{self.name}: cannot open the microphone ({e})") from e

    def _callback(self, indata, frames, time_info, status) -> None:
        samples = np.asarray(indata[:, 0], dtype=np.float32).copy()
        if self._first is None:
            self._first = self._clock() - self._origin - len(samples) / self.sample_rate
        self._queue.put(AudioChunk(self._first + self._produced / self.sample_rate, samples))
        self._produced += len(samples)

    def _finished(self) -> None:
        at = self._first + self._produced / self.sample_rate if self._first is not None else \
            self._clock() - self._origin
        self._queue.put(AudioStopped(max(0.0, at), f"{self.name}: the microphone stopped"))

    def start(self, origin: float) -> None:
        self._origin = float(origin)
        self._stream.start()

    def poll(self) -> list:
        return drain(self._queue)

    def close(self) -> None:
        self._stream.close()
