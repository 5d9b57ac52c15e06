"""Live mode follows the networks' device: whole live runs (warm-up, windows, the attention heat
map) with the streams and the fusion head on the ``meta`` device (the stand-in for a GPU,
``stand_in_host`` in tests/conftest.py), so that a tensor left on the CPU fails here as it
would on a GPU."""
from __future__ import annotations

import json

import pytest

from live_mode import LiveRunner, LiveSettings
from tests.conftest import CLASSES, make_scene_clip

pytestmark = pytest.mark.slow  # runs the tiny pipeline on live windows


def test_live_windows_and_the_attention_map_run_on_the_networks_device(tiny_pipeline_run, tmp_path, stand_in_host):
    from fusion.prediction import Predictor

    predictor = Predictor.from_run(tiny_pipeline_run)   # preprocessing (scorer, MTCNN) stays on the CPU
    for model, _ in predictor.streams.values():
        model.to("meta")
    predictor.head.to("meta")
    clip = make_scene_clip(tmp_path / "scene.mp4", n_frames=30, fps=10.0, size=(160, 90), faces=2, audio=True)
    settings = LiveSettings(window=2.0, stride=1.0, show_attention=True)
    runner = LiveRunner(predictor, settings, log=tmp_path / "log.jsonl")
    assert runner.attention_stream == "visual"
    summary = runner.run(runner.open(clip), handle_sigint=False)
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert summary.windows == len(records) == 2 and not any(r["dropped"] for r in records)
    assert runner.warmup_s is not None
    streams = len(predictor.stream_order)
    probabilities = [s for s in stand_in_host if s == (1 + streams, len(CLASSES))]
    maps = [s for s in stand_in_host if len(s) == 2 and s != (1 + streams, len(CLASSES))]
    # per window (the warm-up's too): the probabilities, then the visual stream's (H', W') map
    assert len(probabilities) == len(maps) == 1 + len(records)
    assert len(stand_in_host) == 2 * (1 + len(records))
