"""Live mode: smoothing, real-time window dropping, the window reader, and whole runs on
generated clips (annotated video, JSON-lines log, missing audio, Ctrl-C)."""
from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from live_mode import (
    AudioChunk,
    AudioRing,
    FrameRing,
    LiveFrame,
    LiveRunner,
    LiveSettings,
    SimulatedClock,
    TemporalSmoother,
    WallClock,
    WindowPacer,
    WindowReader,
    training_clip_seconds,
)
from media.decoding import probe, read_frames
from tests.conftest import load_tool

pytestmark = pytest.mark.slow  # runs the tiny pipeline on live windows

ROOT = Path(__file__).resolve().parents[2]




def total_variation(rows: np.ndarray) -> np.ndarray:
    return np.abs(np.diff(rows, axis=0)).sum(axis=0)


# -- smoothing -------------------------------------------------------------------------------

def test_mean_smoothing_is_the_mean_of_the_last_k_windows():
    rng = np.random.default_rng(0)
    raw = rng.dirichlet(np.ones(3), size=9)
    sm = TemporalSmoother(k=4, mode="mean")
    out = np.stack([sm.update(p) for p in raw])
    for t in range(len(raw)):
        np.testing.assert_allclose(out[t], raw[max(0, t - 3):t + 1].mean(axis=0))
    np.testing.assert_allclose(out.sum(axis=1), 1.0)


def test_ema_smoothing_follows_its_recurrence():
    raw = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    sm = TemporalSmoother(mode="ema", alpha=0.25)
    out = [sm.update(p) for p in raw]
    np.testing.assert_allclose(out[0], [1.0, 0.0])
    np.testing.assert_allclose(out[1], [0.75, 0.25])
    np.testing.assert_allclose(out[2], [0.5625, 0.4375])


@pytest.mark.parametrize("mode", ["mean", "ema"])
def test_smoothed_probabilities_change_no_faster_than_the_raw_ones(mode):
    rng = np.random.default_rng(1)
    for _ in range(200):
        raw = rng.dirichlet(np.full(4, rng.uniform(0.2, 2.0)), size=int(rng.integers(2, 15)))
        sm = TemporalSmoother(k=int(rng.integers(1, 7)), mode=mode, alpha=float(rng.uniform(0.05, 1.0)))
        out = np.stack([sm.update(p) for p in raw])
        assert np.all(total_variation(out) <= total_variation(raw) + 1e-12)


def test_bad_smoothing_settings_are_refused():
    with pytest.raises(ValueError, match="K"):
        LiveSettings(smooth_k=0)
    with pytest.raises(ValueError, match="alpha"):
        LiveSettings(smoothing="ema", ema_alpha=0.0)
    with pytest.raises(ValueError, match="smoothing"):
        LiveSettings(smoothing="median")
    with pytest.raises(ValueError, match="stride"):
        LiveSettings(stride=0)


# -- real-time accounting --------------------------------------------------------------------

def simulate(latency: float, *, window=3.0, stride=1.0, n=8, drop_late=True):
    """Windows due every stride, each taking ``latency`` s, on a simulated clock: which ran."""
    clock, pacer = SimulatedClock(), WindowPacer(stride, drop_late=drop_late)
    ran = []
    for k in range(n):
        due = window + k * stride
        clock.arrive(due)
        run, _ = pacer.admit(due, clock.now())
        if run:
            ran.append(k)
            clock.spend(latency)
    return ran, pacer


def test_windows_that_would_start_more_than_one_stride_late_are_dropped():
    # latency 2.5 s, stride 1 s: w0 runs (free at 5.5); w1 due 4 -> 1.5 late, dropped; w2 due 5 ->
    # 0.5 late, runs (free at 8); w3 due 6 -> 2 late, dropped; w4 due 7 -> exactly 1 late, runs
    # (free at 10.5); w5 (2.5 late) and w6 (1.5 late) dropped; w7 due 10 -> 0.5 late, runs.
    ran, pacer = simulate(2.5)
    assert ran == [0, 2, 4, 7]
    assert pacer.dropped == 4 and pacer.late == 4


def test_fast_enough_processing_drops_nothing():
    ran, pacer = simulate(0.9)
    assert ran == list(range(8)) and pacer.dropped == 0 and pacer.late == 0


