"""What the live dashboard (:mod:`live_mode.dashboard`) shows, kept as live mode runs:
:class:`DashboardState` is a :class:`live_mode.session.Listener` that stores the windows' log
lines, the events (drops, reconnections, audio missing), the latest window's keyframes and the
latest annotated frame, and computes the status. Live mode calls it on its own thread; the web
server reads it on another, through the methods here, under one lock.

Serving costs live mode (almost) nothing: annotated frames are asked for (and JPEG-encoded) only
while a video client is connected, at most ``max_fps`` of them per second of source (the
source's rate up to :data:`VIDEO_MAX_FPS`), and each client
takes the newest frame when it is ready for one (a slow client skips frames, it never queues
them). The video is at most :data:`live_mode.settings.DISPLAY_MAX_SIDE` px on its longer side."""
from __future__ import annotations

import threading
import time
from collections import deque
from typing import TYPE_CHECKING

import cv2
import numpy as np

from live_mode.buffers import area_resize, convert_image
from live_mode.session import Listener
from live_mode.settings import DISPLAY_MAX_SIDE, LiveSummary

if TYPE_CHECKING:
    from live_mode.session import Session

#: windows kept for /api/windows and the timeline (at a 0.5 s stride: about 33 minutes)
MAX_WINDOWS = 4000
#: the most video frames per second of source encoded for the dashboard (fewer when the source has fewer)
VIDEO_MAX_FPS = 15.0
#: JPEG quality of the video and keyframes
JPEG_QUALITY = 80
#: keyframe thumbnails' height (px)
THUMB_HEIGHT = 96


