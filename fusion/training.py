"""Training any head of the fusion family (:mod:`fusion.heads`) on cached stream features.

:func:`train_fusion` reads a feature directory's train and val splits and records the pipeline
the features came from; :func:`train_fusion_head` trains on a train :class:`FeatureSet` and
selects on a val one, whatever produced them. Neural heads train with :func:`training.loop.fit`;
heads fitted in one pass (score weighting, stacking) write a run directory of the same layout:

    RUN/config.yaml     the recipe, with ``model.name``, ``streams`` and ``stream_dims``
    RUN/best/, RUN/last/  model.safetensors + meta.json (:func:`training.checkpoints.save_checkpoint`;
                        both hold the one fit)
    RUN/metrics.json    ``history`` (one entry, epoch 1), ``best_epoch``, ``best_val_acc``,
                        ``best_val_report``, ``class_names``, ``finished``, and ``fit``: what the
                        fit chose (weights, out-of-fold accuracies) and its time in seconds
    RUN/train.log       one line
    RUN/best/calibration.json  the temperature fitted on val (:func:`calibrate_fusion_run`)

so :func:`load_fusion_head`, tools/evaluate.py and tools/predict.py treat every run alike. A
checkpoint's config records the head's name and the stream dimensions; loading builds that head
and loads its weights, no guessing.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from core.config import ConfigError, check_keys
from core.storage import atomic_write_json, atomic_write_text, read_json
from fusion.dataset import FeatureDataset
from fusion.features import FeatureSet
from fusion.heads import FUSION_HEADS, create_fusion_head, head_arguments, head_name
from fusion.late import refuse_test_split
from training.checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from training.loop import fit
from training.metrics import classification_report
from training.processes import partial_state
from training.run_calibration import read_calibration, write_calibration
from training.run_directory import check_existing_run, clear_run_dir, metrics_record, run_config_record
from training.train_config import resolve_train_config

log = logging.getLogger(__name__)

#: the streams the method fuses (the fusion recipes' default, the demo's streams)
METHOD_STREAMS: tuple[str, ...] = ("visual", "audio", "flow", "face")
RECIPE_KEYS = ("streams", "model", "train")
#: the ``train:`` keys of a head fitted in one pass
ONE_PASS_TRAIN_KEYS = ("seed",)


def fusion_streams(cfg: dict, feats_dir: str | os.PathLike) -> tuple[str, ...]:
    """The streams to fuse: ``cfg['streams']`` or every stream with cached features."""
    if cfg.get("streams"):
        return tuple(cfg["streams"])
    index = read_json(Path(feats_dir) / "train" / "index.json") or {}
    return tuple(index.get("streams", {}))


def check_fusion_recipe(cfg: dict) -> str:
    """Check a fusion recipe's keys (top level, ``model:`` against its head's builder, ``train:``
    of a head fitted in one pass); returns the head's name. Raises :class:`ConfigError`."""
    check_keys(cfg, RECIPE_KEYS, "the fusion recipe")
    streams = cfg.get("streams")
    if streams is not None and not (isinstance(streams, list) and streams and all(isinstance(s, str) for s in streams)
                                    and len(set(streams)) == len(streams)):
        raise ConfigError(f"streams must be a list of distinct stream names, got {streams!r}")
    name = head_name(cfg.get("model"))
    head_arguments(cfg.get("model"))
    if not FUSION_HEADS[name].gradient:
        check_keys(cfg.get("train") or {}, ONE_PASS_TRAIN_KEYS,
                   f"train (the {name} head is fitted in one pass, without epochs or an optimizer)")
    if cfg.get("streams"):  # the builder checks its values (a test split to search on...) before any file is read
        create_fusion_head(cfg.get("model"), stream_dims={s: 1 for s in cfg["streams"]}, num_classes=2)
    return name


def train_fusion(cfg: dict, feats_dir: str | os.PathLike, out_dir: str | os.PathLike, *, fresh: bool = False) -> dict:
    """Train the fusion head of recipe ``cfg`` on ``feats_dir``'s train split (val for selection).

    The run records the whole pipeline it depends on (feature dir, stream runs and their
    checkpoint hashes, the preprocessing config and scorer), so :mod:`fusion.prediction` can
    rebuild it and refuse when a piece is missing or changed. Returns the run's metrics."""
    check_fusion_recipe(cfg)
    streams = fusion_streams(cfg, feats_dir)
    train_fs = FeatureSet(feats_dir, "train", streams)
    val_fs = FeatureSet(feats_dir, "val", streams)
    cache = train_fs.index.get("cache")
    recipe = {
        "features": str(Path(feats_dir).resolve()),
        "pipeline": {
            "streams": {s: {"run": train_fs.stream_info[s]["run"],
                            "checkpoint_hash": train_fs.stream_info[s]["checkpoint_hash"]} for s in streams},
            "cache": cache,
            "preprocess": read_json(Path(cache) / "pipeline.json") if cache else None,
        },
    }
    return train_fusion_head(cfg, train_fs, val_fs, out_dir, recipe=recipe, fresh=fresh,
                             split_features=lambda split: FeatureSet(feats_dir, split, streams))


