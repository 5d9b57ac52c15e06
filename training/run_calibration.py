"""A run's temperature: ``calibration.json`` beside its checkpoint.

:func:`write_calibration` fits the temperature (:func:`training.calibration.fit_temperature`) on
the labelled val logits of a checkpoint and writes, atomically, into the checkpoint directory
(``RUN/best/`` for a run)::

    calibration.json  {"temperature", "fitted_on": "val", "nll_before", "nll_after", "n",
                       "at_bound", "checkpoint_hash"}

``checkpoint_hash`` is the hash of the weights it was fitted for (:func:`training.checkpoints.
checkpoint_hash`); :func:`run_temperature` ignores a file fitted for other weights. The file holds
no time stamp: the same weights and val clips write the same bytes (a killed and re-run training
writes what an uninterrupted one does). A checkpoint without the file (saved before calibration
existed, or trained without validation) loads with temperature 1, which leaves its probabilities
as they were; that is logged once per checkpoint.
"""
from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import numpy as np

from core.storage import atomic_write_json, read_json, remove_temp_files
from training.calibration import fit_temperature
from training.checkpoints import CheckpointError, checkpoint_hash, resolve_checkpoint

log = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"
_said: set[str] = set()  # checkpoints whose missing or stale calibration was already logged


def calibration_path(run: str | os.PathLike) -> Path:
    """Where the calibration of ``run`` (a run or checkpoint directory) lives."""
    return resolve_checkpoint(run) / CALIBRATION_FILE


def write_calibration(run: str | os.PathLike, logits: np.ndarray, labels: np.ndarray, *,
                      fitted_on: str = "val") -> dict:
    """Fit the temperature of ``run``'s checkpoint on ``logits`` (N, C) (or log-probabilities) and
    ``labels`` (N,) of split ``fitted_on`` (never a test split), write ``calibration.json`` and
    return its content (see the module docstring)."""
    if "test" in str(fitted_on).lower():
        raise ValueError(f"a temperature is fitted on val, never on {fitted_on!r}")
    fit = fit_temperature(logits, labels)
    record = {"temperature": fit["temperature"], "fitted_on": fitted_on, "nll_before": fit["nll_before"],
              "nll_after": fit["nll_after"], "n": fit["n"], "at_bound": fit["at_bound"],
              "checkpoint_hash": checkpoint_hash(run)}
    path = calibration_path(run)
    remove_temp_files(path.parent)  # of a write a killed run left (training has finished: nothing else writes here)
    atomic_write_json(path, record)
    log.info("%s: temperature %.4f fitted on %s (%d clips; NLL %.4f -> %.4f)", run, record["temperature"],
             fitted_on, record["n"], record["nll_before"], record["nll_after"])
    return record


def read_calibration(run: str | os.PathLike) -> dict | None:
    """The ``calibration.json`` of ``run``'s checkpoint when it exists and was fitted for its
    current weights, else None. :class:`CheckpointError` naming the file when it is malformed."""
    path = calibration_path(run)
    data = read_json(path)
    if data is None:
        return None
    t = data.get("temperature") if isinstance(data, dict) else None
    if isinstance(t, bool) or not isinstance(t, (int, float)) or not (t > 0 and math.isfinite(t)):
        raise CheckpointError(f"{path}: expected {{\"temperature\": a number > 0, ...}}, got {data!r}")
    if data.get("checkpoint_hash") != checkpoint_hash(run):
        _say_once(path, "%s: fitted for other weights (the run was retrained); using temperature 1 "
                        "until it is refitted", path)
        return None
    return data


def run_temperature(run: str | os.PathLike) -> float:
    """The temperature of ``run``'s checkpoint; 1.0 (raw probabilities, logged once per
    checkpoint) when it has no valid ``calibration.json``."""
    data = read_calibration(run)
    if data is None:
        _say_once(calibration_path(run), "%s: no %s (saved before calibration, or trained without val); "
                  "temperature 1, the probabilities are the raw ones", resolve_checkpoint(run), CALIBRATION_FILE)
        return 1.0
    return float(data["temperature"])


def _say_once(key: Path, message: str, *args) -> None:
    key_text = str(Path(key).resolve())
    if key_text not in _said:
        _said.add(key_text)
        log.warning(message, *args)
