"""What serving the live dashboard costs live mode, and the seconds per stage of a live run.

:func:`serve_comparison` runs :func:`benchmarks.live.live_benchmark` without and with the
dashboard serving (and a client reading its video and its event feed, :class:`DashboardClient`),
interleaved (A B A B ...), and reports the medians, the spreads and the ratio per round.
:class:`StageTimes` collects the per-stage seconds of each predicted window."""
from __future__ import annotations

import statistics
import threading
import urllib.request
from typing import Sequence

from live_mode.session import Listener

#: the numbers compared between the runs without and with the dashboard
COMPARED = ("windows_per_s", "mean_latency_s", "p95_latency_s", "realtime_factor", "per_frame_load")


class StageTimes(Listener):
    """The ``timings_s`` of each predicted window's log line (s per stage)."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def on_window(self, record: dict, keyframes) -> None:
        if not record["dropped"]:
            self.rows.append(dict(record["timings_s"]))

    def medians(self, *, skip_first: bool = True) -> dict[str, float]:
        """Median seconds per stage (the first window, which pays one-off costs, left out when
        there are others)."""
        rows = self.rows[1:] if skip_first and len(self.rows) > 1 else self.rows
        keys = sorted({k for r in rows for k in r})
        return {k: round(statistics.median(r[k] for r in rows if k in r), 4) for k in keys}


class DashboardClient:
    """A browser's load on the dashboard at ``url``: one thread reads the MJPEG video, one the
    server-sent-event feed, as fast as they come, until :meth:`close`; counts ``video_bytes`` and
    ``feed_bytes``."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.video_bytes = self.feed_bytes = 0
        self._closing = threading.Event()
        self._threads = [threading.Thread(target=self._read, args=(path, kind), daemon=True, name=f"client {kind}")
                         for path, kind in (("/video.mjpg", "video"), ("/api/feed", "feed"))]
        for t in self._threads:
            t.start()

    def _read(self, path: str, kind: str) -> None:
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as response:
                while not self._closing.is_set():
                    chunk = response.read1(65536)
                    if not chunk:
                        return
                    if kind == "video":
                        self.video_bytes += len(chunk)
                    else:
                        self.feed_bytes += len(chunk)
        except OSError:
            return  # the server stopped

    def close(self) -> None:
        self._closing.set()
        for t in self._threads:
            t.join(timeout=5.0)


def summarize(values: Sequence[float | None]) -> dict:
    """Median, min and max of the values that are not ``None``."""
    vals = [v for v in values if v is not None]
    if not vals:
        return {"median": None, "min": None, "max": None}
    return {"median": round(statistics.median(vals), 4), "min": round(min(vals), 4), "max": round(max(vals), 4)}


def serve_comparison(run_once, *, repeats: int) -> dict:
    """``run_once(serve)`` (a :func:`benchmarks.live.live_benchmark` result) without and with
    the dashboard, interleaved ``repeats`` times each: per setting the median/min/max of
    :data:`COMPARED`, whether every run kept up with room to spare, and the median ratio
    with/without of each number."""
    runs: dict[bool, list[dict]] = {False: [], True: []}
    for _ in range(repeats):
        for serve in (False, True):
            runs[serve].append(run_once(serve))
    out = {}
    for serve, name in ((False, "without_dashboard"), (True, "with_dashboard")):
        rs = runs[serve]
        out[name] = {k: summarize([r[k] for r in rs]) for k in COMPARED}
        out[name].update({"keeps_up_every_run": all(r["keeps_up"] for r in rs),
                          "goal_met_every_run": all(r["goal_met"] for r in rs),
                          "dropped": [r["dropped"] for r in rs], "runs": len(rs)})
    out["ratio_with_to_without"] = {
        k: summarize([b[k] / a[k] if a[k] and b[k] is not None else None for a, b in zip(runs[False], runs[True])])
        for k in COMPARED}
    out["client_video_mb"] = [round(r.get("client_video_bytes", 0) / 2**20, 2) for r in runs[True]]
    out["last_run"] = runs[True][-1]
    return out