def train_fusion_head(cfg: dict, train_fs: FeatureSet, val_fs: FeatureSet | None, out_dir: str | os.PathLike, *,
                      recipe: dict | None = None, fresh: bool = False,
                      split_features: Callable[[str], FeatureSet] | None = None) -> dict:
    """Train the head of recipe ``cfg`` on ``train_fs`` and select (and report) on ``val_fs``.

    ``train_fs`` may come from anywhere (the streams' in-sample features, a held-out part, out
    of fold); the head sees only its arrays: ``streams``, ``features[s]`` (N, D_s),
    ``probs[s]`` (N, C), ``available[s]`` (N,) bool, ``labels`` (N,), ``class_names`` and ``len``.
    ``recipe``: more to record in the run's config (the feature dir, the pipeline).
    ``split_features(name)``: the FeatureSet of another split, for a head that chooses on a named
    split (score weighting's ``search_on``; ``train`` and ``val`` are ``train_fs`` and ``val_fs``).
    Returns the run's metrics (see the module docstring)."""
    name = check_fusion_recipe(cfg)
    streams = tuple(train_fs.streams)
    if val_fs is not None and (tuple(val_fs.streams) != streams or val_fs.class_names != train_fs.class_names):
        raise ValueError(f"train and val features differ: streams {streams} / {tuple(val_fs.streams)}, "
                         f"classes {train_fs.class_names} / {val_fs.class_names}")
    stream_dims = {s: int(train_fs.features[s].shape[1]) for s in streams}
    run_recipe = {k: v for k, v in cfg.items() if k != "train"}
    run_recipe.update(recipe or {})
    run_recipe.update({"streams": list(streams), "model": {"name": name, **head_arguments(cfg.get("model"))},
                       "stream_dims": stream_dims})
    seed = resolve_train_config(cfg.get("train"))["seed"]
    torch.manual_seed(seed)  # same initial weights on every run
    head = create_fusion_head(cfg.get("model"), stream_dims=stream_dims, num_classes=len(train_fs.class_names))
    if FUSION_HEADS[name].gradient:
        head.set_normalisation(train_fs.features, train_fs.available)
        metrics = fit(model=head, train_dataset=FeatureDataset(train_fs, streams),
                      val_dataset=None if val_fs is None else FeatureDataset(val_fs, streams),
                      class_names=train_fs.class_names, cfg=cfg.get("train"), out_dir=out_dir, fresh=fresh,
                      recipe=run_recipe)
        _calibrate_if_needed(out_dir, val_fs)
        return metrics

    def named_split(split: str) -> tuple[dict, np.ndarray]:
        fs = {"train": train_fs, "val": val_fs}.get(split)
        if fs is None:
            if split_features is None:
                raise ConfigError(f"the {name} head asks for split {split!r}, and only train and val were given")
            fs = split_features(split)
        return FeatureDataset(fs, streams).batch(), fs.labels

    metrics = _fit_in_one_pass(head, train_fs, val_fs, out_dir, seed=seed, recipe=run_recipe, fresh=fresh,
                               named_split=named_split)
    _calibrate_if_needed(out_dir, val_fs)
    return metrics


def _calibrate_if_needed(run: str | os.PathLike, val_fs: FeatureSet | None) -> None:
    """Fit the finished run's temperature on ``val_fs`` unless it already has one for its weights
    (a reused run); nothing without labelled val clips, or on a process other than the main one."""
    if val_fs is None or not (val_fs.labels >= 0).any() or not partial_state().is_main_process:
        return
    if read_calibration(run) is None:
        calibrate_fusion_run(run, val_fs)


@torch.inference_mode()
def calibrate_fusion_run(run: str | os.PathLike, val_fs: FeatureSet | None = None) -> dict:
    """(Re)fit the temperature of fusion run ``run`` (its best checkpoint) on the labelled clips of
    ``val_fs`` (default: the val split of the run's feature directory) and write its
    ``calibration.json`` (:mod:`training.run_calibration`); returns its content. Every head's
    output is calibrated alike: the neural heads' logits, and the log-probabilities the score
    weighting and stacking heads return (temperature scaling of their probabilities)."""
    head, recipe, _ = load_fusion_head(run)
    if val_fs is None:
        val_fs = FeatureSet(recipe["features"], "val", tuple(recipe["streams"]))
    refuse_test_split(val_fs.split, "the temperature fit")
    labelled = val_fs.labels >= 0
    if not labelled.any():
        raise ValueError(f"{val_fs.split}: no labelled clips to fit {run}'s temperature on")
    logits = head(FeatureDataset(val_fs, head.streams).batch()).float().numpy()
    return write_calibration(run, logits[labelled], val_fs.labels[labelled], fitted_on=val_fs.split)


