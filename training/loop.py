"""The one training loop (HF Accelerate) used by the keyframe scorer, the four streams and fusion.

``fit`` trains a classifier ``model(inputs) -> logits (B, C)`` on a dataset of ``(inputs, label)``
items (``inputs`` a Tensor or a dict of Tensors, ``label`` an int class index), evaluates on a
validation set, and keeps a run directory (layout in :mod:`training.checkpoints`) from which an
interrupted run resumes exactly. ``evaluate`` runs a model over a dataset and returns logits,
predictions, labels and a classification report, on any number of processes.

Config: the ``train:`` section of a recipe (keys, defaults in brackets)
-----------------------------------------------------------------------
epochs [10]            number of epochs. The only key (with ``num_workers``) that may change when
                       resuming a run, e.g. to train a finished run for longer.
batch_size [32]        the GLOBAL batch of the method (samples per optimizer step). Each process
                       loads ``batch_size // (num_processes * grad_accum_steps)`` per step.
grad_accum_steps [1]   int >= 1, or ``auto``: the smallest number of accumulation steps that keeps
                       the per-device batch <= ``max_device_batch`` (preferring one that divides
                       ``batch_size`` exactly). The chosen plan is written to the log.
max_device_batch [null] most samples one device holds at once; needed by ``auto``; with an int
                       ``grad_accum_steps`` it is a check (error if the plan exceeds it).
eval_batch_size [null] per-process batch for validation; null = the per-device training batch.
num_workers [0]        DataLoader worker processes (``persistent_workers=False`` so the epoch set
                       on the dataset reaches the workers each epoch).
drop_last [false]      drop the last incomplete training batch (use with BatchNorm and tiny
                       remainders: a batch of one fails in train mode).
optimizer              {name: sgd | adamw, ...}; parameters with ``requires_grad=False`` (frozen
                       streams under the fusion head) are not optimised. Weight decay applies to
                       all trained parameters.
  sgd:   lr [0.01], momentum [0.9], weight_decay [0.0], nesterov [false]
  adamw: lr [0.001], betas [[0.9, 0.999]], eps [1e-8], weight_decay [0.01]
schedule               learning-rate factor per epoch ``e`` (0-based count of completed epochs):
  {name: constant}                     [default] factor 1
  {name: step, step_size [10], gamma [0.1]}   lr * gamma ** (e // step_size)
  {name: cosine, min_lr [0.0]}         min_lr + (lr - min_lr) * (1 + cos(pi * e / epochs)) / 2
mixed_precision [no]   ``no`` | ``bf16`` | ``fp16`` (fp16 needs a GPU; bf16 also runs on CPU). The
                       recipe decides, not the Accelerate config's ``mixed_precision`` (it is
                       recorded in the run and checked on resume); a warning is logged when
                       ``accelerate launch`` asks for a different one.
grad_clip [null]       max global L2 norm of the gradients (clipped at each optimizer step).
seed [0]               seeds Python/NumPy/torch (``accelerate.utils.set_seed``), the shuffling
                       order (from (seed, epoch)) and, re-derived each epoch, the global RNGs.
label_smoothing [0.0]  for the default cross-entropy training loss. ``val/loss`` is always the
                       plain cross-entropy, comparable across recipes.
eval_every [1]         validate every N epochs (and always after the last epoch). Only validated
                       epochs can become ``best``.
precise_bn_batches [0] after each epoch (so before its validation and checkpoint), recompute the
                       BatchNorm running statistics with the epoch's final weights as a plain
                       average over this many training batches (no gradients, dropout off),
                       averaged over processes: SlowFast's "precise BN". The running averages
                       lag the weights when an epoch has few steps or the weights move fast, and
                       a model whose class cue is a shift of the input mean (the synthetic flow)
                       then predicts one class in eval mode. 0 = off. Costs that many forward
                       passes per epoch.

Epochs are numbered from 1. Before epoch ``e`` the loop calls ``train_dataset.set_epoch(e)`` if the
dataset has it, so datasets that seed their augmentation from (seed, epoch, index) make a
killed-and-resumed run reach exactly the weights of an uninterrupted one.

Several processes (``accelerate launch`` / ``torchrun``, see ``configs/accelerate/``)
----------------------------------------------------------------------------------------
Every process builds the same model and datasets and runs ``fit``; DDP keeps the weights equal.
Each process trains on its share of every global batch (the shuffled order depends only on
(seed, epoch), so all processes agree on it; Accelerate deals out the batches). Dropout and other
global-RNG draws are seeded per (seed, epoch, process). Only the main process writes the run
directory (config.yaml, checkpoints, train.log, tb/, metrics.json; ``state/`` also gets one RNG
file per process from Accelerate); the other processes log warnings only. On resume every
process loads the same ``state/`` (also with a different number of processes: the global batch
stays the same). Validation gathers the predictions of all processes and drops the samples
Accelerate repeats to even out the last batch, so the metrics equal those of one process. Processes
launched on a machine without a GPU run on the CPU (gloo); the run dir must be on a filesystem
that every node sees.
"""
from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import math
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from accelerate import Accelerator, PartialState
from accelerate.state import AcceleratorState
from accelerate.utils import get_int_from_env, parse_flag_from_env, set_seed
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate
from tqdm.auto import tqdm

