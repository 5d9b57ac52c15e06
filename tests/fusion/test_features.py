"""How fusion's training features are made (fusion/features.py, streams/folds.py): the holdout part
and the cross-fitting folds are deterministic, stratified and disjoint; a stream run records the
clips it fitted; cross_fit never takes a clip's features from a run that fitted that clip; holdout
gives fusion only the held-back clips; in_sample is today's features, unchanged.

The streams are tiny audio ResNet-18s trained for one epoch by tools/train_stream.py on a cache of
random log-mel arrays (written directly in the cache format): what is tested is which network
produced which clip's features, not what they learned."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from core.config import ConfigError
from fusion.features import FeaturePlan, FeatureSet, extract_features, stream_outputs
from streams import cache
from streams.cache import load_entries
from streams.data import StreamDataset
from streams.folds import (
    ExcludeSettings,
    TrainClips,
    excluded_clips,
    fold_assignment,
    holdout_clips,
    read_train_clips,
    record_train_clips,
)
from streams.training import load_trained_stream
from tests.conftest import CLASSES, ROOT, load_tool

pytestmark = pytest.mark.slow  # trains stream runs and fusion heads on a fabricated cache

N_TRAIN, N_VAL = 15, 3          # 5 train clips per class
FOLDS = 3
TRAIN_SETS = ["train.epochs=1", "train.precise_bn_batches=0", "train.drop_last=true", "data.resize=[36,36]",
              "data.crop=32"]


def write_audio_cache(root: Path) -> Path:
    """Train/val clips with a random (16, 24) log-mel each, in the cache format."""
    rng = np.random.default_rng(0)
    for split, n in (("train", N_TRAIN), ("val", N_VAL)):
        for i in range(n):
            clip_id = f"{split}/clip{i:02d}"
            directory = cache.entry_dir(root, clip_id)
            directory.mkdir(parents=True)
            cache.write_array(directory, "audio", (rng.normal(size=(16, 24)) * 10 - 40).astype(np.float16))
            cache.write_meta(directory, {"clip_id": clip_id, "split": split, "label": i % 3,
                                         "class_names": list(CLASSES), "has_audio": True,
                                         "arrays": {"audio": "test"}})
    return root


def train(cache_root: Path, out: Path, exclude: dict | None = None) -> Path:
    sets = TRAIN_SETS + [f"exclude.{k}={v}" for k, v in (exclude or {}).items()]
    rc = load_tool("train_stream").main(["--config", str(ROOT / "configs/streams/audio_tiny.yaml"),
                                         "--cache", str(cache_root), "--out", str(out), "--set", *sets])
    assert rc == 0
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The cache and its stream runs: whole train split, holdout 0.4, and the three folds."""
    base = tmp_path_factory.mktemp("features")
    root = write_audio_cache(base / "cache")
    out = {"cache": root, "whole": train(root, base / "whole"),
           "holdout": train(root, base / "holdout", {"fraction": 0.4, "seed": 0})}
    out["folds"] = [train(root, base / f"fold{k}", {"folds": FOLDS, "fold": k, "seed": 0}) for k in range(FOLDS)]
    return out


def labels_of(n_per_class: int, prefix: str = "c") -> dict[str, int]:
    return {f"{prefix}{i}": i % 3 for i in range(3 * n_per_class)}


def test_holdout_is_deterministic_stratified_and_disjoint_from_the_rest():
    labels = labels_of(20)
    held = holdout_clips(labels, 0.25, seed=0)
    assert held == holdout_clips(dict(reversed(list(labels.items()))), 0.25, seed=0)  # order does not matter
    assert Counter(labels[c] for c in held) == {0: 5, 1: 5, 2: 5}                   # a quarter of each class
    rest = set(labels) - held
    assert rest and not rest & held
    assert holdout_clips(labels, 0.25, seed=1) != held                                # the seed chooses
    assert excluded_clips(labels, ExcludeSettings(fraction=0.25, seed=0)) == held
    assert excluded_clips(labels, None) == set()


