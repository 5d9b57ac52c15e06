"""Late-fusion baselines, reported beside Concat-FC.

* weighted average of the streams' class probabilities with weights searched on a split (a grid
  over the simplex, as mmaction2's ``get_weighted_score`` is used in practice);
* the fixed 0.6 face / 0.4 audio score fusion of the real-time design.

A clip missing a stream averages over the streams it has (weights renormalised); a clip with
none of the weighted streams gets uniform probabilities.

Calibration: a late fusion has no run of its own. The results report fits a temperature to its
log-probabilities on val like any model's (:mod:`experiments.report_calibration`); live mode's
``--fusion late`` averages the streams' calibrated probabilities (each stream run's temperature).
"""
from __future__ import annotations

import itertools
from typing import Mapping

import numpy as np

from core.config import ConfigError

FACE_AUDIO_WEIGHTS = {"face": 0.6, "audio": 0.4}


def refuse_test_split(split: str, what: str) -> None:
    """Raise :class:`core.config.ConfigError` when ``split`` names a test split (``what``: the
    setting that named it, e.g. ``model.search_on``): weights chosen on test data make the test
    number meaningless."""
    if "test" in str(split).lower():
        raise ConfigError(f"{what}: {split!r} is a test split; choose weights on train or val, "
                          "never on the clips they are reported on at the end")


def weighted_score(probs: Mapping[str, np.ndarray], available: Mapping[str, np.ndarray],
                   weights: Mapping[str, float]) -> np.ndarray:
    """``sum_s w_s * m_s * p_s / sum_s w_s * m_s`` per clip -> (N, C)."""
    streams = [s for s in weights if s in probs]
    if not streams:
        raise ValueError(f"none of the weighted streams {list(weights)} has scores")
    n, c = probs[streams[0]].shape
    num = np.zeros((n, c), np.float64)
    den = np.zeros((n, 1), np.float64)
    for s in streams:
        w = float(weights[s]) * np.asarray(available[s], dtype=np.float64)[:, None]
        num += w * probs[s]
        den += w
    out = np.full((n, c), 1.0 / c)
    ok = den[:, 0] > 0
    out[ok] = num[ok] / den[ok]
    return out


def search_weights(probs: Mapping[str, np.ndarray], available: Mapping[str, np.ndarray], labels: np.ndarray,
                   *, step: float = 0.1) -> tuple[dict[str, float], float]:
    """Grid-search non-negative weights summing to 1 (in ``step`` increments) that maximise
    accuracy on ``labels``; ties go to the most even weights. Returns ``(weights, accuracy)``."""
    streams = list(probs)
    k = int(round(1 / step))
    best, best_key = None, None
    for combo in itertools.product(range(k + 1), repeat=len(streams)):
        if sum(combo) != k:
            continue
        w = {s: c / k for s, c in zip(streams, combo)}
        acc = float((weighted_score(probs, available, w).argmax(1) == labels).mean())
        key = (acc, -float(np.var(list(w.values()))))
        if best_key is None or key > best_key:
            best, best_key = w, key
    return best, best_key[0]