from media.storage import atomic_write_json, atomic_write_text
from training.checkpoints import save_checkpoint
from training.config import ConfigError, load_yaml
from training.metrics import classification_report, format_report, render_confusion_matrix

log = logging.getLogger(__name__)

RUN_ENTRIES = ("config.yaml", "best", "last", "state", ".state.tmp", ".state.old", "tb", "metrics.json",
               "train.log")
_RESUMABLE_KEYS = {"train.epochs", "train.num_workers"}  # may differ between a run and its resume

DEFAULT_TRAIN_CONFIG: dict[str, Any] = {
    "epochs": 10,
    "batch_size": 32,
    "grad_accum_steps": 1,
    "max_device_batch": None,
    "eval_batch_size": None,
    "num_workers": 0,
    "drop_last": False,
    "optimizer": {"name": "sgd"},
    "schedule": {"name": "constant"},
    "mixed_precision": "no",
    "grad_clip": None,
    "seed": 0,
    "label_smoothing": 0.0,
    "eval_every": 1,
    "precise_bn_batches": 0,
}
OPTIMIZER_DEFAULTS: dict[str, dict[str, Any]] = {
    "sgd": {"lr": 0.01, "momentum": 0.9, "weight_decay": 0.0, "nesterov": False},
    "adamw": {"lr": 0.001, "betas": [0.9, 0.999], "eps": 1e-8, "weight_decay": 0.01},
}
SCHEDULE_DEFAULTS: dict[str, dict[str, Any]] = {
    "constant": {},
    "step": {"step_size": 10, "gamma": 0.1},
    "cosine": {"min_lr": 0.0},
}


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN/inf; raised before the update, so the last checkpoint is intact.

    ``epoch`` is 1-based, ``step`` the 1-based batch within the epoch, ``loss`` the value seen.
    """

    def __init__(self, message: str, *, epoch: int, step: int, loss: float):
        super().__init__(message)
        self.epoch, self.step, self.loss = epoch, step, loss


class RunConfigMismatchError(ConfigError):
    """The run directory was started with a different config; resuming it would mix two runs."""


# --------------------------------------------------------------------------------------------- config


def resolve_train_config(cfg: Mapping[str, Any] | None) -> dict:
    """Validate a ``train:`` section and fill in the defaults (see the module docstring).

    Raises :class:`ConfigError` naming the offending ``train.<key>``.
    """
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(DEFAULT_TRAIN_CONFIG))
    if unknown:
        raise ConfigError(f"train: unknown key(s) {unknown}; known keys: {sorted(DEFAULT_TRAIN_CONFIG)}")
    out = copy.deepcopy(DEFAULT_TRAIN_CONFIG)
    out.update(copy.deepcopy(cfg))

    def need_int(key: str, minimum: int) -> None:
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise ConfigError(f"train.{key} must be an integer >= {minimum}, got {v!r}")

    need_int("epochs", 1)
    need_int("batch_size", 1)
    need_int("num_workers", 0)
    need_int("eval_every", 1)
    need_int("precise_bn_batches", 0)
    need_int("seed", 0)
    if out["grad_accum_steps"] != "auto":
        need_int("grad_accum_steps", 1)
    for key in ("max_device_batch", "eval_batch_size"):
        if out[key] is not None:
            need_int(key, 1)
    if out["grad_accum_steps"] == "auto" and out["max_device_batch"] is None:
        raise ConfigError("train.grad_accum_steps: 'auto' needs train.max_device_batch (samples a device holds)")
    if not isinstance(out["drop_last"], bool):
        raise ConfigError(f"train.drop_last must be true or false, got {out['drop_last']!r}")
    if out["mixed_precision"] not in ("no", "bf16", "fp16"):
        raise ConfigError(f"train.mixed_precision must be 'no', 'bf16' or 'fp16', got {out['mixed_precision']!r}")
    if out["grad_clip"] is not None and not (_is_number(out["grad_clip"]) and out["grad_clip"] > 0):
        raise ConfigError(f"train.grad_clip must be a positive number or null, got {out['grad_clip']!r}")
    if not (_is_number(out["label_smoothing"]) and 0.0 <= out["label_smoothing"] < 1.0):
        raise ConfigError(f"train.label_smoothing must be in [0, 1), got {out['label_smoothing']!r}")
    out["optimizer"] = _resolve_section("optimizer", out["optimizer"], OPTIMIZER_DEFAULTS)
    out["schedule"] = _resolve_section("schedule", out["schedule"], SCHEDULE_DEFAULTS)
    opt = out["optimizer"]
    if not (_is_number(opt["lr"]) and opt["lr"] > 0):
        raise ConfigError(f"train.optimizer.lr must be a positive number, got {opt['lr']!r}")
    if not (_is_number(opt["weight_decay"]) and opt["weight_decay"] >= 0):
        raise ConfigError(f"train.optimizer.weight_decay must be >= 0, got {opt['weight_decay']!r}")
    if opt["name"] == "adamw":
        betas = opt["betas"]
        if not (isinstance(betas, (list, tuple)) and len(betas) == 2 and all(_is_number(b) for b in betas)):
            raise ConfigError(f"train.optimizer.betas must be two numbers, got {betas!r}")
        opt["betas"] = [float(b) for b in betas]
    sched = out["schedule"]
    if sched["name"] == "step":
        if isinstance(sched["step_size"], bool) or not isinstance(sched["step_size"], int) or sched["step_size"] < 1:
            raise ConfigError(f"train.schedule.step_size must be an integer >= 1, got {sched['step_size']!r}")
        if not (_is_number(sched["gamma"]) and sched["gamma"] > 0):
            raise ConfigError(f"train.schedule.gamma must be a positive number, got {sched['gamma']!r}")
    if sched["name"] == "cosine" and not (_is_number(sched["min_lr"]) and 0 <= sched["min_lr"] <= opt["lr"]):
        raise ConfigError(f"train.schedule.min_lr must be in [0, optimizer.lr], got {sched['min_lr']!r}")
    return out


def _resolve_section(key: str, value: Any, defaults: Mapping[str, Mapping[str, Any]]) -> dict:
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, Mapping) or "name" not in value:
        raise ConfigError(f"train.{key} must be a mapping with a 'name' (one of {sorted(defaults)}), got {value!r}")
    name = value["name"]
    if name not in defaults:
        raise ConfigError(f"train.{key}.name must be one of {sorted(defaults)}, got {name!r}")
    allowed = set(defaults[name]) | {"name"}
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ConfigError(f"train.{key}: unknown key(s) {unknown} for {name!r}; known: {sorted(allowed)}")
    return {"name": name, **copy.deepcopy(dict(defaults[name])), **{k: v for k, v in value.items() if k != "name"}}


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def plan_batches(batch_size: int, num_processes: int, grad_accum_steps: int | str,
                 max_device_batch: int | None = None) -> tuple[int, int, str]:
    """Split the global ``batch_size`` into ``(grad_accum_steps, per_device_batch, description)``.

    ``per_device_batch = batch_size // (num_processes * grad_accum_steps)``. With ``'auto'`` the
    accumulation is the smallest that keeps ``per_device_batch <= max_device_batch``, preferring a
    split that covers ``batch_size`` exactly.
    """
    if grad_accum_steps == "auto":
        if max_device_batch is None:
            raise ConfigError("train.grad_accum_steps: 'auto' needs train.max_device_batch")
        base = max(1, math.ceil(batch_size / (num_processes * max_device_batch)))
        exact = [k for k in range(base, max(base, batch_size // num_processes) + 1) if batch_size % (num_processes * k) == 0]
        accum = exact[0] if exact else base
        why = (f"grad_accum_steps=auto: a device holds at most {max_device_batch} samples, "
               f"so gradients are accumulated over {accum} step(s)") if accum > 1 else \
              f"grad_accum_steps=auto: no accumulation needed (a device holds {max_device_batch} samples)"
    else:
        accum = int(grad_accum_steps)
        why = f"grad_accum_steps={accum}"
    per_device = batch_size // (num_processes * accum)
    if per_device < 1:
        raise ConfigError(f"train.batch_size {batch_size} is smaller than num_processes {num_processes} x "
                          f"grad_accum_steps {accum}: nothing left per device")
    if max_device_batch is not None and per_device > max_device_batch:
        raise ConfigError(f"train: {per_device} samples per device exceeds max_device_batch {max_device_batch}; "
                          "raise grad_accum_steps or set it to 'auto'")
    effective = per_device * num_processes * accum
    text = (f"global batch {batch_size} = {num_processes} process(es) x {accum} accumulation step(s) x "
            f"{per_device} per device ({why})")
    if effective != batch_size:
        text += f"; NOTE: effective global batch is {effective}, not {batch_size}"
    return accum, per_device, text


# -------------------------------------------------------------------------------------------- sampler


class EpochShuffleSampler(Sampler[int]):
    """Random permutation of ``range(num_samples)`` that depends only on ``(seed, epoch)``.

    Every process computes the same order (Accelerate then gives each process its share of the
    batches), and a resumed run sees the same order as an uninterrupted one. Call
    :meth:`set_epoch` before iterating (Accelerate's prepared loader does it via ``set_epoch``).
    """

    def __init__(self, num_samples: int, *, seed: int = 0, shuffle: bool = True):
        self.num_samples = int(num_samples)
        self.seed = int(seed)
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        if not self.shuffle:
            return iter(range(self.num_samples))
        g = torch.Generator()
        g.manual_seed(_derive_seed(self.seed, "shuffle", self.epoch))
        return iter(torch.randperm(self.num_samples, generator=g).tolist())

    def __len__(self) -> int:
        return self.num_samples


def _derive_seed(*parts: Any) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


class _Indexed(Dataset):
    """``(index, item)`` so that gathered predictions can be put back in dataset order."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int):
        return i, self.dataset[i]


class _IndexedCollate:
    def __init__(self, collate_fn: Callable | None):
        self.collate_fn = collate_fn or default_collate

    def __call__(self, batch):
        return torch.tensor([i for i, _ in batch], dtype=torch.long), self.collate_fn([item for _, item in batch])


# ---------------------------------------------------------------------------------------- accelerator


def _make_accelerator(mixed_precision: str | None, grad_accum_steps: int, project_dir: Path | None) -> Accelerator:
    """An Accelerator; a process that trains several models in turn may switch mixed precision.

    Accelerate keeps one process-wide ``AcceleratorState`` and refuses a second Accelerator with a
    different ``mixed_precision``; a tool that trains streams then fusion (or the test suite) must
    be able to switch, so the state (not the process group) is reset in that case.
    """
    shared = AcceleratorState._shared_state
    if mixed_precision is not None and shared and shared.get("_mixed_precision") != mixed_precision:
        AcceleratorState._reset_state(reset_partial_state=False)
    if mixed_precision == "fp16" and _partial_state().device.type == "cpu":
        raise ConfigError("train.mixed_precision: 'fp16' needs a GPU (Accelerate does not autocast fp16 on CPU); "
                          "use 'bf16' or 'no'")
    return Accelerator(mixed_precision=mixed_precision, gradient_accumulation_steps=grad_accum_steps,
                       project_dir=str(project_dir) if project_dir is not None else None,
                       step_scheduler_with_optimizer=False)  # the schedules here are per epoch


def _launched_processes() -> int:
    """How many processes the launcher started (``WORLD_SIZE`` of torchrun/accelerate launch, or MPI's)."""
    return get_int_from_env(["WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"], 1)


def _partial_state() -> PartialState:
    """Process info before the Accelerator exists, honouring ``ACCELERATE_USE_CPU`` as Accelerate does.

    Processes launched together on a machine without an accelerator are put on the CPU (gloo):
    Accelerate's launcher does not pass ``use_cpu`` on to them, and without it each would train
    alone and overwrite the others' files. Raises ``RuntimeError`` when the launcher started
    several processes but they did not join one process group.
    """
    launched = _launched_processes()
    cpu = parse_flag_from_env("ACCELERATE_USE_CPU") or (launched > 1 and not torch.accelerator.is_available())
    state = PartialState(cpu=cpu)
    if launched > 1 and state.num_processes != launched:
        raise RuntimeError(
            f"launched as {launched} processes (WORLD_SIZE) but Accelerate set up {state.num_processes} "
            f"({state.distributed_type}); they would overwrite each other's run files. Launch with "
            "`accelerate launch --config_file configs/accelerate/...` or torchrun, and set ACCELERATE_USE_CPU=1 "
            "to train on the CPU.")
    return state


def _launcher_mixed_precision() -> str | None:
    """The precision ``accelerate launch`` asked for (from its config file or --mixed_precision), if any."""
    value = os.environ.get("ACCELERATE_MIXED_PRECISION")
    return value.lower() if value else None


# ------------------------------------------------------------------------------------------------ fit


def fit(*, model: torch.nn.Module, train_dataset: Dataset, val_dataset: Dataset | None,
        class_names: Sequence[str], cfg: Mapping[str, Any] | None, out_dir: str | os.PathLike,
        collate_fn: Callable | None = None, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        callbacks: Iterable[Callable[[int, dict], None]] = (), fresh: bool = False,
        recipe: Mapping[str, Any] | None = None) -> dict:
    """Train ``model`` and keep the run directory ``out_dir``; returns the run's metrics dict.

    ``model(inputs) -> logits (B, C)`` with ``C == len(class_names)``; dataset items are
    ``(inputs, label)``. ``loss_fn(logits (B, C) float32, labels (B,) int64) -> scalar``; default
    cross-entropy with ``cfg['label_smoothing']``. ``callbacks``: ``cb(epoch, epoch_record)`` on the
    main process after each epoch's checkpoints are written. ``recipe``: the rest of the recipe
    (model, data sections) to record in ``config.yaml``/``meta.json`` and to compare on resume.

    Re-running on the same ``out_dir`` resumes after the last completed epoch; a finished run with
    the same config returns its stored metrics; a different config (other than ``epochs`` and
    ``num_workers``) raises :class:`RunConfigMismatchError`. ``fresh=True`` first deletes the run
    files (only the entries of the run layout, see ``RUN_ENTRIES``). After training the model holds
    the weights of the last epoch (the best ones are in ``out_dir/best``); when a finished run is
    reused the model is left untouched. Extending ``epochs`` of a cosine schedule re-stretches the
    remaining schedule over the new length.

    Returned dict: ``history`` (per epoch: epoch, train_loss, train_acc, val_loss, val_acc,
    val_macro_f1, lr), ``best_epoch``, ``best_val_acc``, ``best_val_report``, ``class_names``,
    ``batch_plan``, ``run_dir``, ``finished``.
    """
    tc = resolve_train_config(cfg)
    class_names = [str(c) for c in class_names]
    if not class_names:
        raise ValueError("class_names is empty")
    out_dir = Path(out_dir)
    run_config = _run_config(tc, class_names, recipe)
    num_processes = _partial_state().num_processes
    grad_accum, per_device, plan_text = plan_batches(tc["batch_size"], num_processes, tc["grad_accum_steps"],
                                                     tc["max_device_batch"])
    accelerator = _make_accelerator(tc["mixed_precision"], grad_accum, out_dir)
    is_main = accelerator.is_main_process
    if fresh and is_main:
        _clear_run_dir(out_dir)
    if is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()

    handler = None
    old_level = log.level
    if is_main:
        handler = logging.FileHandler(out_dir / "train.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        log.addHandler(handler)
        if log.getEffectiveLevel() > logging.INFO:
            log.setLevel(logging.INFO)
    else:
        log.setLevel(logging.WARNING)  # the main process tells the story once; the others only warn
    try:
        launcher_mp = _launcher_mixed_precision()
        if is_main and launcher_mp not in (None, "no", tc["mixed_precision"]):
            log.warning("accelerate launch asked for mixed_precision=%s, but the recipe says train.mixed_precision=%s, "
                        "which is used (pass --set train.mixed_precision=%s to follow the launcher)",
                        launcher_mp, tc["mixed_precision"], launcher_mp)
        reused = _check_existing_run(out_dir, run_config, tc)
        if reused is not None:
            log.info("%s: already finished (%d epochs), reusing the stored metrics", out_dir, tc["epochs"])
            return reused
        state_dir = out_dir / "state"
        if is_main:
            _recover_state_dir(out_dir)
        accelerator.wait_for_everyone()
        progress = _read_progress(state_dir)
        if progress is not None and progress["epoch"] > tc["epochs"]:
            raise RunConfigMismatchError(
                f"{state_dir / 'progress.json'}: the run already completed {progress['epoch']} epochs, more than "
                f"train.epochs={tc['epochs']}; use --fresh or a new out dir")
        if is_main:
            atomic_write_text(out_dir / "config.yaml", yaml.safe_dump(run_config, sort_keys=False))
        log.info("%s: %s", out_dir, plan_text)
        return _train(accelerator=accelerator, model=model, train_dataset=train_dataset, val_dataset=val_dataset,
                      class_names=class_names, tc=tc, run_config=run_config, out_dir=out_dir,
                      collate_fn=collate_fn, loss_fn=loss_fn, callbacks=tuple(callbacks), progress=progress,
                      per_device=per_device, batch_plan={"num_processes": num_processes,
                                                         "grad_accum_steps": grad_accum,
                                                         "per_device_batch": per_device,
                                                         "description": plan_text})
    finally:
        if handler is not None:
            log.removeHandler(handler)
            handler.close()
        log.setLevel(old_level)
        accelerator.unwrap_model(model, keep_fp32_wrapper=False)  # undo the autocast wrapper on the caller's model
        accelerator.free_memory()


def _train(*, accelerator: Accelerator, model, train_dataset, val_dataset, class_names, tc, run_config, out_dir: Path,
           collate_fn, loss_fn, callbacks, progress, per_device: int, batch_plan: dict) -> dict:
    is_main = accelerator.is_main_process
    set_seed(tc["seed"])
    pin = accelerator.device.type == "cuda"
    sampler = EpochShuffleSampler(len(train_dataset), seed=tc["seed"])
    train_loader = DataLoader(train_dataset, batch_size=per_device, sampler=sampler, num_workers=tc["num_workers"],
                              collate_fn=collate_fn, drop_last=tc["drop_last"], pin_memory=pin,
                              persistent_workers=False)
    if len(train_loader) == 0:
        raise ValueError(f"training set of {len(train_dataset)} items gives no batch of {per_device} (drop_last)")
    if accelerator.num_processes == 1 and not tc["drop_last"] and len(train_dataset) % per_device == 1:
        log.warning("the last training batch holds a single sample; BatchNorm layers fail on it in train mode "
                    "(set train.drop_last: true)")
    val_loader = None
    if val_dataset is not None:
        val_loader = _eval_loader(val_dataset, tc["eval_batch_size"] or per_device, collate_fn, tc["num_workers"], pin)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no parameter with requires_grad=True: nothing to train")
    optimizer = _build_optimizer(params, tc["optimizer"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_factor(tc))
    objects = [model, optimizer, train_loader, scheduler] + ([val_loader] if val_loader is not None else [])
    prepared = accelerator.prepare(*objects)
    model, optimizer, train_loader, scheduler = prepared[:4]
    val_loader = prepared[4] if val_loader is not None else None
    criterion = loss_fn or torch.nn.CrossEntropyLoss(label_smoothing=float(tc["label_smoothing"]))

    history: list[dict] = []
    best_epoch: int | None = None
    best_val_acc: float | None = None
    best_report: dict | None = None
    global_step = 0
    start_epoch = 1
    state_dir = out_dir / "state"
    if progress is not None:
        try:
            with _accelerate_quiet():
                accelerator.load_state(str(state_dir))
        except (RuntimeError, OSError, ValueError, KeyError) as e:
            raise ValueError(f"{state_dir}: cannot resume from this saved state ({type(e).__name__}: {e}); "
                             "use --fresh to start over") from e
        history = progress["history"]
        best_epoch, best_val_acc = progress.get("best_epoch"), progress.get("best_val_acc")
        best_report = progress.get("best_val_report")
        global_step = progress.get("global_step", 0)
        start_epoch = progress["epoch"] + 1
        log.info("%s: resuming after epoch %d from %s", out_dir, progress["epoch"], state_dir)

    writer = None
    if is_main:
        from torch.utils.tensorboard import SummaryWriter  # imported here: loads tensorboard
        writer = SummaryWriter(log_dir=str(out_dir / "tb"))
    epochs = tc["epochs"]
    try:
        for epoch in range(start_epoch, epochs + 1):
            # re-derived each epoch so a resumed run does not depend on restoring RNG state
            set_seed(_derive_seed(tc["seed"], "epoch", epoch), device_specific=True)
            if hasattr(train_dataset, "set_epoch"):
                train_dataset.set_epoch(epoch)
            train_loader.set_epoch(epoch)
            lr = float(optimizer.param_groups[0]["lr"])
            train_loss, train_acc, global_step = _train_one_epoch(
                accelerator=accelerator, model=model, loader=train_loader, optimizer=optimizer, criterion=criterion,
                grad_clip=tc["grad_clip"], epoch=epoch, epochs=epochs, global_step=global_step, writer=writer,
                out_dir=out_dir)
            scheduler.step()
            record: dict[str, Any] = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
                                      "val_loss": None, "val_acc": None, "val_macro_f1": None, "lr": lr}
            report = None
            if tc["precise_bn_batches"]:  # every epoch writes a checkpoint, validated or not
                recompute_bn_statistics(accelerator, model, train_loader, tc["precise_bn_batches"], epoch=epoch)
            if val_loader is not None and (epoch % tc["eval_every"] == 0 or epoch == epochs):
                val_loader.set_epoch(0)  # validation data do not depend on the epoch
                _, logits, labels = _predict(accelerator, model, val_loader)
                report = _check_and_report(logits, labels, class_names)
                record.update(val_loss=float(F.cross_entropy(logits, labels).item()),
                              val_acc=report["accuracy"], val_macro_f1=report["macro_f1"])
            improved = record["val_acc"] is not None and (best_val_acc is None or record["val_acc"] > best_val_acc)
            if improved:
                best_epoch, best_val_acc, best_report = epoch, record["val_acc"], report
            history.append(record)

            state_dict = accelerator.get_state_dict(model)
            if is_main:
                meta = {"config": run_config, "class_names": class_names, "epoch": epoch, "metrics": record}
                if improved:
                    save_checkpoint(out_dir / "best", state_dict=state_dict, meta=meta)
                save_checkpoint(out_dir / "last", state_dict=state_dict, meta=meta)
                _log_epoch(writer, record, report, class_names, improved, epochs)
            del state_dict
            progress_now = {"epoch": epoch, "global_step": global_step, "history": history,
                            "best_epoch": best_epoch, "best_val_acc": best_val_acc, "best_val_report": best_report}
            _save_state(accelerator, out_dir, progress_now)
            if is_main:
                atomic_write_json(out_dir / "metrics.json",
                                  _metrics(progress_now, class_names, batch_plan, out_dir, finished=False))
                for cb in callbacks:
                    cb(epoch, dict(record))
        final = _metrics({"history": history, "best_epoch": best_epoch, "best_val_acc": best_val_acc,
                          "best_val_report": best_report}, class_names, batch_plan, out_dir, finished=True)
        if is_main:
            atomic_write_json(out_dir / "metrics.json", final)
            if best_report is not None:
                log.info("finished; best epoch %s, val acc %.4f\n%s", best_epoch, best_val_acc, format_report(best_report))
            else:
                log.info("finished (no validation set: no best epoch)")
        accelerator.wait_for_everyone()
        return final
    finally:
        if writer is not None:
            writer.close()
        for loader in (train_loader, val_loader):
            if loader is not None:
                loader.end()  # an exception mid-epoch leaves the loader registered in Accelerate's GradientState


def _train_one_epoch(*, accelerator: Accelerator, model, loader, optimizer, criterion, grad_clip, epoch: int,
                     epochs: int, global_step: int, writer, out_dir: Path) -> tuple[float, float, int]:
    model.train()
    device = accelerator.device
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.float64)
    count = torch.zeros((), device=device, dtype=torch.float64)
    window_loss, window_n = 0.0, 0
    bar = tqdm(total=len(loader), desc=f"epoch {epoch}/{epochs}", leave=False, dynamic_ncols=True,
               disable=not accelerator.is_local_main_process)
    try:
        for step, batch in enumerate(loader, start=1):
            inputs, labels = batch
            with accelerator.accumulate(model):
                logits = model(inputs).float()
                loss = criterion(logits, labels)
                _ensure_finite(accelerator, loss, epoch=epoch, step=step, out_dir=out_dir)
                accelerator.backward(loss)
                if grad_clip is not None and accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), grad_clip)
                optimizer.step()
                optimizer.zero_grad()
            n = labels.shape[0]
            loss_value = loss.detach()
            loss_sum += loss_value.double() * n
            correct += (logits.detach().argmax(dim=-1) == labels).sum().double()
            count += n
            window_loss += float(loss_value) * n
            window_n += n
            if accelerator.sync_gradients:
                global_step += 1
                if writer is not None:
                    writer.add_scalar("train/loss_step", window_loss / window_n, global_step)
                bar.set_postfix(loss=f"{window_loss / window_n:.4f}")
                window_loss, window_n = 0.0, 0
            bar.update(1)
    finally:
        bar.close()
    totals = accelerator.reduce(torch.stack([loss_sum, correct, count]), reduction="sum").cpu()
    n_total = float(totals[2])
    return float(totals[0]) / n_total, float(totals[1]) / n_total, global_step


