"""A camera with a microphone on one clock. No device exists here: the camera is a video file read
through the same OpenCV capture, the microphone PyAV's lavfi test sources read through the same
PyAV capture code, both delivered at real-time pace."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from live_mode import (
    AudioCapture,
    AudioChunk,
    AudioStopped,
    CameraSource,
    CaptureSource,
    LiveRunner,
    LiveSettings,
    LiveSourceError,
    default_audio_format,
    open_microphone,
)

pytestmark = pytest.mark.slow  # plays files and devices in real time

SR = 16000


def identity(w: int, h: int) -> tuple[int, int]:
    return w, h


def flash_video(path: Path, *, seconds: float, fps: float, flash: tuple[float, float] | None) -> Path:
    """A grey video (no audio) that turns white during ``flash`` = (start, end) s."""
    from media.encoding import write_mp4

    frames = []
    for i in range(int(round(seconds * fps))):
        t = i / fps
        bright = flash is not None and flash[0] - 1e-9 <= t < flash[1]
        frames.append(np.full((72, 96, 3), 230 if bright else 40, np.uint8))
    return write_mp4(path, frames, fps=fps)


def beep(start: float, end: float, seconds: float) -> str:
    """A lavfi source: silence with a 440 Hz beep during [start, end) s."""
    return (f"aevalsrc=exprs='if(between(t,{start},{end}),0.5*sin(2*PI*440*t),0)':"
            f"s={SR}:d={seconds}")


def test_camera_and_microphone_share_one_clock(tmp_path):
    video = flash_video(tmp_path / "flash.mp4", seconds=2.5, fps=20.0, flash=(1.0, 1.5))
    camera = CameraSource(str(video), size_for=identity, pace=True)
    mic = AudioCapture(beep(1.0, 1.5, 2.5), fmt="lavfi", sample_rate=SR, pace=True)
    source = CaptureSource(camera, mic)
    frames, chunks, stops = [], [], []
    try:
        for event in source.events():
            (chunks if isinstance(event, AudioChunk) else stops if isinstance(event, AudioStopped) else frames
             ).append(event)
    finally:
        source.close()
    assert len(frames) == 50 and source.has_audio
    flash_at = next(f.time for f in frames if f.image.mean() > 128)
    audio = np.concatenate([c.samples for c in chunks])
    start = chunks[0].time
    # the chunks are one gap-free signal on the frames' clock
    for a, b in zip(chunks, chunks[1:]):
        assert b.time == pytest.approx(a.time + len(a.samples) / SR, abs=1e-6)
    beep_at = start + int(np.argmax(np.abs(audio) > 0.1)) / SR
    # the beep and the flash were made at the same moment of the media: they arrive together
    assert abs(beep_at - flash_at) < 0.12
    assert abs(start) < 0.12 and abs(flash_at - 1.0) < 0.12


@pytest.fixture(scope="module")
def predictor(tiny_pipeline_run):
    from fusion.prediction import Predictor

    return Predictor.from_run(tiny_pipeline_run)


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_microphone_that_stops_leaves_audio_missing_from_then_on(tmp_path, predictor):
    from tests.conftest import make_scene_clip

    video = make_scene_clip(tmp_path / "scene.mp4", n_frames=40, fps=10.0, size=(160, 90), faces=1, audio=False)
    # the microphone delivers 2.5 s, then its input ends (as an unplugged device would)
    mic = AudioCapture(f"sine=frequency=330:sample_rate={SR}:duration=2.5", fmt="lavfi", sample_rate=SR, pace=True)
    source = CaptureSource(CameraSource(str(video), size_for=identity, pace=True), mic)
    lines = []
    runner = LiveRunner(predictor, LiveSettings(window=2.0, stride=1.0, warm_up=False), log=tmp_path / "log.jsonl",
                        echo=lines.append)
    summary = runner.run(source, handle_sigint=False)
    records = read_log(tmp_path / "log.jsonl")
    events = [r for r in records if "event" in r]
    windows = [r for r in records if "window" in r and not r["dropped"]]
    assert len(events) == 1 and events[0]["event"] == "audio_missing"
    assert events[0]["time_s"] == pytest.approx(2.5, abs=0.15) and "ended" in events[0]["reason"]
    assert summary.audio_lost_at == pytest.approx(events[0]["time_s"], abs=1e-4)
    assert any("audio missing from here on" in line for line in lines)
    assert [r["end_s"] for r in windows] == pytest.approx([2.0, 3.0, 4.0])
    assert "audio" not in windows[0]["missing"]                  # [0, 2) s: the microphone was there
    assert all("audio" in r["missing"] for r in windows[1:])     # [1, 3) and [2, 4) reach past 2.5 s


def test_no_microphone_means_audio_missing_from_the_start(tmp_path, predictor):
    from tests.conftest import make_scene_clip

    with pytest.raises(LiveSourceError, match="no-such-microphone"):
        open_microphone("no-such-microphone", fmt="alsa", sample_rate=SR)
    video = make_scene_clip(tmp_path / "scene.mp4", n_frames=25, fps=10.0, size=(160, 90), faces=1, audio=False)
    source = CaptureSource(CameraSource(str(video), size_for=identity), None,
                           audio_error="alsa:hw:9: cannot open the audio input")
    runner = LiveRunner(predictor, LiveSettings(window=2.0, stride=1.0, warm_up=False), log=tmp_path / "log.jsonl")
    summary = runner.run(source, handle_sigint=False)
    records = read_log(tmp_path / "log.jsonl")
    assert records[0] == {"event": "audio_missing", "time_s": 0.0, "reason": "alsa:hw:9: cannot open the audio input"}
    assert summary.windows == 1 and "audio" in records[1]["missing"]


def test_each_platform_has_a_capture_format():
    assert default_audio_format("linux") == "alsa"
    assert default_audio_format("darwin") == "avfoundation"
    assert default_audio_format("win32") == "dshow"
    assert default_audio_format("sunos5") is None


def test_a_files_frames_wait_for_their_audio(tmp_path):
    """mp4 muxers store audio in chunks that can trail the video (this clip's by a second after
    its first ten); a file is played as a player presents it, so a frame comes only once the
    audio up to its time has come, and nothing is lost or reordered within a stream."""
    import av

    from benchmarks.inputs import write_scene_clip
    from media.capture import PyAVSource

    video = write_scene_clip(tmp_path / "scene.mp4", seconds=12.0, size=(128, 72), fps=25.0, sample_rate=48000,
                             audio_channels=6)
    trailing = 0.0
    with av.open(str(video)) as container:  # the file really stores audio behind the video
        audio_end = 0.0
        for packet in container.demux():
            if packet.pts is None:
                continue
            t = float(packet.pts * packet.time_base)
            if packet.stream.type == "audio":
                audio_end = t
            else:
                trailing = max(trailing, t - audio_end)
    assert trailing > 0.5
    source = PyAVSource(str(video), size_for=identity, audio_rate=SR, live=False)
    heard, frames, samples = 0.0, [], 0
    try:
        for event in source.events():
            if isinstance(event, AudioChunk):
                assert event.time == pytest.approx(samples / SR, abs=1e-3)
                samples += len(event.samples)
                heard = event.time + len(event.samples) / SR
            else:
                assert event.time <= heard + 1e-6, f"frame at {event.time:.2f} s before its audio ({heard:.2f} s)"
                frames.append(event)
    finally:
        source.close()
    assert [f.index for f in frames] == list(range(300))
    assert [round(f.time * 25) for f in frames] == list(range(300))
    assert samples / SR == pytest.approx(12.0, abs=0.1)
