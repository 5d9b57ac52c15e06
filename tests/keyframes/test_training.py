"""train_scorer on a tiny GroupEmoW tree (ResNet-18, 32 px, 1-2 epochs): the run directory loads
back as a SentimentScorer with the VGAF class names, a finished run is reused, a changed recipe is
refused, an extended run resumes to the weights of an uninterrupted one; the recipe's model, data
and seed reach the model and datasets; a missing split is named."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torchvision

import keyframes.training
from keyframes.data import ImageFolderDataset
from keyframes.scorer import SentimentScorer
from keyframes.training import train_scorer
from media.layouts import DatasetError
from training.checkpoints import load_checkpoint
from training.loop import RunConfigMismatchError

pytestmark = pytest.mark.slow  # trains the ResNet-18 scorer

CLASSES = ["Positive", "Neutral", "Negative"]
RECIPE = {
    "model": {"depth": 18, "pretrained": None},
    "data": {"input_size": 32},
    "train": {"epochs": 1, "batch_size": 6, "num_workers": 0, "seed": 0,
              # plain SGD keeps no optimizer state: each epoch saves 45 MB less (ResNet-18)
              "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.0},
              "schedule": {"name": "step", "step_size": 1, "gamma": 0.5}},
}


def recipe(**train) -> dict:
    cfg = copy.deepcopy(RECIPE)
    cfg["train"].update(train)
    return cfg


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    """train: 2 stills per class, val: 1, each a noisy picture in its class's colour."""
    root = tmp_path_factory.mktemp("groupemow")
    rng = np.random.default_rng(0)
    for split, n in (("train", 2), ("val", 1)):
        for c, folder in enumerate(("positive", "neutral", "negative")):
            for i in range(n):
                img = rng.integers(0, 60, (36, 48, 3), dtype=np.uint8)
                img[..., c] += 150
                path = root / split / folder / f"{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                assert cv2.imwrite(str(path), img[..., ::-1])
    return root


def test_run_loads_as_a_scorer_is_reused_and_resumes_to_the_uninterrupted_weights(data_root, tmp_path):
    straight = train_scorer(recipe(epochs=2), data_root, tmp_path / "straight")
    assert straight["history"][1]["lr"] == pytest.approx(0.025)  # the recipe's schedule is in force

    run = tmp_path / "run"
    metrics = train_scorer(recipe(), data_root, run)
    assert metrics["finished"] is True and len(metrics["history"]) == 1
    assert metrics["class_names"] == CLASSES
    for name in ("config.yaml", "metrics.json", "train.log", "best/model.safetensors", "last/model.safetensors"):
        assert (run / name).is_file(), name

    # what keyframe extraction loads: depth, input size and class names come from the run
    scorer = SentimentScorer.from_checkpoint(run)
    assert scorer.class_names == tuple(CLASSES) and scorer.input_size == 32
    assert [len(scorer.model.layer1), len(scorer.model.layer4)] == [2, 2]  # ResNet-18
    probs = scorer.score([np.full((45, 80, 3), v, np.uint8) for v in (0, 128, 255)])
    assert probs.shape == (3, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)

    # the same recipe again reuses the finished run; another one is refused
    mtime = (run / "last" / "meta.json").stat().st_mtime_ns
    assert train_scorer(recipe(), data_root, run) == json.loads((run / "metrics.json").read_text())
    assert (run / "last" / "meta.json").stat().st_mtime_ns == mtime
    bigger = recipe()
    bigger["data"]["input_size"] = 40
    with pytest.raises(RunConfigMismatchError, match="data.input_size: 32 -> 40"):
        train_scorer(bigger, data_root, run)

    # one more epoch resumes and lands on the weights of the uninterrupted two-epoch run
    resumed = train_scorer(recipe(epochs=2), data_root, run)
    assert "resuming after epoch 1" in (run / "train.log").read_text()
    assert resumed["history"] == straight["history"]
    a = load_checkpoint(tmp_path / "straight", which="last")[0]
    b = load_checkpoint(run, which="last")[0]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def captured_fit(monkeypatch):
    """Replace the shared loop (tested in tests/training/test_loop.py) by a recorder of its arguments."""
    calls = []
    monkeypatch.setattr(keyframes.training, "fit", lambda **kw: calls.append(kw) or {"captured": True})
    return calls


def test_recipe_reaches_the_model_the_datasets_and_the_loop(data_root, tmp_path, captured_fit):
    torch.manual_seed(123)
    imagenet = torchvision.models.resnet18(weights=None)  # stands in for a local ImageNet file (1000-way fc)
    torch.save(imagenet.state_dict(), tmp_path / "resnet18.pth")
    cfg = recipe(seed=7)
    cfg["model"]["pretrained"] = str(tmp_path / "resnet18.pth")
    assert train_scorer(cfg, data_root, tmp_path / "run", fresh=True) == {"captured": True}
    (kw,) = captured_fit

    model = kw["model"]
    assert torch.equal(model.conv1.weight, imagenet.conv1.weight)
    assert torch.equal(model.layer4[1].bn2.running_var, imagenet.layer4[1].bn2.running_var)
    assert model.fc.out_features == 3  # a new head for the three classes, not ImageNet's
    train, val = kw["train_dataset"], kw["val_dataset"]
    assert isinstance(train, ImageFolderDataset) and isinstance(val, ImageFolderDataset)
    assert (train.train, train.input_size, train.seed, len(train)) == (True, 32, 7, 6)
    assert (val.train, val.input_size, len(val)) == (False, 32, 3)
    assert kw["class_names"] == tuple(CLASSES)
    assert kw["cfg"] == cfg["train"] and kw["fresh"] is True and kw["out_dir"] == tmp_path / "run"
    assert kw["recipe"] == {"model": cfg["model"], "data": cfg["data"]}


def test_seed_fixes_the_initial_weights(data_root, tmp_path, captured_fit):
    for seed in (0, 0, 1):
        train_scorer(recipe(seed=seed), data_root, tmp_path / "run")
    a, b, c = (kw["model"].state_dict() for kw in captured_fit)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["fc.weight"], c["fc.weight"])


def test_missing_val_split_is_named(data_root, tmp_path):
    root = tmp_path / "only_train"
    root.mkdir()
    (root / "train").symlink_to(data_root / "train", target_is_directory=True)
    with pytest.raises(DatasetError, match="val folder not found") as err:
        train_scorer(recipe(), root, tmp_path / "run")
    assert str(root / "val") in str(err.value)
    assert not (tmp_path / "run").exists()
