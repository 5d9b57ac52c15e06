"""tools/explain.py: an unknown clip path and a run without a fusion head are one ``error:`` line
and exit 2; on a clip with faces and audio (through the tiny untrained pipeline, so only the code
path and the JSON contract are tested) it writes explanation.json with the documented fields, the
Shapley values adding up, and a card; an audio-only file explains with the frame streams missing."""
from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import make_scene_clip

TOOL = Path(__file__).resolve().parents[2] / "tools" / "explain.py"


def run_cli(argv: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", [str(TOOL), *map(str, argv)])
    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(TOOL), run_name="__main__")
    out, err = capsys.readouterr()
    return info.value.code, out, err


def assert_one_error(rc: int, err: str, *names: str) -> None:
    lines = err.strip().splitlines()
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for name in names:
        assert name in lines[0]


def test_an_unknown_clip_is_one_error_line(tmp_path, monkeypatch, capsys):
    rc, _, err = run_cli([tmp_path / "nope.mp4", "--run", tmp_path, "--out", tmp_path / "out"], monkeypatch, capsys)
    assert_one_error(rc, err, "nope.mp4")


def test_a_run_without_a_fusion_head_is_one_error_line(tmp_path, monkeypatch, capsys):
    clip = make_scene_clip(tmp_path / "clip.mp4", n_frames=4, size=(64, 48), faces=1, audio=False)
    (tmp_path / "not_a_run").mkdir()
    rc, _, err = run_cli([clip, "--run", tmp_path / "not_a_run", "--out", tmp_path / "out"], monkeypatch, capsys)
    assert_one_error(rc, err, "not_a_run")


@pytest.mark.slow
def test_a_stream_run_is_not_a_fusion_run(tmp_path, tiny_pipeline_run, monkeypatch, capsys):
    clip = make_scene_clip(tmp_path / "clip.mp4", n_frames=4, size=(64, 48), faces=1, audio=False)
    stream_run = Path(tiny_pipeline_run).parent / "visual_run"
    rc, _, err = run_cli([clip, "--run", stream_run, "--out", tmp_path / "out"], monkeypatch, capsys)
    assert_one_error(rc, err, "not a fusion run")


@pytest.mark.slow
def test_a_clip_with_faces_and_audio_is_explained(tmp_path, tiny_pipeline_run, monkeypatch, capsys):
    clip = make_scene_clip(tmp_path / "clip.mp4", n_frames=45, faces=3, audio=True)
    rc, out, err = run_cli([clip, "--run", tiny_pipeline_run, "--out", tmp_path / "out", "--gradcam", "--video"],
                           monkeypatch, capsys)
    assert rc == 0, err
    r = json.loads((tmp_path / "out" / "explanation.json").read_text())
    assert set(r["prediction"]) >= {"label", "probabilities"}
    assert set(r["streams"]) == {"visual", "audio", "flow", "face"}
    assert all(v["available"] for v in r["streams"].values())
    check = r["shapley_check"]
    assert sum(v["shapley"] for v in r["streams"].values()) == pytest.approx(check["full"] - check["empty"], abs=1e-5)
    assert check["sum"] == pytest.approx(check["full"] - check["empty"], abs=1e-5)
    assert check["full"] == pytest.approx(r["prediction"]["probabilities"][r["prediction"]["label"]], abs=1e-5)
    assert len(r["keyframes"]) == 16
    for k in r["keyframes"]:
        assert set(k) >= {"time_s", "score", "rule", "contribution"}
        assert np.isfinite(k["contribution"])
    assert r["people"] and all(set(p) >= {"id", "boxes", "contribution"} for p in r["people"])
    assert r["audio_seconds"]
    for name in ("explanation.png", "explanation.mp4"):
        assert (tmp_path / "out" / name).stat().st_size > 0


@pytest.mark.slow
def test_an_audio_only_file_has_the_frame_streams_missing(tmp_path, tiny_pipeline_run, monkeypatch, capsys):
    from media.encoding import write_m4a

    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(32000) / 16000)).astype(np.float32)
    m4a = write_m4a(tmp_path / "audio_only.m4a", tone, sample_rate=16000)
    rc, _, err = run_cli([m4a, "--run", tiny_pipeline_run, "--out", tmp_path / "out"], monkeypatch, capsys)
    assert rc == 0, err
    r = json.loads((tmp_path / "out" / "explanation.json").read_text())
    assert {s for s, v in r["streams"].items() if not v["available"]} == {"visual", "flow", "face"}
    assert all(r["streams"][s]["shapley"] == 0.0 for s in ("visual", "flow", "face"))
    assert r["streams"]["audio"]["shapley"] == pytest.approx(r["shapley_check"]["full"] - r["shapley_check"]["empty"])
    assert r["keyframes"] == [] and r["people"] == []
    assert (tmp_path / "out" / "explanation.png").exists()
