"""What live mode keeps: the frames and audio of the current window (ring buffers bounded by the
window), and a window presented as a reader with the :class:`media.decoding.VideoReader`
interface, so preprocessing runs on it exactly as on a file; with a
:class:`media.reuse.ReuseStore` the window's frames bring the conversions, scores and face
detections that earlier windows already made of them."""
from __future__ import annotations

import math
from collections import deque
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from media.capture import AudioChunk, LiveFrame, LiveSourceError
from media.decoding import VideoInfo
from media.frame_conversion import target_size
from media.reuse import ClipReuse, ReuseStore


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
    """Mono samples at ``sample_rate`` Hz for the current window, on the source's sample
    timeline: sample ``i`` (counted from the first chunk) is at time ``origin + i / sample_rate``.
    Chunks are taken as one contiguous signal starting at the first chunk's time (decoders
    deliver audio gap-free)."""

    def __init__(self, sample_rate: int) -> None:
        if sample_rate < 1:
            raise ValueError(f"sample_rate must be >= 1, got {sample_rate}")
        self.sample_rate = int(sample_rate)
        self.origin: float | None = None     # time (s) of source sample 0
        self.first = 0                       # source index of self._samples[0]
        self._samples = np.zeros(0, np.float32)

    def push(self, chunk: AudioChunk) -> None:
        if self.origin is None:
            self.origin = float(chunk.time)
        self._samples = np.concatenate([self._samples, np.asarray(chunk.samples, np.float32)])

    @property
    def end_time(self) -> float | None:
        """Time (s) just after the last sample held, ``None`` before any audio arrived."""
        return None if self.origin is None else self.time_of(self.first + len(self._samples))

    @property
    def end_sample(self) -> int:
        """Source index just after the last sample held."""
        return self.first + len(self._samples)

    def time_of(self, sample: int) -> float:
        """Time (s) of source sample ``sample``."""
        return (self.origin or 0.0) + sample / self.sample_rate

    def drop_before(self, t: float) -> None:
        if self.origin is None:
            return
        n = int(math.floor((t - self.time_of(self.first)) * self.sample_rate))
        if n > 0:
            n = min(n, len(self._samples))
            self._samples = self._samples[n:]
            self.first += n

    def between(self, start: float, end: float) -> np.ndarray:
        """The samples in ``[start, end)`` (s); fewer (possibly none) where audio is missing."""
        if self.origin is None:
            return np.zeros(0, np.float32)
        start_s = self.time_of(self.first)
        a = max(0, int(round((start - start_s) * self.sample_rate)))
        b = max(0, int(round((end - start_s) * self.sample_rate)))
        return self._samples[a:b].copy()

    def window_bounds(self, start: float, end: float, *, step: int = 1) -> tuple[int, int]:
        """Source sample range ``[a, b)`` of the window ``[start, end)`` (s): ``b - a`` is the
        window's length in samples and ``a`` the multiple of ``step`` nearest to ``start`` (at most
        half a step, e.g. 16 ms for 512 samples at 16 kHz, from it), so that every window's audio
        starts on the same grid of ``step`` samples. Needs audio to have arrived."""
        length = int(round((end - start) * self.sample_rate))
        a = int(round((start - (self.origin or 0.0)) * self.sample_rate / step)) * step
        return a, a + length

    def samples(self, a: int, b: int) -> tuple[np.ndarray, int]:
        """``(samples, first)``: the held source samples in ``[a, b)``, a copy, and the source index
        of the first of them (``max(a, first held)``); fewer (possibly none) where audio is missing."""
        lo = max(a, self.first)
        hi = min(b, self.first + len(self._samples))
        if hi <= lo:
            return np.zeros(0, np.float32), lo
        return self._samples[lo - self.first:hi - self.first].copy(), lo


