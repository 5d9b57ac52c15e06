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
