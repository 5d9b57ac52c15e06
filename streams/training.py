"""Training one stream from the preprocessing cache with the shared loop."""
from __future__ import annotations

import os

import torch

from core.config import ConfigError, building_from, check_builder_section, check_keys
from streams.cache import load_entries
from streams.data import build_stream_datasets
from streams.folds import ExcludeSettings, TrainClips, excluded_clips, labelled_ids, record_train_clips
from streams.specs import STREAM_SPECS, StreamSpec
from training.loop import fit

#: ``exclude`` (optional): the part of the train split held back for fusion (:mod:`streams.folds`)
RECIPE_KEYS = ("stream", "model", "data", "exclude", "train")


def recipe_spec(cfg: dict) -> StreamSpec:
    """The spec of the stream a recipe names (``stream:``); :class:`ConfigError` otherwise."""
    stream = cfg.get("stream")
    if stream not in STREAM_SPECS:
        raise ConfigError(f"config 'stream' must be one of {', '.join(STREAM_SPECS)}, got {stream!r}")
    return STREAM_SPECS[stream]


def build_stream_model(cfg: dict, num_classes: int) -> torch.nn.Module:
    """The stream named by ``cfg['stream']`` built from ``cfg['model']`` (the keyword arguments of
    its spec's :meth:`~streams.specs.base.StreamSpec.create_model`)."""
    spec = recipe_spec(cfg)
    model_cfg = cfg.get("model") or {}
    check_builder_section(spec.model_builder, model_cfg, "model", given=("num_classes",))  # also: not a mapping
    with building_from("model"):
        return spec.model_builder(num_classes=num_classes, **model_cfg)


def train_stream(cfg: dict, cache_root: str | os.PathLike, out_dir: str | os.PathLike, *, fresh: bool = False) -> dict:
    """Train the stream of recipe ``cfg`` on ``cache_root``'s train split (less the part its
    ``exclude`` section holds back), validating on val. The clips it fits and holds back are
    recorded in ``OUT/train_clips.json``."""
    from training.processes import partial_state
    from training.train_config import resolve_train_config

    check_keys(cfg, RECIPE_KEYS, "the stream recipe")
    recipe_spec(cfg)  # before the cache is read
    seed = resolve_train_config(cfg.get("train"))["seed"]
    exclude = ExcludeSettings.from_config(cfg.get("exclude"))
    held_out = excluded_clips(labelled_ids(load_entries(cache_root, split="train", labelled=True)), exclude)
    train_ds, val_ds, class_names = build_stream_datasets(str(cache_root), cfg["stream"], cfg.get("data", {}),
                                                          seed=seed, exclude=held_out)
    torch.manual_seed(seed)  # same initial weights on every run
    model = build_stream_model(cfg, len(class_names))
    if partial_state().is_main_process:
        record_train_clips(out_dir, TrainClips(split="train", trained_on=[e.clip_id for e in train_ds.entries],
                                               held_out=sorted(held_out),
                                               exclude=exclude.to_config() if exclude else None), fresh=fresh)
    recipe = {k: v for k, v in cfg.items() if k != "train"}
    recipe["cache"] = str(cache_root)
    loaded = getattr(model, "load_report", None)  # what a pretrained file gave the network
    return fit(model=model, train_dataset=train_ds, val_dataset=val_ds, class_names=class_names,
               cfg=cfg.get("train"), out_dir=out_dir, fresh=fresh, recipe=recipe,
               checkpoint_meta={"pretrained": loaded} if loaded else None)


def load_trained_stream(run: str | os.PathLike, *, device: str = "cpu", stream: str | None = None):
    """A trained stream from its run directory (best checkpoint) or a checkpoint directory;
    ``stream``, when given, is the stream the caller wants (another stream's run is a
    :class:`CheckpointError` saying which it is).

    Returns ``(model in eval mode, recipe dict, class_names, checkpoint_hash)``. The recipe is the
    one recorded in the checkpoint, so the model is rebuilt exactly as trained; weights load from
    safetensors (no pickle)."""
    from training.checkpoints import CheckpointError, checkpoint_hash, load_checkpoint

    state, meta = load_checkpoint(run)
    recipe = dict(meta.get("config", {}))
    wanted, stream = stream, recipe.get("stream")
    if stream not in STREAM_SPECS:
        raise CheckpointError(f"{run}: not a stream run (its checkpoint's config names no stream of "
                              f"{', '.join(STREAM_SPECS)}: {stream!r}; train one with tools/train_stream.py)")
    if wanted is not None and stream != wanted:
        raise CheckpointError(f"{run}: a run of the {stream} stream, given for the {wanted} stream")
    class_names = list(meta["class_names"])
    model_cfg = STREAM_SPECS[stream].trained_model_config(recipe.get("model", {}))
    model = build_stream_model({**recipe, "model": model_cfg}, len(class_names))
    model.load_state_dict(state)
    return model.eval().to(device), recipe, class_names, checkpoint_hash(run)