def test_folds_partition_every_class():
    labels = labels_of(10)
    assignment = fold_assignment(labels, 3, seed=0)
    assert set(assignment) == set(labels)
    for label in range(3):
        sizes = Counter(f for c, f in assignment.items() if labels[c] == label)
        assert sorted(sizes.values()) == [3, 3, 4]
    parts = [excluded_clips(labels, ExcludeSettings(folds=3, fold=k)) for k in range(3)]
    assert sum(map(len, parts)) == len(labels) and set().union(*parts) == set(labels)


def test_exclude_settings_refuse_bad_values():
    for bad, message in (({"fraction": 1.0}, "exclude.fraction must be < 1"),
                         ({"folds": 3}, "needs fraction, or folds and fold"),
                         ({"folds": 3, "fold": 3}, "exclude.fold must be < folds"),
                         ({"folds": 1, "fold": 0}, "exclude.folds must be >= 2"),
                         ({"fraction": 0.2, "folds": 3, "fold": 0}, "not both"),
                         ({"fractoin": 0.2}, "unknown key"), ({"seed": "a", "fraction": 0.2}, "exclude.seed")):
        with pytest.raises(ConfigError, match=message):
            ExcludeSettings.from_config(bad)
    assert ExcludeSettings.from_config({"folds": 3.0, "fold": 1}).to_config() == {"seed": 0, "folds": 3, "fold": 1}
    for bad, message in (({"holdout": 0.2, "cross_fit": 3}, "names one mode"), ({"holdout": 2}, "features.holdout"),
                         ({"cross_fit": 1}, "features.cross_fit must be >= 2"), ({"in_sample": False}, "no value"),
                         ({"holdout": 0.2, "sead": 1}, "unknown key")):
        with pytest.raises(ConfigError, match=message):
            FeaturePlan.from_config(bad)


def test_a_features_section_names_one_mode_whose_name_alone_takes_its_default():
    assert FeaturePlan.from_config("holdout") == FeaturePlan(mode="holdout", fraction=0.25, seed=0)
    assert FeaturePlan.from_config({"cross_fit": None, "seed": 2}) == FeaturePlan(mode="cross_fit", folds=3, seed=2)
    assert FeaturePlan.from_config({"holdout": 0.4}).deployed_exclude() == {"fraction": 0.4, "seed": 0}
    assert FeaturePlan.from_config({"in_sample": True}).record() == {"mode": "in_sample"}


def test_a_stream_run_records_the_clips_it_fitted(runs):
    all_train = {e.clip_id for e in load_entries(runs["cache"], split="train")}
    whole = read_train_clips(runs["whole"])
    assert set(whole.trained_on) == all_train and whole.held_out == [] and whole.exclude is None
    holdout = read_train_clips(runs["holdout"] / "best")  # a checkpoint directory finds its run's record
    assert len(holdout.held_out) == 6 and set(holdout.trained_on) == all_train - set(holdout.held_out)
    assert holdout.exclude == {"seed": 0, "fraction": 0.4}
    folds = [read_train_clips(r) for r in runs["folds"]]
    assert set().union(*(f.held_out for f in folds)) == all_train
    assert sum(len(f.held_out) for f in folds) == N_TRAIN


def test_a_run_started_on_other_clips_is_refused(tmp_path):
    record = TrainClips(split="train", trained_on=["a", "b"], held_out=["c"], exclude={"fraction": 0.3})
    record_train_clips(tmp_path, record)
    (tmp_path / "config.yaml").write_text("stream: audio\n")
    record_train_clips(tmp_path, record)  # the same clips: fine
    other = TrainClips(split="train", trained_on=["a"], held_out=["b", "c"], exclude={"fraction": 0.6})
    with pytest.raises(ConfigError, match="other clips"):
        record_train_clips(tmp_path, other)
    record_train_clips(tmp_path, other, fresh=True)
    assert read_train_clips(tmp_path).held_out == ["b", "c"]


def direct_features(run: Path, entries) -> np.ndarray:
    """Features of ``entries`` computed clip by clip with ``run``'s network."""
    model, recipe, _, _ = load_trained_stream(run)
    view = StreamDataset([], "audio", recipe["data"], train=False)
    with torch.inference_mode():
        return np.concatenate([model.features(view.load_input(e)[None]).numpy() for e in entries])


