"""The ``train:`` section of a recipe: its settings (:class:`TrainSettings`, with the optimizer's
and the schedule's), and what is built from it (the batch plan, the optimizer, the per-epoch
learning-rate factor). Each key, its default and the values it accepts are written once, in the
dataclasses below; docs/reference/config.md lists them (rendered from them)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch

from core.config import ConfigError, check_settings, setting, settings_dict, settings_from_section


@dataclass(frozen=True)
class SGDSettings:
    """``train.optimizer: {name: sgd, ...}``: ``torch.optim.SGD``."""

    name: str = setting("sgd", choices=("sgd",), help="the optimizer")
    lr: int | float = setting(0.01, above=0, help="base learning rate (the schedule scales it per epoch)")
    momentum: int | float = setting(0.9, help="SGD momentum")
    weight_decay: int | float = setting(0.0, minimum=0, help="L2 penalty on every trained parameter")
    nesterov: bool = setting(False, help="Nesterov momentum")

    def __post_init__(self) -> None:
        check_settings(self, "train.optimizer")


@dataclass(frozen=True)
class AdamWSettings:
    """``train.optimizer: {name: adamw, ...}``: ``torch.optim.AdamW``."""

    name: str = setting("adamw", choices=("adamw",), help="the optimizer")
    lr: int | float = setting(0.001, above=0, help="base learning rate (the schedule scales it per epoch)")
    betas: tuple[float, float] | list[float] = setting((0.9, 0.999), accepts="two numbers",
                                                       help="the moment decay rates")
    eps: int | float = setting(1e-8, help="added to the denominator")
    weight_decay: int | float = setting(0.01, minimum=0, help="decoupled weight decay on every trained parameter")

    def __post_init__(self) -> None:
        check_settings(self, "train.optimizer")
        betas = self.betas
        if not (isinstance(betas, (list, tuple)) and len(betas) == 2 and all(_is_number(b) for b in betas)):
            raise ConfigError(f"train.optimizer.betas must be two numbers, got {betas!r}")
        object.__setattr__(self, "betas", [float(b) for b in betas])


@dataclass(frozen=True)
class ConstantSchedule:
    """``train.schedule: {name: constant}``: the learning rate stays at ``optimizer.lr``."""

    name: str = setting("constant", choices=("constant",), help="factor 1 every epoch")

    def __post_init__(self) -> None:
        check_settings(self, "train.schedule")


@dataclass(frozen=True)
class StepSchedule:
    """``train.schedule: {name: step, ...}``: ``lr * gamma ** (e // step_size)`` after ``e``
    completed epochs."""

    name: str = setting("step", choices=("step",), help="lr * gamma ** (e // step_size) after e epochs")
    step_size: int = setting(10, minimum=1, help="epochs between two decays")
    gamma: int | float = setting(0.1, above=0, help="factor of each decay")

    def __post_init__(self) -> None:
        check_settings(self, "train.schedule")


@dataclass(frozen=True)
class CosineSchedule:
    """``train.schedule: {name: cosine, ...}``:
    ``min_lr + (lr - min_lr) * (1 + cos(pi * e / epochs)) / 2`` after ``e`` completed epochs."""

    name: str = setting("cosine", choices=("cosine",), help="cosine decay from lr to min_lr over the epochs")
    min_lr: int | float = setting(0.0, minimum=0, help="the learning rate at the last epoch (<= optimizer.lr)")

    def __post_init__(self) -> None:
        check_settings(self, "train.schedule")


OPTIMIZERS: dict[str, type] = {"sgd": SGDSettings, "adamw": AdamWSettings}
SCHEDULES: dict[str, type] = {"constant": ConstantSchedule, "step": StepSchedule, "cosine": CosineSchedule}


@dataclass(frozen=True)
class TrainSettings:
    """The ``train:`` section (:func:`training.loop.fit`). When a run is resumed, only these keys may
    change: ``epochs`` (e.g. to train a finished run for longer), ``num_workers``, the split of the
    global batch (``max_device_batch``, ``grad_accum_steps``), ``mixed_precision``, ``save_every``,
    ``sync_batchnorm``, ``cudnn_benchmark``, ``tf32`` and ``channels_last_3d``; the others define
    what is trained and are refused (:class:`training.run_directory.RunConfigMismatchError`)."""

    epochs: int = setting(10, minimum=1, help="number of epochs")
    batch_size: int = setting(32, minimum=1, help=(
        "the GLOBAL batch (samples per optimizer step); each process loads "
        "batch_size // (num_processes * grad_accum_steps) per step"))
    grad_accum_steps: int | str = setting(1, accepts="an integer >= 1 or auto", help=(
        "auto: the fewest accumulation steps that keep the per-device batch <= "
        "max_device_batch (preferring one that divides batch_size); the plan is logged"))
    max_device_batch: int | None = setting(None, minimum=1, help=(
        "most samples one device holds at once; needed by auto, a check with an integer grad_accum_steps"))
    eval_batch_size: int | None = setting(None, minimum=1, help=(
        "per-process validation batch; null: the per-device training batch"))
    num_workers: int = setting(0, minimum=0, help=(
        "DataLoader worker processes, kept alive across epochs (persistent; each item is asked for with its "
        "epoch, so a dataset's set_epoch reaches the workers)"))
    drop_last: bool = setting(False, help=(
        "drop the last incomplete training batch (with BatchNorm: a batch of one fails in train mode)"))
    optimizer: Any = setting(SGDSettings(), kinds=OPTIMIZERS, help=(
        "parameters with requires_grad=False (frozen streams under a fusion head) are not optimised"))
    schedule: Any = setting(ConstantSchedule(), kinds=SCHEDULES, help=(
        "learning-rate factor per epoch e (0-based count of completed epochs)"))
    mixed_precision: str = setting("no", choices=("no", "bf16", "fp16"), help=(
        "fp16 needs a GPU, bf16 also runs on CPU; the recipe decides, not the Accelerate config (recorded in "
        "the run, checked on resume; a warning when accelerate launch asks for another)"))
    grad_clip: int | float | None = setting(None, above=0, help=(
        "max global L2 norm of the gradients, clipped at each optimizer step; null: no clipping"))
    seed: int = setting(0, minimum=0, help=(
        "seeds Python/NumPy/torch, the shuffling order (from seed and epoch) and, each epoch, the global RNGs"))
    label_smoothing: int | float = setting(0.0, minimum=0, below=1, help=(
        "of the cross-entropy training loss; val/loss is always the plain cross-entropy"))
    eval_every: int = setting(1, minimum=1, help=(
        "validate every N epochs and after the last; only validated epochs can become best"))
    precise_bn_batches: int = setting(0, minimum=0, help=(
        "after each epoch, recompute the BatchNorm running statistics with the final weights over this many "
        "training batches (SlowFast's precise BN); 0: off"))
    save_every: int = setting(1, minimum=1, help=(
        "write last/ and the resume state every N epochs and after the final one (best/ whenever it improves); "
        "a killed run resumes after the last saved epoch and trains the epochs after it again"))
    sync_batchnorm: bool | str = setting("auto", accepts="auto, true or false", help=(
        "train BatchNorm on the statistics of the batches of all processes (SyncBatchNorm; CUDA only). auto: on when "
        "the model has BatchNorm, several processes train and each holds fewer than 8 samples (off on a CPU, "
        "logged); false logs a warning in that case; true on a CPU is an error. The checkpoints keep their keys"))
    cudnn_benchmark: bool = setting(True, help=(
        "CUDA only (nothing on CPU): cuDNN times its convolution algorithms on the first batches of each input "
        "shape and keeps the fastest; default not yet measured on a GPU (make gpu-check measures it)"))
    tf32: bool = setting(True, help=(
        "CUDA only (nothing on CPU): float32 convolutions and matmuls run as TF32 on Ampere and newer GPUs "
        "(10-bit mantissa products); default not yet measured on a GPU (make gpu-check measures it)"))
    channels_last_3d: bool = setting(False, help=(
        "CUDA only (nothing on CPU): Conv3d weights and 5-D inputs stored channels-last (NDHWC) during training; "
        "default not yet measured on a GPU (make gpu-check measures it)"))

    def __post_init__(self) -> None:
        check_settings(self, "train")
        steps = self.grad_accum_steps
        if steps != "auto" and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
            raise ConfigError(f"train.grad_accum_steps must be an integer >= 1 or 'auto', got {steps!r}")
        if self.sync_batchnorm not in ("auto", True, False):
            raise ConfigError(f"train.sync_batchnorm must be auto, true or false, got {self.sync_batchnorm!r}")
        if steps == "auto" and self.max_device_batch is None:
            raise ConfigError("train.grad_accum_steps: 'auto' needs train.max_device_batch (samples a device holds)")
        if isinstance(self.schedule, CosineSchedule) and self.schedule.min_lr > self.optimizer.lr:
            raise ConfigError(f"train.schedule.min_lr must be in [0, optimizer.lr], got {self.schedule.min_lr!r}")


def resolve_train_config(cfg: Mapping[str, Any] | None) -> dict:
    """The ``train:`` section ``cfg`` checked and with its defaults filled in
    (:class:`TrainSettings`), as the mapping the loop consumes (``optimizer`` and ``schedule`` as
    mappings with their ``name``). Raises :class:`ConfigError` naming the offending ``train.<key>``."""
    return settings_dict(settings_from_section(TrainSettings, cfg, "train"))


#: the defaults of ``train:`` as a recipe would write them (optimizer and schedule by name only):
#: a run recorded before a key existed matches a config that has that key at its default
DEFAULT_TRAIN_CONFIG: dict[str, Any] = {k: {"name": v["name"]} if isinstance(v, dict) else v
                                        for k, v in resolve_train_config(None).items()}


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
        exact = [k for k in range(base, max(base, batch_size // num_processes) + 1)
                 if batch_size % (num_processes * k) == 0]
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