def test_without_dropping_every_window_runs_and_lateness_is_counted():
    ran, pacer = simulate(2.5, drop_late=False)
    assert ran == list(range(8))
    assert pacer.dropped == 0 and pacer.late == 7  # lag grows by 1.5 s a window: all but the first are late


def test_wall_clock_counts_from_the_first_frame():
    now = [100.0]
    clock = WallClock(timer=lambda: now[0])
    clock.arrive(0.0)
    now[0] = 102.5
    clock.spend(10.0)  # the wall clock ignores reported work: it measures
    assert clock.now() == pytest.approx(2.5)


# -- rings and the window reader -------------------------------------------------------------

def test_rings_keep_only_the_window():
    ring, audio = FrameRing(), AudioRing(100)
    for i in range(50):
        ring.push(LiveFrame(i, i / 10, np.zeros((4, 6, 3), np.uint8)))
    audio.push(AudioChunk(0.0, np.arange(500, dtype=np.float32)))
    ring.drop_before(3.0)
    audio.drop_before(3.0)
    assert [f.index for f in ring.between(3.0, 4.0)] == list(range(30, 40))
    assert len(ring) == 20
    np.testing.assert_array_equal(audio.between(3.0, 3.5), np.arange(300, 350))
    assert audio.end_time == pytest.approx(5.0)


def test_window_reader_has_the_reader_interface_preprocessing_uses():
    rng = np.random.default_rng(0)
    frames = [LiveFrame(100 + i, 10.0 + i / 10, rng.integers(0, 255, (90, 160, 3), dtype=np.uint8))
              for i in range(20)]
    audio = rng.uniform(-0.5, 0.5, 2 * 8000).astype(np.float32)
    with WindowReader(frames, start=10.0, end=12.0, fps=10.0, audio=audio, audio_rate=8000, name="cam") as r:
        assert (r.info.width, r.info.height, r.info.frame_count, r.info.has_audio) == (160, 90, 20, True)
        assert r.info.duration == pytest.approx(2.0)
        handles = list(r.iter_handles())
        assert [h.index for h in handles] == list(range(20))
        assert handles[5].time == pytest.approx(0.5)  # window-relative
        assert handles[0].to_image(short_side=45).shape == (45, 80, 3)
        assert handles[0].to_image(width=64, gray=True).shape == (36, 64)
        assert r.read_audio(sample_rate=16000).shape == (32000,)  # resampled, same 2 s
    silent = WindowReader(frames, start=10.0, end=12.0, fps=10.0, audio=np.zeros(0, np.float32), audio_rate=8000,
                          name="cam")
    assert not silent.info.has_audio and silent.read_audio(sample_rate=16000) is None


def test_default_window_is_the_median_training_clip_length(tmp_path):
    for i, d in enumerate([5.0, 4.0, 6.5]):
        (tmp_path / f"c{i}").mkdir()
        (tmp_path / f"c{i}" / "meta.json").write_text(json.dumps({"duration": d}))
    assert training_clip_seconds({"pipeline": {"cache": str(tmp_path)}}) == 5.0
    assert training_clip_seconds({"pipeline": {"cache": None}}) is None
    assert training_clip_seconds({"pipeline": {"cache": str(tmp_path / "gone")}}) is None


# -- whole runs on generated clips -----------------------------------------------------------

def test_pipeline_fixture_rebuilds(predictor):
    assert predictor.stream_order == ("visual", "audio", "flow", "face")
    assert predictor.class_names == ["Positive", "Neutral", "Negative"]


