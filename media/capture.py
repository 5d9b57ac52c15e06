"""Where live frames and audio come from: a camera (OpenCV), optionally with a microphone
(PyAV's capture formats), a stream URL or a video file (PyAV), read as a sequence of events:
:class:`LiveFrame` s, :class:`AudioChunk` s and :class:`AudioStopped` on one timeline (seconds
from the source's start).

A camera with a microphone (:class:`CaptureSource`) stamps both on one clock
(``time.monotonic``): a frame at the moment OpenCV hands it over, the audio at the moment its
first chunk arrives less that chunk's duration, every later sample counted on from there (the
device delivers its samples gap-free). Microphones open through PyAV's capture input formats:
``alsa`` (or ``oss``, ``pulse`` where the build has it) on Linux, ``avfoundation`` on macOS,
``dshow`` on Windows (:data:`DEFAULT_AUDIO_FORMATS`); a PortAudio binding (``sounddevice``) is
used only where the PyAV build has none of them. A microphone that cannot be opened, or stops
delivering, becomes an :class:`AudioStopped` event and the run goes on without audio.
"""
from __future__ import annotations

import queue
import sys
import threading
import time
from collections import deque
from typing import Callable, Iterator

import av
import av.error
import cv2
import numpy as np
from av.video.reformatter import VideoReformatter

from media.capture_types import AudioChunk, AudioStopped, LiveFrame, LiveSourceError, drain
from media.decoding import probe
from media.frame_conversion import reformat_frame
from media.reconnect import DEFAULT_TIMEOUTS, ReconnectingSource

SizeFor = Callable[[int, int], tuple[int, int]]

#: the PyAV capture format of a microphone per platform (``sys.platform`` prefix)
DEFAULT_AUDIO_FORMATS = {"linux": "alsa", "darwin": "avfoundation", "win32": "dshow"}


class PyAVSource:
    """A video file or stream URL read through PyAV. ``events()`` yields :class:`LiveFrame` (at
    ``size_for(width, height)``) and :class:`AudioChunk` (mono, ``audio_rate`` Hz). A stream that
    breaks mid-way ends the events and leaves a note in ``warning``.

    A stream URL's packets come in the order they arrive. A file's come as a player presents
    them: a video frame only once the audio up to its time has come (at most
    :attr:`max_hold_s` of video is held back for it). ``timeout``: ``(open, read)`` seconds to
    wait for a connection and for data (stream URLs, see :mod:`media.reconnect`). Containers store audio in chunks that
    can trail the video by a second or more; read in container order, every window would wait
    that long for its audio, which a camera with a microphone never does."""

    #: seconds of video (compressed packets) a file's reading may hold back for its audio
    max_hold_s: float = 10.0

    def __init__(self, target: str, *, size_for: SizeFor, audio_rate: int, live: bool,
                 timeout: tuple[float, float] | None = None) -> None:
        self.name = str(target)
        self.live = live
        self.warning: str | None = None
        self._size_for = size_for
        self.audio_rate = int(audio_rate)
        rotation = None
        if not live:
            rotation = probe(target).rotation  # typed MediaError naming the file for bad files
        try:
            self._container = av.open(self.name, mode="r", timeout=timeout)
        except av.error.FFmpegError as e:
            raise LiveSourceError(f"{self.name}: cannot open ({e.strerror or e})") from e
        #: ``time.monotonic()`` once the stream was open (its first frames were coming then): a
        #: live stream keeps coming while the caller warms up, and is that far behind when read
        self.opened_at = time.monotonic() if live else None
        if not self._container.streams.video:
            self._container.close()
            raise LiveSourceError(f"{self.name}: has no video stream")
        self._video = self._container.streams.video[0]
        self._audio = self._container.streams.audio[0] if self._container.streams.audio else None
        # frame threads decode the next frames while this one is analysed (same pictures as
        # one thread: H.264 decoding is exact)
        self._video.codec_context.thread_count = 0
        self._video.codec_context.thread_type = "AUTO"
        rate = self._video.average_rate or self._video.guessed_rate or self._video.base_rate
        self.fps = float(rate) if rate else 30.0
        self.has_audio = self._audio is not None
        self._rotation = rotation
        self._reformatter = VideoReformatter()  # one swscale context for all frames (reformat_frame)
        w, h = self._video.codec_context.width, self._video.codec_context.height
        #: (width, height) of the upright frames before analysis resizing, ``None`` when unknown
        self.frame_size = ((h, w) if rotation in (90, 270) else (w, h)) if w and h else None

    def _image(self, frame: av.VideoFrame) -> np.ndarray:
        if self._rotation is None:
            self._rotation = int(round(float(getattr(frame, "rotation", 0) or 0) / 90.0)) * 90 % 360
        swap = self._rotation in (90, 270)
        dw, dh = (frame.height, frame.width) if swap else (frame.width, frame.height)
        tw, th = self._size_for(dw, dh)
        cw, ch = (th, tw) if swap else (tw, th)
        return reformat_frame(self._reformatter, frame, (cw, ch), fmt="rgb24", rotation=self._rotation)

    def events(self) -> Iterator[LiveFrame | AudioChunk]:
        reading = _PyAVReading(self)
        try:
            yield from reading.events()
        except av.error.FFmpegError as e:
            if reading.index == 0:
                raise LiveSourceError(f"{self.name}: no frame could be decoded ({e.strerror or e})") from e
            self.warning = (f"{self.name}: reading stopped after {reading.index} frames because the stream is "
                            f"corrupt or broke off ({e.strerror or e})")
            return
        if reading.index == 0:
            raise LiveSourceError(f"{self.name}: the video stream has no frames")

    def close(self) -> None:
        self._container.close()


