"""Live mode: the emotion of a camera, a stream or a video file, window by window, smoothed.

A :class:`LiveRunner` reads a source frame by frame (:func:`open_source`: a camera index through
OpenCV, a stream URL or a file through PyAV, which also gives the audio), keeps the last
``window`` seconds of frames (:class:`FrameRing`, downscaled to what preprocessing needs) and
audio (:class:`AudioRing`), and every ``stride`` seconds runs the whole trained pipeline on that
window: a :class:`WindowReader` presents the window with the :class:`media.decoding.VideoReader`
interface, so :meth:`streams.preprocessing.ClipPreprocessor.compute` re-runs keyframe selection
and the four stream inputs on it exactly as for a file, then
:meth:`fusion.prediction.Predictor.predict_inputs` runs the streams and the fusion head. The
fused probabilities are smoothed over the last K windows (:class:`TemporalSmoother`).

Timeline: times are seconds from the source's first frame. Window ``k`` covers
``[window + k * stride - window, window + k * stride)``; it is predicted once a frame at or past
its end (and, when the source has audio, the audio up to its end) has arrived.

Real time (:class:`WindowPacer`): a window is *due* at its end time; it is *late* when its
processing would start more than one stride after that. Live sources use the wall clock
(:class:`WallClock`). A file is read as fast as possible, and a :class:`SimulatedClock` tells
what real time would have been: the clock moves to each frame's time when it is idle and
advances by every second of work (decoding, prediction, annotation, encoding). With
``drop_late`` (``--realtime``, the default for cameras and URLs) late windows are skipped and
counted instead of queued; without it every window is predicted and late ones are counted. The
run keeps up with real time when no window was late.

Outputs: an annotated mp4 (every source frame, at the source fps and the analysis size, with the
latest window's face boxes, the smoothed label and a bar per class), a JSON-lines log (one
object per window, see :meth:`LiveRunner.window_record`) and a :class:`LiveSummary`.
"""
from __future__ import annotations

import json
import math
import os
import signal
import statistics
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import av
import av.error
import cv2
import numpy as np
import torch

from media.decoding import VideoInfo, probe, rotate_upright, target_size
from media.encoding import VideoWriter
from media.storage import read_json

if TYPE_CHECKING:
    from fusion.prediction import Predictor

DEFAULT_WINDOW_S = 3.0
DEFAULT_STRIDE_S = 1.0
DEFAULT_SMOOTH_K = 5


class LiveSourceError(RuntimeError):
    """A live source that cannot be opened or read; the message names it."""


# -- what the rings hold ---------------------------------------------------------------------

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


# -- the window as a reader ------------------------------------------------------------------

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


# -- smoothing, clocks, pacing ---------------------------------------------------------------

class TemporalSmoother:
    """Smooths per-window class probabilities.

    ``mode="mean"``: the mean of the last ``k`` windows' probabilities (fewer at the start).
    ``mode="ema"``: ``s_t = alpha * p_t + (1 - alpha) * s_{t-1}``, ``s_0 = p_0``.
    Both give probability vectors (non-negative, summing to 1) when the inputs are."""

    def __init__(self, *, k: int = DEFAULT_SMOOTH_K, mode: str = "mean", alpha: float = 0.5) -> None:
        if mode not in ("mean", "ema"):
            raise ValueError(f"smoothing must be 'mean' or 'ema', got {mode!r}")
        if k < 1:
            raise ValueError(f"smoothing window K must be >= 1, got {k}")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"EMA alpha must be in (0, 1], got {alpha}")
        self.k, self.mode, self.alpha = int(k), mode, float(alpha)
        self._recent: deque[np.ndarray] = deque(maxlen=self.k)
        self._state: np.ndarray | None = None

    def update(self, probs: Sequence[float]) -> np.ndarray:
        """Add one window's probabilities ``(C,)``; returns the smoothed ``(C,)``."""
        p = np.asarray(probs, dtype=np.float64)
        if self.mode == "mean":
            self._recent.append(p)
            self._state = np.mean(np.stack(self._recent), axis=0)
        else:
            self._state = p.copy() if self._state is None else self.alpha * p + (1 - self.alpha) * self._state
        return self._state.copy()

    def reset(self) -> None:
        self._recent.clear()
        self._state = None


