"""Reading video files through PyAV: metadata, frames (optionally subsampled, resized, gray) and
the audio track, each from one streaming pass over a container that is opened once.

Times are seconds from the stream start, taken from each frame's pts (so variable-frame-rate
files get their real times). Images are uint8 RGB ``(H, W, 3)`` (or ``(H, W)`` gray), turned
upright when the file carries a display rotation (phone videos). Bad files raise a subclass of
:class:`MediaError` whose message names the file; a stream that breaks mid-way yields the
frames decoded before the break and leaves a note in ``VideoReader.decode_warning``. Frames
are converted by :mod:`media.frame_conversion`; a track read on its own, and files without
video frames, are :mod:`media.audio_track`'s.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Sequence

import av
import av.error
import numpy as np

from core.errors import UserInputError
from media.frame_conversion import DecodedFrame, FrameConverter, FrameHandle, normalize_rotation

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


def open_container(path: Path) -> av.container.InputContainer:
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
        self._container = open_container(self.path)
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
        rotation = normalize_rotation(first.frame.rotation)
        if rotation == 0 and "rotate" in v.metadata:
            # Files muxed by old FFmpeg carry a clockwise "rotate" tag instead of side data.
            try:
                rotation = normalize_rotation(-float(v.metadata["rotate"]))
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
            self._container = open_container(self.path)
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
        conversion (see :func:`media.frame_conversion.target_size`, applied to the upright size); ``gray`` gives
        ``(H, W)`` images.
        """
        convert = FrameConverter(self.info.rotation, short_side, max_side, gray)
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
        ticks = (k / fps for k in itertools.count())
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
        convert = FrameConverter(self.info.rotation, short_side, max_side, gray)
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
        convert = FrameConverter(self.info.rotation, short_side, max_side, gray)
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
        audio, self.decode_warning = decode_audio_stream(self._container, self._astream, self.path,
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


def _chain_one(first: FrameHandle, rest: Iterator[FrameHandle]) -> Iterator[FrameHandle]:
    """``first`` followed by ``rest``; closing it closes ``rest``."""
    try:
        yield first
        yield from rest
    finally:
        rest.close()  # type: ignore[attr-defined]


def decode_audio_stream(container: av.container.InputContainer, stream: av.AudioStream, path: Path, *,
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
