"""Tests for media.decoding on small real files written with media.encoding / PyAV."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from media.audio_track import read_audio
from media.decoding import (
    CorruptMediaError,
    EmptyMediaFileError,
    FrameIndexError,
    MediaError,
    MediaFileNotFoundError,
    NoFramesError,
    NotMediaError,
    NoVideoStreamError,
    VideoReader,
    probe,
    read_frames,
)
from media.encoding import VideoWriter, write_mp4
from media.frame_conversion import FrameConverter

FPS = 15
N_FRAMES = 30  # 2 s at 15 fps
W, H = 64, 48
AUDIO_SR = 48_000
TONE_HZ = 440.0


def brightness_frames(n: int, width: int = W, height: int = H) -> list[np.ndarray]:
    """Frame i is filled with gray level 8 * i, so the decoded mean identifies the frame."""
    return [np.full((height, width, 3), 8 * i, dtype=np.uint8) for i in range(n)]


def sine(seconds: float, sample_rate: int, channels: int) -> np.ndarray:
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    tone = (0.5 * np.sin(2 * np.pi * TONE_HZ * t)).astype(np.float32)
    return np.stack([tone] * channels)


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("decoding")


@pytest.fixture(scope="module")
def av_clip(media_dir) -> Path:
    """2 s, 64x48 at 15 fps, with a 440 Hz tone in 48 kHz stereo AAC (written via VideoWriter)."""
    path = media_dir / "with_audio.mp4"
    with VideoWriter(path, fps=FPS, size=(W, H), sample_rate=AUDIO_SR, audio_channels=2) as writer:
        for frame in brightness_frames(N_FRAMES):
            writer.write(frame)
        writer.write_audio(sine(N_FRAMES / FPS, AUDIO_SR, channels=2))
    return path


@pytest.fixture(scope="module")
def silent_clip(media_dir) -> Path:
    """The same frames, no audio track."""
    return write_mp4(media_dir / "no_audio.mp4", brightness_frames(N_FRAMES), fps=FPS)


@pytest.fixture(scope="module")
def audio_only(media_dir) -> Path:
    """An .m4a holding only a mono 16 kHz AAC stream (written with PyAV directly)."""
    path = media_dir / "audio_only.m4a"
    container = av.open(str(path), mode="w", format="mp4")
    stream = container.add_stream("aac", rate=16_000, layout="mono")
    samples = sine(1.0, 16_000, channels=1)
    for start in range(0, samples.shape[1], 1024):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, start:start + 1024]),
                                           format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16_000, start
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def assert_names_file(err: pytest.ExceptionInfo, path: Path) -> None:
    assert str(path) in str(err.value)


# --- metadata --------------------------------------------------------------------------------

def test_probe_reports_metadata_of_clip_with_audio(av_clip):
    info = probe(av_clip)
    assert info.path == av_clip
    assert info.fps == pytest.approx(FPS)
    assert info.frame_count == N_FRAMES
    assert (info.width, info.height) == (W, H)
    assert info.duration == pytest.approx(N_FRAMES / FPS, abs=1 / FPS)
    assert info.has_audio
    assert info.audio_sample_rate == AUDIO_SR
    assert info.audio_channels == 2
    assert info.rotation == 0


def test_clip_without_audio_is_not_an_error(silent_clip):
    info = probe(silent_clip)
    assert not info.has_audio
    assert info.audio_sample_rate is None and info.audio_channels is None
    with VideoReader(silent_clip) as reader:
        assert reader.read_audio(sample_rate=16_000) is None
    assert read_audio(silent_clip, 16_000) is None


# --- frames ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fixture", ["av_clip", "silent_clip"])
def test_iter_frames_decodes_every_frame_in_order(fixture, request):
    path = request.getfixturevalue(fixture)
    frames = read_frames(path)
    assert [f.index for f in frames] == list(range(N_FRAMES))
    assert [f.time for f in frames] == pytest.approx([i / FPS for i in range(N_FRAMES)], abs=1e-6)
    for f in frames:
        assert f.image.shape == (H, W, 3) and f.image.dtype == np.uint8
        assert abs(float(f.image.mean()) - 8 * f.index) < 3


def test_frames_at_returns_nearest_frames_in_request_order(av_clip):
    requests = [1.0, 0.0, 0.52, 100.0, -1.0]
    # 0.52 s * 15 fps = 7.8 -> frame 8; past the end -> last frame; before the start -> first.
    expected = [15, 0, 8, N_FRAMES - 1, 0]
    with VideoReader(av_clip) as reader:
        frames = reader.frames_at(requests)
    assert [f.index for f in frames] == expected
    for f in frames:
        assert abs(float(f.image.mean()) - 8 * f.index) < 3
        assert f.time == pytest.approx(f.index / FPS, abs=1e-6)


def test_frames_at_gives_independent_arrays_for_repeated_times(av_clip):
    with VideoReader(av_clip) as reader:
        a, b = reader.frames_at([0.4, 0.4])
    assert a.index == b.index == 6
    a.image[:] = 0
    assert b.image.mean() > 40


def test_frames_by_index_in_request_order(av_clip):
    with VideoReader(av_clip) as reader:
        frames = reader.frames_by_index([5, 2, 5, 29])
        assert [f.index for f in frames] == [5, 2, 5, 29]
        assert [round(float(f.image.mean()) / 8) for f in frames] == [5, 2, 5, 29]
        with pytest.raises(FrameIndexError) as err:
            reader.frames_by_index([3, N_FRAMES])
        assert_names_file(err, av_clip)
        with pytest.raises(FrameIndexError):
            reader.frames_by_index([-1])


def test_iter_frames_subsamples_to_requested_fps(av_clip):
    with VideoReader(av_clip) as reader:
        sub = list(reader.iter_frames(fps=5))
        # ticks 0, 0.2, ..., 1.8 s -> every third frame
        assert [f.index for f in sub] == list(range(0, N_FRAMES, 3))
        assert [f.time for f in sub] == pytest.approx([k / 5 for k in range(10)], abs=1e-6)
        # above the native rate, frames repeat to keep one per tick
        up = list(reader.iter_frames(fps=2 * FPS))
        assert len(up) == 2 * N_FRAMES
        assert [f.index for f in up] == [i // 2 for i in range(2 * N_FRAMES)]


def test_subsampling_converts_only_the_picked_frames(media_dir, monkeypatch):
    frames = [np.full((32, 32, 3), i % 256, np.uint8) for i in range(150)]  # 5 s at 30 fps
    path = write_mp4(media_dir / "long.mp4", frames, fps=30)
    converted = []
    original = FrameConverter.__call__

    def counting(self, frame):
        converted.append(frame.pts)
        return original(self, frame)

    monkeypatch.setattr(FrameConverter, "__call__", counting)
    with VideoReader(path) as reader:
        picked = reader.frames_at([0.5, 4.0, 2.0])
        assert [f.index for f in picked] == [15, 120, 60]
        assert len(converted) == 3
        converted.clear()
        assert len(list(reader.iter_frames(fps=2))) == 10
        assert len(converted) == 10


def test_resize_and_gray_shapes(av_clip):
    with VideoReader(av_clip) as reader:
        small = next(reader.iter_frames(short_side=24))
        assert small.image.shape == (24, 32, 3)
        capped = next(reader.iter_frames(max_side=32))
        assert capped.image.shape == (24, 32, 3)
        both = next(reader.iter_frames(short_side=96, max_side=100))  # 128x96 capped to 100x75
        assert both.image.shape == (75, 100, 3)
        gray = reader.frames_at([0.4], gray=True)[0]
        assert gray.image.shape == (H, W) and gray.image.dtype == np.uint8
        assert abs(float(gray.image.mean()) - 8 * gray.index) < 3
        with pytest.raises(ValueError):
            next(reader.iter_frames(fps=0))
        with pytest.raises(ValueError):
            next(reader.iter_frames(short_side=0))


def test_iter_handles_converts_on_request(av_clip):
    with VideoReader(av_clip) as reader:
        handles = []
        for handle in reader.iter_handles():
            if handle.index % 10 == 0:
                handles.append(handle)
    assert [h.index for h in handles] == [0, 10, 20]
    assert handles[1].time == pytest.approx(10 / FPS, abs=1e-6)
    assert handles[1].duration == pytest.approx(1 / FPS, abs=1e-6)
    image = handles[1].to_image()
    assert image.shape == (H, W, 3) and abs(float(image.mean()) - 80) < 3
    assert handles[2].to_image(width=32, gray=True).shape == (24, 32)
    assert handles[2].to_image(short_side=12, gray=False).shape == (12, 16, 3)


def test_reading_again_and_after_audio_gives_the_same_frames(av_clip):
    with VideoReader(av_clip) as reader:
        first = [f.image for f in reader.iter_frames()]
        assert reader.read_audio(sample_rate=8_000) is not None
        again = [f.image for f in reader.iter_frames()]
    assert len(first) == len(again) == N_FRAMES
    assert all(np.array_equal(a, b) for a, b in zip(first, again))


# --- audio -----------------------------------------------------------------------------------

def test_read_audio_resamples_48k_stereo_to_16k_mono(av_clip):
    with VideoReader(av_clip) as reader:
        audio = reader.read_audio(sample_rate=16_000)
        stereo = reader.read_audio(sample_rate=16_000, mono=False)
    duration = N_FRAMES / FPS
    assert audio.dtype == np.float32 and audio.ndim == 1
    # AAC pads to whole 1024-sample frames (at 48 kHz): allow one frame at 16 kHz
    assert abs(len(audio) - duration * 16_000) <= 1024 * 16_000 / AUDIO_SR
    assert np.abs(audio).max() <= 1.0
    spectrum = np.abs(np.fft.rfft(audio))
    peak_hz = np.fft.rfftfreq(len(audio), 1 / 16_000)[spectrum.argmax()]
    assert peak_hz == pytest.approx(TONE_HZ, abs=2)
    # mono is the channel mean: a 0.5-amplitude tone in both channels stays at ~0.5
    assert np.percentile(np.abs(audio), 99.5) == pytest.approx(0.5, abs=0.06)
    assert stereo.shape == (2, len(audio))


# --- bad input -------------------------------------------------------------------------------

def test_missing_file(tmp_path):
    path = tmp_path / "nope.mp4"
    with pytest.raises(MediaFileNotFoundError) as err:
        VideoReader(path)
    assert_names_file(err, path)
    with pytest.raises(MediaFileNotFoundError):
        read_audio(path, 16_000)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(EmptyMediaFileError) as err:
        probe(path)
    assert_names_file(err, path)


def test_text_file_named_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 50)
    with pytest.raises(NotMediaError) as err:
        probe(path)
    assert_names_file(err, path)
    assert isinstance(err.value, ValueError)


def test_directory_is_not_media(tmp_path):
    with pytest.raises(NotMediaError) as err:
        probe(tmp_path)
    assert_names_file(err, tmp_path)


def test_audio_only_file_has_no_video_stream(audio_only):
    with pytest.raises(NoVideoStreamError) as err:
        VideoReader(audio_only)
    assert_names_file(err, audio_only)
    assert "audio" in str(err.value)


def test_video_stream_without_frames(tmp_path):
    # Matroska keeps a declared video track even when only audio was written.
    path = tmp_path / "no_frames.mkv"
    container = av.open(str(path), mode="w", format="matroska")
    stream = container.add_stream("libx264", rate=FPS)
    stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
    audio = container.add_stream("aac", rate=16_000, layout="mono")
    samples = sine(0.5, 16_000, channels=1)
    for start in range(0, samples.shape[1], 1024):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, start:start + 1024]),
                                           format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16_000, start
        for packet in audio.encode(frame):
            container.mux(packet)
    for packet in audio.encode():
        container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    with pytest.raises(NoFramesError) as err:
        probe(path)
    assert_names_file(err, path)


def test_truncated_file_without_index_is_corrupt(av_clip, tmp_path):
    # Our writer puts the moov index at the end, so the first half cannot be opened at all.
    path = tmp_path / "half.mp4"
    data = av_clip.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptMediaError) as err:
        probe(path)
    assert_names_file(err, path)


def _faststart_clip(path: Path, n: int) -> Path:
    """Random-noise frames (so every frame is large) with the moov index at the front."""
    rng = np.random.default_rng(0)
    container = av.open(str(path), mode="w", format="mp4", options={"movflags": "faststart"})
    stream = container.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
    stream.codec_context.thread_count = 1
    for _ in range(n):
        image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
        for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()
    return path


def test_truncated_file_with_index_decodes_partially_with_warning(tmp_path):
    full = _faststart_clip(tmp_path / "full.mp4", 60)
    path = tmp_path / "cut.mp4"
    data = full.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with VideoReader(path) as reader:
        assert reader.info.frame_count == 60  # what the index promises
        frames = list(reader.iter_frames())
        assert 0 < len(frames) < 60
        assert reader.decode_warning is not None
        assert str(path) in reader.decode_warning
        assert f"{len(frames)} frames" in reader.decode_warning
        # a time past the readable part still gives a frame (the last readable one)
        assert reader.frames_at([1.9])[0].index == len(frames) - 1


def test_garbage_in_the_middle_decodes_partially_with_warning(tmp_path):
    # garbage over the start of the middle frame's packet (its NAL length and header): garbage
    # inside a slice's data is often concealed without an error, so where it lands matters
    rng = np.random.default_rng(0)
    noise = [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(N_FRAMES)]
    path = write_mp4(tmp_path / "clip.mp4", noise, fps=FPS)
    with av.open(str(path)) as container:
        positions = [packet.pos for packet in container.demux(video=0) if packet.size]
    middle = positions[len(positions) // 2]
    data = bytearray(path.read_bytes())
    data[middle:middle + 400] = np.random.default_rng(1).integers(0, 256, 400, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    with VideoReader(path) as reader:
        frames = list(reader.iter_frames())
        assert 0 < len(frames) < N_FRAMES
        assert reader.decode_warning is not None and str(path) in reader.decode_warning
        assert f"{len(frames)} frames" in reader.decode_warning


def test_garbage_at_the_start_of_the_stream_is_corrupt(tmp_path):
    path = write_mp4(tmp_path / "clip.mp4", brightness_frames(N_FRAMES), fps=FPS)
    data = bytearray(path.read_bytes())
    start = data.find(b"mdat") + 8
    end = data.find(b"moov") - 8
    data[start:end] = np.random.default_rng(2).integers(0, 256, end - start, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptMediaError) as err:
        VideoReader(path)
    assert_names_file(err, path)


def test_every_error_is_a_media_error():
    for cls in (MediaFileNotFoundError, EmptyMediaFileError, NotMediaError, NoVideoStreamError,
                NoFramesError, CorruptMediaError, FrameIndexError):
        assert issubclass(cls, MediaError) and issubclass(cls, ValueError)


# --- variable frame rate, rotation -----------------------------------------------------------

def test_variable_frame_rate_uses_pts_times(tmp_path):
    path = tmp_path / "vfr.mp4"
    pts_ms = [0, 33, 50, 120, 130, 200, 400, 410, 700, 1000]
    container = av.open(str(path), mode="w", format="mp4")
    stream = container.add_stream("libx264", rate=30)
    stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
    stream.codec_context.time_base = Fraction(1, 1000)
    for i, pts in enumerate(pts_ms):
        frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 20 * i, np.uint8), format="rgb24")
        frame.pts, frame.time_base = pts, Fraction(1, 1000)
        for packet in stream.encode(frame):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()

    with VideoReader(path) as reader:
        frames = list(reader.iter_frames())
        times = [f.time for f in frames]
        assert times == pytest.approx([p / 1000 for p in pts_ms], abs=1e-3)
        assert all(b > a for a, b in zip(times, times[1:]))
        assert [round(float(f.image.mean()) / 20) for f in frames] == list(range(len(pts_ms)))
        # nearest by real time, not by index / fps
        # (index / average fps would put 0.5 s at frame 10, past the end)
        assert [f.index for f in reader.frames_at([0.125, 0.5, 0.69])] == [3, 7, 8]


def test_display_rotation_is_applied(tmp_path):
    path = tmp_path / "phone.mp4"
    coded = np.zeros((H, W, 3), np.uint8)
    coded[:8, :8] = 255  # marker in the top-left corner of the coded frame
    container = av.open(str(path), mode="w", format="mp4")
    stream = container.add_stream("libx264", rate=FPS)
    stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
    stream.set_display_rotation(90)  # counter-clockwise, as FFmpeg's display matrix
    for _ in range(3):
        for packet in stream.encode(av.VideoFrame.from_ndarray(coded, format="rgb24")):
            container.mux(packet)
    for packet in stream.encode():
        container.mux(packet)
    container.close()

    info = probe(path)
    assert info.rotation == 90
    assert (info.width, info.height) == (H, W)
    with VideoReader(path) as reader:
        image = next(reader.iter_frames()).image
        resized = next(reader.iter_frames(short_side=24)).image
        from_handle = next(reader.iter_handles()).to_image(width=24)
    assert image.shape == (W, H, 3)
    # rotated 90 degrees counter-clockwise, the top-left marker ends bottom-left
    assert image[-8:, :8].mean() > 200 and image[:8, :8].mean() < 50
    assert resized.shape == (32, 24, 3)
    assert from_handle.shape == (32, 24, 3) and from_handle[-4:, :4].mean() > 200