class _PyAVReading:
    """One pass of :meth:`PyAVSource.events` over its container: the timeline (``origin``, the
    source time of the first frame or audio; ``audio_time``, the time of the next audio sample),
    the frame count ``index`` and a file's video packets held back for their audio."""

    def __init__(self, source: PyAVSource) -> None:
        self.source = source
        v, a = source._video, source._audio
        self.origin = float(v.start_time * v.time_base) if v.start_time is not None and v.time_base else None
        self.resampler = av.AudioResampler(format="fltp", rate=source.audio_rate) if a is not None else None
        self.audio_time: float | None = None
        self.index = 0
        self.last_time = -1.0 / source.fps
        self.streams = [s for s in (v, a) if s is not None]
        self.held: deque = deque()          # a file's video packets waiting for their audio
        self.hold = a is not None and not source.live

    def events(self) -> Iterator[LiveFrame | AudioChunk]:
        """Every frame and audio chunk of the container, in the order :class:`PyAVSource` hands
        them over; raises ``av.error.FFmpegError`` where the stream breaks."""
        for packet in self.source._container.demux(self.streams):
            if packet.stream.type == "video":
                yield from self.video_packet(packet)
            else:
                yield from self.audio_packet(packet)
        if self.resampler is not None and self.audio_time is not None:
            yield from self.audio_chunks(None)
        yield from self.release(None)

    def packet_time(self, packet) -> float | None:
        """The packet's source time (s from ``origin``), ``None`` when it has none yet."""
        if packet.pts is None or packet.time_base is None or self.origin is None:
            return None
        return float(packet.pts * packet.time_base) - self.origin

    def video_packet(self, packet) -> Iterator[LiveFrame]:
        """A stream's video packet decoded now; a file's held until the audio up to its time has
        come, but never more than ``max_hold_s`` of video waits."""
        if not self.hold:
            yield from self.video_frames(packet)
            return
        self.held.append(packet)
        newest = self.packet_time(packet)
        if newest is not None:
            yield from self.release(newest - self.source.max_hold_s)

    def audio_packet(self, packet) -> Iterator[LiveFrame | AudioChunk]:
        """The packet's audio as chunks (the first one sets the audio timeline), then the held
        video up to the audio's time."""
        for frame in packet.decode():
            if self.audio_time is None:
                t = frame.time
                if self.origin is None and t is not None:
                    self.origin = float(t)
                self.audio_time = (float(t) - self.origin) if t is not None and self.origin is not None else 0.0
            yield from self.audio_chunks(frame)
        if self.audio_time is not None:
            yield from self.release(self.audio_time)

    def video_frames(self, packet) -> Iterator[LiveFrame]:
        """The packet's frames, timed from ``origin`` (the first frame sets it when unknown)."""
        source = self.source
        for frame in packet.decode():
            t = frame.time
            if self.origin is None:
                self.origin = float(t) if t is not None else 0.0
            # Frames without a timestamp get the next tick (some streams lack pts).
            t = float(t) - self.origin if t is not None else self.last_time + 1.0 / source.fps
            self.last_time = t
            yield LiveFrame(self.index, t, source._image(frame))
            self.index += 1

    def audio_chunks(self, frame) -> Iterator[AudioChunk]:
        """The resampler's output for ``frame`` (``None``: what it still holds) as chunks."""
        for out in self.resampler.resample(frame):
            samples = out.to_ndarray().mean(axis=0).astype(np.float32)
            yield AudioChunk(self.audio_time, samples)
            self.audio_time += len(samples) / self.source.audio_rate

    def release(self, until: float | None) -> Iterator[LiveFrame]:
        """Decode the held packets up to source time ``until`` (all of them: ``None``); a
        packet without a time goes with the ones before it."""
        while self.held:
            t = self.packet_time(self.held[0])
            if until is not None and t is not None and t > until:
                return
            yield from self.video_frames(self.held.popleft())


