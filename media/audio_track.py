"""A media file's audio track on its own.

:func:`read_audio_track` reads the track from a container of its own (so it can run while a
:class:`media.decoding.VideoReader` decodes the video); :class:`AudioOnlyReader` reads a file
whose video stream is absent or yields no frame, and :func:`open_media` falls back to it from a
``VideoReader``. Audio is float32 in [-1, 1], resampled to the rate asked for.
"""
from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np

from media.decoding import (
    CorruptMediaError,
    MediaError,
    NoFramesError,
    NoVideoStreamError,
    VideoInfo,
    VideoReader,
    decode_audio_stream,
    open_container,
)


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
        self._container = open_container(self.path)
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
            self._container = open_container(self.path)
        self._read = True
        audio, self.decode_warning = decode_audio_stream(self._container, self._container.streams.audio[0], self.path,
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
    container = open_container(path)
    try:
        if not container.streams.audio:
            return None, None
        return decode_audio_stream(container, container.streams.audio[0], path, sample_rate=sample_rate, mono=mono)
    finally:
        container.close()
