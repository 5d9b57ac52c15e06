"""Reading video files through PyAV: metadata, frames (optionally subsampled, resized, gray) and
the audio track, each from one streaming pass over a container that is opened once.

Times are seconds from the stream start, taken from each frame's pts (so variable-frame-rate
files get their real times). Images are uint8 RGB ``(H, W, 3)`` (or ``(H, W)`` gray), turned
upright when the file carries a display rotation (phone videos). Bad files raise a subclass of
:class:`MediaError` whose message names the file; a stream that breaks mid-way yields the
frames decoded before the break and leaves a note in ``VideoReader.decode_warning``.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import av
import av.error
import numpy as np
from av.video.reformatter import VideoReformatter

from core.errors import UserInputError

# Tolerance (seconds) when comparing frame times with requested times: pts * time_base is exact,
# but requested times such as k / fps are floats.
_EPS = 1e-6

# Leading bytes of container formats we recognise. A file that starts like a media container but
# cannot be opened is reported as corrupt (typically truncated) rather than "not media".
_CONTAINER_MAGIC: tuple[tuple[int, bytes], ...] = (
    (4, b"ftyp"),              # mp4 / mov / m4a / 3gp
    (4, b"moov"),              # old QuickTime
    (4, b"mdat"),
    (0, b"\x1a\x45\xdf\xa3"),  # Matroska / WebM (EBML)
    (0, b"RIFF"),              # avi / wav
    (0, b"OggS"),
    (0, b"FLV"),
    (0, b"\x00\x00\x01\xba"),  # MPEG-PS
    (0, b"\x30\x26\xb2\x75"),  # ASF / WMV
)


class MediaError(UserInputError, ValueError):
    """Base class of every error raised for a bad media file; the message names the file."""


class MediaFileNotFoundError(MediaError):
    """The path does not exist."""


class EmptyMediaFileError(MediaError):
    """The file has 0 bytes."""


class NotMediaError(MediaError):
    """The file is not a media file FFmpeg can open (text, image, unknown format, a directory)."""


class NoVideoStreamError(MediaError):
    """The container opens but holds no video stream (e.g. an audio-only .m4a)."""


class NoFramesError(MediaError):
    """The video stream decodes, without error, to zero frames."""


class CorruptMediaError(MediaError):
    """The file looks like a media container but is truncated or corrupt, and nothing readable
    could be decoded from it."""


class FrameIndexError(MediaError, IndexError):
    """A requested frame index is negative or beyond the frames the file decodes to."""


@dataclass(frozen=True)
class VideoInfo:
    """Metadata of a video file, as :func:`probe` reports it.

    ``width``/``height`` are the display size in pixels (after rotation). ``fps`` is the average
    frame rate (frames/s). ``duration`` is in seconds. ``frame_count`` comes from the container
    header when it lists one, else is estimated as ``round(duration * fps)``. ``rotation`` is the
    counter-clockwise rotation in degrees (0, 90, 180 or 270) applied to the coded frames to show
    them upright; returned images already have it applied.
    """

    path: Path
    fps: float
    duration: float
    width: int
    height: int
    frame_count: int
    has_audio: bool
    audio_sample_rate: int | None
    audio_channels: int | None
    rotation: int


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
    of 90, e.g. :attr:`VideoInfo.rotation`). Returns a contiguous array."""
    k = (_normalize_rotation(rotation) // 90) % 4
    if k == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, k=k, axes=(0, 1)))


def _normalize_rotation(degrees: float) -> int:
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


def _check_file(path: Path) -> None:
    if not path.exists():
        raise MediaFileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise NotMediaError(f"{path}: is a directory, not a media file")
    if path.stat().st_size == 0:
        raise EmptyMediaFileError(f"{path}: file is empty (0 bytes)")