def recompute_bn_statistics(accelerator: Accelerator, model: torch.nn.Module, loader: Iterable,
                            num_batches: int, *, epoch: int | None = None) -> int:
    """Replace every training-mode BatchNorm layer's running mean/var by the plain average of the
    batch statistics over the first ``num_batches`` batches of ``loader`` (``(inputs, labels)``
    items), computed with the current weights under ``no_grad`` with dropout off, then averaged
    over processes so all of them hold the same statistics. Layers in eval mode (frozen BN) and
    the weights are untouched; the model's train/eval modes are restored. Returns the number of
    batches used on this process (0 if the model has no such layer). With ``epoch`` the loader
    (and its dataset) is set to that epoch first, so the batches are that epoch's, augmentation
    included (an Accelerate loader otherwise moves on to the next epoch at each iteration)."""
    net = accelerator.unwrap_model(model)  # forward without DDP: it would broadcast rank 0's buffers
    layers = [m for m in net.modules()
              if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.track_running_stats and m.training]
    if not layers:
        return 0
    was_training = {m: m.training for m in net.modules()}
    net.train()
    momenta = {m: m.momentum for m in layers}
    for m in net.modules():
        if isinstance(m, torch.nn.modules.dropout._DropoutNd):
            m.eval()
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches seen since the reset
    used = 0
    if epoch is not None and hasattr(loader, "set_epoch"):
        loader.set_epoch(epoch)
    try:
        with torch.no_grad():
            for inputs, _ in loader:
                if used >= num_batches:
                    break
                with accelerator.autocast():
                    net(inputs)
                used += 1
    finally:
        if hasattr(loader, "end"):
            loader.end()  # leaving an Accelerate loader early keeps it registered in GradientState
        for m in layers:
            m.momentum = momenta[m]
        for m, training in was_training.items():
            m.train(training)
    for m in layers:
        m.running_mean.copy_(accelerator.reduce(m.running_mean.clone(), reduction="mean"))
        m.running_var.copy_(accelerator.reduce(m.running_var.clone(), reduction="mean"))
    return used


