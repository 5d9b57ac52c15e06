"""The run directory of a training (layout in :mod:`training.checkpoints`): the config it records
and compares on resume, the Accelerate state swapped in atomically, the progress file, and the
``metrics.json`` record."""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from accelerate import Accelerator

from core.config import ConfigError, load_yaml
from core.storage import WriteError, atomic_write_json, remove_temp_files
from training.checkpoints import WEIGHTS_NAME, link_file, load_weights_file, written_by_save_checkpoint
from training.train_config import DEFAULT_TRAIN_CONFIG

RUN_ENTRIES = ("config.yaml", "best", "last", "state", ".state.tmp", ".state.old", "tb", "metrics.json",
               "train.log")
#: may differ between a run and its resume: how long, how the global batch is split over devices and
#: accumulation steps, the arithmetic precision, and how fast and how often it is saved; not what is
#: trained on (data, model, optimizer, schedule, global batch, seed)
_RESUMABLE_KEYS = {"train.epochs", "train.num_workers", "train.max_device_batch", "train.grad_accum_steps",
                   "train.mixed_precision", "train.save_every", "train.sync_batchnorm", "train.cudnn_benchmark",
                   "train.tf32", "train.channels_last_3d"}



class RunConfigMismatchError(ConfigError):
    """The run directory was started with a different config; resuming it would mix two runs."""



def metrics_record(progress: dict, class_names: list[str], batch_plan: dict, out_dir: Path, *, finished: bool) -> dict:
    return {"history": progress["history"], "best_epoch": progress.get("best_epoch"),
            "best_val_acc": progress.get("best_val_acc"), "best_val_report": progress.get("best_val_report"),
            "class_names": class_names, "batch_plan": batch_plan, "run_dir": str(out_dir), "finished": finished}



def run_config_record(tc: dict, class_names: list[str], recipe: Mapping[str, Any] | None) -> dict:
    cfg = {**dict(recipe or {}), "train": tc, "class_names": class_names}
    # JSON round trip: tuples -> lists, Paths -> str, so it compares equal to what YAML reads back
    return json.loads(json.dumps(cfg, default=str))


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out if out or not prefix else {prefix[:-1]: {}}
    return {prefix[:-1]: d}


def config_differences(saved: Mapping[str, Any], new: Mapping[str, Any],
                       ignore: Iterable[str] = (), defaults: Mapping[str, Any] | None = None) -> list[str]:
    """Dotted keys whose values differ between two configs, as ``'key: saved -> new'`` lines.

    ``defaults`` (dotted key -> value): a key the saved config lacks counts as equal when the new
    value is its default, so a run written before a key existed still matches."""
    a, b = _flatten(dict(saved)), _flatten(dict(new))
    ignore = set(ignore)
    defaults = defaults or {}
    out = []
    for key in sorted(set(a) | set(b)):
        if key in ignore:
            continue
        if key not in a and key in defaults and b[key] == defaults[key]:
            continue
        if key not in a:
            out.append(f"{key}: (absent) -> {b[key]!r}")
        elif key not in b:
            out.append(f"{key}: {a[key]!r} -> (absent)")
        elif a[key] != b[key]:
            out.append(f"{key}: {a[key]!r} -> {b[key]!r}")
    return out


def check_existing_run(out_dir: Path, run_config: dict, tc: dict) -> dict | None:
    """Refuse a different config; return the stored metrics if the same run already finished."""
    cfg_path = out_dir / "config.yaml"
    if not cfg_path.exists():
        return None
    saved = load_yaml(cfg_path)
    diffs = config_differences(saved, run_config, ignore=_RESUMABLE_KEYS,
                               defaults=_flatten({"train": DEFAULT_TRAIN_CONFIG}))
    if diffs:
        raise RunConfigMismatchError(
            f"{cfg_path}: this run directory was started with a different config:\n  " + "\n  ".join(diffs)
            + "\nRe-run with --fresh (fresh=True) to start over, or choose a new out dir.")
    metrics_path = out_dir / "metrics.json"
    if metrics_path.exists():
        try:
            metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{metrics_path}: not valid JSON ({e.msg}); use --fresh to start over") from None
        done = len(metrics.get("history", []))
        if metrics.get("finished") and done == tc["epochs"]:
            return metrics
    return None


def read_progress(state_dir: Path) -> dict | None:
    path = state_dir / "progress.json"
    if not path.exists():
        return None
    try:
        progress = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg}); use --fresh to start over") from None
    if not isinstance(progress, dict) or not isinstance(progress.get("epoch"), int) or "history" not in progress:
        raise ValueError(f"{path}: missing 'epoch'/'history'; use --fresh to start over")
    return progress


