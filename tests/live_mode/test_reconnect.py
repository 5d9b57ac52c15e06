"""Live mode on a network stream that drops and comes back: a clip served by a local ffmpeg
over HTTP, killed mid-stream and started again; the log says when the source dropped and
reconnected, the windows in the gap are not predicted and windows are predicted after it. A
stream that never connects is one ``error:`` line, exit 2."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from live_mode import LiveRunner, LiveSettings
from live_mode.session import Listener
from tests.media.stream_server import StreamServer, free_port, make_stream_clip

pytestmark = pytest.mark.slow  # plays a stream in real time through the tiny pipeline

ROOT = Path(__file__).resolve().parents[2]


class KillAndRestart(Listener):
    """Kills the server after the first window, starts it again ``down_s`` later and stops the
    run once ``after`` windows were predicted after the reconnection (or, failing that, after
    ``give_up_s``, so that a test on a slow machine fails instead of hanging)."""

    def __init__(self, runner: LiveRunner, server: StreamServer, *, down_s: float = 3.0, after: int = 2,
                 give_up_s: float = 240.0) -> None:
        self.runner, self.server, self.down_s, self.after = runner, server, down_s, after
        self.killed = self.back = False
        self.predicted_after = 0
        self.timer = threading.Timer(give_up_s, runner.request_stop, args=("gave up",))
        self.timer.daemon = True

    def on_start(self, session) -> None:
        self.timer.start()

    def on_stop(self, summary) -> None:
        self.timer.cancel()

    def on_window(self, record, keyframes) -> None:
        if not self.killed:
            self.killed = True
            self.server.kill()
            threading.Timer(self.down_s, self.server.start).start()
        elif not record["dropped"] and self.back:
            self.predicted_after += 1
            if self.predicted_after >= self.after:
                self.runner.request_stop("test done")

    def on_event(self, record) -> None:
        self.back = self.back or record["event"] == "source_reconnected"


def test_live_mode_logs_the_drop_reconnects_and_predicts_after_it(tmp_path, tiny_pipeline_run):
    from fusion.prediction import Predictor

    server = StreamServer(make_stream_clip(tmp_path / "clip.mp4"), "http").start()
    log = tmp_path / "live.jsonl"
    # the audio stream alone (late fusion): next to no per-frame work, so that live mode keeps up
    # with the stream even on a busy machine and windows are predicted after the reconnection
    settings = LiveSettings(window=1.0, stride=0.5, drop_late=True, fusion="late", late_weights=(("audio", 1.0),))
    runner = LiveRunner(Predictor.from_run(tiny_pipeline_run), settings, log=log)
    watcher = KillAndRestart(runner, server, after=2)
    runner.listeners.append(watcher)
    try:
        summary = runner.run(runner.open(server.url, timeouts=(5.0, 1.5)), handle_sigint=False)
    finally:
        server.kill()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    # (frames the stream buffered while live mode warmed up may be skipped first: frames_skipped)
    events = [r for r in lines if r.get("event", "").startswith("source_")]
    assert [e["event"] for e in events][:2] == ["source_dropped", "source_reconnected"]
    dropped, back = events[0], events[1]
    assert back["gap_s"] > 1.0 and back["time_s"] > dropped["time_s"] and back["attempts"] >= 1
    assert back["smoothing_restarted"] is True       # the gap is longer than the 1 s window
    windows = [r for r in lines if "window" in r]
    gap = [w for w in windows if w.get("reason") == "gap in the source"]
    assert gap and all(w["start_s"] < back["time_s"] and w["end_s"] > dropped["time_s"] for w in gap)
    after = [w for w in windows if not w["dropped"] and w["start_s"] >= back["time_s"]]
    assert len(after) >= 2
    assert summary.stop_reason == "test done" and summary.drops == 1 and summary.reconnects == 1


def test_a_stream_that_never_connects_is_one_error_line(tiny_pipeline_run):
    url = f"http://127.0.0.1:{free_port()}/stream.ts"  # nothing listens there
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "live.py"), "--run", str(tiny_pipeline_run),
                           "--source", url], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
    assert done.returncode == 2 and len(errors) == 1 and url in errors[0]
    assert done.stderr.strip().splitlines()[-1] == errors[0] and "Traceback" not in done.stderr
