"""Writing video files: H.264 video with an optional AAC audio track (and audio-only .m4a files),
through PyAV.

Used by the synthetic dataset generator, by tests that need real media files, and by the live
mode's annotated output.
"""
from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import av
import numpy as np

# Channel layouts the AAC track can be written with: mono, stereo and 5.1 (what cameras and films carry).
_LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}


class VideoWriter:
    """Incremental mp4 writer: ``with VideoWriter(path, fps=15, size=(w, h)) as w: w.write(frame)``.

    Frames are ``(H, W, 3)`` uint8 RGB. ``audio`` (optional, given up front or via
    :meth:`write_audio`) is float32 in [-1, 1], shape ``(N,)`` mono or ``(channels, N)`` with
    1, 2 or 6 (5.1) channels.
    Encoding is single-threaded with fixed options, and without x264's macroblock tree (see
    below), so the same input gives byte-identical files.
    The file is written to a temporary name and renamed into place on a clean close, so a killed
    writer never leaves a truncated file under the final name.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        fps: float,
        size: tuple[int, int],
        sample_rate: int | None = None,
        audio_channels: int = 1,
        crf: int = 23,
        audio_bitrate: int = 96_000,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.tmp.mp4")
        width, height = size
        if width % 2 or height % 2:
            raise ValueError(f"{self.path}: H.264 needs even width and height, got {width}x{height}")
        # bitexact flags keep the muxer from writing encoder version strings, so outputs are
        # reproducible across runs.
        self._container = av.open(str(self._tmp), mode="w", format="mp4",
                                  options={"fflags": "+bitexact"})
        self._video = add_h264_stream(self._container, fps=fps, size=size, crf=crf)
        self._audio = None
        if sample_rate is not None:
            if audio_channels not in _LAYOUTS:
                raise ValueError(f"{self.path}: audio with {audio_channels} channels is not supported "
                                 f"(choose from {sorted(_LAYOUTS)})")
            layout = _LAYOUTS[audio_channels]
            self._audio = self._container.add_stream("aac", rate=sample_rate, layout=layout)
            self._audio.bit_rate = audio_bitrate
            self._audio_channels = audio_channels
        self._size = (width, height)
        self._closed = False

    def write(self, frame: np.ndarray) -> None:
        """Encode one ``(H, W, 3)`` uint8 RGB frame."""
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"{self.path}: frames must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
        if (frame.shape[1], frame.shape[0]) != self._size:
            raise ValueError(f"{self.path}: frame size {frame.shape[1]}x{frame.shape[0]} != {self._size}")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self._video.encode(vf):
            self._container.mux(packet)

    def write_audio(self, audio: np.ndarray) -> None:
        """Encode the whole audio track: float32 ``(N,)`` or ``(channels, N)`` in [-1, 1]."""
        if self._audio is None:
            raise ValueError(f"{self.path}: writer was opened without sample_rate, cannot add audio")
        samples = np.asarray(audio, dtype=np.float32)
        if samples.ndim == 1:
            samples = samples[None, :]
        if samples.shape[0] != self._audio_channels:
            raise ValueError(
                f"{self.path}: audio has {samples.shape[0]} channels, writer expects {self._audio_channels}")
        encode_audio(self._container, self._audio, samples)

    def close(self) -> None:
        """Flush encoders and move the finished file into place."""
        if self._closed:
            return
        for packet in self._video.encode():
            self._container.mux(packet)
        if self._audio is not None:
            for packet in self._audio.encode():
                self._container.mux(packet)
        self._container.close()
        os.replace(self._tmp, self.path)
        self._closed = True

    def abort(self) -> None:
        """Close without publishing: the temporary file is removed."""
        if self._closed:
            return
        self._closed = True
        try:
            self._container.close()
        finally:
            if self._tmp.exists():
                self._tmp.unlink()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def add_h264_stream(container: av.container.OutputContainer, *, fps: float, size: tuple[int, int], crf: int = 23,
                    bit_rate: int | None = None) -> av.VideoStream:
    """Add the H.264 stream every writer here uses to ``container``: ``size`` ``(width, height)``
    in pixels (even), ``fps`` frames/s, yuv420p, single-threaded with fixed options so the same
    frames give the same bytes; quality ``crf`` (constant rate factor), or, with ``bit_rate``
    (bits/s), an average bit rate instead."""
    stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
    stream.width, stream.height = size
    stream.pix_fmt = "yuv420p"
    stream.codec_context.thread_count = 1
    # mbtree=0: x264's AVX-512 macroblock-tree code (lookahead propagation through
    # B-frames) reads uninitialised heap memory, so on CPUs with AVX-512 the same frames
    # encoded twice gave different bytes (decoded frames up to 64 grey levels apart),
    # depending on what earlier allocations, other threads' included, left on the heap.
    # Without mbtree the AVX2 and AVX-512 paths write the same bytes, whatever the heap holds
    # (checked with glibc's MALLOC_PERTURB_; tests/media/test_synthetic_reproducible.py).
    options = {"preset": "veryfast", "threads": "1", "x264-params": "mbtree=0"}
    if bit_rate is None:
        options["crf"] = str(crf)
    else:
        stream.bit_rate = int(bit_rate)
    stream.options = options
    return stream


def encode_audio(container: av.container.OutputContainer, stream: av.AudioStream, samples: np.ndarray) -> None:
    """Encode float32 ``samples`` (channels, N; 1, 2 or 6 channels, see ``_LAYOUTS``) into
    ``stream``, clipped to [-1, 1], and mux the packets (the encoder is flushed by the caller)."""
    samples = np.clip(samples, -1.0, 1.0)
    layout = _LAYOUTS[samples.shape[0]]
    frame_size = stream.codec_context.frame_size or 1024
    pts = 0
    for start in range(0, samples.shape[1], frame_size):
        chunk = np.ascontiguousarray(samples[:, start:start + frame_size])
        # planar float, one row per channel
        af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=layout)
        af.sample_rate = stream.rate
        af.pts = pts
        pts += chunk.shape[1]
        for packet in stream.encode(af):
            container.mux(packet)


def write_m4a(path: str | os.PathLike, audio: np.ndarray, *, sample_rate: int, bitrate: int = 96_000) -> Path:
    """Write ``audio`` (float32 in [-1, 1], ``(N,)`` mono or ``(2, N)`` stereo, at ``sample_rate``
    Hz) as an audio-only ``.m4a`` (AAC in an MP4 container, no video stream), atomically. Returns
    the path."""
    path = Path(path)
    samples = np.asarray(audio, dtype=np.float32)
    samples = samples[None, :] if samples.ndim == 1 else samples
    if samples.ndim != 2 or samples.shape[0] not in (1, 2) or samples.shape[1] == 0:
        raise ValueError(f"{path}: audio must be (N,) or (2, N) with N > 0, got shape {np.shape(audio)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.m4a")
    container = av.open(str(tmp), mode="w", format="mp4", options={"fflags": "+bitexact"})
    try:
        stream = container.add_stream("aac", rate=sample_rate, layout="mono" if samples.shape[0] == 1 else "stereo")
        stream.bit_rate = bitrate
        encode_audio(container, stream, samples)
        for packet in stream.encode():
            container.mux(packet)
        container.close()
        os.replace(tmp, path)
    except BaseException:
        container.close()
        if tmp.exists():
            tmp.unlink()
        raise
    return path


def write_mp4(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    *,
    fps: float,
    audio: np.ndarray | None = None,
    sample_rate: int | None = None,
    crf: int = 23,
) -> Path:
    """Write ``frames`` ((H, W, 3) uint8 RGB each) and optional ``audio`` (float32, ``(N,)`` or
    ``(channels, N)`` at ``sample_rate`` Hz) to an H.264/AAC mp4 at ``path``. Returns the path."""
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError(f"{path}: no frames to write")
    channels = 1
    if audio is not None:
        if sample_rate is None:
            raise ValueError(f"{path}: audio given without sample_rate")
        channels = 1 if np.ndim(audio) == 1 else int(np.shape(audio)[0])
    with VideoWriter(path, fps=fps, size=(first.shape[1], first.shape[0]),
                     sample_rate=sample_rate if audio is not None else None,
                     audio_channels=channels, crf=crf) as writer:
        writer.write(first)
        for frame in frames:
            writer.write(frame)
        if audio is not None:
            writer.write_audio(audio)
    return Path(path)
