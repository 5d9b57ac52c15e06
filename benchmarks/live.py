"""Live mode: windows per second of the live front end on a file against the rate real time needs
at the chosen stride (``1 / stride``), in the same run; with ``realtime`` the file plays as a
camera would (late windows dropped, on the simulated clock of :mod:`live_mode.pacing`)."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from benchmarks.timing import machine_info
from fusion.prediction import Predictor
from live_mode import DEFAULT_FACE_RATE, LiveRunner, LiveSettings
from live_mode.session import Listener

#: what keeping up "with room to spare" means (issue 17): no window after the first dropped or
#: late, at least the needed windows per second, and a p95 latency within half the stride
GOALS = {"late_after_first": 0, "p95_latency_of_stride": 0.5}


def live_benchmark(video: str | os.PathLike, *, predictor: Predictor, window: float, stride: float,
                   realtime: bool = False, incremental: bool = True, serve: bool = False,
                   face_rate: float | None = DEFAULT_FACE_RATE, listeners: Sequence = ()) -> dict:
    """Run live mode over ``video`` as fast as it goes and report ``windows``, ``windows_per_s``,
    ``needed_windows_per_s``, ``ratio_to_realtime``, mean and p95 latency (s), the realtime factor
    (s of work per s of source), ``dropped`` (windows skipped for being late; only with
    ``realtime``), ``late_after_first`` (windows after the first that started more than a stride
    late, dropped or not), ``keeps_up`` (none of those, and at least the needed windows per
    second), ``room_to_spare`` (p95 latency within half the stride), ``goal_met`` (both), the
    ``sustainable_stride_s`` these costs allow and the ``warmup_s`` before the first frame.
    ``incremental=False`` computes every window from its frames alone (the reference: every
    keyframe searched for faces); ``face_rate``: live mode's face-detection budget
    (:class:`live_mode.LiveSettings`; ``None`` searches every keyframe). ``listeners`` are told
    about the run as live mode's are (e.g. :class:`WindowProbs`).
    ``stage_s``: the median seconds per window of each stage (the first window left out).

    ``serve``: the dashboard serves on 127.0.0.1 while a client reads its video and event feed
    (:class:`benchmarks.live_dashboard.DashboardClient`); frames are encoded for it at the
    dashboard's rate per second of source, as for a live source (the file is read faster than
    real time)."""
    from benchmarks.live_dashboard import DashboardClient, StageTimes
    from live_mode.dashboard import DashboardServer
    from live_mode.dashboard_state import DashboardState

    settings = LiveSettings(window=window, stride=stride, drop_late=realtime, incremental=incremental,
                            face_rate=face_rate)
    stages = StageTimes()
    runner = LiveRunner(predictor, settings, out=None, log=None, show=False, echo=None,
                        listeners=[stages, *listeners])
    server = client = None
    if serve:
        state = DashboardState()
        runner.listeners.append(state)
        server = DashboardServer(state).start()
        client = DashboardClient(server.url)
        deadline = time.monotonic() + 10.0
        while state.video_clients == 0 and time.monotonic() < deadline:  # connected before the first frame
            time.sleep(0.01)
    try:
        summary = runner.run(runner.open(str(video)), handle_sigint=False)
    finally:
        if server is not None:
            server.stop()
            client.close()
    needed = 1.0 / stride
    d = summary.as_dict()
    wps = d["windows_per_s"]
    keeps_up = bool(wps and wps >= needed and summary.late_after_first == 0)
    room = d["p95_latency_s"] is not None and d["p95_latency_s"] <= GOALS["p95_latency_of_stride"] * stride
    return {"benchmark": "live", "video": str(Path(video)), "windows": d["windows"],
            "windows_per_s": wps, "needed_windows_per_s": needed,
            "ratio_to_realtime": round(wps / needed, 4) if wps else None,
            "mean_latency_s": d["mean_latency_s"], "p95_latency_s": d["p95_latency_s"],
            "mean_cpu_s": d["mean_cpu_s"], "realtime_factor": d["realtime_factor"],
            "per_frame_load": d["per_frame_load"], "dropped": d["dropped"], "late": d["late"],
            "late_after_first": d["late_after_first"], "keeps_up": keeps_up, "room_to_spare": room,
            "goal_met": keeps_up and room, "sustainable_stride_s": d["sustainable_stride_s"],
            "warmup_s": d["warmup_s"], "wall_s": d["wall_s"], "source_s": d["source_s"],
            "realtime_mode": realtime, "incremental": incremental, "window_s": window, "stride_s": stride,
            "serve": serve, "face_rate": face_rate if incremental else None,
            "client_video_bytes": client.video_bytes if client else 0,
            "stage_s": stages.medians(), "goals": dict(GOALS), "machine": machine_info()}


class WindowProbs(Listener):
    """The raw fused probabilities of each predicted window, by window index."""

    def __init__(self) -> None:
        self.probs: dict[int, np.ndarray] = {}

    def on_window(self, record: dict, keyframes) -> None:
        if not record["dropped"]:
            self.probs[record["window"]] = np.array(list(record["probs"].values()))


def agreement(a: WindowProbs, b: WindowProbs) -> dict:
    """How two runs over the same clip agree on the windows both predicted: ``windows_compared``,
    ``same_label`` (share of windows with the same top class), the mean and max absolute
    difference of the class probabilities."""
    common = sorted(set(a.probs) & set(b.probs))
    if not common:
        return {"windows_compared": 0, "same_label": None, "mean_abs_prob_diff": None, "max_abs_prob_diff": None}
    pa, pb = np.stack([a.probs[k] for k in common]), np.stack([b.probs[k] for k in common])
    diff = np.abs(pa - pb)
    return {"windows_compared": len(common),
            "same_label": round(float(np.mean(pa.argmax(1) == pb.argmax(1))), 4),
            "mean_abs_prob_diff": round(float(diff.mean()), 4), "max_abs_prob_diff": round(float(diff.max()), 4)}