@pytest.fixture(scope="module")
def predictor(tiny_pipeline_run):
    from fusion.prediction import Predictor

    return Predictor.from_run(tiny_pipeline_run)


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_live_run_on_a_file_with_audio(tmp_path, tiny_pipeline_run, capsys):
    from tests.conftest import make_scene_clip

    fps, n_frames, window, stride, k = 10.0, 40, 2.0, 1.0, 3
    clip = make_scene_clip(tmp_path / "scene.mp4", n_frames=n_frames, fps=fps, size=(160, 90), faces=2, audio=True)
    out = tmp_path / "annotated.mp4"
    rc = load_tool("live").main(["--run", str(tiny_pipeline_run), "--source", str(clip), "--out", str(out),
                                 "--window", str(window), "--stride", str(stride), "--smooth", str(k), "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])

    info = probe(out)
    assert info.frame_count == n_frames and len(read_frames(out)) == n_frames
    assert info.fps == pytest.approx(fps)
    source_frames = read_frames(clip)
    assert any(not np.array_equal(a.image, b.image) for a, b in zip(read_frames(out), source_frames))

    records = read_log(out.with_suffix(".jsonl"))  # default log next to --out
    ends = [window + i * stride for i in range(10) if window + i * stride <= n_frames / fps + 1e-6]
    assert [r["end_s"] for r in records] == pytest.approx(ends)
    assert [r["start_s"] for r in records] == pytest.approx([e - window for e in ends])
    assert summary["windows"] == len(records) and summary["dropped"] == 0 and summary["frames"] == n_frames
    raw = np.array([[r["probs"][c] for c in ("Positive", "Neutral", "Negative")] for r in records])
    smooth = np.array([[r["smoothed"][c] for c in ("Positive", "Neutral", "Negative")] for r in records])
    for t in range(len(records)):
        np.testing.assert_allclose(smooth[t], raw[max(0, t - k + 1):t + 1].mean(axis=0), atol=2e-6)
    assert np.all(total_variation(smooth) <= total_variation(raw) + 1e-5)
    for r in records:
        assert not r["dropped"] and "audio" not in r["missing"]
        assert r["label"] == max(r["smoothed"], key=r["smoothed"].get)
        assert r["latency_s"] > 0 and r["dropped_windows_so_far"] == 0
        assert all(r["start_s"] <= t < r["end_s"] for t in r["keyframe_times"])
    # memory holds one window of frames (plus the frame that closes it), not the whole stream
    frame_mb = 160 * 90 * 3 / 2**20
    assert summary["peak_ring_mb"] <= (window * fps + 2) * frame_mb + 1e-6


def test_source_without_audio_is_predicted_with_audio_missing(tmp_path, predictor):
    from tests.conftest import make_scene_clip

    clip = make_scene_clip(tmp_path / "silent.mp4", n_frames=30, fps=10.0, size=(160, 90), faces=1, audio=False)
    runner = LiveRunner(predictor, LiveSettings(window=2.0, stride=1.0, smooth_k=2), log=tmp_path / "log.jsonl")
    summary = runner.run(runner.open(clip))
    records = read_log(tmp_path / "log.jsonl")
    assert [r["end_s"] for r in records] == pytest.approx([2.0, 3.0])
    assert all(not r["dropped"] and "audio" in r["missing"] for r in records)
    assert summary.windows == 2 and summary.dropped == 0 and summary.stop_reason == "end of stream"


class InterruptAfter:
    """A source that sends this process SIGINT (as Ctrl-C does) when frame ``n`` is read."""

    def __init__(self, source, n: int) -> None:
        self.source, self.n = source, n
        self.name, self.fps, self.has_audio, self.live = source.name, source.fps, source.has_audio, source.live

    def events(self):
        for event in self.source.events():
            if isinstance(event, LiveFrame) and event.index == self.n:
                os.kill(os.getpid(), signal.SIGINT)
            yield event

    def close(self) -> None:
        self.source.close()


def test_ctrl_c_stops_cleanly_and_the_video_plays(tmp_path, predictor):
    from tests.conftest import make_scene_clip

    clip = make_scene_clip(tmp_path / "long.mp4", n_frames=40, fps=10.0, size=(160, 90), faces=1, audio=True)
    out, log = tmp_path / "cut.mp4", tmp_path / "cut.jsonl"
    runner = LiveRunner(predictor, LiveSettings(window=3.0, stride=1.0), out=out, log=log)
    summary = runner.run(InterruptAfter(runner.open(clip), 12))
    assert summary.stop_reason == "interrupted"
    assert 12 < summary.frames < 40
    assert probe(out).frame_count == summary.frames == len(read_frames(out))
    assert log.exists() and read_log(log) == []  # stopped before the first window ended
    assert signal.getsignal(signal.SIGINT) != runner._on_sigint  # handler restored


def test_per_frame_work_slower_than_real_time_skips_frames_and_windows_go_on(tmp_path, predictor, monkeypatch):
    from live_mode.session import Session
    from tests.conftest import make_scene_clip

    clip = make_scene_clip(tmp_path / "slow.mp4", n_frames=80, fps=10.0, size=(160, 90), faces=1, audio=False)
    show_frame = Session.show_frame

    def slow_show_frame(self, frame):   # every kept frame costs 0.15 s of a 0.1 s frame period
        self.clock.spend(0.15)
        show_frame(self, frame)

    monkeypatch.setattr(Session, "show_frame", slow_show_frame)
    log = tmp_path / "log.jsonl"
    runner = LiveRunner(predictor, LiveSettings(window=2.0, stride=1.0, drop_late=True, warm_up=False), log=log)
    summary = runner.run(runner.open(clip), handle_sigint=False)
    records = read_log(log)
    skips = [r for r in records if r.get("event") == "frames_skipped"]
    windows = [r for r in records if "window" in r]
    assert summary.frames == 80 and summary.frames_skipped == sum(s["count"] for s in skips) > 0
    assert all(s["lag_s"] > 1.0 for s in skips)
    # without skipping, the lag would grow for ever and every window after the first late one
    # would be dropped; with it, windows are predicted after each catch-up
    first_skip = skips[0]["time_s"]
    assert any(not w["dropped"] and w["end_s"] > first_skip + 1.0 for w in windows)
    assert summary.frames_skipped < 80 / 2


class ArrivingAt:
    """A file played as a live stream whose frame ``i`` (at source time ``t``) arrives at
    ``arrival(i, t)`` on a fake monotonic clock (``now``) that started when the stream opened (0)."""

    def __init__(self, source, arrival) -> None:
        self.source, self.arrival, self.now = source, arrival, 0.0
        self.name, self.fps, self.has_audio, self.live, self.opened_at = source.name, source.fps, False, True, 0.0

    def events(self):
        for event in self.source.events():
            if isinstance(event, LiveFrame):
                self.now = self.arrival(event.index, event.time)
                yield event

    def close(self) -> None:
        self.source.close()


def run_arriving(predictor, clip: Path, log: Path, arrival):
    from live_mode.pacing import WallClock

    runner = LiveRunner(predictor, LiveSettings(window=2.0, stride=1.0, drop_late=True, warm_up=False), log=log)
    source = ArrivingAt(runner.open(clip), arrival)
    summary = runner.run(source, clock=WallClock(timer=lambda: source.now, origin=0.0), handle_sigint=False)
    records = read_log(log)
    return (summary, [r for r in records if r.get("event") == "frames_skipped"],
            [r for r in records if "window" in r])


def test_a_stream_buffered_during_warm_up_is_skipped_until_live_mode_is_caught_up(tmp_path, predictor):
    from tests.conftest import make_scene_clip

    clip = make_scene_clip(tmp_path / "buffered.mp4", n_frames=80, fps=10.0, size=(160, 90), faces=1, audio=False)
    # 3 s of stream buffered while live mode warmed up: those frames come in a burst (10 ms apart)
    # until the reader has caught up with the stream, then at its pace
    summary, skips, windows = run_arriving(predictor, clip, tmp_path / "log.jsonl",
                                           lambda i, t: max(3.0 + 0.01 * i, t))
    assert len(skips) == 1 and "rebased_s" not in skips[0] and skips[0]["lag_s"] == pytest.approx(3.0, abs=0.01)
    assert 30 <= summary.frames_skipped <= 36                 # the backlog, about 3 s of frames
    late = [w for w in windows if w["dropped"]]
    assert late and all(w["end_s"] <= 4.0 for w in late)      # windows due in the backlog were late
    assert all(not w["dropped"] for w in windows if w["end_s"] >= 6.0)


def test_a_lag_that_skipping_cannot_shrink_is_rebased_not_skipped_for_ever(tmp_path, predictor):
    from tests.conftest import make_scene_clip

    clip = make_scene_clip(tmp_path / "stalled.mp4", n_frames=80, fps=10.0, size=(160, 90), faces=1, audio=False)
    # the stream stalled 3 s while live mode warmed up: its frames come at its pace, 3 s late
    summary, skips, windows = run_arriving(predictor, clip, tmp_path / "log.jsonl", lambda i, t: t + 3.0)
    assert len(skips) == 1 and skips[0]["rebased_s"] == pytest.approx(3.0, abs=0.01)
    assert summary.frames_skipped <= 12                       # one second of source, then rebased
    assert all(not w["dropped"] for w in windows if w["end_s"] >= 3.0)