class SimulatedClock:
    """Real time for a file read as fast as possible: seconds on the source timeline at which
    the work done so far would have finished had the frames arrived in real time. Idle until a
    frame arrives (:meth:`arrive` moves the clock to its time), busy for every second of work
    (:meth:`spend`)."""

    def __init__(self) -> None:
        self._now = 0.0

    def now(self) -> float:
        return self._now

    def arrive(self, t: float) -> None:
        self._now = max(self._now, float(t))

    def spend(self, seconds: float) -> None:
        self._now += max(0.0, float(seconds))


class WallClock:
    """Live sources: seconds since the first frame arrived, measured (``timer``: monotonic s)."""

    def __init__(self, timer: Callable[[], float] = time.monotonic) -> None:
        self._timer = timer
        self._origin: float | None = None

    def now(self) -> float:
        return 0.0 if self._origin is None else self._timer() - self._origin

    def arrive(self, t: float) -> None:
        if self._origin is None:
            self._origin = self._timer() - float(t)

    def spend(self, seconds: float) -> None:
        return None  # the wall clock advances by itself


class WindowPacer:
    """Decides whether a due window is predicted. ``admit(due, now)``: the window became due at
    ``due`` (its end, s) and processing could start at ``now``; it is late when
    ``now - due > stride``. Late windows are dropped when ``drop_late``, else predicted and
    counted in ``late``."""

    def __init__(self, stride: float, *, drop_late: bool) -> None:
        self.stride = float(stride)
        self.drop_late = bool(drop_late)
        self.late = 0
        self.dropped = 0
        self.max_lag = 0.0

    def admit(self, due: float, now: float) -> tuple[bool, float]:
        """``(run it, lag in s)``."""
        lag = max(0.0, float(now) - float(due))
        self.max_lag = max(self.max_lag, lag)
        if lag > self.stride + 1e-9:
            self.late += 1
            if self.drop_late:
                self.dropped += 1
                return False, lag
        return True, lag


# -- sources ---------------------------------------------------------------------------------

SizeFor = Callable[[int, int], tuple[int, int]]


class PyAVSource:
    """A video file or stream URL read through PyAV, video and audio packets in container order.
    ``events()`` yields :class:`LiveFrame` (at ``size_for(width, height)``) and
    :class:`AudioChunk` (mono, ``audio_rate`` Hz). A stream that breaks mid-way ends the events
    and leaves a note in ``warning``."""

    def __init__(self, target: str, *, size_for: SizeFor, audio_rate: int, live: bool) -> None:
        self.name = str(target)
        self.live = live
        self.warning: str | None = None
        self._size_for = size_for
        self.audio_rate = int(audio_rate)
        rotation = None
        if not live:
            rotation = probe(target).rotation  # typed MediaError naming the file for bad files
        try:
            self._container = av.open(self.name, mode="r")
        except av.error.FFmpegError as e:
            raise LiveSourceError(f"{self.name}: cannot open ({e.strerror or e})") from e
        if not self._container.streams.video:
            self._container.close()
            raise LiveSourceError(f"{self.name}: has no video stream")
        self._video = self._container.streams.video[0]
        self._audio = self._container.streams.audio[0] if self._container.streams.audio else None
        self._video.codec_context.thread_count = 0
        rate = self._video.average_rate or self._video.guessed_rate or self._video.base_rate
        self.fps = float(rate) if rate else 30.0
        self.has_audio = self._audio is not None
        self._rotation = rotation

    def _image(self, frame: av.VideoFrame) -> np.ndarray:
        if self._rotation is None:
            self._rotation = int(round(float(getattr(frame, "rotation", 0) or 0) / 90.0)) * 90 % 360
        swap = self._rotation in (90, 270)
        dw, dh = (frame.height, frame.width) if swap else (frame.width, frame.height)
        tw, th = self._size_for(dw, dh)
        cw, ch = (th, tw) if swap else (tw, th)
        if (cw, ch) == (frame.width, frame.height):
            image = frame.to_ndarray(format="rgb24")
        else:
            down = cw * ch < frame.width * frame.height
            image = frame.to_ndarray(width=cw, height=ch, format="rgb24", interpolation="AREA" if down else "BILINEAR")
        return rotate_upright(image, self._rotation)

    def events(self) -> Iterator[LiveFrame | AudioChunk]:
        v, a = self._video, self._audio
        origin = float(v.start_time * v.time_base) if v.start_time is not None and v.time_base else None
        resampler = av.AudioResampler(format="fltp", rate=self.audio_rate) if a is not None else None
        audio_time: float | None = None
        index = 0
        last_time = -1.0 / self.fps
        streams = [s for s in (v, a) if s is not None]
        try:
            for packet in self._container.demux(streams):
                for frame in packet.decode():
                    if packet.stream.type == "video":
                        t = frame.time
                        if origin is None:
                            origin = float(t) if t is not None else 0.0
                        # Frames without a timestamp get the next tick (some streams lack pts).
                        t = float(t) - origin if t is not None else last_time + 1.0 / self.fps
                        last_time = t
                        yield LiveFrame(index, t, self._image(frame))
                        index += 1
                    else:
                        if audio_time is None:
                            t = frame.time
                            if origin is None and t is not None:
                                origin = float(t)
                            audio_time = (float(t) - origin) if t is not None and origin is not None else 0.0
                        for out in resampler.resample(frame):
                            samples = out.to_ndarray().mean(axis=0).astype(np.float32)
                            yield AudioChunk(audio_time, samples)
                            audio_time += len(samples) / self.audio_rate
        except av.error.FFmpegError as e:
            if index == 0:
                raise LiveSourceError(f"{self.name}: no frame could be decoded ({e.strerror or e})") from e
            self.warning = (f"{self.name}: reading stopped after {index} frames because the stream is "
                            f"corrupt or broke off ({e.strerror or e})")
            return
        if resampler is not None and audio_time is not None:
            for out in resampler.resample(None):
                samples = out.to_ndarray().mean(axis=0).astype(np.float32)
                yield AudioChunk(audio_time, samples)
                audio_time += len(samples) / self.audio_rate
        if index == 0:
            raise LiveSourceError(f"{self.name}: the video stream has no frames")

    def close(self) -> None:
        self._container.close()


