"""Training the sentiment scorer on GroupEmoW-format image folders, with the shared loop."""
from __future__ import annotations

import os

import torch

from media.datasets import read_groupemow
from training.config import ConfigError, building_from, check_keys
from training.train_config import resolve_train_config
from training.loop import fit
from keyframes.data import ImageFolderDataset
from keyframes.scorer import create_scorer


def train_scorer(cfg: dict, data_root: str | os.PathLike, out_dir: str | os.PathLike, *, fresh: bool = False) -> dict:
    """Fine-tune the scorer described by the recipe ``cfg`` (sections model, data, train) on
    ``data_root/{train,val}``; returns the run's metrics (see :func:`training.loop.fit`)."""
    check_keys(cfg, ("model", "data", "train"), "the scorer recipe")
    check_keys(cfg.get("model") or {}, ("depth", "pretrained"), "model")
    check_keys(cfg.get("data") or {}, ("input_size",), "data")
    model_cfg = dict(cfg.get("model") or {})
    seed = resolve_train_config(cfg.get("train"))["seed"]
    size = (cfg.get("data") or {}).get("input_size", 224)
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ConfigError(f"data.input_size must be an integer >= 1 (px), got {size!r}")
    train_records = read_groupemow(data_root, "train")
    val_records = read_groupemow(data_root, "val")
    class_names = train_records[0].class_names
    torch.manual_seed(seed)  # same initial weights on every run
    with building_from("model"):
        model = create_scorer(num_classes=len(class_names), depth=model_cfg.get("depth", 50),
                              pretrained=model_cfg.get("pretrained"))
    return fit(model=model,
               train_dataset=ImageFolderDataset(train_records, input_size=size, train=True, seed=seed),
               val_dataset=ImageFolderDataset(val_records, input_size=size, train=False, seed=seed),
               class_names=class_names, cfg=cfg.get("train"), out_dir=out_dir, fresh=fresh,
               recipe={k: v for k, v in cfg.items() if k != "train"})
