"""Live mode's incremental work: per-frame work done once and shared by overlapping windows gives
the same predictions as computing every window from its frames alone, and the pipeline is warmed
up before the first frame."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from live_mode import LiveRunner, LiveSettings

pytestmark = pytest.mark.slow  # runs live windows through the tiny pipeline twice (shared and alone)

CLASSES = ("Positive", "Neutral", "Negative")


@pytest.fixture(scope="module")
def predictor(tiny_pipeline_run):
    from fusion.prediction import Predictor

    return Predictor.from_run(tiny_pipeline_run)


class CountingScorer:
    """The predictor's scorer, counting the frames it rates."""

    def __init__(self, inner) -> None:
        self.inner, self.class_names, self.input_size = inner, inner.class_names, inner.input_size
        self.frames = 0

    def score(self, frames):
        self.frames += len(frames)
        return self.inner.score(frames)


def run_live(predictor, clip: Path, log: Path, monkeypatch, **settings) -> tuple[list[dict], int, int]:
    """One live run over ``clip``: its log records, the frames scored and the frames searched for faces."""
    from streams.inputs.faces import FaceExtractor

    counter = CountingScorer(predictor.preprocessor.scorer)
    monkeypatch.setattr(predictor.preprocessor, "scorer", counter)
    detected = []
    original = FaceExtractor._detect

    def counting_detect(self, frames):
        detected.append(len(frames))
        return original(self, frames)

    monkeypatch.setattr(FaceExtractor, "_detect", counting_detect)
    # face_rate None: every keyframe searched, as for a file (the budget has a test of its own)
    runner = LiveRunner(predictor, LiveSettings(**{"window": 3.0, "stride": 1.0, "smooth_k": 2, "warm_up": False,
                                                   "face_rate": None, **settings}), log=log)
    summary = runner.run(runner.open(clip), handle_sigint=False)
    monkeypatch.undo()
    assert summary.windows >= 3 and summary.dropped == 0
    return [json.loads(line) for line in log.read_text().splitlines()], counter.frames, sum(detected)


def probs(record: dict, key: str = "probs") -> np.ndarray:
    return np.array([record[key][c] for c in CLASSES])


def test_incremental_windows_equal_window_by_window(tmp_path, predictor, monkeypatch):
    from tests.conftest import make_scene_clip

    # 5 s at 30 fps with moving faces and a tone: windows [0,3) [1,4) [2,5) share two thirds of their frames
    clip = make_scene_clip(tmp_path / "scene.mp4", n_frames=150, fps=30.0, size=(160, 90), faces=2, audio=True,
                           motion=(0, 3))
    shared, scored_shared, detected_shared = run_live(predictor, clip, tmp_path / "inc.jsonl", monkeypatch)
    alone, scored_alone, detected_alone = run_live(predictor, clip, tmp_path / "alone.jsonl", monkeypatch,
                                                   incremental=False)
    assert [r["end_s"] for r in shared] == [r["end_s"] for r in alone] == pytest.approx([3.0, 4.0, 5.0])
    for a, b in zip(shared, alone):
        assert a["keyframe_times"] == b["keyframe_times"]
        assert a["missing"] == b["missing"] == []
        assert a["n_faces"] == b["n_faces"] > 0
        np.testing.assert_allclose(probs(a), probs(b), atol=1e-5)
        for s in ("visual", "audio", "flow", "face"):
            np.testing.assert_allclose(probs(a["streams"], s), probs(b["streams"], s), atol=1e-5)
    # the work was shared: with 3 s windows, 48 candidates and a 1 s stride the candidates of the
    # windows lie on one 62.5 ms grid, so each is scored once (16 a second of source) instead of 48
    # per window; each keyframe is searched for faces once
    assert scored_alone == 48 * 3
    assert scored_shared == 16 * 5
    assert detected_alone == 16 * 3
    distinct_keyframes = len({t for r in shared for t in r["keyframe_times"]})
    assert detected_shared == distinct_keyframes < detected_alone


def test_a_stride_off_the_candidate_grid_gives_the_same_predictions(tmp_path, predictor, monkeypatch):
    from tests.conftest import make_scene_clip

    clip = make_scene_clip(tmp_path / "scene.mp4", n_frames=75, fps=15.0, size=(160, 90), faces=1, audio=True)
    # 0.7 s is not a multiple of 3 s / 48: the windows' candidate times differ, fewer are shared
    shared, _, _ = run_live(predictor, clip, tmp_path / "inc.jsonl", monkeypatch, stride=0.7)
    alone, _, _ = run_live(predictor, clip, tmp_path / "alone.jsonl", monkeypatch, stride=0.7, incremental=False)
    assert len(shared) == len(alone)
    for a, b in zip(shared, alone):
        assert a["keyframe_times"] == b["keyframe_times"]
        np.testing.assert_allclose(probs(a), probs(b), atol=1e-5)


def test_a_face_budget_searches_fewer_keyframes_and_logs_those_that_borrowed_boxes(tmp_path, predictor,
                                                                                 monkeypatch):
    from tests.conftest import make_scene_clip

    clip = make_scene_clip(tmp_path / "scene.mp4", n_frames=150, fps=30.0, size=(160, 90), faces=2, audio=True,
                           motion=(0, 3))
    exact, _, detected_exact = run_live(predictor, clip, tmp_path / "exact.jsonl", monkeypatch)
    budget, _, detected_budget = run_live(predictor, clip, tmp_path / "budget.jsonl", monkeypatch, face_rate=2.0)
    assert detected_budget < detected_exact
    # the keyframes do not depend on the faces; every window still has crops of both people
    assert [r["keyframe_times"] for r in budget] == [r["keyframe_times"] for r in exact]
    assert all(r["n_faces"] > 0 for r in budget)
    assert all(r["face_boxes_borrowed"] is None for r in exact)
    borrowed = [r["face_boxes_borrowed"] for r in budget]
    assert all(0 <= b <= 16 for b in borrowed) and sum(borrowed) > 0


def test_warm_up_runs_the_pipeline_before_the_first_frame(tmp_path, predictor, monkeypatch):
    from streams.inputs.faces import FaceExtractor
    from tests.conftest import make_scene_clip

    clip = make_scene_clip(tmp_path / "scene.mp4", n_frames=45, fps=15.0, size=(160, 90), faces=1, audio=True)
    runner = LiveRunner(predictor, LiveSettings(window=3.0, stride=1.0), log=tmp_path / "log.jsonl")
    source = runner.open(clip)
    calls = []
    original = FaceExtractor._detect

    def detect(self, frames):
        calls.append(getattr(source, "_started", False))
        return original(self, frames)

    monkeypatch.setattr(FaceExtractor, "_detect", detect)
    events = source.events

    def started_events():
        source._started = True
        return events()

    monkeypatch.setattr(source, "events", started_events)
    summary = runner.run(source, handle_sigint=False)
    assert summary.warmup_s is not None and summary.warmup_s > 0
    assert calls and calls[0] is False       # MTCNN ran before the source was read
    assert summary.windows == 1