class CameraSource:
    """A camera through OpenCV ``VideoCapture(index)``; no audio. Frame times are the wall-clock
    times at which OpenCV handed the frames over (s from the first)."""

    def __init__(self, index: int, *, size_for: SizeFor) -> None:
        self.name = f"camera {index}"
        self.live = True
        self.warning: str | None = None
        self.has_audio = False
        self.audio_rate = 0
        self._size_for = size_for
        self._cap = cv2.VideoCapture(index)
        if not self._cap.isOpened():
            self._cap.release()
            raise LiveSourceError(f"{self.name}: cannot be opened (no such device, or it is busy)")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 1.0 <= fps <= 240.0 else 30.0

    def events(self) -> Iterator[LiveFrame]:
        t0 = None
        index = 0
        while True:
            ok, bgr = self._cap.read()
            if not ok:
                if index == 0:
                    raise LiveSourceError(f"{self.name}: delivered no frame")
                return
            now = time.monotonic()
            t0 = now if t0 is None else t0
            h, w = bgr.shape[:2]
            tw, th = self._size_for(w, h)
            if (tw, th) != (w, h):
                bgr = cv2.resize(bgr, (tw, th), interpolation=cv2.INTER_AREA if tw * th < w * h else cv2.INTER_LINEAR)
            yield LiveFrame(index, now - t0, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            index += 1

    def close(self) -> None:
        self._cap.release()


def source_kind(spec: str | int) -> str:
    """``"camera"`` for an index (``0`` or ``"0"``), ``"url"`` for ``scheme://...``, else ``"file"``."""
    text = str(spec).strip()
    if isinstance(spec, int) or text.isdigit():
        return "camera"
    return "url" if "://" in text else "file"


def open_source(spec: str | int, *, size_for: SizeFor, audio_rate: int) -> PyAVSource | CameraSource:
    """``spec``: a camera index (OpenCV), a URL (PyAV) or a video file (PyAV; a bad file raises
    :class:`media.decoding.MediaError` naming it), see :func:`source_kind`. Cameras and URLs are
    ``live`` sources."""
    kind = source_kind(spec)
    if kind == "camera":
        return CameraSource(int(str(spec).strip()), size_for=size_for)
    return PyAVSource(str(spec).strip(), size_for=size_for, audio_rate=audio_rate, live=kind == "url")


# -- what the pipeline needs -----------------------------------------------------------------

def analysis_size_fn(cfg: dict, streams: Sequence[str]) -> SizeFor:
    """``(width, height) -> (w, h)`` at which window frames are kept: the smallest size from
    which preprocessing recipe ``cfg`` gets every image it takes for ``streams`` (the face
    source up to ``faces.source_max_side``, the short sides of visual, flow and the scorer),
    never larger than the source."""
    short = int(cfg.get("keyframes", {}).get("score_size", 112))
    if {"visual", "face"} & set(streams):
        short = max(short, int(cfg.get("visual", {}).get("short_side", 256)))
    if "flow" in streams:
        short = max(short, int(cfg.get("flow", {}).get("short_side", 256)))
    face_side = int(cfg.get("faces", {}).get("source_max_side", 1280)) if "face" in streams else 0

    def size_for(width: int, height: int) -> tuple[int, int]:
        long_needed = math.ceil(short * max(width, height) / min(width, height))
        cap = max(face_side, long_needed)
        return target_size(width, height, max_side=cap) if max(width, height) > cap else (width, height)

    return size_for


def default_window_seconds(run: str | os.PathLike) -> tuple[float, str]:
    """``(seconds, where from)``: the median training clip length recorded for fusion run ``run``
    (see :func:`training_clip_seconds`), else :data:`DEFAULT_WINDOW_S`."""
    from training.checkpoints import read_meta

    recipe = dict(read_meta(run).get("config", {}))
    seconds = training_clip_seconds(recipe)
    if seconds is None:
        return DEFAULT_WINDOW_S, "default; the run records no readable training cache"
    return seconds, f"median clip length of the training cache {recipe['pipeline']['cache']}"


def training_clip_seconds(recipe: dict, *, limit: int = 500) -> float | None:
    """The median clip duration (s) of the preprocessing cache the fusion run's pipeline records
    (``recipe["pipeline"]["cache"]``, from up to ``limit`` ``meta.json`` files), or ``None``
    when no cache is recorded or readable."""
    cache = ((recipe.get("pipeline") or {}).get("cache"))
    if not cache or not Path(cache).is_dir():
        return None
    durations = []
    for meta_path in sorted(Path(cache).rglob("meta.json"))[:limit]:
        meta = read_json(meta_path) or {}
        d = meta.get("duration")
        if isinstance(d, (int, float)) and d > 0:
            durations.append(float(d))
    return statistics.median(durations) if durations else None


# -- annotation ------------------------------------------------------------------------------

_CLASS_COLOURS = ((46, 204, 113), (241, 196, 15), (231, 76, 60), (52, 152, 219), (155, 89, 182),
                  (230, 126, 34), (26, 188, 156), (236, 240, 241))


def annotate(image: np.ndarray, *, boxes: Sequence[Sequence[float]], class_names: Sequence[str],
             probs: np.ndarray | None, label: str | None, status: str) -> np.ndarray:
    """A copy of ``image`` (uint8 RGB (H, W, 3)) with face ``boxes`` ([x0, y0, x1, y1] px),
    the ``label``, a bar per class for ``probs`` (C,) and a ``status`` line at the bottom."""
    out = np.ascontiguousarray(image.copy())
    h, w = out.shape[:2]
    scale = max(0.3, min(h, w) / 500.0)
    thick = max(1, int(round(scale * 2)))
    for b in boxes:
        x0, y0, x1, y1 = (int(round(v)) for v in b)
        cv2.rectangle(out, (x0, y0), (x1, y1), (255, 255, 0), thick)
    font = cv2.FONT_HERSHEY_SIMPLEX
    line = int(round(22 * scale)) + 2
    bar_w, bar_h = max(10, w // 5), max(3, int(round(12 * scale)))
    n_bars = len(class_names) if probs is not None else 0
    # a darkened panel keeps the text readable on any background
    label_h = int(round(30 * scale)) + 4 if label is not None else 0
    panel_h = min(h, label_h + n_bars * (bar_h + 4) + 8)
    panel_w = min(w, 12 + bar_w + int(round(130 * scale)))
    if panel_h > 8:
        out[:panel_h, :panel_w] = (out[:panel_h, :panel_w] * 0.45).astype(np.uint8)
    out[h - line:, :] = (out[h - line:, :] * 0.45).astype(np.uint8)
    if label is not None:
        cv2.putText(out, label, (4, label_h - 6), font, scale * 1.1, (255, 255, 255), thick, cv2.LINE_AA)
    y = label_h + 4
    if probs is not None:
        y += bar_h
        for i, (name, p) in enumerate(zip(class_names, probs)):
            colour = _CLASS_COLOURS[i % len(_CLASS_COLOURS)]
            cv2.rectangle(out, (4, y - bar_h), (4 + bar_w, y), (90, 90, 90), -1)
            cv2.rectangle(out, (4, y - bar_h), (4 + int(round(bar_w * float(p))), y), colour, -1)
            cv2.putText(out, f"{name} {float(p):.2f}", (8 + bar_w, y), font, scale * 0.6, (255, 255, 255), 1,
                        cv2.LINE_AA)
            y += bar_h + 4
    cv2.putText(out, status, (4, h - 5), font, scale * 0.55, (255, 255, 255), 1, cv2.LINE_AA)
    return out


# -- the runner ------------------------------------------------------------------------------

@dataclass(frozen=True)
class LiveSettings:
    """``window``/``stride`` (s), smoothing over ``smooth_k`` windows (``smoothing`` "mean" or
    "ema" with ``ema_alpha``) and ``drop_late`` (skip windows that would start more than one
    stride late). ``audio_wait`` (s): how long past a window's end the video may run ahead
    while the window waits for its audio."""

    window: float = DEFAULT_WINDOW_S
    stride: float = DEFAULT_STRIDE_S
    smooth_k: int = DEFAULT_SMOOTH_K
    smoothing: str = "mean"
    ema_alpha: float = 0.5
    drop_late: bool = False
    audio_wait: float = 1.0

    def __post_init__(self) -> None:
        if not self.window > 0:
            raise ValueError(f"--window must be > 0 s, got {self.window}")
        if not self.stride > 0:
            raise ValueError(f"--stride must be > 0 s, got {self.stride}")
        TemporalSmoother(k=self.smooth_k, mode=self.smoothing, alpha=self.ema_alpha)  # validates them


@dataclass
class LiveSummary:
    """What a run did. ``latencies`` (s): the processing time of each predicted window;
    ``cpu_s``: this process's CPU time (all threads) during each; ``busy_s``: all work
    (decoding, prediction, annotation, encoding); ``source_s``: source seconds read."""

    source: str
    frames: int = 0
    windows: int = 0
    dropped: int = 0
    late: int = 0
    latencies: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    source_s: float = 0.0
    busy_s: float = 0.0
    stop_reason: str = "end of stream"
    stride: float = DEFAULT_STRIDE_S
    drop_late: bool = False
    out: str | None = None
    log: str | None = None
    warning: str | None = None
    peak_ring_mb: float = 0.0

    @property
    def mean_latency(self) -> float | None:
        return float(np.mean(self.latencies)) if self.latencies else None

    @property
    def p95_latency(self) -> float | None:
        return float(np.percentile(self.latencies, 95)) if self.latencies else None

    @property
    def windows_per_s(self) -> float | None:
        """Predicted windows per second of wall time over the whole run (decoding and writing
        included)."""
        return self.windows / self.wall_s if self.wall_s > 0 else None

    @property
    def realtime_factor(self) -> float | None:
        """Seconds of work per second of source (decoding, prediction, annotation, encoding);
        above 1 the run cannot keep up on average."""
        return self.busy_s / self.source_s if self.source_s > 0 else None

    @property
    def keeps_up(self) -> bool:
        """No window was (or would have been) started more than one stride late."""
        return self.late == 0

    def as_dict(self) -> dict:
        def r(x):
            return None if x is None else round(x, 4)
        return {"source": self.source, "frames": self.frames, "windows": self.windows, "dropped": self.dropped,
                "late": self.late, "mean_latency_s": r(self.mean_latency), "p95_latency_s": r(self.p95_latency),
                "mean_cpu_s": r(float(np.mean(self.cpu_s)) if self.cpu_s else None),
                "windows_per_s": r(self.windows_per_s), "wall_s": r(self.wall_s), "source_s": r(self.source_s),
                "realtime_factor": r(self.realtime_factor),
                "keeps_up": self.keeps_up, "stride_s": self.stride, "drop_late": self.drop_late,
                "stop_reason": self.stop_reason, "out": self.out, "log": self.log, "warning": self.warning,
                "peak_ring_mb": r(self.peak_ring_mb)}

    def format(self) -> str:
        def s(x, unit=" s"):
            return "-" if x is None else f"{x:.2f}{unit}"
        mode = "late windows dropped" if self.drop_late else "every window predicted"
        lines = [
            f"{self.source}: stopped ({self.stop_reason}) after {self.frames} frames ({self.source_s:.1f} s of source)",
            f"  windows predicted {self.windows}, dropped {self.dropped} ({mode})",
            f"  latency per window: mean {s(self.mean_latency)}, p95 {s(self.p95_latency)}; "
            f"{s(self.windows_per_s, '')} windows/s over {self.wall_s:.1f} s of wall time; "
            f"{s(self.realtime_factor, '')} s of work per s of source",
            f"  keeps up with real time at stride {self.stride:g} s: {'yes' if self.keeps_up else 'no'}"
            + ("" if self.keeps_up else f" ({self.late} window(s) would start more than one stride late)"),
        ]
        if self.out:
            lines.append(f"  annotated video: {self.out}")
        if self.log:
            lines.append(f"  log: {self.log}")
        if self.warning:
            lines.append(f"  warning: {self.warning}")
        return "\n".join(lines)


class LiveRunner:
    """Runs a :class:`fusion.prediction.Predictor` on a live source, window by window (see the
    module docstring). ``out``: annotated mp4 path; ``log``: JSON-lines path; ``show``: an
    on-screen window (``q`` stops); ``echo``: called with one line of text per window."""

    def __init__(self, predictor: "Predictor", settings: LiveSettings, *, out: str | os.PathLike | None = None,
                 log: str | os.PathLike | None = None, show: bool = False,
                 echo: Callable[[str], None] | None = None) -> None:
        self.predictor = predictor
        self.settings = settings
        self.out = Path(out) if out is not None else None
        self.log = Path(log) if log is not None else None
        self.show = show
        self.echo = echo
        self.class_names = list(predictor.class_names)
        cfg = predictor.preprocessor.cfg
        self.size_for = analysis_size_fn(cfg, predictor.stream_order)
        self.audio_rate = int(cfg.get("audio", {}).get("sample_rate", 16000))
        self.face_max_side = int(cfg.get("faces", {}).get("source_max_side", 1280))
        self._stop: str | None = None

    def request_stop(self, reason: str = "stopped") -> None:
        """Stop after the current frame (safe from a signal handler or another thread)."""
        self._stop = reason

    def open(self, spec: str | int) -> PyAVSource | CameraSource:
        return open_source(spec, size_for=self.size_for, audio_rate=self.audio_rate)

    def window_record(self, k: int, start: float, end: float, *, result: dict | None, raw: np.ndarray | None,
                      smoothed: np.ndarray | None, latency: float | None, lag: float, dropped: int,
                      frames: int, partial: bool, keyframe_times: list[float]) -> dict:
        """One log line: window ``k`` [``start_s``, ``end_s``) on the source timeline, ``dropped``
        (bool), raw and smoothed ``probs`` (class -> p), the smoothed ``label`` and the raw one,
        ``missing`` modalities, ``n_faces``, ``latency_s`` (processing time; ``cpu_s`` the CPU
        time of this process meanwhile, all threads; ``timings_s`` per stage), ``lag_s`` (how late
        processing started after the window's end), ``dropped_windows_so_far``, ``frames`` in the
        window and the ``keyframe_times`` (source timeline). A window not predicted has
        ``dropped`` true and a ``reason`` ("late", or "no frames in the window" after a gap in a
        live stream) instead of the prediction fields; ``partial`` marks the single window of a
        source shorter than one window."""
        rec = {"window": k, "start_s": round(start, 4), "end_s": round(end, 4), "dropped": result is None,
               "frames": frames, "lag_s": round(lag, 4), "dropped_windows_so_far": dropped}
        if result is None:
            rec["reason"] = "no frames in the window" if frames == 0 else "late"
        if partial:
            rec["partial"] = True
        if result is not None:
            rec.update({
                "label": self.class_names[int(np.argmax(smoothed))],
                "raw_label": result["label"],
                "probs": {c: round(float(p), 6) for c, p in zip(self.class_names, raw)},
                "smoothed": {c: round(float(p), 6) for c, p in zip(self.class_names, smoothed)},
                "missing": result["missing"],
                "n_faces": result["n_faces"],
                "latency_s": round(latency, 4),
                "cpu_s": round(result["cpu_s"], 4),
                "keyframe_times": keyframe_times,
                "timings_s": result["timings_s"],
            })
        return rec

    def _latest_boxes(self, meta: dict, window_frames: Sequence[LiveFrame]) -> list[list[float]]:
        """The face boxes of the latest keyframe with any, in analysis-size pixels."""
        boxes = (meta.get("faces") or {}).get("boxes") or []
        for frame_boxes in reversed(boxes):
            if frame_boxes:
                h, w = window_frames[0].image.shape[:2]
                fw, _ = target_size(w, h, max_side=self.face_max_side) if max(w, h) > self.face_max_side else (w, h)
                s = w / fw
                return [[v * s for v in b] for b in frame_boxes]
        return []

    def predict_window(self, frames: Sequence[LiveFrame], audio: np.ndarray | None, *, start: float, end: float,
                       fps: float, name: str) -> tuple[dict, dict]:
        """Predict one window: ``(predictor result, preprocessing meta)``."""
        with torch.inference_mode():
            return self._predict_window(frames, audio, start=start, end=end, fps=fps, name=name)

    def _predict_window(self, frames, audio, *, start, end, fps, name):
        reader = WindowReader(frames, start=start, end=end, fps=fps, audio=audio, audio_rate=self.audio_rate,
                              name=name)
        inputs = self.predictor.preprocessor.compute(reader, self.predictor.stream_order)
        return self.predictor.predict_inputs(inputs, str(reader.path)), inputs.meta

    def run(self, source, *, clock: SimulatedClock | WallClock | None = None,
            handle_sigint: bool = True) -> LiveSummary:
        """Run until the source ends, ``q`` is pressed in the on-screen window, :meth:`request_stop`
        is called or Ctrl-C (SIGINT) arrives; then the annotated video is closed so it plays and
        the log is flushed. ``source``: from :meth:`open` (or anything with ``name``, ``fps``,
        ``has_audio``, ``live``, ``events()``, ``close()``). ``clock``: default wall clock for
        live sources, simulated for files."""
        st = self.settings
        clock = clock or (WallClock() if source.live else SimulatedClock())
        pacer = WindowPacer(st.stride, drop_late=st.drop_late)
        smoother = TemporalSmoother(k=st.smooth_k, mode=st.smoothing, alpha=st.ema_alpha)
        summary = LiveSummary(source=source.name, stride=st.stride, drop_late=st.drop_late,
                              out=str(self.out) if self.out else None, log=str(self.log) if self.log else None)
        ring = FrameRing()
        audio_ring = AudioRing(self.audio_rate) if source.has_audio else None
        audio_done = not source.has_audio
        display = self.show and bool(os.environ.get("DISPLAY"))
        if self.show and not display:
            self._say("no display ($DISPLAY is not set): --show ignored")
        writer: VideoWriter | None = None
        log_file = None
        self._stop = None
        old_handler = None
        if handle_sigint and threading.current_thread() is threading.main_thread():
            old_handler = signal.signal(signal.SIGINT, self._on_sigint)

        k = 0                      # next window
        next_end = st.window       # its end (s)
        state = {"probs": None, "label": None, "boxes": [], "status": f"first prediction at {st.window:g} s"}
        last_frame: LiveFrame | None = None
        t_wall0 = time.perf_counter()
        mark = t_wall0

        def charge() -> None:
            nonlocal mark
            now_pc = time.perf_counter()
            clock.spend(now_pc - mark)
            summary.busy_s += now_pc - mark
            mark = now_pc

        def do_window(end: float, start: float, *, partial: bool = False) -> None:
            nonlocal k, next_end
            charge()
            frames = ring.between(start, end)
            run_it, lag = pacer.admit(end, clock.now())
            result = raw = smoothed = latency = None
            kf_times: list[float] = []
            if run_it and frames:
                audio = audio_ring.between(start, end) if audio_ring is not None else None
                t0, c0 = time.perf_counter(), time.process_time()
                result, meta = self.predict_window(frames, audio, start=start, end=end, fps=source.fps,
                                                   name=source.name)
                latency = time.perf_counter() - t0
                result["cpu_s"] = time.process_time() - c0
                summary.cpu_s.append(result["cpu_s"])
                raw = np.array([result["probs"][c] for c in self.class_names])
                smoothed = smoother.update(raw)
                kf_times = [round(start + t, 4) for t in result["keyframe_times"]]
                summary.windows += 1
                summary.latencies.append(latency)
                state.update(probs=smoothed, label=self.class_names[int(np.argmax(smoothed))],
                             boxes=self._latest_boxes(meta, frames),
                             status=f"{start:.1f}-{end:.1f} s  latency {latency:.2f} s  dropped {pacer.dropped}")
            summary.dropped, summary.late = pacer.dropped, pacer.late
            rec = self.window_record(k, start, end, result=result, raw=raw, smoothed=smoothed, latency=latency,
                                     lag=lag, dropped=pacer.dropped, frames=len(frames), partial=partial,
                                     keyframe_times=kf_times)
            if log_file is not None:
                log_file.write(json.dumps(rec) + "\n")
                log_file.flush()
            if self.echo is not None:
                if result is None:
                    self._say(f"[{start:7.2f}-{end:7.2f} s] dropped ({rec['reason']}: processing {lag:.2f} s behind)")
                else:
                    missing = f"  missing: {','.join(result['missing'])}" if result["missing"] else ""
                    self._say(f"[{start:7.2f}-{end:7.2f} s] {rec['label']} {max(smoothed):.2f} "
                              f"(raw {result['label']})  latency {latency:.2f} s{missing}")
            k += 1
            next_end = st.window + k * st.stride
            ring.drop_before(next_end - st.window)
            if audio_ring is not None:
                audio_ring.drop_before(next_end - st.window)
            charge()

        def ready(newest: float) -> bool:
            """The pending window has its frames (one at/after its end arrived) and its audio."""
            if newest < next_end - 1e-9:
                return False
            if audio_done or audio_ring is None:
                return True
            end_audio = audio_ring.end_time
            return (end_audio is not None and end_audio >= next_end - 1e-3) or newest >= next_end + st.audio_wait

        try:
            if self.log is not None:
                self.log.parent.mkdir(parents=True, exist_ok=True)
                log_file = open(self.log, "w", encoding="utf-8")
            events = source.events()
            try:
                for event in events:
                    if isinstance(event, AudioChunk):
                        if audio_ring is not None:
                            audio_ring.push(event)
                        if last_frame is not None and ready(last_frame.time):
                            do_window(next_end, next_end - st.window)
                        continue
                    frame = event
                    decode_cost = time.perf_counter() - mark
                    mark = time.perf_counter()
                    clock.arrive(frame.time)
                    clock.spend(decode_cost)
                    summary.busy_s += decode_cost
                    # windows that ended before this frame come first (this frame is not in them)
                    while ready(frame.time) and self._stop is None:
                        do_window(next_end, next_end - st.window)
                    ring.push(frame)
                    summary.peak_ring_mb = max(summary.peak_ring_mb, ring.nbytes / 2**20)
                    last_frame = frame
                    summary.frames += 1
                    summary.source_s = frame.time + 1.0 / source.fps
                    view = annotate(_even(frame.image), boxes=state["boxes"], class_names=self.class_names,
                                    probs=state["probs"], label=state["label"], status=state["status"])
                    if self.out is not None:
                        if writer is None:
                            writer = VideoWriter(self.out, fps=source.fps, size=(view.shape[1], view.shape[0]))
                        writer.write(view)
                    if display:
                        cv2.imshow("live emotion (q quits)", cv2.cvtColor(view, cv2.COLOR_RGB2BGR))
                        if cv2.waitKey(1) & 0xFF == ord("q"):
                            self._stop = "q pressed"
                    charge()
                    if self._stop is not None:
                        break
                else:
                    audio_done = True
                    if last_frame is not None and self._stop is None:
                        while ready(last_frame.time):  # windows that were waiting for audio
                            do_window(next_end, next_end - st.window)
                        end_of_source = last_frame.time + 1.0 / source.fps
                        if k == 0 and end_of_source < next_end - 0.5 / source.fps:
                            # a source shorter than one window: one prediction over all of it
                            do_window(end_of_source, 0.0, partial=True)
                        elif end_of_source >= next_end - 0.5 / source.fps:
                            do_window(next_end, next_end - st.window)
            finally:
                events.close()
            summary.stop_reason = self._stop or "end of stream"
        except KeyboardInterrupt:
            summary.stop_reason = "interrupted"
        finally:
            if old_handler is not None:
                signal.signal(signal.SIGINT, old_handler)
            summary.wall_s = time.perf_counter() - t_wall0
            summary.warning = getattr(source, "warning", None)
            try:
                if writer is not None:
                    writer.close()  # also on Ctrl-C: what was written plays
            finally:
                if log_file is not None:
                    log_file.close()
                source.close()
                if display:
                    cv2.destroyAllWindows()
        return summary

    def _on_sigint(self, signum, frame) -> None:
        if self._stop == "interrupted":
            raise KeyboardInterrupt  # second Ctrl-C: stop at once
        self._stop = "interrupted"

    def _say(self, text: str) -> None:
        if self.echo is not None:
            self.echo(text)


def _even(image: np.ndarray) -> np.ndarray:
    """Crop one pixel row/column where needed: H.264 wants even sizes."""
    h, w = image.shape[:2]
    return image[: h - h % 2, : w - w % 2]
