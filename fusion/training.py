"""Training the Concat-FC fusion head on cached stream features, with the shared loop."""
from __future__ import annotations

import os

import torch
from pathlib import Path

from media.storage import read_json
from training.config import builder_keys, check_keys
from training.loop import fit
from fusion.features import FeatureSet
from fusion.head import FeatureDataset, create_concat_fusion


#: the streams the method fuses (the fusion recipes' default, the demo's streams)
METHOD_STREAMS: tuple[str, ...] = ("visual", "audio", "flow", "face")


def fusion_streams(cfg: dict, feats_dir: str | os.PathLike) -> tuple[str, ...]:
    """The streams to fuse: ``cfg['streams']`` or every stream with cached features."""
    if cfg.get("streams"):
        return tuple(cfg["streams"])
    index = read_json(Path(feats_dir) / "train" / "index.json") or {}
    return tuple(index.get("streams", {}))


def train_fusion(cfg: dict, feats_dir: str | os.PathLike, out_dir: str | os.PathLike, *, fresh: bool = False) -> dict:
    """Train the fusion head of recipe ``cfg`` on ``feats_dir``'s train split (val for selection).

    The run records the whole pipeline it depends on (feature dir, stream runs and their
    checkpoint hashes, the preprocessing config and scorer), so :mod:`fusion.prediction` can
    rebuild it and refuse when a piece is missing or changed."""
    check_keys(cfg, ("streams", "model", "train"), "the fusion recipe")
    check_keys(cfg.get("model") or {}, builder_keys(create_concat_fusion, given=("stream_dims", "num_classes")), "model")
    streams = fusion_streams(cfg, feats_dir)
    train_fs = FeatureSet(feats_dir, "train", streams)
    val_fs = FeatureSet(feats_dir, "val", streams)
    torch.manual_seed(int(cfg.get("train", {}).get("seed", 0)))  # same initial weights on every run
    model = create_concat_fusion(stream_dims={s: train_fs.features[s].shape[1] for s in streams},
                                 num_classes=len(train_fs.class_names), **dict(cfg.get("model", {})))
    model.set_normalisation(train_fs.features, train_fs.available)
    cache = train_fs.index.get("cache")
    recipe = {k: v for k, v in cfg.items() if k != "train"}
    recipe.update({
        "streams": list(streams),
        "features": str(Path(feats_dir).resolve()),
        "pipeline": {
            "streams": {s: {"run": train_fs.stream_info[s]["run"],
                            "checkpoint_hash": train_fs.stream_info[s]["checkpoint_hash"]} for s in streams},
            "cache": cache,
            "preprocess": read_json(Path(cache) / "pipeline.json") if cache else None,
        },
    })
    return fit(model=model, train_dataset=FeatureDataset(train_fs, streams), val_dataset=FeatureDataset(val_fs, streams),
               class_names=train_fs.class_names, cfg=cfg.get("train"), out_dir=out_dir, fresh=fresh, recipe=recipe)


def load_fusion_head(run: str | os.PathLike):
    """``(head in eval mode, recipe, class_names)`` from a fusion run or checkpoint directory."""
    from training.checkpoints import CheckpointError, load_checkpoint

    state, meta = load_checkpoint(run)
    recipe = dict(meta.get("config") or {})
    if "streams" not in recipe:
        raise CheckpointError(f"{run}: not a fusion run (its checkpoint's config lists no streams; "
                              "train one with tools/train_fusion.py)")
    streams = tuple(recipe["streams"])
    dims = {s: int(state[f"mean_{s}"].shape[0]) for s in streams}
    model = create_concat_fusion(stream_dims=dims, num_classes=len(meta["class_names"]), **dict(recipe.get("model", {})))
    model.load_state_dict(state)
    return model.eval(), recipe, list(meta["class_names"])
