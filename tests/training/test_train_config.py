"""The train: section as settings dataclasses: its defaults (written once, in the fields) resolve
to the mapping the loop has always consumed, values keep the types the recipe gave, and every
mistake is one ConfigError naming train.<key>."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from core.config import ConfigError, load_config
from training.train_config import (
    DEFAULT_TRAIN_CONFIG,
    OPTIMIZERS,
    SCHEDULES,
    TrainSettings,
    lr_factor,
    resolve_train_config,
)

ROOT = Path(__file__).resolve().parents[2]


def test_the_defaults_resolve_to_the_mapping_the_loop_consumes():
    assert resolve_train_config(None) == {
        "epochs": 10, "batch_size": 32, "grad_accum_steps": 1, "max_device_batch": None, "eval_batch_size": None,
        "num_workers": 0, "drop_last": False,
        "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0, "nesterov": False},
        "schedule": {"name": "constant"}, "mixed_precision": "no", "grad_clip": None, "seed": 0,
        "label_smoothing": 0.0, "eval_every": 1, "precise_bn_batches": 0,
        "sync_batchnorm": "auto", "cudnn_benchmark": True, "tf32": True, "channels_last_3d": False,
        "save_every": 1}
    assert list(resolve_train_config({})) == [f.name for f in dataclasses.fields(TrainSettings)]
    assert DEFAULT_TRAIN_CONFIG["optimizer"] == {"name": "sgd"} and DEFAULT_TRAIN_CONFIG["epochs"] == 10
    assert resolve_train_config({"schedule": "step"})["schedule"] == {"name": "step", "step_size": 10, "gamma": 0.1}
    assert set(OPTIMIZERS) == {"sgd", "adamw"} and set(SCHEDULES) == {"constant", "step", "cosine"}


def test_numbers_keep_the_type_the_recipe_gave():
    tc = resolve_train_config({"grad_clip": 1, "label_smoothing": 0,
                               "optimizer": {"name": "adamw", "lr": 1, "betas": (0, 1)}})
    assert type(tc["grad_clip"]) is int and type(tc["label_smoothing"]) is int and type(tc["optimizer"]["lr"]) is int
    assert tc["optimizer"]["betas"] == [0.0, 1.0] and all(type(b) is float for b in tc["optimizer"]["betas"])
    assert resolve_train_config({"epochs": 8.0})["epochs"] == 8   # YAML's 8.0 epochs is 8


@pytest.mark.parametrize("cfg, message", [
    ([1], r"^train must be a mapping, got list \[1\]$"),
    ({"optimizer": 3}, r"^train.optimizer must be a mapping with a 'name' \(one of \['adamw', 'sgd'\]\), got 3$"),
    ({"optimizer": {"name": "adamw", "betas": [0.9]}}, r"^train.optimizer.betas must be two numbers, got \[0.9\]$"),
    ({"optimizer": {"name": "sgd", "weight_decay": -1}}, r"^train.optimizer.weight_decay must be >= 0, got -1$"),
    ({"schedule": {"name": "cosine", "min_lr": 1}}, r"^train.schedule.min_lr must be in \[0, optimizer.lr\], got 1$"),
    ({"schedule": {"name": "step", "gamma": 0}}, r"^train.schedule.gamma must be > 0, got 0$"),
    ({"label_smoothing": 1.0}, r"^train.label_smoothing must be < 1, got 1.0$"),
    ({"grad_clip": "big"}, r"^train.grad_clip must be a positive number or null, got 'big'$"),
    ({"grad_accum_steps": 0}, r"^train.grad_accum_steps must be an integer >= 1 or 'auto', got 0$"),
    ({"drop_last": "yes"}, r"^train.drop_last must be true or false, got 'yes'$"),
    ({"seed": "abc"}, r"^train.seed must be an integer >= 0, got 'abc'$"),
    ({"epochs": 0}, r"^train.epochs must be >= 1, got 0$"),
])
def test_a_mistake_is_one_line_naming_the_key(cfg, message):
    with pytest.raises(ConfigError, match=message):
        resolve_train_config(cfg)


def test_cosine_factor_from_the_resolved_mapping():
    tc = resolve_train_config({"epochs": 4, "optimizer": {"name": "sgd", "lr": 0.1},
                               "schedule": {"name": "cosine", "min_lr": 0.01}})
    factor = lr_factor(tc)
    assert factor(0) == pytest.approx(1.0) and factor(4) == pytest.approx(0.1)


@pytest.mark.parametrize("recipe", sorted(p for p in (ROOT / "configs").rglob("*.yaml")
                                          if p.parent.name not in ("accelerate", "preprocess", "features", "shared")),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shipped_recipe_has_a_valid_train_section(recipe):
    resolve_train_config(load_config(recipe).get("train"))