def _looks_like_container(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(16)
    return any(head[off:off + len(magic)] == magic for off, magic in _CONTAINER_MAGIC)


def _open_container(path: Path) -> av.container.InputContainer:
    """Open ``path`` for reading, mapping every failure to a typed :class:`MediaError`."""
    _check_file(path)
    try:
        return av.open(str(path), mode="r")
    except av.error.FFmpegError as e:
        reason = e.strerror or str(e)
        if _looks_like_container(path):
            raise CorruptMediaError(
                f"{path}: looks like a media container but cannot be opened ({reason}); "
                "the file is probably truncated or corrupt") from e
        raise NotMediaError(f"{path}: not a media file FFmpeg can open ({reason})") from e


class FrameHandle:
    """A decoded frame not yet converted to numpy (see :meth:`VideoReader.iter_handles`).

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
# and a context's thread pool would live as long as the context (see _Converter); with none, a
# forked worker can also use the contexts it inherits (no pool threads left behind in the parent)
_SWS_THREADS = 1


class _Converter:
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
               width: int | None) -> _Converter:
    """This thread's :class:`_Converter` for these arguments (made on first use)."""
    cache = getattr(_THREAD_CONVERTERS, "cache", None)
    if cache is None:
        cache = _THREAD_CONVERTERS.cache = {}
    key = (rotation, short_side, max_side, gray, width)
    conv = cache.get(key)
    if conv is None:
        if len(cache) >= 32:  # a caller cycling through many sizes: start over rather than grow
            cache.clear()
        conv = cache[key] = _Converter(rotation, short_side, max_side, gray, fixed_width=width)
    return conv


class VideoReader:
    """A video file opened once for reading: ``with VideoReader(path) as r: r.info, r.iter_frames()``.

    Opening checks the file and decodes its first frame (to learn the display rotation and to
    fail early on undecodable files), so a ``VideoReader`` that constructs has at least one
    decodable frame. Each read method makes one forward pass from the start of the file; only one
    read may be in progress at a time (do not interleave two ``iter_frames`` generators).

    ``decode_warning`` is ``None`` after a clean read, or a message naming the file when the last
    read stopped early on a corrupt/truncated stream (frames decoded before the break are
    returned). ``threads``: decoder threads (1 is deterministic and friendly to DataLoader
    workers; 0 lets FFmpeg choose).

    Raises :class:`MediaFileNotFoundError`, :class:`EmptyMediaFileError`, :class:`NotMediaError`,
    :class:`NoVideoStreamError`, :class:`NoFramesError` or :class:`CorruptMediaError`.
    """

    def __init__(self, path: str | os.PathLike, *, threads: int = 1) -> None:
        self.path = Path(path)
        self.decode_warning: str | None = None
        self._threads = threads
        self._rotation = 0  # known once the first frame is decoded
        self._container = _open_container(self.path)
        try:
            self._setup()
        except BaseException:
            self._container.close()
            raise

    def _setup(self) -> None:
        container = self._container
        if not container.streams.video:
            found = ", ".join(f"{s.type} {s.codec_context.name if s.codec_context else '?'}"
                              for s in container.streams) or "none"
            raise NoVideoStreamError(f"{self.path}: has no video stream (streams found: {found})")
        self._vstream = container.streams.video[0]
        self._astream = container.streams.audio[0] if container.streams.audio else None
        self._configure_video_decoder()
        # Decode the first frame now; the generator is kept so the first read does not re-decode.
        first_pass = self._decode_video()
        first = next(first_pass)  # raises NoFramesError / CorruptMediaError
        self._primed: Iterator[FrameHandle] | None = _chain_one(first, first_pass)
        self.info = self._build_info(first)
        self._rotation = first.rotation = self.info.rotation

    def _configure_video_decoder(self) -> None:
        ctx = self._vstream.codec_context
        ctx.thread_count = self._threads
        if self._threads != 1:
            ctx.thread_type = "AUTO"

    def _build_info(self, first: FrameHandle) -> VideoInfo:
        v = self._vstream
        rate = v.average_rate or v.guessed_rate or v.base_rate
        fps = float(rate) if rate else 0.0
        duration = 0.0
        if v.duration and v.time_base:
            duration = float(v.duration * v.time_base)
        elif self._container.duration:
            duration = self._container.duration / av.time_base
        frame_count = int(v.frames or 0)
        if frame_count <= 0:
            frame_count = int(round(duration * fps))
        if duration <= 0 and fps > 0:
            duration = frame_count / fps
        rotation = _normalize_rotation(first.frame.rotation)
        if rotation == 0 and "rotate" in v.metadata:
            # Files muxed by old FFmpeg carry a clockwise "rotate" tag instead of side data.
            try:
                rotation = _normalize_rotation(-float(v.metadata["rotate"]))
            except ValueError:
                rotation = 0
        width, height = first.frame.width, first.frame.height
        if rotation in (90, 270):
            width, height = height, width
        a = self._astream
        return VideoInfo(
            path=self.path, fps=fps, duration=duration, width=width, height=height,
            frame_count=frame_count, has_audio=a is not None,
            audio_sample_rate=int(a.codec_context.sample_rate) if a is not None else None,
            audio_channels=int(a.codec_context.layout.nb_channels) if a is not None else None,
            rotation=rotation,
        )

    # -- low level passes ------------------------------------------------------------------

    def _decode_video(self) -> Iterator[FrameHandle]:
        """Decode the video stream from the current position, yielding every frame in
        presentation order. Stops gracefully (with ``decode_warning``) on a mid-stream error."""
        v = self._vstream
        tb = v.time_base
        start = v.start_time
        default_step = 1.0 / float(v.average_rate) if v.average_rate else 0.0
        count = 0
        last_time = None
        try:
            for packet in self._container.demux(v):
                for frame in packet.decode():
                    if frame.pts is not None and tb is not None:
                        if start is None:
                            start = frame.pts
                        time = float((frame.pts - start) * tb)
                    else:
                        time = 0.0 if last_time is None else last_time + default_step
                    duration = float(frame.duration * tb) if frame.duration and tb else default_step
                    yield FrameHandle(count, time, duration, frame, self._rotation)
                    last_time = time
                    count += 1
        except av.error.FFmpegError as e:
            reason = e.strerror or str(e)
            if count == 0:
                raise CorruptMediaError(
                    f"{self.path}: video stream is corrupt, no frame could be decoded ({reason})") from e
            self.decode_warning = (f"{self.path}: decoding stopped after {count} frames because the "
                                   f"stream is corrupt or truncated ({reason})")
            return
        if count == 0:
            raise NoFramesError(f"{self.path}: video stream has no frames")
        listed = int(v.frames or 0)
        if 0 < count < listed:
            self.decode_warning = (f"{self.path}: decoded only {count} of the {listed} frames the "
                                   "container lists; the file may be truncated")

    def _frames_from_start(self) -> Iterator[FrameHandle]:
        self.decode_warning = None
        if self._primed is not None:
            frames, self._primed = self._primed, None
        else:
            self._rewind()
            frames = self._decode_video()
        return frames

    def _rewind(self) -> None:
        if self._primed is not None:
            self._primed.close()
            self._primed = None
        try:
            self._container.seek(0)
        except av.error.FFmpegError:
            # Some streams cannot seek; reopening is always possible.
            self._container.close()
            self._container = _open_container(self.path)
            self._vstream = self._container.streams.video[0]
            self._astream = self._container.streams.audio[0] if self._container.streams.audio else None
            self._configure_video_decoder()

    def _nearest(self, targets: Iterator[float], *, past_end: bool) -> Iterator[tuple[float, FrameHandle]]:
        """Match sorted ``targets`` (seconds) to the nearest frame in one streaming pass; on a tie
        the earlier frame wins. Targets after the last frame get the last frame when ``past_end``;
        otherwise only those before the last frame's end time (time + duration) do."""
        target = next(targets, None)
        if target is None:
            return
        prev: FrameHandle | None = None
        frames = self._frames_from_start()
        try:
            for cur in frames:
                while target is not None and target <= cur.time + _EPS:
                    use_prev = prev is not None and target - prev.time <= cur.time - target + _EPS
                    yield target, (prev if use_prev else cur)
                    target = next(targets, None)
                if target is None:
                    return
                prev = cur
        finally:
            frames.close()
        assert prev is not None  # _decode_video raises when there are no frames
        end = prev.time + prev.duration
        while target is not None and (past_end or target < end - _EPS):
            yield target, prev
            target = next(targets, None)

    # -- public reads ----------------------------------------------------------------------

    def iter_handles(self) -> Iterator[FrameHandle]:
        """Every frame in presentation order as a :class:`FrameHandle`, converted to numpy only
        when its :meth:`~FrameHandle.to_image` is called. For callers that pick frames themselves
        (several sizes of the same frame, frame differences on small copies) in one pass."""
        frames = self._frames_from_start()
        try:
            yield from frames
        finally:
            frames.close()

    def iter_frames(self, *, fps: float | None = None, short_side: int | None = None,
                    max_side: int | None = None, gray: bool = False) -> Iterator[DecodedFrame]:
        """Stream the video's frames in order.

        ``fps=None`` yields every frame. With ``fps``, yields for each tick ``k / fps`` (k = 0, 1,
        ... while the tick is before the end of the last frame) the frame nearest to it; frames
        no tick picks are never converted to numpy. When ``fps`` exceeds the file's rate, a frame
        is yielded for several ticks (same ``index``). ``short_side``/``max_side`` resize during
        conversion (see :func:`target_size`, applied to the upright size); ``gray`` gives
        ``(H, W)`` images.
        """
        convert = _Converter(self.info.rotation, short_side, max_side, gray)
        if fps is None:
            frames = self._frames_from_start()
            try:
                for pending in frames:
                    yield pending.decoded(convert)
            finally:
                frames.close()
            return
        if not fps > 0:
            raise ValueError(f"{self.path}: fps must be > 0, got {fps}")
        ticks = (k / fps for k in _count())
        last: DecodedFrame | None = None
        matches = self._nearest(ticks, past_end=False)
        try:
            for _, pending in matches:
                frame = pending.decoded(convert)
                if frame is last:  # the same frame for a second tick: give the caller its own copy
                    frame = replace(frame, image=frame.image.copy())
                else:
                    last = frame
                yield frame
        finally:
            matches.close()

    def frames_at(self, timestamps: Sequence[float], *, short_side: int | None = None,
                  max_side: int | None = None, gray: bool = False) -> list[DecodedFrame]:
        """The frame nearest each time in ``timestamps`` (seconds from the stream start), in
        request order, from one forward pass that stops after the last needed frame. Only the
        requested frames are kept. Times past the end give the last frame; a time requested
        twice gives two copies."""
        times = [float(t) for t in timestamps]
        if any(np.isnan(t) for t in times):
            raise ValueError(f"{self.path}: timestamps must not be NaN, got {times}")
        convert = _Converter(self.info.rotation, short_side, max_side, gray)
        order = sorted(range(len(times)), key=times.__getitem__)
        out: list[DecodedFrame | None] = [None] * len(times)
        used: set[int] = set()
        matches = self._nearest(iter([times[i] for i in order]), past_end=True)
        try:
            for slot, (_, pending) in zip(order, matches):
                frame = pending.decoded(convert)
                if id(frame) in used:
                    frame = replace(frame, image=frame.image.copy())
                used.add(id(frame))
                out[slot] = frame
        finally:
            matches.close()
        return out  # type: ignore[return-value]

    def frames_by_index(self, indices: Sequence[int], *, short_side: int | None = None,
                        max_side: int | None = None, gray: bool = False) -> list[DecodedFrame]:
        """Frames at the given 0-based indices (presentation order), in request order, from one
        forward pass that stops after the largest index. Raises :class:`FrameIndexError` for a
        negative index or one beyond the frames the file decodes to."""
        wanted = [int(i) for i in indices]
        if not wanted:
            return []
        if min(wanted) < 0:
            raise FrameIndexError(f"{self.path}: frame indices must be >= 0, got {min(wanted)}")
        convert = _Converter(self.info.rotation, short_side, max_side, gray)
        needed = set(wanted)
        last_needed = max(wanted)
        found: dict[int, DecodedFrame] = {}
        decoded = 0
        frames = self._frames_from_start()
        try:
            for pending in frames:
                decoded = pending.index + 1
                if pending.index in needed:
                    found[pending.index] = pending.decoded(convert)
                if pending.index >= last_needed:
                    break
        finally:
            frames.close()
        missing = sorted(needed - found.keys())
        if missing:
            note = f" ({self.decode_warning})" if self.decode_warning else ""
            raise FrameIndexError(f"{self.path}: frame indices {missing} are beyond the "
                                  f"{decoded} frames the file decodes to{note}")
        out: list[DecodedFrame] = []
        seen: set[int] = set()
        for i in wanted:
            frame = found[i]
            out.append(replace(frame, image=frame.image.copy()) if i in seen else frame)
            seen.add(i)
        return out

    def read_audio(self, *, sample_rate: int, mono: bool = True) -> np.ndarray | None:
        """The whole audio track resampled to ``sample_rate`` Hz, float32 in [-1, 1]: shape
        ``(N,)`` when ``mono`` (mean of the channels) else ``(C, N)``. ``None`` when the file has
        no audio track."""
        if self._astream is None:
            return None
        self._rewind()
        self.decode_warning = None
        audio, self.decode_warning = _decode_audio(self._container, self._astream, self.path,
                                                   sample_rate=sample_rate, mono=mono)
        return audio

    def close(self) -> None:
        if self._primed is not None:
            self._primed.close()
            self._primed = None
        self._container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()


class AudioOnlyReader:
    """A media file read for its audio track only, because it has no video stream or its video
    stream decodes to no frame: ``info`` (``width``/``height``/``fps``/``frame_count`` 0,
    ``duration`` of the audio), :meth:`read_audio`, and ``frames_error``, the message saying why
    there are no frames. Made by :func:`open_media`; raises :class:`MediaError` (naming the file)
    when the file has no audio track either."""

    def __init__(self, path: str | os.PathLike, *, frames_error: str) -> None:
        self.path = Path(path)
        self.frames_error = frames_error
        self.decode_warning: str | None = None
        self._read = False
        self._container = _open_container(self.path)
        if not self._container.streams.audio:
            self._container.close()
            raise NoVideoStreamError(f"{self.path}: neither video frames nor an audio track ({frames_error})")
        a = self._container.streams.audio[0]
        duration = float(a.duration * a.time_base) if a.duration and a.time_base else (
            self._container.duration / av.time_base if self._container.duration else 0.0)
        self.info = VideoInfo(path=self.path, fps=0.0, duration=duration, width=0, height=0, frame_count=0,
                              has_audio=True, audio_sample_rate=int(a.codec_context.sample_rate),
                              audio_channels=int(a.codec_context.layout.nb_channels), rotation=0)

    def read_audio(self, *, sample_rate: int, mono: bool = True) -> np.ndarray:
        """As :meth:`VideoReader.read_audio` (the track is always there)."""
        if self._read:  # reopen rather than seek: the AAC decoder then starts from the same state
            self._container.close()
            self._container = _open_container(self.path)
        self._read = True
        audio, self.decode_warning = _decode_audio(self._container, self._container.streams.audio[0], self.path,
                                                   sample_rate=sample_rate, mono=mono)
        return audio

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> "AudioOnlyReader":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()


def open_media(path: str | os.PathLike, *, threads: int = 1) -> "VideoReader | AudioOnlyReader":
    """A :class:`VideoReader` for ``path``; when the file has no video stream, or one that yields
    no frame (:class:`NoVideoStreamError`, :class:`NoFramesError`, a :class:`CorruptMediaError`
    of the video stream) but has an audio track, an :class:`AudioOnlyReader` whose
    ``frames_error`` says why. Any other failure (and a file without audio too) raises the
    :class:`VideoReader`'s error."""
    try:
        return VideoReader(path, threads=threads)
    except (NoVideoStreamError, NoFramesError, CorruptMediaError) as error:
        try:
            return AudioOnlyReader(path, frames_error=str(error))
        except MediaError:
            raise error from None


def _count() -> Iterator[int]:
    k = 0
    while True:
        yield k
        k += 1


def _chain_one(first: FrameHandle, rest: Iterator[FrameHandle]) -> Iterator[FrameHandle]:
    """``first`` followed by ``rest``; closing it closes ``rest``."""
    try:
        yield first
        yield from rest
    finally:
        rest.close()  # type: ignore[attr-defined]


def _decode_audio(container: av.container.InputContainer, stream: av.AudioStream, path: Path, *,
                  sample_rate: int, mono: bool) -> tuple[np.ndarray, str | None]:
    """Decode ``stream`` from the container's current position. Returns ``(audio, warning)``."""
    if sample_rate < 1:
        raise ValueError(f"{path}: sample_rate must be >= 1, got {sample_rate}")
    # Keep the source layout (layout=None) and average channels ourselves: swresample's stereo->mono mix adds
    # the channels at -3 dB each (louder than a mean, and it can clip), librosa's to_mono is a mean.
    resampler = av.AudioResampler(format="fltp", rate=sample_rate)
    chunks: list[np.ndarray] = []
    warning = None
    decoded = 0
    try:
        for packet in container.demux(stream):
            for frame in packet.decode():
                decoded += frame.samples
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray())
    except av.error.FFmpegError as e:
        reason = e.strerror or str(e)
        if decoded == 0:
            raise CorruptMediaError(
                f"{path}: audio stream is corrupt, no sample could be decoded ({reason})") from e
        warning = (f"{path}: audio decoding stopped after {decoded} samples because the stream is "
                   f"corrupt or truncated ({reason})")
    for out in resampler.resample(None):
        chunks.append(out.to_ndarray())
    channels = stream.codec_context.layout.nb_channels
    audio = (np.concatenate(chunks, axis=1) if chunks
             else np.zeros((channels, 0), dtype=np.float32)).astype(np.float32, copy=False)
    if mono:
        audio = audio.mean(axis=0)
    return np.clip(audio, -1.0, 1.0), warning


