"""Live mode: windows per second of the live front end on a file (every window predicted, none
dropped) against the rate real time needs at the chosen stride (``1 / stride``), in the same run."""
from __future__ import annotations

import os
from pathlib import Path

from fusion.live import LiveRunner, LiveSettings
from fusion.prediction import Predictor
from benchmarks.timing import machine_info


def live_benchmark(video: str | os.PathLike, *, predictor: Predictor, window: float, stride: float) -> dict:
    """Run live mode over ``video`` as fast as it goes and report ``windows``, ``windows_per_s``,
    ``needed_windows_per_s``, ``ratio_to_realtime``, mean and p95 latency (s), the realtime factor
    (s of work per s of source), ``dropped`` (0: every window is predicted here) and ``keeps_up``."""
    settings = LiveSettings(window=window, stride=stride, drop_late=False)
    runner = LiveRunner(predictor, settings, out=None, log=None, show=False, echo=None)
    summary = runner.run(runner.open(str(video)), handle_sigint=False)
    needed = 1.0 / stride
    d = summary.as_dict()
    return {"benchmark": "live", "video": str(Path(video)), "windows": d["windows"],
            "windows_per_s": d["windows_per_s"], "needed_windows_per_s": needed,
            "ratio_to_realtime": round(d["windows_per_s"] / needed, 4) if d["windows_per_s"] else None,
            "mean_latency_s": d["mean_latency_s"], "p95_latency_s": d["p95_latency_s"],
            "realtime_factor": d["realtime_factor"], "dropped": d["dropped"],
            "keeps_up": bool(d["windows_per_s"] and d["windows_per_s"] >= needed),
            "window_s": window, "stride_s": stride, "machine": machine_info()}
