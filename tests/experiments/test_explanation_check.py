"""The explanation check's ground truth and scoring: each kind of clip records its carrier, a
hit is counted only when the explanation names it, and the rates carry intervals and chance."""
from __future__ import annotations

import numpy as np
import pytest

from experiments.explanation_check import (
    draw_clip,
    score_modality,
    score_peak,
    score_person,
    score_region,
    summarise,
)
from explanations.explainer import Explanation

GEOMETRY = {"duration": 1.0, "width": 96, "height": 64, "fps": 5.0, "sample_rate": 8000}


def streams(**shapley):
    return {"streams": {s: {"shapley": v, "available": v is not None} for s, v in shapley.items()}}


def test_modality_clips_show_the_class_in_one_modality_only():
    carriers = []
    for i in range(8):
        clip = draw_clip("modality", i, GEOMETRY)
        shown = clip["record"]["shown"]
        label = clip["record"]["class"]
        assert label != "Neutral"
        assert [m for m, c in shown.items() if c == label] == [clip["truth"]]
        assert all(c == "Neutral" for m, c in shown.items() if m != clip["truth"])
        carriers.append(clip["truth"])
        assert (clip["masks"] is not None) == (clip["truth"] == "visual")
    assert set(carriers) == {"visual", "face", "flow", "audio"}


def test_person_clips_record_the_carrier_and_its_boxes():
    clip = draw_clip("person", 1, GEOMETRY)
    assert 2 <= clip["record"]["n_faces"] <= 5
    assert 0 <= clip["record"]["face_carrier"] < clip["record"]["n_faces"]
    assert len(clip["truth"]) == len(clip["frames"])
    assert clip["masks"].shape == clip["frames"].shape[:3]


def test_modality_score():
    assert score_modality(streams(visual=0.1, audio=0.3, flow=0.0, face=None), "audio") == (True, pytest.approx(1 / 3))
    assert score_modality(streams(visual=0.4, audio=0.3, flow=0.0, face=0.1), "audio")[0] is False


def test_person_score_matches_the_carrier_by_overlap():
    carrier = [[40, 10, 60, 30]] * 5
    other = {"id": 0, "frame_size": [96, 64], "contribution": 0.1,
             "boxes": [{"keyframe": 0, "time_s": 0.0, "box": [0, 10, 20, 30]}]}
    him = {"id": 1, "frame_size": [96, 64], "contribution": 0.5,
           "boxes": [{"keyframe": 0, "time_s": 0.0, "box": [41, 11, 61, 31]}]}
    him["crops"], other["crops"] = [0, 1], [2]
    assert score_person({"people": [other, him]}, carrier, 5.0, 96) == (True, 0.5, True)
    assert score_person({"people": [other, {**him, "crops": []}]}, carrier, 5.0, 96)[2] is False
    assert score_person({"people": [{**other, "contribution": 0.9}, him]}, carrier, 5.0, 96)[0] is False
    assert score_person({"people": [other]}, carrier, 5.0, 96)[0] is False   # no one overlaps the carrier


def test_peak_score():
    kfs = [{"time_s": t, "contribution": c} for t, c in [(0.2, 0.1), (1.4, 0.9), (2.8, 0.0), (1.6, 0.2)]]
    hit, chance = score_peak({"keyframes": kfs}, {"center_s": 1.5})
    assert hit is True and chance == 0.5
    assert score_peak({"keyframes": []}, {"center_s": 1.5}) is None


def test_region_score_counts_the_map_on_the_wall():
    masks = np.zeros((5, 64, 96), bool)
    masks[:, :, 48:] = True                       # people on the right half
    cam = np.zeros((1, 2, 2), np.float32)
    cam[0, :, 0] = 1.0                            # all mass on the left (the wall)
    expl = Explanation(record={"keyframes": [{"time_s": 0.0}]}, gradcam={"visual": cam},
                       view_box={"visual": (0.0, 0.0, 1.0, 1.0)})
    mass, chance = score_region(expl, masks, 5.0)
    assert mass == pytest.approx(1.0) and chance == pytest.approx(0.5)


def test_summary_has_rate_interval_chance_and_clips():
    s = summarise([1.0, 0.0, 1.0, 1.0], [0.25] * 4)
    assert s["rate"] == 0.75 and s["chance"] == 0.25 and s["clips"] == 4
    assert 0.0 <= s["ci95"][0] <= 0.75 <= s["ci95"][1] <= 1.0
    assert summarise([], [])["rate"] is None