def _ensure_finite(accelerator: Accelerator, loss: torch.Tensor, *, epoch: int, step: int, out_dir: Path) -> None:
    """Stop before backward when any process sees a NaN/inf loss (all processes agree via reduce)."""
    bad = (~torch.isfinite(loss.detach())).to(torch.float32).reshape(1)
    if accelerator.num_processes > 1:
        bad = accelerator.reduce(bad, reduction="sum")
    if float(bad.item()) > 0:
        value = float(loss.detach().float().item())
        where = "" if not math.isfinite(value) else " (on another process)"
        raise NonFiniteLossError(
            f"non-finite training loss {value}{where} at epoch {epoch}, batch {step}; stopped before the update. "
            f"The checkpoints and resume state of the last completed epoch in {out_dir} are untouched. "
            "Check the inputs, the learning rate and mixed precision.",
            epoch=epoch, step=step, loss=value)


def _log_epoch(writer, record: dict, report: dict | None, class_names: list[str], improved: bool, epochs: int) -> None:
    e = record["epoch"]
    writer.add_scalar("train/loss", record["train_loss"], e)
    writer.add_scalar("train/acc", record["train_acc"], e)
    writer.add_scalar("lr", record["lr"], e)
    parts = [f"epoch {e}/{epochs}", f"train_loss {record['train_loss']:.4f}", f"train_acc {record['train_acc']:.4f}"]
    if report is not None:
        writer.add_scalar("val/loss", record["val_loss"], e)
        writer.add_scalar("val/acc", record["val_acc"], e)
        writer.add_scalar("val/macro_f1", record["val_macro_f1"], e)
        image = render_confusion_matrix(np.asarray(report["confusion_matrix"]), class_names,
                                        title=f"validation, epoch {e}")
        writer.add_image("val/confusion_matrix", image, e, dataformats="HWC")
        parts += [f"val_loss {record['val_loss']:.4f}", f"val_acc {record['val_acc']:.4f}",
                  f"val_macro_f1 {record['val_macro_f1']:.4f}"]
    parts.append(f"lr {record['lr']:.3g}")
    if improved:
        parts.append("(best)")
    writer.flush()
    log.info("  ".join(parts))