@torch.inference_mode()
def _score(head, fs: FeatureSet) -> tuple[float, dict] | None:
    """``(mean cross-entropy, classification report)`` of ``head`` on the labelled clips of ``fs``."""
    labelled = fs.labels >= 0
    if not labelled.any():
        return None
    logits = head(FeatureDataset(fs, head.streams).batch())[torch.from_numpy(labelled)].float()
    labels = torch.from_numpy(fs.labels[labelled])
    report = classification_report(labels.numpy(), logits.argmax(1).numpy(), fs.class_names)
    return float(F.cross_entropy(logits, labels)), report


def _fit_in_one_pass(head, train_fs: FeatureSet, val_fs: FeatureSet | None, out_dir: str | os.PathLike, *,
                     seed: int, recipe: dict, fresh: bool, named_split: Callable) -> dict:
    """Fit a head without gradients and write its run directory (layout in the module docstring).
    A finished run with the same config is reused (its metrics returned, nothing written); a
    different config raises :class:`training.run_directory.RunConfigMismatchError`."""
    out_dir = Path(out_dir)
    class_names = list(train_fs.class_names)
    tc = {"seed": seed}
    run_config = run_config_record(tc, class_names, recipe)
    if fresh:
        clear_run_dir(out_dir)
    reused = check_existing_run(out_dir, run_config, {"epochs": 1})
    if reused is not None:
        log.info("%s: already finished, reusing the stored metrics", out_dir)
        return reused
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "config.yaml", yaml.safe_dump(run_config, sort_keys=False))
    t0 = time.perf_counter()
    info = head.fit_inputs(FeatureDataset(train_fs, head.streams).batch(), train_fs.labels, seed=seed,
                           split_inputs=named_split)
    fit_seconds = time.perf_counter() - t0
    head.eval()
    train_loss, train_report = _score(head, train_fs)
    val = _score(head, val_fs) if val_fs is not None else None
    record = {"epoch": 1, "train_loss": train_loss, "train_acc": train_report["accuracy"],
              "val_loss": None if val is None else val[0], "val_acc": None if val is None else val[1]["accuracy"],
              "val_macro_f1": None if val is None else val[1]["macro_f1"], "lr": None}
    meta = {"config": run_config, "class_names": class_names, "epoch": 1, "metrics": record}
    state = head.state_dict()
    if val is not None:
        save_checkpoint(out_dir / "best", state_dict=state, meta=meta)
    save_checkpoint(out_dir / "last", state_dict=state, meta=meta)
    progress = {"epoch": 1, "history": [record], "best_epoch": 1 if val is not None else None,
                "best_val_acc": record["val_acc"], "best_val_report": None if val is None else val[1]}
    plan = {"description": "fitted in one pass on the whole train split (no batches, no epochs)"}
    metrics = metrics_record(progress, class_names, plan, out_dir, finished=True)
    metrics["fit"] = {**info, "seconds": round(fit_seconds, 3)}
    atomic_write_json(out_dir / "metrics.json", metrics)
    line = (f"fitted {recipe['model']['name']} in {fit_seconds:.2f} s: train_acc {record['train_acc']:.4f}"
            + ("" if val is None else f"  val_acc {record['val_acc']:.4f}  val_macro_f1 {record['val_macro_f1']:.4f}"))
    with open(out_dir / "train.log", "a", encoding="utf-8") as f:
        f.write(time.strftime("%Y-%m-%d %H:%M:%S ") + line + "\n")
    log.info("%s: %s", out_dir, line)
    return metrics


def load_fusion_head(run: str | os.PathLike):
    """``(head in eval mode, recipe, class_names)`` from a fusion run or checkpoint directory: the
    head its config names (``model.name``) over the recorded ``stream_dims``, with its weights."""
    state, meta = load_checkpoint(run)
    recipe = dict(meta.get("config") or {})
    if "streams" not in recipe:
        raise CheckpointError(f"{run}: not a fusion run (its checkpoint's config lists no streams; "
                              "train one with tools/train_fusion.py)")
    model_cfg = dict(recipe.get("model") or {})
    dims = recipe.get("stream_dims")
    if "name" not in model_cfg or not isinstance(dims, dict):
        raise CheckpointError(f"{run}: the checkpoint does not record its fusion head's name and stream "
                              "dimensions (it was written before the fusion family); "
                              "retrain it with tools/train_fusion.py --fresh")
    if model_cfg["name"] not in FUSION_HEADS:
        raise CheckpointError(f"{run}: unknown fusion head {model_cfg['name']!r} (known: {', '.join(FUSION_HEADS)})")
    if list(dims) != list(recipe["streams"]):
        raise CheckpointError(f"{run}: stream_dims {list(dims)} do not match the streams {recipe['streams']}")
    class_names = list(meta["class_names"])
    try:
        head = create_fusion_head(model_cfg, stream_dims={s: int(d) for s, d in dims.items()},
                                  num_classes=len(class_names))
        head.load_state_dict(state)
    except (ConfigError, RuntimeError) as e:
        raise CheckpointError(f"{run}: cannot rebuild its {model_cfg['name']} head over {dims}: {e}") from None
    return head.eval(), recipe, class_names
