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
