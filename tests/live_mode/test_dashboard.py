"""The live dashboard's server: the address rules (127.0.0.1 by default, another address only
with --allow-remote), the JSON API over a run's windows and events, the page and its files, and
the video and server-sent-event streams of a real server, which stops cleanly."""
from __future__ import annotations

import json
import threading
import time

import httpx
import numpy as np
import pytest
from starlette.testclient import TestClient

from core.command_line import run_main
from live_mode.dashboard import DashboardServer, ServeAddressError, create_app, parse_serve_address
from live_mode.dashboard_state import DashboardState
from live_mode.settings import LiveSummary
from tests.conftest import load_tool

CLASSES = ["Positive", "Neutral", "Negative"]


def window(k: int, *, dropped: bool = False, reason: str | None = None) -> dict:
    rec = {"window": k, "start_s": k * 0.5, "end_s": k * 0.5 + 2.0, "dropped": dropped, "frames": 20}
    if dropped:
        rec["reason"] = reason or "late"
    else:
        p = {"Positive": 0.6, "Neutral": 0.3, "Negative": 0.1}
        rec.update({"label": "Positive", "shown": "Positive", "probs": p, "smoothed": p,
                    "streams": {"visual": p, "audio": None}, "keyframe_times": [k * 0.5 + 0.5, k * 0.5 + 1.5]})
    return rec


class FakeSession:
    """What DashboardState.on_start reads from live mode's session."""

    def __init__(self) -> None:
        class Runner:
            class_names, streams = CLASSES, ("visual", "audio")

        class Source:
            name, live, fps, has_audio = "http://127.0.0.1:1/stream.ts", True, 10.0, True

        class Settings:
            window, stride, smoothing, smooth_k, fusion, drop_late = 2.0, 0.5, "mean", 5, "head", True

        self.runner, self.source, self.st = Runner(), Source(), Settings()
        self.summary = LiveSummary(source=Source.name, stride=0.5, drop_late=True)
        self.gap_open = None


def fed_state() -> DashboardState:
    """A dashboard state after three windows (one late) and a drop with its reconnection."""
    state = DashboardState()
    session = FakeSession()
    state.on_start(session)
    image = np.full((90, 160, 3), 128, np.uint8)
    for k in range(3):
        rec = window(k, dropped=k == 1)
        state.on_window(rec, [] if rec["dropped"] else [(t, image) for t in rec["keyframe_times"]])
        if not rec["dropped"]:
            session.summary.windows += 1
            session.summary.latencies.append(0.1 + 0.01 * k)
    session.summary.dropped = session.summary.late = 1
    state.on_event({"event": "source_dropped", "time_s": 3.1, "reason": "the stream ended"})
    state.on_event({"event": "source_reconnected", "time_s": 6.0, "gap_s": 2.9, "attempts": 2})
    session.summary.drops = session.summary.reconnects = 1
    return state


def test_serve_binds_loopback_by_default_and_refuses_others_without_allow_remote():
    assert parse_serve_address("8765") == ("127.0.0.1", 8765)
    assert parse_serve_address("localhost:9000") == ("localhost", 9000)
    assert parse_serve_address("0.0.0.0:8765", allow_remote=True) == ("0.0.0.0", 8765)
    with pytest.raises(ServeAddressError, match="--allow-remote"):
        parse_serve_address("0.0.0.0:8765")
    with pytest.raises(ServeAddressError, match="PORT"):
        parse_serve_address("127.0.0.1:http")