class WindowFrame:
    """A window frame with the :class:`media.frame_conversion.FrameHandle` interface; ``index`` and
    ``time`` are relative to the window (0-based, s from the window start). With a ``store``
    (:class:`media.reuse.ReuseStore`), each conversion of the source frame ``frame_id`` (at
    source time ``source_time``) is made once and reused by every window that holds it."""

    __slots__ = ("index", "time", "image", "frame_id", "source_time", "store")

    def __init__(self, index: int, time: float, image: np.ndarray, *, frame_id: int | None = None,
                 source_time: float = 0.0, store: ReuseStore | None = None) -> None:
        self.index, self.time, self.image = index, time, image
        self.frame_id, self.source_time, self.store = frame_id, source_time, store

    def to_image(self, *, short_side: int | None = None, max_side: int | None = None,
                 width: int | None = None, gray: bool = False) -> np.ndarray:
        """uint8 ``(H, W, 3)`` RGB or ``(H, W)`` gray, resized like
        :meth:`media.frame_conversion.FrameHandle.to_image` (see :func:`media.frame_conversion.target_size`)."""
        if self.store is None or self.frame_id is None:
            return convert_image(self.image, short_side=short_side, max_side=max_side, width=width, gray=gray)
        kind = (CONVERSION_KIND, short_side, max_side, width, gray)
        image = self.store.get(kind, self.frame_id)
        if image is None:
            image = convert_image(self.image, short_side=short_side, max_side=max_side, width=width, gray=gray)
            self.store.put(kind, self.frame_id, image, until=self.source_time)
        return image


CONVERSION_KIND = "frame_conversion"
"""The kind under which converted frames are shared between windows (:mod:`media.reuse`)."""


def convert_image(image: np.ndarray, *, short_side: int | None = None, max_side: int | None = None,
                  width: int | None = None, gray: bool = False) -> np.ndarray:
    """A live frame (uint8 RGB ``(H, W, 3)``) resized as :func:`media.frame_conversion.target_size` says
    (:func:`area_resize` down, bilinear up), optionally gray ``(H, W)``; the frame itself when
    nothing changes."""
    h, w = image.shape[:2]
    tw, th = target_size(w, h, short_side=short_side, max_side=max_side, fixed_width=width)
    if tw * th < w * h:
        image = area_resize(image, (tw, th))
    elif (tw, th) != (w, h):
        image = cv2.resize(image, (tw, th), interpolation=cv2.INTER_LINEAR)
    if gray:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return image


def area_resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` (uint8 ``(H, W[, C])``) shrunk to ``size`` ``(width, height)`` by area averaging.

    The image is first halved while it stays at least twice the target (OpenCV's exact 2x area
    reduction is its fast path; one area resize by a large uneven factor is slow), then
    area-resized the rest: an area average still (not bit-identical to the one-step resize), and
    the same pixels for the same frame every time."""
    tw, th = size
    h, w = image.shape[:2]
    while w >= 2 * tw and h >= 2 * th and w % 2 == 0 and h % 2 == 0:
        image = cv2.resize(image, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        h, w = image.shape[:2]
    if (tw, th) != (w, h):
        image = cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA)
    return image


class WindowReader:
    """An in-memory reader over one window's frames and audio, with the
    :class:`media.decoding.VideoReader` interface that
    :meth:`streams.preprocessing.ClipPreprocessor.compute` uses: ``info`` (window duration,
    frame count, analysis size, ``has_audio`` when the window holds samples), ``iter_handles()``,
    ``read_audio()``, ``decode_warning`` and ``with``."""

    def __init__(self, frames: Sequence[LiveFrame], *, start: float, end: float, fps: float,
                 audio: np.ndarray | None, audio_rate: int | None, name: str, store: ReuseStore | None = None,
                 audio_start: int | None = None, audio_origin: float = 0.0, face_budget: int | None = None) -> None:
        if not frames:
            raise LiveSourceError(f"{name}: window [{start:.3f}, {end:.3f}) s holds no frame")
        self.path = Path(f"{name}@{start:.2f}-{end:.2f}s")
        self.decode_warning: str | None = None
        self._frames = list(frames)
        self._start = start
        self._audio = audio if audio is not None and audio.size > 0 else None
        self._audio_rate = audio_rate
        self._store = store
        #: with a ``store``: what this window shares with the others (see :mod:`media.reuse`);
        #: ``audio_start`` is the source index of the window's first audio sample
        self.reuse = None if store is None else ClipReuse(
            store=store, frame_ids=[f.index for f in self._frames], start=start,
            audio_rate=int(audio_rate) if audio_rate else None, audio_start=audio_start, audio_origin=audio_origin,
            budget=face_budget)
        h, w = self._frames[0].image.shape[:2]
        self.info = VideoInfo(
            path=self.path, fps=float(fps), duration=float(end - start), width=int(w), height=int(h),
            frame_count=len(self._frames), has_audio=self._audio is not None,
            audio_sample_rate=int(audio_rate) if self._audio is not None else None,
            audio_channels=1 if self._audio is not None else None, rotation=0)

    def iter_handles(self) -> Iterator[WindowFrame]:
        for i, f in enumerate(self._frames):
            yield WindowFrame(i, f.time - self._start, f.image, frame_id=f.index, source_time=f.time,
                              store=self._store)

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
