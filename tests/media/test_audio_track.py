"""Tests for media.audio_track: a file's audio track read on its own, and open_media's fallback
to it for files without video frames."""
from __future__ import annotations

import numpy as np
import pytest

from media.audio_track import AudioOnlyReader, open_media, read_audio
from media.decoding import CorruptMediaError, VideoReader
from media.encoding import write_m4a
from tests.conftest import make_frameless_clip, make_scene_clip

TONE_HZ = 440.0


def tone(seconds: float, sample_rate: int) -> np.ndarray:
    """A mono 0.5-amplitude ``TONE_HZ`` sine, float32 ``(N,)``."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    return (0.5 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)


def test_module_read_audio_accepts_audio_only_files(tmp_path):
    path = write_m4a(tmp_path / "tone.m4a", tone(1.0, 16_000), sample_rate=16_000)
    audio = read_audio(path, 8_000)
    assert audio is not None and audio.ndim == 1
    assert abs(len(audio) - 8_000) <= 1024 * 8_000 / 16_000
    peak_hz = np.fft.rfftfreq(len(audio), 1 / 8_000)[np.abs(np.fft.rfft(audio)).argmax()]
    assert peak_hz == pytest.approx(TONE_HZ, abs=2)


def test_open_media_reads_the_audio_of_a_file_without_a_video_stream(tmp_path):
    path = write_m4a(tmp_path / "talk.m4a", tone(1.0, 16_000), sample_rate=16_000)
    with open_media(path) as reader:
        assert isinstance(reader, AudioOnlyReader)
        assert "no video stream" in reader.frames_error and str(path) in reader.frames_error
        info = reader.info
        assert info.has_audio and info.frame_count == 0 and info.width == 0
        assert info.duration == pytest.approx(1.0, abs=0.1)
        audio = reader.read_audio(sample_rate=8000)
        assert np.array_equal(audio, reader.read_audio(sample_rate=8000))  # a second read gives the same
    assert len(audio) == pytest.approx(8000, abs=1100)
    spectrum = np.abs(np.fft.rfft(audio[1000:7000]))
    assert np.fft.rfftfreq(6000, 1 / 8000)[spectrum.argmax()] == pytest.approx(TONE_HZ, abs=5)


def test_open_media_reads_the_audio_of_a_video_track_without_frames(tmp_path):
    path = make_frameless_clip(tmp_path / "no_frames.mkv")
    with open_media(path) as reader:
        assert isinstance(reader, AudioOnlyReader) and "no frames" in reader.frames_error
        assert reader.read_audio(sample_rate=16_000).size > 8000


def test_open_media_keeps_the_video_reader_and_the_errors_of_other_files(tmp_path):
    av_clip = make_scene_clip(tmp_path / "scene.mp4", n_frames=15, size=(64, 48), faces=1, audio=True)
    with open_media(av_clip) as reader:
        assert isinstance(reader, VideoReader)
    half = tmp_path / "half.mp4"
    half.write_bytes(av_clip.read_bytes()[: av_clip.stat().st_size // 2])
    with pytest.raises(CorruptMediaError):  # the container does not open: no audio to fall back on
        open_media(half)
