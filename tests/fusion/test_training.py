"""Training every head of the family through tools/train_fusion.py: one run directory layout, one
metrics.json, checkpoints that name their head and stream widths and load back; heads fitted in
one pass reuse a finished run like the loop does; a search on a test split is refused."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from core.config import ConfigError, load_config
from fusion.evaluation import fusion_probabilities
from fusion.features import FeatureSet
from fusion.heads import FUSION_HEADS
from fusion.training import load_fusion_head, train_fusion, train_fusion_head
from tests.conftest import load_helper, load_tool
from training.checkpoints import CheckpointError, save_checkpoint
from training.run_directory import RunConfigMismatchError

toy = load_helper(Path(__file__).with_name("toy_features.py"), "tests_fusion_toy_features")
ROOT = Path(__file__).resolve().parents[2]
#: each recipe at test size
TINY = {
    "concat_fc": ["train.epochs=2"],
    "attention": ["train.epochs=2"],
    "gated": ["train.epochs=2"],
    "cross_attention": ["train.epochs=2"],
    "score_weighted": [],
    "stacking": ["model.folds=3", "model.forest_trees=5", "model.boosting_stages=3"],
}
METRICS_KEYS = {"history", "best_val_acc", "best_epoch", "best_val_report", "class_names", "finished"}


@pytest.fixture(scope="module")
def feats(tmp_path_factory):
    return toy.write_feature_dir(tmp_path_factory.mktemp("feats"), toy.TOY_DIMS, mode="all",
                                 missing={"audio": 0.2, "face": 0.2}, splits={"train": 45, "val": 30, "test": 9})


@pytest.fixture(scope="module")
def runs(feats, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    tool = load_tool("train_fusion")
    for name, sets in TINY.items():
        argv = ["--config", str(ROOT / "configs" / "fusion" / f"{name}.yaml"), "--features", str(feats),
                "--out", str(out / name), "--set", "streams=[visual,audio,face]", *sets]
        assert tool.main(argv) == 0
    return out


@pytest.mark.parametrize("name", list(TINY))
def test_every_head_writes_the_same_run_layout(runs, name):
    run = runs / name
    assert (run / "config.yaml").is_file() and (run / "train.log").is_file()
    for which in ("best", "last"):
        assert (run / which / "model.safetensors").is_file() and (run / which / "meta.json").is_file()
    metrics = json.loads((run / "metrics.json").read_text())
    assert METRICS_KEYS <= set(metrics) and metrics["finished"]
    best = metrics["history"][metrics["best_epoch"] - 1]
    assert metrics["best_val_acc"] == best["val_acc"] == metrics["best_val_report"]["accuracy"]
    assert metrics["class_names"] == toy.CLASSES


@pytest.mark.parametrize("name", list(TINY))
def test_checkpoint_records_head_and_stream_widths_and_reloads(runs, feats, name):
    config = yaml.safe_load((runs / name / "config.yaml").read_text())
    assert config["model"]["name"] == name
    assert config["stream_dims"] == toy.TOY_DIMS and config["streams"] == list(toy.TOY_DIMS)
    head, recipe, classes = load_fusion_head(runs / name)
    assert type(head) is type(FUSION_HEADS[name].create(stream_dims=toy.TOY_DIMS, num_classes=3))
    assert not head.training and classes == toy.CLASSES
    # the reloaded head scores val as the run recorded it
    metrics = json.loads((runs / name / "metrics.json").read_text())
    fs = FeatureSet(feats, "val", tuple(recipe["streams"]))
    acc = float((fusion_probabilities(head, fs, fs.streams).argmax(1) == fs.labels).mean())
    assert acc == pytest.approx(metrics["best_val_acc"])


@pytest.mark.parametrize("name", list(TINY))
def test_evaluate_tool_works_on_every_run(runs, name, capsys):
    assert load_tool("evaluate").main(["--run", str(runs / name)]) == 0
    assert f"{FUSION_HEADS[name].title} (fusion)" in capsys.readouterr().out
    metrics = json.loads((runs / name / "eval_val" / "metrics.json").read_text())
    assert metrics["head"] == name


def test_non_gradient_heads_learn_the_toy_problem(runs):
    for name in ("score_weighted", "stacking"):
        assert json.loads((runs / name / "metrics.json").read_text())["best_val_acc"] >= 0.8, name


def test_a_finished_one_pass_run_is_reused_and_a_changed_recipe_refused(runs, feats):
    run = runs / "stacking"
    stamp = (run / "best" / "model.safetensors").stat().st_mtime_ns
    cfg = load_config(ROOT / "configs/fusion/stacking.yaml", ["streams=[visual,audio,face]", *TINY["stacking"]])
    again = train_fusion(cfg, feats, run)
    assert again == json.loads((run / "metrics.json").read_text())
    assert (run / "best" / "model.safetensors").stat().st_mtime_ns == stamp
    cfg["model"]["meta_C"] = 0.5
    with pytest.raises(RunConfigMismatchError, match="meta_C"):
        train_fusion(cfg, feats, run)


def test_one_pass_heads_take_no_epochs(feats, tmp_path):
    cfg = load_config(ROOT / "configs/fusion/score_weighted.yaml", ["train.epochs=3"])
    with pytest.raises(ConfigError, match="one pass"):
        train_fusion(cfg, feats, tmp_path / "run")


def test_score_weighted_refuses_a_test_split_before_reading_anything(tmp_path, capsys):
    from core.command_line import run_main

    rc = run_main(load_tool("train_fusion").main,
                  ["--config", str(ROOT / "configs/fusion/score_weighted.yaml"),
                   "--features", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run"),
                   "--set", "model.search_on=test"])
    assert rc == 2
    assert "test split" in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_fusion_trains_on_train_features_from_anywhere(feats, tmp_path):
    """The seam for other ways of producing the train split's features (held out, out of fold):
    train_fusion_head takes the FeatureSets and records what the caller says."""
    elsewhere = toy.write_feature_dir(tmp_path / "other", toy.TOY_DIMS, mode="one", informative="audio",
                                      splits={"train": 45})
    cfg = load_config(ROOT / "configs/fusion/score_weighted.yaml")
    metrics = train_fusion_head(cfg, FeatureSet(elsewhere, "train"), FeatureSet(feats, "val"), tmp_path / "run",
                                recipe={"features": str(feats), "leakage": "test"})
    config = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert config["leakage"] == "test" and config["features"] == str(feats)
    w = metrics["fit"]["weights"]
    assert w["audio"] == max(w.values())  # searched on the given train split, where only audio reads


def test_a_checkpoint_without_head_name_or_widths_is_refused(tmp_path):
    head = FUSION_HEADS["concat_fc"].create(stream_dims={"a": 2}, num_classes=3)
    save_checkpoint(tmp_path / "old", state_dict=head.state_dict(),
                    meta={"config": {"streams": ["a"], "model": {"dropout": 0.5}}, "class_names": list("xyz")})
    with pytest.raises(CheckpointError, match="stream dimensions"):
        load_fusion_head(tmp_path / "old")


def test_weights_of_another_width_are_refused(tmp_path):
    head = FUSION_HEADS["gated"].create(stream_dims={"a": 2}, num_classes=3)
    save_checkpoint(tmp_path / "ckpt", state_dict=head.state_dict(),
                    meta={"config": {"streams": ["a"], "model": {"name": "gated"}, "stream_dims": {"a": 3}},
                          "class_names": list("xyz")})
    with pytest.raises(CheckpointError, match="gated"):
        load_fusion_head(tmp_path / "ckpt")


def test_a_damaged_or_incomplete_feature_directory_is_named(tmp_path):
    """Feature files an interrupted or partial extraction left are refused naming the file (a
    StorageError: one ``error:`` line from the tools), not a NumPy traceback."""
    from core.storage import StorageError

    feats = toy.write_feature_dir(tmp_path / "feats", toy.TOY_DIMS, splits={"train": 9, "val": 6})
    with pytest.raises(StorageError, match=r"index.json: no features for streams \['flow'\] \(it has "):
        FeatureSet(feats, "train", ("visual", "flow"))
    damaged = feats / "train" / "audio.npy"
    damaged.write_bytes(damaged.read_bytes()[:100])
    with pytest.raises(StorageError, match=f"{damaged}: not a readable feature array"):
        FeatureSet(feats, "train")
    (feats / "val" / "face_probs.npy").unlink()
    with pytest.raises(StorageError, match="face_probs.npy: missing from the feature directory"):
        FeatureSet(feats, "val")
