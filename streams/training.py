"""Training one stream from the preprocessing cache with the shared loop.

At the end of training the run's temperature is fitted on the val clips (the best checkpoint's
logits, :func:`calibrate_stream_run`) and kept in ``RUN/best/calibration.json``
(:mod:`training.run_calibration`).
"""
from __future__ import annotations

import os

import torch

from core.config import ConfigError, building_from, check_builder_section, check_keys
from streams.cache import load_entries
from streams.data import StreamDataset, build_stream_datasets
from streams.folds import ExcludeSettings, TrainClips, excluded_clips, labelled_ids, record_train_clips
from streams.specs import STREAM_SPECS, StreamSpec
from training.loop import fit
from training.processes import partial_state
from training.run_calibration import read_calibration, write_calibration
from training.train_config import resolve_train_config

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
    metrics = fit(model=model, train_dataset=train_ds, val_dataset=val_ds, class_names=class_names,
                  cfg=cfg.get("train"), out_dir=out_dir, fresh=fresh, recipe=recipe,
                  checkpoint_meta={"pretrained": loaded} if loaded else None)
    state = partial_state()
    if state.is_main_process and len(val_ds) and read_calibration(out_dir) is None:
        tc = resolve_train_config(cfg.get("train"))
        calibrate_stream_run(out_dir, cache_root, device=state.device,
                             batch_size=tc.get("eval_batch_size") or tc["batch_size"], num_workers=tc["num_workers"])
    return metrics


@torch.inference_mode()
def calibrate_stream_run(run: str | os.PathLike, cache_root: str | os.PathLike | None = None, *,
                         device: str | torch.device = "cpu", batch_size: int = 32, num_workers: int = 0) -> dict:
    """(Re)fit the temperature of stream run ``run`` (its best checkpoint) on the labelled val
    clips of ``cache_root`` (default: the cache its recipe records) that have the stream, and write
    its ``calibration.json``; returns its content. One pass of the model over those clips, in the
    eval view, on ``device``."""
    model, recipe, _, _ = load_trained_stream(run, device=str(device))
    cache_root = cache_root if cache_root is not None else recipe.get("cache")
    if not cache_root:
        raise ConfigError(f"{run}: its recipe records no cache; name the cache to fit the temperature on")
    stream = recipe["stream"]
    dataset = StreamDataset(load_entries(cache_root, split="val", require=(stream,), labelled=True), stream,
                            recipe.get("data", {}), train=False)
    if not len(dataset):
        raise ConfigError(f"{cache_root}: no labelled val clips with {stream} inputs to fit {run}'s temperature on")
    logits, labels = [], []
    for x, y in torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=num_workers):
        logits.append(model(x.to(device)).float().cpu())
        labels.append(y)
    return write_calibration(run, torch.cat(logits).numpy(), torch.cat(labels).numpy(), fitted_on="val")


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