def probe(path: str | os.PathLike) -> VideoInfo:
    """Metadata of the video at ``path`` (opens it and decodes its first frame)."""
    with VideoReader(path) as reader:
        return reader.info


def read_frames(path: str | os.PathLike, *, fps: float | None = None, short_side: int | None = None,
                max_side: int | None = None, gray: bool = False) -> list[DecodedFrame]:
    """All frames of the video at ``path`` (or one per ``1 / fps`` tick), see
    :meth:`VideoReader.iter_frames`. Holds every frame in memory; stream with ``VideoReader`` for
    long files."""
    with VideoReader(path) as reader:
        return list(reader.iter_frames(fps=fps, short_side=short_side, max_side=max_side, gray=gray))


def read_audio(path: str | os.PathLike, sample_rate: int, mono: bool = True) -> np.ndarray | None:
    """The first audio track of ``path`` resampled to ``sample_rate`` Hz (float32 ``(N,)`` when
    ``mono`` else ``(C, N)``, in [-1, 1]); ``None`` when the file has no audio track. Works on
    audio-only files too. A stream that breaks mid-way returns the samples read before the break."""
    return read_audio_track(path, sample_rate, mono=mono)[0]


def read_audio_track(path: str | os.PathLike, sample_rate: int, *, mono: bool = True
                     ) -> tuple[np.ndarray | None, str | None]:
    """:func:`read_audio` and the note of a track that broke off mid-way (``None`` after a clean
    read), from a container of its own, so it can run while another reader decodes the video."""
    path = Path(path)
    container = _open_container(path)
    try:
        if not container.streams.audio:
            return None, None
        return _decode_audio(container, container.streams.audio[0], path, sample_rate=sample_rate, mono=mono)
    finally:
        container.close()
