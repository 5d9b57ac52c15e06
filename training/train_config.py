"""The ``train:`` section of a recipe: its keys and defaults, validation, and what is built from
it (the batch plan, the optimizer, the per-epoch learning-rate factor).

Keys (defaults in brackets)
---------------------------
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

"""
from __future__ import annotations

import copy
import math
from typing import Any, Callable, Mapping

import torch

from core.config import ConfigError

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


def resolve_train_config(cfg: Mapping[str, Any] | None) -> dict:
    """Validate a ``train:`` section and fill in the defaults (see the module docstring).

    Raises :class:`ConfigError` naming the offending ``train.<key>``.
    """
    if cfg is not None and not isinstance(cfg, Mapping):
        raise ConfigError(f"train must be a mapping of settings, got {cfg!r}")
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



def build_optimizer(params: list[torch.nn.Parameter], oc: dict) -> torch.optim.Optimizer:
    if oc["name"] == "sgd":
        return torch.optim.SGD(params, lr=oc["lr"], momentum=oc["momentum"], weight_decay=oc["weight_decay"],
                               nesterov=bool(oc["nesterov"]))
    return torch.optim.AdamW(params, lr=oc["lr"], betas=tuple(oc["betas"]), eps=oc["eps"],
                             weight_decay=oc["weight_decay"])


def lr_factor(tc: dict) -> Callable[[int], float]:
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
