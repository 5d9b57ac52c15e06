"""Processes and their accelerator: building the ``Accelerator`` for a run (one process or many,
CPU or GPU), telling how many processes the launcher started, and seeds derived from the run's
seed (:func:`derive_seed`), so every process agrees and a resumed run sees what an uninterrupted
one would. The training order is in :mod:`training.data_loaders`."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator, PartialState
from accelerate.state import AcceleratorState
from accelerate.utils import get_int_from_env, parse_flag_from_env

from core.config import ConfigError


def derive_seed(*parts: Any) -> int:
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def make_accelerator(mixed_precision: str | None, grad_accum_steps: int, project_dir: Path | None) -> Accelerator:
    """An Accelerator; a process that trains several models in turn may switch mixed precision.

    Accelerate keeps one process-wide ``AcceleratorState`` and refuses a second Accelerator with a
    different ``mixed_precision``; a tool that trains streams then fusion (or the test suite) must
    be able to switch, so the state (not the process group) is reset in that case.
    """
    shared = AcceleratorState._shared_state
    if mixed_precision is not None and shared and shared.get("_mixed_precision") != mixed_precision:
        AcceleratorState._reset_state(reset_partial_state=False)
    if mixed_precision == "fp16" and partial_state().device.type == "cpu":
        raise ConfigError("train.mixed_precision: 'fp16' needs a GPU (Accelerate does not autocast fp16 on CPU); "
                          "use 'bf16' or 'no'")
    return Accelerator(mixed_precision=mixed_precision, gradient_accumulation_steps=grad_accum_steps,
                       project_dir=str(project_dir) if project_dir is not None else None,
                       step_scheduler_with_optimizer=False)  # the schedules here are per epoch


def launched_processes() -> int:
    """How many processes the launcher started (``WORLD_SIZE`` of torchrun/accelerate launch, or MPI's)."""
    return get_int_from_env(["WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"], 1)


def partial_state() -> PartialState:
    """Process info before the Accelerator exists, honouring ``ACCELERATE_USE_CPU`` as Accelerate does.

    Processes launched together on a machine without an accelerator are put on the CPU (gloo):
    Accelerate's launcher does not pass ``use_cpu`` on to them, and without it each would train
    alone and overwrite the others' files. Raises ``RuntimeError`` when the launcher started
    several processes but they did not join one process group.
    """
    launched = launched_processes()
    cpu = parse_flag_from_env("ACCELERATE_USE_CPU") or (launched > 1 and not torch.accelerator.is_available())
    state = PartialState(cpu=cpu)
    if launched > 1 and state.num_processes != launched:
        raise RuntimeError(
            f"launched as {launched} processes (WORLD_SIZE) but Accelerate set up {state.num_processes} "
            f"({state.distributed_type}); they would overwrite each other's run files. Launch with "
            "`accelerate launch --config_file configs/accelerate/...` or torchrun, and set ACCELERATE_USE_CPU=1 "
            "to train on the CPU.")
    return state


def launcher_mixed_precision() -> str | None:
    """The precision ``accelerate launch`` asked for (from its config file or --mixed_precision), if any."""
    value = os.environ.get("ACCELERATE_MIXED_PRECISION")
    return value.lower() if value else None
