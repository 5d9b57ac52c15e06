"""Where live frames and audio come from: a camera (OpenCV), a stream URL or a video file (PyAV),
read as a sequence of events: :class:`LiveFrame` s and :class:`AudioChunk` s on one timeline
(seconds from the source's first frame)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Iterator

import av
import av.error
import cv2
import numpy as np

from media.decoding import probe, rotate_upright


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
