"""Decoded video frames to numpy: upright uint8 images resized inside swscale.

:class:`FrameHandle` is a decoded PyAV frame not yet converted; :class:`FrameConverter` turns
frames into upright ``(H, W, 3)`` RGB (or ``(H, W)`` gray) uint8 arrays at a size
:func:`target_size` works out, keeping one swscale context for many frames;
:func:`reformat_frame` is that conversion for callers that keep their own reformatter (live
capture). :mod:`media.decoding` reads the frames these convert.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

import av
import numpy as np
from av.video.reformatter import VideoReformatter


@dataclass
class DecodedFrame:
    """One decoded video frame.

    ``index``: 0-based position in the whole video's presentation order; ``time``: seconds from
    the stream start (from the frame's pts); ``image``: uint8 ``(H, W, 3)`` RGB, or ``(H, W)``
    when gray, upright.
    """

    index: int
    time: float
    image: np.ndarray


def rotate_upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate ``image`` ((H, W) or (H, W, C)) counter-clockwise by ``rotation`` degrees (a multiple
    of 90, e.g. :attr:`media.decoding.VideoInfo.rotation`). Returns a contiguous array."""
    k = (normalize_rotation(rotation) // 90) % 4
    if k == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, k=k, axes=(0, 1)))


def normalize_rotation(degrees: float) -> int:
    """Round to the nearest multiple of 90 and map into [0, 360)."""
    return int(round(float(degrees) / 90.0)) * 90 % 360


def target_size(width: int, height: int, *, short_side: int | None = None,
                max_side: int | None = None, fixed_width: int | None = None) -> tuple[int, int]:
    """Size ``(width, height)`` after scaling so the shorter side is ``short_side`` (or the width
    is ``fixed_width``; up or down), then, if the longer side exceeds ``max_side``, scaling down so
    it equals ``max_side``. Aspect ratio is kept; sides are rounded to the nearest pixel (>= 1)."""
    for name, value in (("short_side", short_side), ("max_side", max_side), ("fixed_width", fixed_width)):
        if value is not None and value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if short_side is not None and fixed_width is not None:
        raise ValueError("give short_side or fixed_width, not both")
    scale = 1.0
    if short_side is not None:
        scale = short_side / min(width, height)
    elif fixed_width is not None:
        scale = fixed_width / width
    if max_side is not None and max(width, height) * scale > max_side:
        scale = max_side / max(width, height)
    if scale == 1.0:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


class FrameHandle:
    """A decoded frame not yet converted to numpy (see :meth:`media.decoding.VideoReader.iter_handles`).

    ``index``/``time`` as in :class:`DecodedFrame`; ``duration`` in seconds. :meth:`to_image`
    converts on demand, so frames nobody asks for cost no conversion. A handle keeps its decoded
    picture alive while referenced; hold on to few of them.
    """

    __slots__ = ("index", "time", "duration", "frame", "rotation", "_decoded")

    def __init__(self, index: int, time: float, duration: float, frame: av.VideoFrame,
                 rotation: int = 0) -> None:
        self.index, self.time, self.duration, self.frame = index, time, duration, frame
        self.rotation = rotation
        self._decoded: DecodedFrame | None = None

    def to_image(self, *, short_side: int | None = None, max_side: int | None = None,
                 width: int | None = None, gray: bool = False) -> np.ndarray:
        """Upright uint8 image, ``(H, W, 3)`` RGB or ``(H, W)`` gray, resized during conversion:
        shorter side to ``short_side`` or width to ``width`` (aspect kept), longer side capped at
        ``max_side`` (see :func:`target_size`). Each call converts again."""
        return _converter(self.rotation, short_side, max_side, gray, width)(self.frame)

    def decoded(self, convert: Callable[[av.VideoFrame], np.ndarray]) -> DecodedFrame:
        """The :class:`DecodedFrame` for this handle, converted once with ``convert``."""
        if self._decoded is None:
            self._decoded = DecodedFrame(self.index, self.time, convert(self.frame))
        return self._decoded


# swscale threads per conversion: conversions run beside decoding and the models' own threads,
# and a context's thread pool would live as long as the context (see FrameConverter); with none, a
# forked worker can also use the contexts it inherits (no pool threads left behind in the parent)
_SWS_THREADS = 1


class FrameConverter:
    """av.VideoFrame -> upright uint8 numpy image, resized inside swscale (no full-res copy).

    One converter keeps one swscale context for all the frames it converts (PyAV's
    ``frame.to_ndarray(width=...)`` makes a context per frame, whose set-up cost more than the
    scaling of a small copy); the pixels are the same. Not thread-safe: one thread at a time
    (:func:`_converter` keeps one per thread)."""

    def __init__(self, rotation: int, short_side: int | None, max_side: int | None, gray: bool,
                 fixed_width: int | None = None) -> None:
        # validates the arguments
        target_size(2, 2, short_side=short_side, max_side=max_side, fixed_width=fixed_width)
        self.rotation, self.short_side, self.max_side = rotation, short_side, max_side
        self.fixed_width = fixed_width
        self.format = "gray" if gray else "rgb24"
        self._sizes: dict[tuple[int, int], tuple[int, int] | None] = {}
        self._reformatter = VideoReformatter()

    def _coded_size(self, width: int, height: int) -> tuple[int, int] | None:
        key = (width, height)
        if key not in self._sizes:
            swap = self.rotation in (90, 270)
            dw, dh = (height, width) if swap else (width, height)
            tw, th = target_size(dw, dh, short_side=self.short_side, max_side=self.max_side,
                                 fixed_width=self.fixed_width)
            size = (th, tw) if swap else (tw, th)
            self._sizes[key] = None if size == key else size
        return self._sizes[key]

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        return reformat_frame(self._reformatter, frame, self._coded_size(frame.width, frame.height),
                              fmt=self.format, rotation=self.rotation)


def reformat_frame(reformatter: VideoReformatter, frame: av.VideoFrame, size: tuple[int, int] | None, *,
                   fmt: str, rotation: int) -> np.ndarray:
    """``frame`` as an upright uint8 array in ``fmt`` (``rgb24``: ``(H, W, 3)``, ``gray``:
    ``(H, W)``), scaled by swscale to the coded ``size`` ``(width, height)`` before rotation
    (``None``: the frame's own), area-averaged when shrinking, bilinear when enlarging. Keep one
    ``reformatter`` for many frames (one thread at a time): it keeps its swscale context."""
    if size is None or size == (frame.width, frame.height):
        out = reformatter.reformat(frame, format=fmt, threads=_SWS_THREADS)
    else:
        down = size[0] * size[1] < frame.width * frame.height
        out = reformatter.reformat(frame, width=size[0], height=size[1], format=fmt,
                                   interpolation="AREA" if down else "BILINEAR", threads=_SWS_THREADS)
    return rotate_upright(out.to_ndarray(), rotation)


_THREAD_CONVERTERS = threading.local()


def _converter(rotation: int, short_side: int | None, max_side: int | None, gray: bool,
               width: int | None) -> FrameConverter:
    """This thread's :class:`FrameConverter` for these arguments (made on first use)."""
    cache = getattr(_THREAD_CONVERTERS, "cache", None)
    if cache is None:
        cache = _THREAD_CONVERTERS.cache = {}
    key = (rotation, short_side, max_side, gray, width)
    conv = cache.get(key)
    if conv is None:
        if len(cache) >= 32:  # a caller cycling through many sizes: start over rather than grow
            cache.clear()
        conv = cache[key] = FrameConverter(rotation, short_side, max_side, gray, fixed_width=width)
    return conv