def _metrics(progress: dict, class_names: list[str], batch_plan: dict, out_dir: Path, *, finished: bool) -> dict:
    return {"history": progress["history"], "best_epoch": progress.get("best_epoch"),
            "best_val_acc": progress.get("best_val_acc"), "best_val_report": progress.get("best_val_report"),
            "class_names": class_names, "batch_plan": batch_plan, "run_dir": str(out_dir), "finished": finished}


# -------------------------------------------------------------------------------------------- run dir


def _run_config(tc: dict, class_names: list[str], recipe: Mapping[str, Any] | None) -> dict:
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


def _check_existing_run(out_dir: Path, run_config: dict, tc: dict) -> dict | None:
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


def _read_progress(state_dir: Path) -> dict | None:
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
def _accelerate_quiet() -> Iterator[None]:
    """Accelerate logs every file of a state save/load at INFO; the loop logs the epoch instead."""
    logger = logging.getLogger("accelerate")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _save_state(accelerator: Accelerator, out_dir: Path, progress: dict) -> None:
    """Accelerate ``save_state`` into a temp dir, then swap it in, so a kill keeps the previous state."""
    tmp, state, old = out_dir / ".state.tmp", out_dir / "state", out_dir / ".state.old"
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    with _accelerate_quiet():
        accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        atomic_write_json(tmp / "progress.json", progress)
        if old.exists():
            shutil.rmtree(old)
        if state.exists():
            os.replace(state, old)
        os.replace(tmp, state)
        if old.exists():
            shutil.rmtree(old)
    accelerator.wait_for_everyone()


