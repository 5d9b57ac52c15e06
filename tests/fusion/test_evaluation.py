"""Evaluating a fusion run: accuracy per stream present or absent, per set of streams the clips
have, and with every clip given only some streams."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.config import load_config
from fusion.evaluation import evaluate_run, format_summary, subset_name
from fusion.training import train_fusion
from tests.conftest import load_helper

toy = load_helper(Path(__file__).with_name("toy_features.py"), "tests_fusion_toy_features")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """A score-weighted run (fitted in milliseconds) on toy features where only audio reads the
    class and audio or faces are missing on some clips; evaluated on val."""
    base = tmp_path_factory.mktemp("eval")
    feats = toy.write_feature_dir(base / "feats", toy.TOY_DIMS, mode="one", informative="audio",
                                  missing={"audio": 0.3, "face": 0.3}, splits={"train": 60, "val": 60})
    cfg = load_config(ROOT / "configs/fusion/score_weighted.yaml", ["streams=[visual,audio,face]"])
    train_fusion(cfg, feats, base / "run")
    return evaluate_run(base / "run", "val"), base / "run"


def test_subsets_partition_the_clips_by_the_streams_they_have(evaluated):
    metrics, run = evaluated
    rows = [json.loads(line) for line in (run / "eval_val" / "predictions.jsonl").read_text().splitlines()]
    subsets = metrics["by_availability"]["subsets"]
    assert sum(v["clips"] for v in subsets.values()) == metrics["clips"] == len(rows)
    for name, v in subsets.items():
        mine = [r for r in rows if subset_name([s for s, a in r["available"].items() if a]) == name]
        assert v["clips"] == len(mine)
        assert v["accuracy"] == pytest.approx(np.mean([r["pred"] == r["label"] for r in mine]))
    assert {"audio+face+visual", "face+visual", "audio+visual", "visual"} <= set(subsets)


def test_given_only_covers_every_non_empty_subset_and_shows_which_streams_matter(evaluated):
    metrics, _ = evaluated
    only = metrics["by_availability"]["given_only"]
    assert len(only) == 7 and all(v["clips"] == metrics["clips"] for v in only.values())
    assert only["audio+face+visual"]["accuracy"] == pytest.approx(metrics["accuracy"])
    # audio reads the class: without it the head is near chance, with it alone it is not
    assert only["audio"]["accuracy"] > only["face+visual"]["accuracy"] + 0.2


def test_per_stream_with_and_without_add_up(evaluated):
    metrics, _ = evaluated
    for s, v in metrics["by_availability"]["streams"].items():
        assert v["with"]["clips"] + v["without"]["clips"] == metrics["clips"], s


def test_summary_names_the_head_and_the_subsets(evaluated):
    text = format_summary(evaluated[0])
    assert text.startswith("model") and "Score-weighted (fusion)" in text
    assert "clips by the streams they have: audio+face+visual" in text and "every clip given only:" in text


def test_subset_names_are_sorted_and_never_empty():
    assert subset_name(["visual", "audio"]) == "audio+visual" and subset_name([]) == "none"


def test_evaluation_uses_the_runs_temperature_and_the_raw_probabilities_without_calibration(evaluated, tmp_path):
    import shutil

    from training.calibration import apply_temperature, log_probabilities
    from training.run_calibration import read_calibration

    _, fitted = evaluated
    run = tmp_path / "run"
    shutil.copytree(fitted, run)
    stored = read_calibration(run)  # fitted on val when the run was trained
    assert stored["fitted_on"] == "val" and stored["n"] == 60 and stored["nll_after"] <= stored["nll_before"]

    def evaluated_probs(calibrated: bool) -> tuple[dict, np.ndarray]:
        metrics = evaluate_run(run, "val", calibrated=calibrated)
        lines = (run / "eval_val" / "predictions.jsonl").read_text().splitlines()
        return metrics, np.array([json.loads(line)["probs"] for line in lines])

    cal, cal_probs = evaluated_probs(True)
    raw, raw_probs = evaluated_probs(False)
    assert cal["calibration"]["applied"] and cal["calibration"]["temperature"] == stored["temperature"]
    assert not raw["calibration"]["applied"] and raw["calibration"]["temperature"] == 1.0
    assert cal["accuracy"] == raw["accuracy"]
    assert cal_probs == pytest.approx(apply_temperature(log_probabilities(raw_probs), stored["temperature"]), abs=1e-4)
    assert cal["calibration"]["nll"] <= raw["calibration"]["nll"] + 1e-6  # val: where it was fitted
    assert "calibrated, temperature" in format_summary(cal) and "raw (--no-calibration)" in format_summary(raw)
