"""Training the sentiment scorer on GroupEmoW-format image folders, with the shared loop."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from core.config import building_from, check_builder_section, check_keys, check_settings, setting, settings_from_section
from keyframes.data import ImageFolderDataset
from keyframes.scorer import create_scorer
from media.layouts import read_groupemow
from training.loop import fit
from training.train_config import resolve_train_config


@dataclass(frozen=True)
class ScorerData:
    """The scorer recipe's ``data:`` section: images are seen at ``input_size`` px (short side
    resized, then a square crop), the size the scorer must later score at."""

    input_size: int = setting(224, minimum=1)

    def __post_init__(self) -> None:
        check_settings(self, "data")


def train_scorer(cfg: dict, data_root: str | os.PathLike, out_dir: str | os.PathLike, *, fresh: bool = False) -> dict:
    """Fine-tune the scorer described by the recipe ``cfg`` (sections model, data, train) on
    ``data_root/{train,val}``; returns the run's metrics (see :func:`training.loop.fit`)."""
    check_keys(cfg, ("model", "data", "train"), "the scorer recipe")
    check_builder_section(create_scorer, cfg.get("model") or {}, "model", given=("num_classes",))
    size = settings_from_section(ScorerData, cfg.get("data"), "data").input_size
    model_cfg = dict(cfg.get("model") or {})
    seed = resolve_train_config(cfg.get("train"))["seed"]
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