def _recover_state_dir(out_dir: Path) -> None:
    """Finish an interrupted state swap (see :func:`_save_state`)."""
    tmp, state, old = out_dir / ".state.tmp", out_dir / "state", out_dir / ".state.old"
    if not state.exists() and old.exists():
        os.replace(old, state)
    if old.exists():
        shutil.rmtree(old)
    if tmp.exists():
        shutil.rmtree(tmp)


def _clear_run_dir(out_dir: Path) -> None:
    for name in RUN_ENTRIES:
        p = out_dir / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()


def _build_optimizer(params: list[torch.nn.Parameter], oc: dict) -> torch.optim.Optimizer:
    if oc["name"] == "sgd":
        return torch.optim.SGD(params, lr=oc["lr"], momentum=oc["momentum"], weight_decay=oc["weight_decay"],
                               nesterov=bool(oc["nesterov"]))
    return torch.optim.AdamW(params, lr=oc["lr"], betas=tuple(oc["betas"]), eps=oc["eps"],
                             weight_decay=oc["weight_decay"])


def _lr_factor(tc: dict) -> Callable[[int], float]:
    """Multiplier of the base lr after ``e`` completed epochs (a plain function: LambdaLR does not pickle it)."""
    sched, lr, epochs = tc["schedule"], tc["optimizer"]["lr"], tc["epochs"]

    def factor(e: int) -> float:
        if sched["name"] == "step":
            return sched["gamma"] ** (e // sched["step_size"])
        if sched["name"] == "cosine":
            floor = sched["min_lr"] / lr
            return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(e, epochs) / epochs))
        return 1.0

    return factor


