"""The benchmarks score a trained keyframe scorer only at the size it was trained at (as
preprocessing does through ``SentimentScorer.from_checkpoint``): ``CountingScorer.scoring_as`` and
the keyframe benchmark's reference refuse another size; a random-init network, trained at no size,
scores at any; an arm that is only timed may say so."""
from __future__ import annotations

from dataclasses import asdict

import pytest

from benchmarks.inputs import CountingScorer, load_scorer_model, scoring_size
from benchmarks.keyframes import keyframe_benchmark
from core.config import ConfigError
from keyframes.extraction import KeyframeSettings


def test_a_trained_scorer_scores_at_its_training_size_only(tiny_scorer_run):
    loaded = load_scorer_model(tiny_scorer_run)
    assert loaded.trained_size == 64  # tests/conftest.py's scorer recipe: data.input_size 64
    assert CountingScorer.scoring_as(loaded, KeyframeSettings(score_size=64)).input_size == 64
    with pytest.raises(ConfigError, match="trained at 64 px .* 112 px"):
        CountingScorer.scoring_as(loaded, KeyframeSettings(score_size=112))
    # an arm that is only timed (the naive baseline) may score at another size, on purpose
    assert CountingScorer.scoring_as(loaded, KeyframeSettings(score_size=112), timing_only=True).input_size == 112


def test_a_random_init_scorer_scores_at_any_size():
    loaded = load_scorer_model(None, depth=18)
    assert loaded.trained_size is None
    assert CountingScorer.scoring_as(loaded, KeyframeSettings(score_size=112)).input_size == 112
    assert scoring_size(None, None) == 224 and scoring_size(64, None) == 64 and scoring_size(None, 96) == 96


def test_the_keyframe_benchmark_refuses_a_mismatch_before_timing_anything(tiny_scorer_run, tmp_path):
    loaded = load_scorer_model(tiny_scorer_run)
    video = tmp_path / "never_read.mp4"  # the refusal comes before the clip is opened
    for score_size, reference_size, asked in ((112, None, "112 px"), (64, 224, "224 px")):
        cfg = {"keyframes": {**asdict(KeyframeSettings()), "score_size": score_size}}
        with pytest.raises(ConfigError, match=f"trained at 64 px .*{asked}"):
            keyframe_benchmark(video, cfg=cfg, scorer_model=loaded, reference_size=reference_size)
