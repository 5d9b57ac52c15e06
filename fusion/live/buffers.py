"""What live mode keeps: the frames and audio of the current window (ring buffers bounded by the
window), and a window presented as a reader with the :class:`media.decoding.VideoReader`
interface, so preprocessing runs on it exactly as on a file."""
from __future__ import annotations

import math
from collections import deque
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from media.decoding import VideoInfo, target_size
from fusion.live.sources import AudioChunk, LiveFrame, LiveSourceError


class FrameRing:
    """The frames of the current window, oldest first. Memory is bounded by the window: frames
    older than the next window's start are dropped with :meth:`drop_before`."""

    def __init__(self) -> None:
        self._frames: deque[LiveFrame] = deque()

    def push(self, frame: LiveFrame) -> None:
        self._frames.append(frame)

    def drop_before(self, t: float) -> None:
        """Forget frames whose time is before ``t`` (s)."""
        while self._frames and self._frames[0].time < t - 1e-9:
            self._frames.popleft()

    def between(self, start: float, end: float) -> list[LiveFrame]:
        """Frames with ``start <= time < end`` (s), in order."""
        return [f for f in self._frames if start - 1e-9 <= f.time < end - 1e-9]

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def nbytes(self) -> int:
        return sum(f.image.nbytes for f in self._frames)


class AudioRing:
    """Mono samples at ``sample_rate`` Hz for the current window. Chunks are taken as one
    contiguous signal starting at the first chunk's time (decoders deliver audio gap-free)."""

    def __init__(self, sample_rate: int) -> None:
        if sample_rate < 1:
            raise ValueError(f"sample_rate must be >= 1, got {sample_rate}")
        self.sample_rate = int(sample_rate)
        self._start: float | None = None     # time (s) of self._samples[0]
        self._samples = np.zeros(0, np.float32)

    def push(self, chunk: AudioChunk) -> None:
        if self._start is None:
            self._start = float(chunk.time)
        self._samples = np.concatenate([self._samples, np.asarray(chunk.samples, np.float32)])

    @property
    def end_time(self) -> float | None:
        """Time (s) just after the last sample held, ``None`` before any audio arrived."""
        return None if self._start is None else self._start + len(self._samples) / self.sample_rate

    def drop_before(self, t: float) -> None:
        if self._start is None:
            return
        n = int(math.floor((t - self._start) * self.sample_rate))
        if n > 0:
            n = min(n, len(self._samples))
            self._samples = self._samples[n:]
            self._start += n / self.sample_rate

    def between(self, start: float, end: float) -> np.ndarray:
        """The samples in ``[start, end)`` (s); fewer (possibly none) where audio is missing."""
        if self._start is None:
            return np.zeros(0, np.float32)
        a = max(0, int(round((start - self._start) * self.sample_rate)))
        b = max(0, int(round((end - self._start) * self.sample_rate)))
        return self._samples[a:b].copy()


class WindowFrame:
    """A window frame with the :class:`media.decoding.FrameHandle` interface; ``index`` and
    ``time`` are relative to the window (0-based, s from the window start)."""

    __slots__ = ("index", "time", "image")

    def __init__(self, index: int, time: float, image: np.ndarray) -> None:
        self.index, self.time, self.image = index, time, image

    def to_image(self, *, short_side: int | None = None, max_side: int | None = None,
                 width: int | None = None, gray: bool = False) -> np.ndarray:
        """uint8 ``(H, W, 3)`` RGB or ``(H, W)`` gray, resized like
        :meth:`media.decoding.FrameHandle.to_image` (see :func:`media.decoding.target_size`)."""
        h, w = self.image.shape[:2]
        tw, th = target_size(w, h, short_side=short_side, max_side=max_side, fixed_width=width)
        image = self.image
        if (tw, th) != (w, h):
            down = tw * th < w * h
            image = cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA if down else cv2.INTER_LINEAR)
        if gray:
            image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        return image


class WindowReader:
    """An in-memory reader over one window's frames and audio, with the
    :class:`media.decoding.VideoReader` interface that
    :meth:`streams.preprocessing.ClipPreprocessor.compute` uses: ``info`` (window duration,
    frame count, analysis size, ``has_audio`` when the window holds samples), ``iter_handles()``,
    ``read_audio()``, ``decode_warning`` and ``with``."""

    def __init__(self, frames: Sequence[LiveFrame], *, start: float, end: float, fps: float,
                 audio: np.ndarray | None, audio_rate: int | None, name: str) -> None:
        if not frames:
            raise LiveSourceError(f"{name}: window [{start:.3f}, {end:.3f}) s holds no frame")
        self.path = Path(f"{name}@{start:.2f}-{end:.2f}s")
        self.decode_warning: str | None = None
        self._frames = list(frames)
        self._start = start
        self._audio = audio if audio is not None and audio.size > 0 else None
        self._audio_rate = audio_rate
        h, w = self._frames[0].image.shape[:2]
        self.info = VideoInfo(
            path=self.path, fps=float(fps), duration=float(end - start), width=int(w), height=int(h),
            frame_count=len(self._frames), has_audio=self._audio is not None,
            audio_sample_rate=int(audio_rate) if self._audio is not None else None,
            audio_channels=1 if self._audio is not None else None, rotation=0)

    def iter_handles(self) -> Iterator[WindowFrame]:
        for i, f in enumerate(self._frames):
            yield WindowFrame(i, f.time - self._start, f.image)

    def read_audio(self, *, sample_rate: int, mono: bool = True) -> np.ndarray | None:
        """The window's audio at ``sample_rate`` Hz, float32 ``(N,)`` (``(1, N)`` when not
        ``mono``), or ``None`` when the window has none."""
        if self._audio is None:
            return None
        audio = self._audio
        if sample_rate != self._audio_rate:
            import librosa

            audio = librosa.resample(audio, orig_sr=self._audio_rate, target_sr=sample_rate).astype(np.float32)
        audio = np.clip(audio, -1.0, 1.0)
        return audio if mono else audio[None, :]

    def __enter__(self) -> "WindowReader":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        return None
