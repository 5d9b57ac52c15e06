"""The one-pass preprocessing converts keyframe candidates to the streams' sizes only when they
become keyframes, scores them while the pass goes on and runs the streams' steps side by side:
the same keyframes and arrays as the plain path (every candidate converted during the pass,
scored after it, steps one after the other)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.config import load_config
from keyframes.extraction import candidate_request, select_from_sample
from media.decoding import VideoReader
from media.frame_conversion import FrameHandle
from media.sampling import sample_video
from streams.preprocessing import build_preprocess_job

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # preprocesses a clip twice
def test_reduced_memory_path_selects_the_same_keyframes_as_the_plain_path(tmp_path, tiny_scorer_run, scene_clip,
                                                                          monkeypatch):
    clip = scene_clip(tmp_path / "clip.mp4", n_frames=60, fps=15.0, size=(320, 180), faces=3, audio=True)
    cfg = load_config(ROOT / "configs/preprocess/demo.yaml")
    pre = build_preprocess_job(cfg, str(tiny_scorer_run), str(tmp_path / "cache"))
    conversions = []
    original = FrameHandle.to_image

    def counting(self, **kwargs):
        if not kwargs.get("gray"):
            conversions.append((self.index, kwargs.get("short_side"), kwargs.get("max_side")))
        return original(self, **kwargs)

    monkeypatch.setattr(FrameHandle, "to_image", counting)
    inputs = pre.compute(clip, pre.streams)
    monkeypatch.undo()

    kf_streams = [s for s in pre.specs if s.uses_keyframes]
    sizes = pre.keyframe_image_sizes(s.name for s in kf_streams)
    with VideoReader(clip) as reader:
        sample = sample_video(reader, [candidate_request(reader.info.duration, pre.settings, sizes, lazy=False)],
                              motion_width=pre.settings.motion_width)
    plain = select_from_sample(sample, pre.scorer, pre.settings, [name for name, _, _ in sizes])

    assert inputs.keyframes.selection.indices == plain.selection.indices
    assert [k.score for k in inputs.keyframes.selection.keyframes] == [k.score for k in plain.selection.keyframes]
    np.testing.assert_array_equal(inputs.arrays["visual"], np.stack(plain.images["visual"]))
    for name in (n for n, _, _ in sizes):
        for a, b in zip(inputs.keyframes.images[name], plain.images[name]):
            np.testing.assert_array_equal(a, b)
    assert inputs.meta["n_faces"] > 0 and "flow" in inputs.arrays and "audio" in inputs.arrays
    # only the keyframes were converted at the streams' sizes (the plain path converts all 48 candidates)
    for _, short_side, max_side in sizes:
        if (short_side, max_side) == (pre.settings.score_size, None):
            continue  # the scorer's conversion, made for every candidate (and shared)
        converted = {i for i, s, m in conversions if (s, m) == (short_side, max_side)}
        assert converted == set(plain.selection.indices)
    assert any((s, m) != (pre.settings.score_size, None) for _, s, m in sizes)
    assert len(sample.unique_frames["candidates"]) == 48 > len(set(plain.selection.indices))