def encode_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """uint8 RGB ``(H, W, 3)`` -> JPEG bytes."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


class DashboardState(Listener):
    """The dashboard's view of a live run (see the module docstring). ``max_fps``: the most
    annotated frames per second of source encoded for the video (default: the source's frame
    rate, at most :data:`VIDEO_MAX_FPS`)."""

    def __init__(self, *, max_fps: float | None = None, clock=time.monotonic) -> None:
        self._lock = threading.Lock()
        self._frame_ready = threading.Condition(self._lock)
        self._clock = clock
        self.max_fps = max_fps
        self.session: Session | None = None
        self.info: dict = {"state": "starting"}
        self.windows: deque[dict] = deque(maxlen=MAX_WINDOWS)
        self.events: list[dict] = []
        self.seq = 0                           # windows and events received so far
        self.keyframes: list[tuple[float, np.ndarray]] = []
        self.frame_jpeg: bytes | None = None
        self.frame_seq = 0
        self.frame_time: float | None = None
        self._next_encode = -1e9           # source time (s) from which the next video frame is due
        self.video_clients = 0
        self.finished = False
        self.summary: LiveSummary | None = None
        self._window_walls: deque[float] = deque(maxlen=64)
        self.started_wall = time.time()

    # -- live mode's side (the Listener calls) ---------------------------------------------------

    def on_start(self, session: "Session") -> None:
        runner, source, st = session.runner, session.source, session.st
        with self._lock:
            self.session = session
            self.summary = session.summary
            self.info = {"state": "running", "source": source.name, "live": bool(source.live),
                         "fps": float(source.fps), "has_audio": bool(source.has_audio),
                         "classes": list(runner.class_names), "streams": list(runner.streams),
                         "window_s": st.window, "stride_s": st.stride, "smoothing": st.smoothing,
                         "smooth_k": st.smooth_k, "fusion": st.fusion, "drop_late": st.drop_late}
            if self.max_fps is None:
                self.max_fps = min(float(source.fps), VIDEO_MAX_FPS)

    def wants_frames(self, time_s: float) -> bool:
        """Whether the frame at source time ``time_s`` (s) is to be drawn and encoded: a video
        client is connected and at least ``1 / max_fps`` s of source time passed since the last
        encoded frame (paced by the source, so a file read faster than real time is encoded as
        a live source would be)."""
        if self.video_clients <= 0:
            return False
        return time_s >= self._next_encode - 1e-4

    def on_frame(self, image: np.ndarray, time_s: float) -> None:
        # frames are due every 1 / max_fps s of source (on average, whatever the source's rate);
        # after a pause the schedule restarts at this frame rather than catching up in a burst
        step = 1.0 / max(self.max_fps or VIDEO_MAX_FPS, 1e-3)
        due = self._next_encode + step
        self._next_encode = due if due > time_s else float(time_s) + step
        if max(image.shape[:2]) > DISPLAY_MAX_SIDE:   # the full-size frame of --out: shown smaller
            image = convert_image(image, max_side=DISPLAY_MAX_SIDE)
        jpeg = encode_jpeg(image)
        with self._frame_ready:
            self.frame_jpeg, self.frame_time = jpeg, float(time_s)
            self.frame_seq += 1
            self._frame_ready.notify_all()

    def on_window(self, record: dict, keyframes: list[tuple[float, np.ndarray]]) -> None:
        thumbs = [(t, thumbnail(img)) for t, img in keyframes]
        with self._lock:
            self.seq += 1
            self.windows.append({**record, "seq": self.seq, "wall_time": round(time.time(), 3)})
            if not record["dropped"]:
                self._window_walls.append(self._clock())
                self.keyframes = thumbs

    def on_event(self, record: dict) -> None:
        with self._lock:
            self.seq += 1
            self.events.append({**record, "seq": self.seq})

    def on_stop(self, summary: LiveSummary) -> None:
        with self._frame_ready:
            self.finished = True
            self.summary = summary
            self.info = {**self.info, "state": "stopped", "stop_reason": summary.stop_reason}
            self._frame_ready.notify_all()

    # -- the server's side -----------------------------------------------------------------------

    def status(self) -> dict:
        """``/api/status``: the run's settings (``info``) and how it goes: windows predicted and
        dropped (late; ``gap_windows``: in a gap of the source), windows per second over the last
        predicted windows (``windows_per_s``) against ``needed_windows_per_s``, latency mean and
        p95 (s), ``keeps_up``, ``audio`` ("present", "missing" or "none"), source ``connected``,
        ``drops`` and ``reconnects``, the last source time seen and the clients watching."""
        with self._lock:
            s, info = self.summary, dict(self.info)
            walls = list(self._window_walls)
            session = self.session
            events = list(self.events[-20:])
            last_window = self.windows[-1] if self.windows else None
        out = {**info, "seq": self.seq, "video_clients": self.video_clients,
               "uptime_s": round(time.time() - self.started_wall, 1)}
        if s is None:
            return out
        lat = list(s.latencies)
        rate = (len(walls) - 1) / (walls[-1] - walls[0]) if len(walls) >= 2 and walls[-1] > walls[0] else None
        has_audio = info.get("has_audio", False)
        out.update({
            "frames": s.frames, "source_time_s": round(s.source_s, 2), "windows": s.windows, "dropped": s.dropped,
            "late": s.late, "gap_windows": s.gap_windows,
            "windows_per_s": None if rate is None else round(rate, 3),
            "needed_windows_per_s": round(1.0 / info["stride_s"], 3) if info.get("stride_s") else None,
            "latency_mean_s": round(float(np.mean(lat)), 4) if lat else None,
            "latency_p95_s": round(float(np.percentile(lat, 95)), 4) if lat else None,
            "keeps_up": s.late_after_first == 0,
            "audio": "none" if not has_audio else ("missing" if s.audio_lost_at is not None else "present"),
            "connected": session is None or session.gap_open is None,
            "drops": s.drops, "reconnects": s.reconnects, "gaps_s": list(s.gaps_s),
            "events": events, "last_window": last_window,
        })
        return out

    def windows_since(self, since: float | None = None, seq: int | None = None) -> list[dict]:
        """The windows ending after source time ``since`` (s), or received after ``seq``."""
        with self._lock:
            items = list(self.windows)
        if seq is not None:
            return [w for w in items if w["seq"] > seq]
        return items if since is None else [w for w in items if w["end_s"] > since]

    def feed_since(self, seq: int) -> list[dict]:
        """Windows and events received after ``seq``, in order (each window has ``window``, each
        event ``event``)."""
        with self._lock:
            items = [w for w in self.windows if w["seq"] > seq] + [e for e in self.events if e["seq"] > seq]
        return sorted(items, key=lambda r: r["seq"])

    def keyframe_jpeg(self, i: int) -> bytes | None:
        with self._lock:
            kf = self.keyframes
        return encode_jpeg(kf[i][1]) if 0 <= i < len(kf) else None

    def keyframe_times(self) -> list[float]:
        with self._lock:
            return [t for t, _ in self.keyframes]

    def next_frame(self, after: int, timeout: float = 1.0) -> tuple[int, bytes | None]:
        """``(seq, JPEG)`` of the newest annotated frame once it is newer than ``after`` (waits up
        to ``timeout`` s; the same frame again when none came)."""
        with self._frame_ready:
            if self.frame_seq <= after and not self.finished:
                self._frame_ready.wait(timeout)
            return self.frame_seq, self.frame_jpeg

    def add_video_client(self, delta: int) -> None:
        with self._lock:
            self.video_clients += delta


def thumbnail(image: np.ndarray, height: int = THUMB_HEIGHT) -> np.ndarray:
    """A copy of ``image`` (uint8 RGB) scaled to ``height`` px high."""
    h, w = image.shape[:2]
    if h <= height:
        return image.copy()
    return area_resize(image, (max(1, round(w * height / h)), height))