@pytest.mark.slow  # imports the whole pipeline with the tool
def test_live_tool_refuses_a_remote_address_with_one_error_line(capsys, tmp_path):
    # refused before anything is loaded: the run directory is not even read
    rc = run_main(load_tool("live").main, ["--run", str(tmp_path / "no-run"), "--source", "0",
                                           "--serve", "0.0.0.0:8765"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and "--allow-remote" in err[0]


def test_status_and_windows_api():
    client = TestClient(create_app(fed_state()))
    status = client.get("/api/status").json()
    assert status["source"].startswith("http://") and status["classes"] == CLASSES
    assert status["windows"] == 2 and status["dropped"] == 1 and status["audio"] == "present"
    assert status["drops"] == 1 and status["reconnects"] == 1 and status["connected"] is True
    assert status["latency_p95_s"] == pytest.approx(np.percentile([0.1, 0.12], 95), abs=1e-4)
    assert status["needed_windows_per_s"] == 2.0 and status["keeps_up"] is False  # a window was late
    assert [e["event"] for e in status["events"]] == ["source_dropped", "source_reconnected"]

    every = client.get("/api/windows").json()["windows"]
    assert [w["window"] for w in every] == [0, 1, 2]
    later = client.get("/api/windows", params={"since": 2.2}).json()["windows"]
    assert [w["window"] for w in later] == [1, 2]                 # ending after 2.2 s
    assert client.get("/api/windows", params={"since": "soon"}).status_code == 400

    jpeg = client.get("/api/keyframes/1.jpg")
    assert jpeg.status_code == 200 and jpeg.content[:2] == b"\xff\xd8"
    assert client.get("/api/keyframes/5.jpg").status_code == 404


def test_page_and_its_files_are_served_from_the_package():
    client = TestClient(create_app(DashboardState()))
    page = client.get("/")
    assert page.status_code == 200 and "/static/dashboard.js" in page.text and "https://" not in page.text
    for name in ("dashboard.js", "dashboard.css"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and "http://" not in r.text and "https://" not in r.text  # nothing fetched
    assert client.get("/api/status").json()["state"] == "starting"


def test_video_and_feed_stream_from_a_real_server_that_stops_cleanly():
    state = fed_state()
    server = DashboardServer(state, "127.0.0.1", 0).start()
    stop = threading.Event()

    def produce():   # live mode's side: frames while a client watches
        while not stop.is_set():
            if state.wants_frames(time.monotonic()):
                state.on_frame(np.zeros((90, 160, 3), np.uint8), time.monotonic())
            time.sleep(0.02)

    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    try:
        assert not state.wants_frames(time.monotonic())   # nobody watches: no frame is encoded
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            with client.stream("GET", "/video.mjpg") as r:
                assert r.headers["content-type"].startswith("multipart/x-mixed-replace")
                data = b""
                for chunk in r.iter_bytes():
                    data += chunk
                    if data.count(b"\xff\xd9") >= 2:
                        break
                assert data.startswith(b"--frame") and b"Content-Type: image/jpeg" in data
            with client.stream("GET", "/api/feed", params={"after": 1}) as r:
                lines = []
                for line in r.iter_lines():
                    lines.append(line)
                    if sum(x.startswith("data: ") for x in lines) >= 3:
                        break
            events = [json.loads(x[6:]) for x in lines if x.startswith("data: ")]
            assert [e.get("window", e.get("event")) for e in events] == [1, 2, "source_dropped"]
    finally:
        stop.set()
        t0 = time.monotonic()
        server.stop()
        producer.join()
    assert time.monotonic() - t0 < 5.0
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url + "api/status", timeout=2.0)


@pytest.mark.slow  # the tiny pipeline on a clip
def test_live_tool_serves_while_it_runs_and_stops_with_it(tmp_path, tiny_pipeline_run, capsys):
    from tests.conftest import make_scene_clip

    clip = make_scene_clip(tmp_path / "scene.mp4", n_frames=30, fps=10.0, size=(160, 90), faces=1, audio=True)
    rc = load_tool("live").main(["--run", str(tiny_pipeline_run), "--source", str(clip), "--window", "2",
                                 "--serve", "0.0.0.0:0", "--allow-remote", "--quiet"])
    out, err = capsys.readouterr()
    assert rc == 0 and "dashboard: http://0.0.0.0:" in out
    assert "no authentication" in err and err.count("warning:") == 1
    assert not [t for t in threading.enumerate() if t.name == "dashboard"]   # the server ended with live mode


def test_video_frames_are_paced_by_source_time_and_shown_at_display_size():
    from live_mode.session import display_view
    from live_mode.settings import DISPLAY_MAX_SIDE

    state = DashboardState(max_fps=10.0)
    state.video_clients = 1
    encoded = []
    for i in range(50):                       # 2 s of a 25 fps source, read as fast as it goes
        t = i / 25.0
        if state.wants_frames(t):
            state.on_frame(np.zeros((720, 1280, 3), np.uint8), t)
            encoded.append(t)
    assert len(encoded) == 20                  # 10 per second of source, whatever the wall clock did
    assert sum(t < 1.0 for t in encoded) == 10
    small, boxes = display_view(np.zeros((720, 1280, 3), np.uint8), [[100.0, 200.0, 300.0, 400.0]])
    assert max(small.shape[:2]) <= DISPLAY_MAX_SIDE and small.shape[0] % 2 == 0 and small.shape[1] % 2 == 0
    s = small.shape[1] / 1280
    assert boxes == [[pytest.approx(v * s) for v in (100.0, 200.0, 300.0, 400.0)]]
