"""The dashboard-cost comparison: interleaved runs without and with serving, medians, spreads and
the ratio per round; the per-stage medians of the predicted windows."""
from __future__ import annotations

import pytest

from benchmarks.live_dashboard import StageTimes, serve_comparison


def test_runs_alternate_and_the_ratio_is_per_round():
    calls = []

    def run_once(serve: bool) -> dict:
        calls.append(serve)
        k = len(calls)
        return {"windows_per_s": 2.0 if not serve else 1.8, "mean_latency_s": 0.1, "p95_latency_s": 0.2 + 0.01 * k,
                "realtime_factor": 0.5, "per_frame_load": 0.3, "keeps_up": True, "goal_met": serve is False,
                "dropped": 0, "client_video_bytes": 2**20 if serve else 0}

    out = serve_comparison(run_once, repeats=3)
    assert calls == [False, True] * 3
    assert out["without_dashboard"]["windows_per_s"]["median"] == 2.0
    assert out["ratio_with_to_without"]["windows_per_s"]["median"] == pytest.approx(0.9)
    assert out["with_dashboard"]["p95_latency_s"] == {"median": 0.24, "min": 0.22, "max": 0.26}
    assert out["without_dashboard"]["goal_met_every_run"] and not out["with_dashboard"]["goal_met_every_run"]
    assert out["client_video_mb"] == [1.0, 1.0, 1.0]


def test_stage_medians_leave_out_the_first_window_and_dropped_ones():
    st = StageTimes()
    for total in (9.0, 1.0, 3.0, 2.0):
        st.on_window({"dropped": False, "timings_s": {"total": total, "fusion": 0.001}}, [])
    st.on_window({"dropped": True}, [])
    assert st.medians() == {"fusion": 0.001, "total": 2.0}
