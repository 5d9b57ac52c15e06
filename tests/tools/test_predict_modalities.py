"""tools/predict.py on clips that lack modalities: an audio-only file, a video track without
frames, a video without audio. Each gets a prediction with the absent streams marked missing and
exit code 0 (tests/conftest.py's tiny_pipeline_run: untrained, so only the code path is tested)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from media.encoding import write_m4a
from tests.conftest import CLASSES, load_tool, make_frameless_clip, make_scene_clip

pytestmark = pytest.mark.slow  # predicts real clips through the tiny pipeline

FRAME_STREAMS = ["visual", "flow", "face"]


def predict(capsys, *argv: str) -> tuple[int, str]:
    rc = load_tool("predict").main([*map(str, argv)])
    return rc, capsys.readouterr().out


def tone(seconds: float = 2.0, sample_rate: int = 16000) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * sample_rate)) / sample_rate)).astype(np.float32)


def test_an_audio_only_file_is_predicted_from_its_audio(tmp_path, tiny_pipeline_run, capsys):
    m4a = write_m4a(tmp_path / "audio_only.m4a", tone(), sample_rate=16000)
    rc, out = predict(capsys, m4a, "--run", tiny_pipeline_run)
    assert rc == 0
    line = out.splitlines()[0]
    assert line.startswith(f"{m4a}: ") and "(missing: visual, flow, face)" in line and "ERROR" not in out
    assert "visual, flow, face not computed:" in out and "no video stream" in out
    rc, out = predict(capsys, m4a, "--run", tiny_pipeline_run, "--json")
    result = json.loads(out)
    assert rc == 0 and result["missing"] == FRAME_STREAMS and result["has_audio"] is True
    assert result["label"] in CLASSES and sum(result["probs"].values()) == pytest.approx(1.0, abs=1e-4)
    assert result["streams"]["audio"] is not None and all(result["streams"][s] is None for s in FRAME_STREAMS)
    assert set(result["missing_reasons"]) == set(FRAME_STREAMS) and result["keyframe_times"] == []


def test_a_video_track_without_frames_is_predicted_from_its_audio(tmp_path, tiny_pipeline_run, capsys):
    clip = make_frameless_clip(tmp_path / "no_frames.mkv")
    rc, out = predict(capsys, clip, "--run", tiny_pipeline_run, "--json")
    result = json.loads(out)
    assert rc == 0 and result["missing"] == FRAME_STREAMS
    assert all("no frames" in why for why in result["missing_reasons"].values())


def test_a_video_without_audio_is_predicted_with_audio_missing(tmp_path, tiny_pipeline_run, capsys):
    clip = make_scene_clip(tmp_path / "silent.mp4", n_frames=20, audio=False)
    rc, out = predict(capsys, clip, "--run", tiny_pipeline_run, "--json")
    result = json.loads(out)
    assert rc == 0 and "audio" in result["missing"] and result["streams"]["audio"] is None
    assert "visual" not in result["missing"] and "flow" not in result["missing"]
    assert result["missing_reasons"] == {} and len(result["keyframe_times"]) == 16


def test_a_file_with_neither_frames_nor_audio_is_still_an_error(tmp_path, tiny_pipeline_run, capsys):
    bad = tmp_path / "cut.m4a"
    bad.write_bytes(write_m4a(tmp_path / "x.m4a", tone(), sample_rate=16000).read_bytes()[:300])
    rc, out = predict(capsys, bad, "--run", tiny_pipeline_run)
    assert rc == 1 and f"{bad}: ERROR" in out
