"""What a person watching live mode sees: face boxes held through short detection gaps, the
"uncertain" label below a confidence, score-level late fusion and the attention heat map."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fusion.late import FACE_AUDIO_WEIGHTS, weighted_score
from live_mode import (
    UNCERTAIN,
    FaceHold,
    LiveRunner,
    LiveSettings,
    TemporalSmoother,
    late_fusion,
    parse_late_weights,
    shown_label,
)
from live_mode.annotation import attention_overlay
from media.decoding import read_frames
from streams.views import ViewSettings, centre_view_box

pytestmark = pytest.mark.slow  # runs the tiny pipeline on live windows

CLASSES = ["Positive", "Neutral", "Negative"]


# -- face hold -------------------------------------------------------------------------------

def test_face_boxes_are_held_through_short_gaps_and_dropped_after_long_ones():
    a, b = [[10, 10, 30, 30]], [[50, 10, 70, 30]]
    # per frame: what detection gave (None: no face found on that frame)
    detections = {0: a, 1: a, 2: None, 3: None, 4: a, 5: None, 6: None, 7: None, 8: None, 9: None, 10: b}
    hold = FaceHold(3)
    shown = []
    for frame in range(12):
        found = detections.get(frame)
        hold.update(found or [], frame if found else None)
        shown.append(hold.boxes(frame))
    # gaps of 2 frames are bridged; the 5-frame gap shows the box for 3 frames, then nothing
    assert shown == [a, a, a, a, a, a, a, a, [], [], b, b]


def test_an_older_detection_does_not_replace_a_newer_one_and_hold_zero_shows_only_fresh_boxes():
    hold = FaceHold(5)
    hold.update([[1, 1, 2, 2]], 20)
    hold.update([[3, 3, 4, 4]], 15)   # a later window whose latest face is older
    assert hold.boxes(22) == [[1, 1, 2, 2]]
    assert hold.boxes(26) == []
    zero = FaceHold(0)
    zero.update([[1, 1, 2, 2]], 7)
    assert zero.boxes(7) == [[1, 1, 2, 2]] and zero.boxes(8) == []
    with pytest.raises(ValueError, match="hold"):
        FaceHold(-1)


# -- confidence filter -----------------------------------------------------------------------

def test_uncertain_is_shown_when_the_smoothed_top_probability_is_below_the_minimum():
    raw = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.1, 0.1, 0.8], [0.05, 0.05, 0.9]])
    smoother = TemporalSmoother(k=2, mode="mean")
    smoothed = [smoother.update(p) for p in raw]
    # smoothed top probabilities: 0.9, 0.5, 0.5, 0.7, 0.85
    labels = [shown_label(s, CLASSES, 0.6) for s in smoothed]
    assert labels == ["Positive", UNCERTAIN, UNCERTAIN, "Negative", "Negative"]
    assert [shown_label(s, CLASSES, 0.0) for s in smoothed] == [CLASSES[int(np.argmax(s))] for s in smoothed]
    with pytest.raises(ValueError, match="min-confidence"):
        LiveSettings(min_confidence=1.5)


# -- late fusion -----------------------------------------------------------------------------

def test_late_fusion_is_fusion_late_weighted_score():
    face = {"Positive": 0.7, "Neutral": 0.2, "Negative": 0.1}
    audio = {"Positive": 0.1, "Neutral": 0.3, "Negative": 0.6}
    both = late_fusion({"face": face, "audio": audio, "visual": None}, FACE_AUDIO_WEIGHTS, CLASSES)
    np.testing.assert_allclose(both, [0.6 * 0.7 + 0.4 * 0.1, 0.6 * 0.2 + 0.4 * 0.3, 0.6 * 0.1 + 0.4 * 0.6])
    # a missing stream's weight goes to the other; none at all gives uniform probabilities
    np.testing.assert_allclose(late_fusion({"face": face, "audio": None}, FACE_AUDIO_WEIGHTS, CLASSES),
                               [0.7, 0.2, 0.1])
    np.testing.assert_allclose(late_fusion({"face": None, "audio": None}, FACE_AUDIO_WEIGHTS, CLASSES), [1 / 3] * 3)
    assert parse_late_weights("face=0.6, audio=0.4") == (("face", 0.6), ("audio", 0.4))
    for bad in ("face", "face=x", "=0.4"):
        with pytest.raises(ValueError, match="late-weights"):
            parse_late_weights(bad)
    with pytest.raises(ValueError, match="needs --fusion late"):
        LiveSettings(late_weights=(("face", 1.0),))
    with pytest.raises(ValueError, match="not all 0"):
        LiveSettings(fusion="late", late_weights=(("face", 0.0),))


@pytest.fixture(scope="module")
def predictor(tiny_pipeline_run):
    from fusion.prediction import Predictor

    return Predictor.from_run(tiny_pipeline_run)


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_fusion_late_reproduces_the_face_audio_design_on_a_file(tmp_path, tiny_pipeline_run, capsys):
    from tests.conftest import load_tool, make_scene_clip

    clip = make_scene_clip(tmp_path / "scene.mp4", n_frames=30, fps=10.0, size=(160, 90), faces=2, audio=True)
    log = tmp_path / "late.jsonl"
    rc = load_tool("live").main(["--run", str(tiny_pipeline_run), "--source", str(clip), "--log", str(log),
                                 "--window", "2", "--stride", "1", "--fusion", "late", "--no-warm-up", "--quiet"])
    assert rc == 0 and "late fusion face 0.6, audio 0.4" in capsys.readouterr().out
    records = read_log(log)
    assert len(records) == 2
    for r in records:
        assert r["fusion"] == "late" and set(r["streams"]) == {"face", "audio"}   # visual and flow not run
        assert r["streams"]["face"] is not None and r["streams"]["audio"] is not None
        probs = {s: np.array([[r["streams"][s][c] for c in CLASSES]]) for s in ("face", "audio")}
        expected = weighted_score(probs, {"face": np.ones(1), "audio": np.ones(1)}, FACE_AUDIO_WEIGHTS)[0]
        np.testing.assert_allclose([r["probs"][c] for c in CLASSES], expected, atol=2e-6)
        np.testing.assert_allclose(expected, 0.6 * probs["face"][0] + 0.4 * probs["audio"][0], atol=1e-12)
        assert r["raw_label"] == CLASSES[int(np.argmax(expected))]


def test_late_weights_are_settable_and_checked(tmp_path, predictor):
    from tests.conftest import make_scene_clip

    clip = make_scene_clip(tmp_path / "scene.mp4", n_frames=20, fps=10.0, size=(160, 90), faces=2, audio=True)
    settings = LiveSettings(window=2.0, stride=1.0, warm_up=False, fusion="late", late_weights=(("audio", 1.0),))
    runner = LiveRunner(predictor, settings, log=tmp_path / "log.jsonl")
    assert runner.streams == ("audio",)     # nothing else is computed
    runner.run(runner.open(clip), handle_sigint=False)
    (r,) = read_log(tmp_path / "log.jsonl")
    assert [r["probs"][c] for c in CLASSES] == pytest.approx([r["streams"]["audio"][c] for c in CLASSES], abs=2e-6)
    with pytest.raises(ValueError, match="speech"):
        LiveRunner(predictor, LiveSettings(fusion="late", late_weights=(("speech", 1.0),)))


# -- attention heat map ----------------------------------------------------------------------

def test_the_view_box_is_where_the_centre_crop_lies():
    assert centre_view_box(90, 160, ViewSettings(resize=(64, 64), crop=56)) == (4 / 64, 4 / 64, 60 / 64, 60 / 64)
    x0, y0, x1, y1 = centre_view_box(256, 455, ViewSettings(resize=256, crop=224))   # short side kept
    assert (x0 * 455, y0 * 256, x1 * 455, y1 * 256) == pytest.approx((115, 16, 339, 240))
    assert centre_view_box(30, 40, ViewSettings(resize=None, crop=64)) == (0.0, 0.0, 1.0, 1.0)


def test_attention_overlay_is_hottest_where_the_weights_are():
    image = np.full((100, 200, 3), 128, np.uint8)
    weights = np.zeros((4, 4), np.float32)
    weights[0, 3] = 1.0   # top right of the box
    out = attention_overlay(image, weights, (0.25, 0.0, 0.75, 1.0))
    assert np.array_equal(out[:, :50], image[:, :50]) and np.array_equal(out[:, 150:], image[:, 150:])
    red_minus_blue = out[..., 0].astype(int) - out[..., 2].astype(int)
    assert red_minus_blue[10, 140] > 50 and red_minus_blue[90, 60] < 0


def test_show_attention_draws_the_visual_streams_map(tmp_path, predictor):
    from tests.conftest import make_scene_clip

    clip = make_scene_clip(tmp_path / "scene.mp4", n_frames=30, fps=10.0, size=(160, 90), faces=2, audio=True)
    outs = {}
    for show in (False, True):
        runner = LiveRunner(predictor, LiveSettings(window=2.0, stride=1.0, warm_up=False, show_attention=show),
                            out=tmp_path / f"{show}.mp4")
        assert runner.attention_stream == "visual"
        runner.run(runner.open(clip), handle_sigint=False)
        outs[show] = [f.image.astype(int) for f in read_frames(tmp_path / f"{show}.mp4")]
    # before the first prediction (2 s) nothing differs; afterwards the map tints the visual view
    assert all(np.abs(a - b).mean() < 2 for a, b in zip(outs[False][:19], outs[True][:19]))
    assert all(np.abs(a - b).mean() > 5 for a, b in zip(outs[False][21:], outs[True][21:]))