class CameraSource:
    """A camera through OpenCV ``VideoCapture(device)`` (an index; a file or URL OpenCV reads also
    works, e.g. to stand in for a camera in tests); no audio (see :class:`CaptureSource`). Frame
    times are the ``clock`` times (s) at which OpenCV handed the frames over, from the first
    frame or from the ``origin`` given to :meth:`events`. ``pace``: hand frames over no faster
    than ``fps`` (a file standing in for a camera)."""

    def __init__(self, device: int | str, *, size_for: SizeFor, clock: Callable[[], float] = time.monotonic,
                 pace: bool = False) -> None:
        self.name = f"camera {device}"
        self.live = True
        self.warning: str | None = None
        self.has_audio = False
        self.audio_rate = 0
        self._size_for = size_for
        self._clock = clock
        self._pace = pace
        self._cap = cv2.VideoCapture(device)
        if not self._cap.isOpened():
            self._cap.release()
            raise LiveSourceError(f"{self.name}: cannot be opened (no such device, or it is busy)")
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 1.0 <= fps <= 240.0 else 30.0
        w, h = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        self.frame_size = (w, h) if w > 0 and h > 0 else None

    def events(self, origin: float | None = None) -> Iterator[LiveFrame]:
        t0 = origin
        index = 0
        while True:
            if self._pace and t0 is not None:
                wait = t0 + index / self.fps - self._clock()
                if wait > 0:
                    time.sleep(wait)
            ok, bgr = self._cap.read()
            if not ok:
                if index == 0:
                    raise LiveSourceError(f"{self.name}: delivered no frame")
                return
            now = self._clock()
            t0 = now if t0 is None else t0
            h, w = bgr.shape[:2]
            tw, th = self._size_for(w, h)
            if (tw, th) != (w, h):
                bgr = cv2.resize(bgr, (tw, th), interpolation=cv2.INTER_AREA if tw * th < w * h else cv2.INTER_LINEAR)
            yield LiveFrame(index, now - t0, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            index += 1

    def close(self) -> None:
        self._cap.release()


def default_audio_format(platform: str | None = None) -> str | None:
    """The microphone capture format for ``platform`` (default ``sys.platform``), ``None`` when
    there is none for it."""
    platform = sys.platform if platform is None else platform
    return next((f for p, f in DEFAULT_AUDIO_FORMATS.items() if platform.startswith(p)), None)


class AudioCapture:
    """A microphone (or any audio input PyAV opens: a file, a ``lavfi`` test source such as
    ``sine=frequency=440``) read on a background thread, mono at ``sample_rate`` Hz.

    ``device``: the input's name for ``fmt`` (e.g. ``default`` or ``hw:1,0`` for ``alsa``,
    ``:0`` for ``avfoundation``, ``audio=Microphone (USB Audio)`` for ``dshow``); ``fmt=None``
    lets FFmpeg guess (files). Opening fails with :class:`LiveSourceError` naming the device.
    After :meth:`start` (``origin``: the ``clock`` time that is time 0 of the frames), :meth:`poll`
    returns the :class:`AudioChunk` s that arrived, stamped as the module docstring says, and,
    once, an :class:`AudioStopped` when the input ends or fails. ``pace``: deliver no faster than
    real time (an input that is not a device)."""

    def __init__(self, device: str, *, fmt: str | None, sample_rate: int, clock: Callable[[], float] = time.monotonic,
                 pace: bool = False, options: dict | None = None) -> None:
        self.name = f"{fmt or 'audio'}:{device}"
        self.sample_rate = int(sample_rate)
        self._clock = clock
        self._pace = pace
        self._queue: queue.Queue = queue.Queue()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        if fmt is not None and fmt not in av.formats_available:
            raise LiveSourceError(f"{self.name}: this PyAV build has no {fmt!r} input format "
                                  f"(see python -c 'import av; print(sorted(av.formats_available))')")
        try:
            self._container = av.open(device, mode="r", format=fmt, options=options or {})
        except (av.error.FFmpegError, OSError) as e:
            reason = getattr(e, "strerror", None) or e
            raise LiveSourceError(f"{self.name}: cannot open the audio input ({reason})") from e
        if not self._container.streams.audio:
            self._container.close()
            raise LiveSourceError(f"{self.name}: has no audio stream")

    def start(self, origin: float) -> None:
        self._thread = threading.Thread(target=self._read, args=(float(origin),), name=f"audio {self.name}",
                                        daemon=True)
        self._thread.start()

    def _read(self, origin: float) -> None:
        stream = self._container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", rate=self.sample_rate)
        first: float | None = None      # time of the first sample on the frames' timeline
        produced = 0
        reason = "the audio input ended"

        def deliver(out) -> None:
            nonlocal first, produced
            samples = out.to_ndarray().mean(axis=0).astype(np.float32)
            if self._pace:
                wait = origin + (produced + len(samples)) / self.sample_rate - self._clock()
                if wait > 0:
                    time.sleep(wait)
            if first is None:  # the chunk just arrived: its first sample was taken a chunk ago
                first = self._clock() - origin - len(samples) / self.sample_rate
            self._queue.put(AudioChunk(first + produced / self.sample_rate, samples))
            produced += len(samples)

        try:
            for packet in self._container.demux(stream):
                if self._closing.is_set():
                    return
                for frame in packet.decode():
                    for out in resampler.resample(frame):
                        deliver(out)
            for out in resampler.resample(None):
                deliver(out)
        except (av.error.FFmpegError, OSError) as e:
            reason = f"the audio input failed ({getattr(e, 'strerror', None) or e})"
        if not self._closing.is_set():
            at = first + produced / self.sample_rate if first is not None else self._clock() - origin
            self._queue.put(AudioStopped(max(0.0, at), f"{self.name}: {reason}"))

    def poll(self) -> list[AudioChunk | AudioStopped]:
        """What arrived since the last call, in order (never blocks)."""
        return drain(self._queue)

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self._container.close()


class CaptureSource:
    """A camera and a microphone on one clock (see the module docstring). ``audio``: the
    microphone, or ``None`` with ``audio_error`` saying why it could not be opened (then the run
    starts with audio missing)."""

    def __init__(self, camera: CameraSource, audio: AudioCapture | None, *, audio_error: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.camera, self.audio = camera, audio
        self.name = camera.name + (f" + {audio.name}" if audio is not None else " + no microphone")
        self.live = True
        self.fps = camera.fps
        self.frame_size = camera.frame_size
        self.has_audio = True
        self.audio_rate = audio.sample_rate if audio is not None else 0
        self._audio_error = audio_error or "no microphone"
        self._clock = clock

    @property
    def warning(self) -> str | None:
        return self.camera.warning

    def events(self) -> Iterator[LiveFrame | AudioChunk | AudioStopped]:
        origin = self._clock()
        if self.audio is None:
            yield AudioStopped(0.0, self._audio_error)
        else:
            self.audio.start(origin)
        for frame in self.camera.events(origin=origin):
            if self.audio is not None:
                yield from self.audio.poll()
            yield frame
        if self.audio is not None:
            yield from self.audio.poll()

    def close(self) -> None:
        try:
            if self.audio is not None:
                self.audio.close()
        finally:
            self.camera.close()


def source_kind(spec: str | int) -> str:
    """``"camera"`` for an index (``0`` or ``"0"``), ``"url"`` for ``scheme://...``, else ``"file"``."""
    text = str(spec).strip()
    if isinstance(spec, int) or text.isdigit():
        return "camera"
    return "url" if "://" in text else "file"


def open_microphone(device: str, *, fmt: str | None, sample_rate: int) -> AudioCapture:
    """The microphone ``device`` through PyAV's capture format ``fmt`` (default: the platform's,
    :func:`default_audio_format`); where the PyAV build lacks it, through ``sounddevice``
    (:class:`media.portaudio.SoundDeviceCapture`) when that is installed. Raises
    :class:`LiveSourceError` naming the device when it cannot be opened."""
    fmt = fmt or default_audio_format()
    if fmt is not None and fmt not in av.formats_available:
        from media.portaudio import SoundDeviceCapture, sounddevice_available

        if sounddevice_available():
            return SoundDeviceCapture(device, sample_rate=sample_rate)
        raise LiveSourceError(f"microphone {device!r}: this PyAV build has no {fmt!r} capture format and the "
                              "PortAudio fallback is not installed (pip install sounddevice)")
    return AudioCapture(device, fmt=fmt, sample_rate=sample_rate)


def open_source(spec: str | int, *, size_for: SizeFor, audio_rate: int, audio_source: str | None = None,
                audio_format: str | None = None, reconnect: int | None = None,
                timeouts: tuple[float, float] = DEFAULT_TIMEOUTS
                ) -> PyAVSource | CameraSource | CaptureSource | ReconnectingSource:
    """``spec``: a camera index (OpenCV), a URL (PyAV) or a video file (PyAV; a bad file raises
    :class:`media.decoding.MediaError` naming it), see :func:`source_kind`. Cameras and URLs are
    ``live`` sources. ``audio_source`` (cameras only): a microphone recorded alongside on the same
    clock (:func:`open_microphone`, ``audio_format`` its capture format); one that cannot be
    opened leaves the audio missing from the start (the run says why). A URL is read through a
    :class:`media.reconnect.ReconnectingSource`: ``timeouts`` ``(open, read)`` s, ``reconnect``
    attempts after each drop (``None``: unlimited); a URL that never connects raises
    :class:`LiveSourceError` after the open timeout. Files never reconnect."""
    kind = source_kind(spec)
    if kind == "camera":
        camera = CameraSource(int(str(spec).strip()), size_for=size_for)
        if audio_source is None:
            return camera
        try:
            mic = open_microphone(audio_source, fmt=audio_format, sample_rate=audio_rate)
        except LiveSourceError as e:
            return CaptureSource(camera, None, audio_error=str(e))
        return CaptureSource(camera, mic)
    if audio_source is not None:
        raise LiveSourceError(f"--audio-source goes with a camera; {spec} brings its own audio track")
    target = str(spec).strip()
    if kind == "url":
        def connect() -> PyAVSource:
            return PyAVSource(target, size_for=size_for, audio_rate=audio_rate, live=True, timeout=timeouts)

        return ReconnectingSource(target, connect, reconnect=reconnect)
    return PyAVSource(target, size_for=size_for, audio_rate=audio_rate, live=False)
