"""Prediction on a video through any head of the fusion family: Predictor.from_run loads the head
a run names and feeds it the streams' features, availability and probabilities."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from core.config import load_config
from fusion.heads import FUSION_HEADS, create_fusion_head
from tests.conftest import load_helper, load_tool, make_scene_clip
from training.checkpoints import read_meta, save_checkpoint

pytestmark = pytest.mark.slow  # fits every fusion head and predicts real clips through the tiny pipeline

toy = load_helper(Path(__file__).with_name("toy_features.py"), "tests_fusion_toy_features")
ROOT = Path(__file__).resolve().parents[2]
SMALL = {"stacking": {"folds": 3, "forest_trees": 5, "boosting_stages": 3}}


@pytest.fixture(scope="module")
def family_runs(tiny_pipeline_run, tmp_path_factory):
    """One run per head over the tiny pipeline's random-init streams: the neural heads as
    initialised, the one-pass heads fitted on toy features of the streams' widths."""
    base = tmp_path_factory.mktemp("family")
    meta = read_meta(tiny_pipeline_run / "best")
    dims = meta["config"]["stream_dims"]
    x, y, _ = toy.toy_batch(30, dims, mode="all")
    runs = {}
    for name, kind in FUSION_HEADS.items():
        model = {**load_config(ROOT / "configs" / "fusion" / f"{name}.yaml")["model"], **SMALL.get(name, {})}
        torch.manual_seed(0)
        head = create_fusion_head(model, stream_dims=dims, num_classes=3)
        if not kind.gradient:
            head.fit_inputs(x, y.numpy(), seed=0, split_inputs=lambda split: (x, y.numpy()))
        runs[name] = base / name
        save_checkpoint(runs[name] / "best", state_dict=head.state_dict(),
                        meta={**meta, "config": {**meta["config"], "model": model}})
    return runs


@pytest.fixture(scope="module")
def clip_inputs(tiny_pipeline_run, tmp_path_factory):
    """A silent clip's stream inputs, computed once by the pipeline's preprocessor."""
    from fusion.prediction import Predictor

    clip = make_scene_clip(tmp_path_factory.mktemp("clip") / "scene.mp4", n_frames=30, fps=10.0, size=(160, 90),
                           faces=2, audio=False)
    predictor = Predictor.from_run(tiny_pipeline_run)
    return clip, predictor.preprocessor.compute(clip, predictor.stream_order)


@pytest.mark.parametrize("name", list(FUSION_HEADS))
def test_every_head_predicts_a_clip_with_a_missing_stream(family_runs, clip_inputs, name):
    from fusion.prediction import Predictor

    clip, inputs = clip_inputs
    predictor = Predictor.from_run(family_runs[name])
    assert type(predictor.head) is type(FUSION_HEADS[name].create(stream_dims=predictor.head.stream_dims,
                                                                   num_classes=3, **SMALL.get(name, {})))
    result = predictor.predict_inputs(inputs, str(clip))
    assert result["missing"] == ["audio"] and result["streams"]["audio"] is None
    assert result["label"] in ("Positive", "Neutral", "Negative")
    assert abs(sum(result["probs"].values()) - 1) < 1e-4


def test_score_weighted_prediction_is_the_weighted_average_of_the_streams(family_runs, clip_inputs):
    from fusion.prediction import Predictor

    clip, inputs = clip_inputs
    predictor = Predictor.from_run(family_runs["score_weighted"])
    result = predictor.predict_inputs(inputs, str(clip))
    weights = predictor.head.weight_map()
    present = [s for s in predictor.stream_order if result["streams"][s] is not None]
    total = sum(weights[s] for s in present)
    for c, p in result["probs"].items():
        assert p == pytest.approx(sum(weights[s] * result["streams"][s][c] for s in present) / total, abs=1e-5)


def test_predict_tool_on_a_stacking_run(family_runs, clip_inputs, tmp_path, capsys):
    clip, _ = clip_inputs
    run = tmp_path / "stacking"
    shutil.copytree(family_runs["stacking"], run)
    assert load_tool("predict").main([str(clip), "--run", str(run), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["missing"] == ["audio"] and abs(sum(result["probs"].values()) - 1) < 1e-4


def test_predict_prints_calibrated_probabilities_and_the_raw_ones_with_no_calibration(tiny_pipeline_run, clip_inputs,
                                                                                      tmp_path, capsys):
    from core.storage import atomic_write_json
    from training.calibration import apply_temperature, log_probabilities
    from training.checkpoints import checkpoint_hash

    clip, _ = clip_inputs
    run = tmp_path / "fusion"
    shutil.copytree(tiny_pipeline_run, run)
    atomic_write_json(run / "best" / "calibration.json",
                      {"temperature": 3.0, "fitted_on": "val", "nll_before": 1.1, "nll_after": 1.0, "n": 10,
                       "checkpoint_hash": checkpoint_hash(run)})
    tool = load_tool("predict")
    printed = {}
    for flag in ((), ("--no-calibration",)):
        assert tool.main([str(clip), "--run", str(run), "--json", *flag]) == 0
        printed[flag] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    calibrated, raw = printed[()], printed[("--no-calibration",)]
    assert calibrated["temperatures"]["fusion"] == 3.0 and raw["temperatures"]["fusion"] == 1.0
    assert set(calibrated["temperatures"]["streams"].values()) == {1.0}  # the stream runs have no calibration.json
    expected = apply_temperature(log_probabilities([list(raw["probs"].values())]), 3.0)[0]
    assert list(calibrated["probs"].values()) == pytest.approx(expected.tolist(), abs=1e-4)
    assert max(calibrated["probs"].values()) < max(raw["probs"].values()) and calibrated["label"] == raw["label"]


def test_a_stream_temperature_changes_its_shown_probabilities_but_not_what_the_head_is_fed(tiny_pipeline_run,
                                                                                          clip_inputs, caplog):
    import logging

    from fusion.prediction import Predictor
    from training.calibration import apply_temperature, log_probabilities

    clip, inputs = clip_inputs
    with caplog.at_level(logging.WARNING, logger="fusion.prediction"):
        predictor = Predictor.from_run(tiny_pipeline_run)
    # an old pipeline (no calibration.json anywhere): temperature 1, said in one line naming the five runs
    assert predictor.temperature == 1.0 and set(predictor.stream_temperatures.values()) == {1.0}
    said = [r.getMessage() for r in caplog.records if "calibration" in r.getMessage()]
    assert len(said) == 1 and str(tiny_pipeline_run) in said[0] and said[0].count("_run") == 5
    raw = predictor.predict_inputs(inputs, str(clip))
    predictor.stream_temperatures["face"] = 0.5
    sharper = predictor.predict_inputs(inputs, str(clip))
    assert sharper["probs"] == pytest.approx(raw["probs"], abs=1e-6)
    expected = apply_temperature(log_probabilities([list(raw["streams"]["face"].values())]), 0.5)[0]
    assert list(sharper["streams"]["face"].values()) == pytest.approx(expected.tolist(), abs=1e-4)
    assert sharper["streams"]["visual"] == pytest.approx(raw["streams"]["visual"], abs=1e-6)