# ------------------------------------------------------------------------------------------ evaluation


def _eval_loader(dataset: Dataset, batch_size: int, collate_fn: Callable | None, num_workers: int,
                 pin: bool) -> DataLoader:
    return DataLoader(_Indexed(dataset), batch_size=batch_size, shuffle=False, num_workers=num_workers,
                      collate_fn=_IndexedCollate(collate_fn), pin_memory=pin, persistent_workers=False)


def _predict(accelerator: Accelerator, model, loader) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gathered ``(indices (N,), logits (N, C) float32, labels (N,))`` on CPU, in dataset order."""
    model.eval()
    idx_parts, logit_parts, label_parts = [], [], []
    with torch.no_grad():
        for idx, (inputs, labels) in loader:
            logits = model(inputs).float()
            idx, logits, labels = accelerator.gather_for_metrics((idx, logits, labels))
            idx_parts.append(idx.cpu())
            logit_parts.append(logits.cpu())
            label_parts.append(labels.cpu())
    if not idx_parts:
        raise ValueError("evaluation dataset is empty")
    idx = torch.cat(idx_parts)
    # unique also drops any sample a process saw twice to even out the last batch
    uniq, first = np.unique(idx.numpy(), return_index=True)
    order = torch.from_numpy(first)
    return torch.from_numpy(uniq), torch.cat(logit_parts)[order], torch.cat(label_parts)[order].long()


def _check_and_report(logits: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str]) -> dict:
    if logits.ndim != 2 or logits.shape[1] != len(class_names):
        raise ValueError(f"model returned logits of shape {tuple(logits.shape)}, expected (N, {len(class_names)}) "
                         f"for classes {list(class_names)}")
    return classification_report(labels.numpy(), logits.argmax(dim=1).numpy(), class_names)


def evaluate(*, model: torch.nn.Module, dataset: Dataset, batch_size: int, collate_fn: Callable | None = None,
             accelerator: Accelerator | None = None, class_names: Sequence[str] | None = None,
             num_workers: int = 0) -> dict:
    """Run ``model`` over ``dataset`` (items ``(inputs, label)``) and score it.

    Works on any number of processes (predictions are gathered, padding duplicates dropped); the
    model is put in eval mode and moved to the accelerator's device. ``batch_size`` is per process.
    Returns ``{"indices" (N,), "logits" (N, C) float32, "predictions" (N,), "labels" (N,)`` (NumPy,
    in dataset order), ``"loss"`` (mean cross-entropy), ``"report"`` (:func:`classification_report`)}.
    ``class_names`` default to ``"0".."C-1"``.
    """
    own = accelerator is None
    if own:
        accelerator = _make_accelerator(None, 1, None)
    loader = _eval_loader(dataset, batch_size, collate_fn, num_workers, accelerator.device.type == "cuda")
    loader = accelerator.prepare_data_loader(loader)
    try:
        model = model.to(accelerator.device)
        idx, logits, labels = _predict(accelerator, model, loader)
    finally:
        loader.end()
        if own:
            accelerator.free_memory()
    names = list(class_names) if class_names is not None else [str(i) for i in range(logits.shape[1])]
    report = _check_and_report(logits, labels, names)
    return {"indices": idx.numpy(), "logits": logits.numpy(), "predictions": logits.argmax(dim=1).numpy(),
            "labels": labels.numpy(), "loss": float(F.cross_entropy(logits, labels).item()), "report": report}
