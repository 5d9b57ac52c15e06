"""Face-expression pretraining on FER2013 (tools/train_face_pretrain.py): the run is an ordinary
training run whose checkpoint initialises the 3D face stream through I3D inflation, every
backbone tensor of the stream coming from it; a labels: mapping reaches the datasets."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
import torch

from core.config import ConfigError, load_config
from keyframes.scorer import IMAGENET_MEAN, IMAGENET_STD
from media.layouts import FER2013_CLASSES
from streams.face_pretraining import FaceImageDataset, train_face_pretraining
from streams.models.pretrained import init_from_pretrained
from streams.specs.face import create_face_stream
from streams.training import build_stream_model
from synthetic.fer2013 import generate_fer2013
from tests.conftest import load_tool

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "configs/faces/fer2013_tiny.yaml"


@pytest.fixture(scope="module")
def fer_csv(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fer_csv")
    generate_fer2013(root, form="csv", n_train=14, n_val=7, n_test=0, seed=2)
    return root / "fer2013.csv"


@pytest.fixture(scope="module")
def pretrain_run(tmp_path_factory, fer_csv) -> Path:
    """One epoch of the tiny recipe (plain SGD: no optimizer moments to write)."""
    out = tmp_path_factory.mktemp("fer_run")
    rc = load_tool("train_face_pretrain").main([
        "--config", str(TINY), "--data", str(fer_csv), "--out", str(out),
        "--set", "train.epochs=1", "train.optimizer={name: sgd, lr: 0.01, momentum: 0.0}"])
    assert rc == 0
    return out


@pytest.mark.slow  # the pretrain_run fixture trains a 2D ResNet on FER2013 stills
def test_the_run_is_a_training_run_with_a_torchvision_layout_checkpoint(pretrain_run):
    metrics = json.loads((pretrain_run / "metrics.json").read_text())
    assert metrics["finished"] and metrics["class_names"] == list(FER2013_CLASSES)
    assert metrics["best_val_report"]["confusion_matrix"] and len(metrics["history"]) == 1
    state = safetensors.torch.load_file(str(pretrain_run / "best" / "model.safetensors"))
    assert state["conv1.weight"].shape == (64, 3, 7, 7) and "layer4.2.conv3.weight" in state
    assert state["fc.weight"].shape == (7, 2048)
    assert (pretrain_run / "config.yaml").exists() and (pretrain_run / "train.log").exists()


@pytest.mark.slow  # the pretrain_run fixture trains a 2D ResNet on FER2013 stills
def test_face_stream_gets_every_backbone_tensor_inflated_from_the_run(pretrain_run):
    torch.manual_seed(0)
    model = create_face_stream(num_classes=3)
    backbone_keys = set(model.backbone.state_dict())
    report = init_from_pretrained(model, path=pretrain_run, format="inflate2d")
    assert set(report.loaded) == backbone_keys
    assert report.missing == [] and report.unexpected == [] and report.skipped_shape == []
    assert sorted(report.skipped_on_purpose) == ["fc.bias", "fc.weight"]
    state2d = safetensors.torch.load_file(str(pretrain_run / "best" / "model.safetensors"))
    stem = model.backbone.state_dict()["blocks.0.conv.weight"]                 # (64, 3, kt, 7, 7)
    torch.testing.assert_close(stem.sum(dim=2), state2d["conv1.weight"])       # I3D: repeated over time / kt
    torch.testing.assert_close(model.backbone.state_dict()["blocks.4.res_blocks.2.branch2.norm_c.running_var"],
                               state2d["layer4.2.bn3.running_var"])
    # the checkpoint directory and its weights file name the same weights
    for path in (pretrain_run / "best", pretrain_run / "best" / "model.safetensors"):
        other = create_face_stream(num_classes=3)
        assert len(init_from_pretrained(other, path=path, format="inflate2d").loaded) == len(backbone_keys)
        torch.testing.assert_close(other.backbone.state_dict()["blocks.0.conv.weight"], stem)


@pytest.mark.slow  # the pretrain_run fixture trains a 2D ResNet on FER2013 stills
def test_a_stream_recipe_names_the_run_as_its_pretrained_weights(pretrain_run):
    recipe = load_config(ROOT / "configs/streams/face.yaml")
    recipe["model"]["pretrained"] = {"path": str(pretrain_run), "format": "inflate2d"}
    model = build_stream_model({k: v for k, v in recipe.items() if k != "train"}, num_classes=8)
    state2d = safetensors.torch.load_file(str(pretrain_run / "best" / "model.safetensors"))
    assert recipe["model"]["arch"] == "resnet3d"  # the recipe's 3D ResNet names its tensors like the 2D one
    torch.testing.assert_close(model.backbone.state_dict()["layer1.0.conv2.weight"].sum(dim=2),
                               state2d["layer1.0.conv2.weight"])
    assert model.load_report["missing"] == [] and model.load_report["mismatched"] == []
    assert model.load_report["loaded"] == len(model.backbone.state_dict())


def test_labels_mapping_and_splits_reach_the_datasets(tmp_path, monkeypatch):
    """The valence recipe on the image-folder form without a val split: the loop gets the VGAF
    classes, Surprise left out, no validation set; views are the grey image repeated to RGB."""
    root = tmp_path / "folders"
    summary = generate_fer2013(root, form="folder", n_train=21, n_val=0, n_test=7, seed=3)
    seen = {}

    def recorder(**kwargs):
        seen.update(kwargs)
        return {}
    monkeypatch.setattr("streams.face_pretraining.fit", recorder)
    cfg = load_config(ROOT / "configs/faces/fer2013_valence.yaml", ["data.val_split=null", "data.input_size=64"])
    train_face_pretraining(cfg, root, tmp_path / "run")
    assert seen["class_names"] == ("Positive", "Neutral", "Negative")
    assert seen["val_dataset"] is None
    train = seen["train_dataset"]
    assert len(train) == 21 - summary["images"]["train"]["Surprise"]
    assert sorted(set(train.labels.tolist())) == [0, 1, 2]
    assert seen["model"].fc.out_features == 3
    assert seen["recipe"]["labels"]["drop"] == ["Surprise"]
    x, label = train[0]
    assert x.shape == (3, 64, 64) and label == train.labels[0]
    rgb = x.numpy().transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN
    np.testing.assert_allclose(rgb[..., 0], rgb[..., 2], atol=1e-5)


def test_eval_views_are_deterministic_and_train_views_follow_the_epoch():
    images = np.random.default_rng(0).integers(0, 256, (2, 48, 48), dtype=np.uint8)
    evaluation = FaceImageDataset(images, np.array([0, 1]), input_size=56, train=False)
    assert torch.equal(evaluation[1][0], evaluation[1][0])
    training = FaceImageDataset(images, np.array([0, 1]), input_size=56, train=True, seed=1)
    training.set_epoch(1)
    first = training[0][0]
    assert torch.equal(first, training[0][0])
    training.set_epoch(2)
    assert not torch.equal(first, training[0][0])


def test_bad_recipes_are_config_errors(fer_csv, tmp_path):
    cfg = load_config(TINY, ["model.depth=34"])
    with pytest.raises(ConfigError, match="model.depth must be one of \\[50, 101, 152\\]"):
        train_face_pretraining(cfg, fer_csv, tmp_path / "a")
    with pytest.raises(ConfigError, match="unknown key\\(s\\) \\['size'\\]"):
        train_face_pretraining(load_config(TINY, ["data.size=3"]), fer_csv, tmp_path / "b")
    for setting, message in (("data.crop_scale=[0.9,0.5]", "data.crop_scale must be two numbers"),
                             ("data.val_split=Val2", "data.val_split must be one of"),
                             ("data.input_size=0", "data.input_size must be >= 1"),
                             ("model.depth=x", "model.depth must be an integer")):
        with pytest.raises(ConfigError, match=message):
            train_face_pretraining(load_config(TINY, [setting]), fer_csv, tmp_path / "d")
    with pytest.raises(ConfigError, match="'Surprise', 'Neutral' are neither mapped nor dropped"):
        train_face_pretraining(load_config(TINY, ["labels={map: {Angry: a, Disgust: a, Fear: a, Happy: b, Sad: a}}"]),
                               fer_csv, tmp_path / "c")
