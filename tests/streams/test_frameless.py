"""Preprocessing a clip without video frames (an audio-only file, a video track that decodes to no
frame): the streams that read only the audio are computed, the others are recorded as missing
with the reason, and nothing is faked."""
from __future__ import annotations

import json

import numpy as np
import pytest

from core.config import load_config
from media.encoding import write_m4a
from media.layouts import ClipRecord
from streams.cache import load_entries
from streams.preprocessing import build_preprocess_job, verify_cache
from streams.specs import STREAM_SPECS
from tests.conftest import CLASSES, ROOT, make_frameless_clip

FRAME_STREAMS = ("visual", "flow", "face")   # the method's streams that read frames (demo config)


def tone(seconds: float = 2.0, sample_rate: int = 16000) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * sample_rate)) / sample_rate)).astype(np.float32)


@pytest.fixture(scope="module")
def frameless(tmp_path_factory):
    d = tmp_path_factory.mktemp("frameless")
    return {"talk": write_m4a(d / "talk.m4a", tone(), sample_rate=16000),
            "noframes": make_frameless_clip(d / "noframes.mkv")}


def test_the_demo_config_has_frame_streams_and_an_audio_only_stream():
    cfg = load_config(ROOT / "configs/preprocess/demo.yaml")
    assert [s for s in FRAME_STREAMS if STREAM_SPECS[s].reads_frames(cfg)] == list(FRAME_STREAMS)
    assert not STREAM_SPECS["audio"].reads_frames(cfg) and STREAM_SPECS["audio"].audio_rate(cfg) == 16000


@pytest.mark.parametrize("name, reason", [("talk", "no video stream"), ("noframes", "no frames")])
@pytest.mark.slow  # preprocesses clips with the tiny scorer
def test_a_clip_without_frames_gets_its_audio_and_records_the_rest_missing(tmp_path, frameless, tiny_scorer_run,
                                                                           name, reason):
    cfg = load_config(ROOT / "configs/preprocess/demo.yaml")
    job = build_preprocess_job(cfg, str(tiny_scorer_run), str(tmp_path))
    record = ClipRecord(clip_id=f"Train/{name}", path=frameless[name], label=1, class_names=CLASSES, split="train")
    assert job(record) == "done"
    d = tmp_path / "Train" / name
    meta = json.loads((d / "meta.json").read_text())
    assert set(meta["missing_modalities"]) == set(FRAME_STREAMS)
    assert all(reason in why and str(frameless[name]) in why for why in meta["missing_modalities"].values())
    assert set(meta["arrays"]) == {"visual", "flow", "face", "audio"}   # every step is done...
    assert sorted(p.name for p in d.glob("*.npy")) == ["mel.npy"]        # ...and only the audio is stored
    assert meta["has_audio"] is True and np.load(d / "mel.npy").shape[0] == 128
    entry = load_entries(tmp_path)[0]
    assert entry.available("audio") and not any(entry.available(s) for s in FRAME_STREAMS)
    assert job(record) == "skipped"                                      # a re-run does not retry it
    assert verify_cache([record], job).ok


@pytest.mark.slow  # preprocesses clips with the tiny scorer
def test_a_clip_that_gains_its_frames_is_no_longer_missing(tmp_path, frameless, tiny_scorer_run):
    from tests.conftest import make_scene_clip

    cfg = load_config(ROOT / "configs/preprocess/demo.yaml")
    job = build_preprocess_job(cfg, str(tiny_scorer_run), str(tmp_path), streams=("visual", "audio"))
    path = tmp_path / "clip.mp4"
    path.write_bytes(frameless["noframes"].read_bytes())
    record = ClipRecord(clip_id="clip", path=path, label=0, class_names=CLASSES, split="train")
    job(record)
    make_scene_clip(path, n_frames=20, audio=True)  # the file is replaced by a good one
    meta_path = tmp_path / "clip" / "meta.json"
    meta_path.write_text(json.dumps({**json.loads(meta_path.read_text()), "arrays": {}}))  # its arrays are to be redone
    assert job(record) == "done"
    entry = load_entries(tmp_path)[0]
    assert "missing_modalities" not in entry.meta and entry.available("visual") and entry.available("audio")