def test_cross_fit_never_features_a_clip_with_a_run_that_fitted_it(runs, tmp_path):
    feats = tmp_path / "feats"
    extract_features({"audio": str(runs["whole"])}, runs["cache"], feats)  # in_sample first, same whole-train run
    status = extract_features({"audio": str(runs["whole"])}, runs["cache"], feats,
                              fold_runs={"audio": [str(r) for r in runs["folds"]]},
                              plan=FeaturePlan(mode="cross_fit", folds=FOLDS, seed=0))
    assert status["train"] == {"audio": "computed"} and status["val"] == {"audio": "reused"}
    index = json.loads((feats / "train" / "index.json").read_text())
    assert index["features"]["mode"] == "cross_fit"
    info = index["streams"]["audio"]
    entries = {e.clip_id: e for e in load_entries(runs["cache"], split="train")}
    assert sorted(index["clip_ids"]) == sorted(entries)  # every train clip gets out-of-fold features
    fs = FeatureSet(feats, "train")
    for i, clip_id in enumerate(index["clip_ids"]):
        run = info["runs"][info["clip_run"][i]]
        record = read_train_clips(run)
        assert clip_id not in record.trained_on and clip_id in record.held_out
        others = [read_train_clips(r) for r in info["runs"] if r != run]
        assert all(clip_id in o.trained_on for o in others)
        np.testing.assert_allclose(fs.features["audio"][i], direct_features(Path(run), [entries[clip_id]])[0],
                                   rtol=1e-4, atol=1e-5)
    assert len(set(info["clip_run"])) == FOLDS
    # val features (and the deployed pipeline) come from the run on the whole train split
    val = json.loads((feats / "val" / "index.json").read_text())
    assert val["features"]["mode"] == "cross_fit"
    assert val["streams"]["audio"]["runs"] == [str(runs["whole"].resolve())]
    assert index["streams"]["audio"]["run"] == str(runs["whole"].resolve())
    again = extract_features({"audio": str(runs["whole"])}, runs["cache"], feats,
                             fold_runs={"audio": [str(r) for r in runs["folds"]]})
    assert again["train"] == {"audio": "reused"}


def test_cross_fit_needs_one_run_per_fold_and_a_whole_train_run(runs, tmp_path):
    with pytest.raises(ConfigError, match="one run per fold"):
        extract_features({"audio": str(runs["whole"])}, runs["cache"], tmp_path / "a",
                         fold_runs={"audio": [str(r) for r in runs["folds"][:2]]})
    with pytest.raises(ConfigError, match="whole train split"):
        extract_features({"audio": str(runs["holdout"])}, runs["cache"], tmp_path / "b",
                         fold_runs={"audio": [str(r) for r in runs["folds"]]})


def test_holdout_gives_fusion_only_the_clips_the_streams_never_saw(runs, tmp_path):
    feats = tmp_path / "feats"
    extract_features({"audio": str(runs["holdout"])}, runs["cache"], feats,
                     plan=FeaturePlan(mode="holdout", fraction=0.4, seed=0))
    record = read_train_clips(runs["holdout"])
    fs = FeatureSet(feats, "train")
    assert sorted(fs.clip_ids) == sorted(record.held_out)
    assert not set(fs.clip_ids) & set(record.trained_on)
    assert Counter(fs.labels.tolist()) == {0: 2, 1: 2, 2: 2}
    assert len(FeatureSet(feats, "val")) == N_VAL
    with pytest.raises(ConfigError, match="asks for"):  # the recipe says in_sample, the runs hold clips back
        extract_features({"audio": str(runs["holdout"])}, runs["cache"], tmp_path / "x",
                         plan=FeaturePlan(mode="in_sample"))


def test_in_sample_gives_todays_features(runs, tmp_path):
    feats = tmp_path / "feats"
    extract_features({"audio": str(runs["whole"])}, runs["cache"], feats, plan=FeaturePlan(mode="in_sample"))
    entries = load_entries(runs["cache"], split="train")
    model, recipe, _, _ = load_trained_stream(runs["whole"])
    today = stream_outputs(model, StreamDataset([], "audio", recipe["data"], train=False), entries)
    fs = FeatureSet(feats, "train")
    assert fs.clip_ids == [e.clip_id for e in entries]
    assert np.array_equal(fs.features["audio"], today[0]) and np.array_equal(fs.probs["audio"], today[1])
    assert json.loads((feats / "train" / "index.json").read_text())["features"] == {"mode": "in_sample"}