@contextlib.contextmanager
def accelerate_quiet() -> Iterator[None]:
    """Accelerate logs every file of a state save/load at INFO; the loop logs the epoch instead."""
    logger = logging.getLogger("accelerate")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def save_state(accelerator: Accelerator, out_dir: Path, progress: dict, *, weights: Path | None = None) -> None:
    """Accelerate ``save_state`` into a temp dir, then swap it in, so a kill keeps the previous state.

    ``weights``: a ``model.safetensors`` of :func:`training.checkpoints.save_checkpoint` holding the
    model's current weights (``last/``); the state then gets a hard link to it instead of a second
    copy written by Accelerate (:func:`load_state` reads it back). Without it Accelerate writes
    the weights itself.

    A failed write (a full disk: Accelerate's writers raise ``RuntimeError`` or ``SafetensorError``,
    not ``OSError``) removes the temp dir and raises :class:`core.storage.WriteError` saying that
    the previous state is intact."""
    tmp, state, old = out_dir / ".state.tmp", out_dir / "state", out_dir / ".state.old"
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    hook = accelerator.register_save_state_pre_hook(_drop_weights) if weights is not None else None
    try:
        with accelerate_quiet():
            accelerator.save_state(str(tmp))
        if weights is not None and accelerator.is_main_process:
            link_file(weights, tmp / WEIGHTS_NAME)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            atomic_write_json(tmp / "progress.json", progress)
    except Exception as e:
        if accelerator.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
        kept = f"the previous state in {state}{_epoch_of(state)} is intact" if state.exists() else \
            "no earlier state was saved"
        raise WriteError(f"{tmp}: saving the resume state failed ({type(e).__name__}: {e}); {kept}") from e
    finally:
        if hook is not None:
            hook.remove()
    if accelerator.is_main_process:
        if old.exists():
            shutil.rmtree(old)
        if state.exists():
            os.replace(state, old)
        os.replace(tmp, state)
        if old.exists():
            shutil.rmtree(old)
    accelerator.wait_for_everyone()


def _drop_weights(models: list, weights: list, output_dir: str) -> None:
    """Accelerate save-state hook: write no model weights (:func:`save_state` links them)."""
    weights.clear()


def load_state(accelerator: Accelerator, state_dir: Path) -> None:
    """Accelerate ``load_state`` of ``state_dir``; when its ``model.safetensors`` was written by
    :func:`training.checkpoints.save_checkpoint` (linked by :func:`save_state`), the model's
    weights are read from it here (tied tensors restored) and Accelerate loads the rest. A state
    written entirely by Accelerate (runs of earlier versions) loads as before."""
    weights = state_dir / WEIGHTS_NAME
    ours = written_by_save_checkpoint(weights)

    def load_weights(models: list, input_dir: str) -> None:
        if ours and len(models) == 1:
            accelerator.unwrap_model(models[0]).load_state_dict(load_weights_file(weights))
            models.clear()  # nothing left for Accelerate to load

    hook = accelerator.register_load_state_pre_hook(load_weights)
    scaler = accelerator.scaler
    if scaler is not None and not (state_dir / "scaler.pt").exists():
        accelerator.scaler = None  # saved without fp16 (mixed_precision changed on resume): a fresh loss scale
    try:
        with accelerate_quiet():
            accelerator.load_state(str(state_dir))
    finally:
        accelerator.scaler = scaler
        hook.remove()


def _epoch_of(state_dir: Path) -> str:
    try:
        progress = read_progress(state_dir)
    except ValueError:
        return ""
    return f" (epoch {progress['epoch']})" if progress else ""


def recover_state_dir(out_dir: Path) -> None:
    """Finish an interrupted state swap (see :func:`save_state`) and delete the temp files of the
    writes (checkpoints, ``metrics.json``) a killed run left (main process only)."""
    for directory in (out_dir, out_dir / "best", out_dir / "last"):
        remove_temp_files(directory)
    tmp, state, old = out_dir / ".state.tmp", out_dir / "state", out_dir / ".state.old"
    if not state.exists() and old.exists():
        os.replace(old, state)
    if old.exists():
        shutil.rmtree(old)
    if tmp.exists():
        shutil.rmtree(tmp)


def clear_run_dir(out_dir: Path) -> None:
    for name in RUN_ENTRIES:
        p = out_dir / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
