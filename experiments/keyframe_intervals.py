"""Intervals of the keyframe ablation: per-clip values (a clip's correctness, its salient recall,
or the difference of two selections on it) pooled over several seeds, each seed a separately
generated set and separately trained stream.

The interval is a stratified percentile bootstrap: each resample draws, *within every seed*, as
many clips as that seed has, with replacement, and takes the mean over all drawn clips. Seeds are
kept as strata (not resampled) because there are only a few of them; the interval therefore
describes the clip-sampling noise around these seeds' training runs, and the spread between
seeds is reported beside it (``per_seed``). A paired difference resamples the same clips for
both selections (the values passed in are already per-clip differences), so the clips' shared
difficulty cancels.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

DRAWS = 2000
CONFIDENCE = 0.95


def stratified_bootstrap(values_by_seed: Sequence[Sequence[float]], *, draws: int = DRAWS,
                         confidence: float = CONFIDENCE, seed: int = 0) -> dict:
    """Mean of every value of every stratum (seed) and its percentile bootstrap interval.

    ``values_by_seed``: per seed, the per-clip values (K lists, each non-empty). Returns
    ``{"mean", "ci95": [lo, hi], "per_seed": [mean of each seed], "clips": total}`` (``ci95`` is
    the ``confidence`` interval, 0.95 by default). Raises ``ValueError`` on an empty stratum or no
    strata."""
    strata = [np.asarray(v, dtype=np.float64) for v in values_by_seed]
    if not strata or any(s.size == 0 for s in strata):
        raise ValueError("every seed needs at least one clip")
    if not 0.0 < confidence < 1.0 or draws < 1:
        raise ValueError(f"need 0 < confidence < 1 and draws >= 1, got {confidence}, {draws}")
    rng = np.random.default_rng(seed)
    total = sum(s.size for s in strata)
    sums = np.zeros(draws, dtype=np.float64)
    for s in strata:
        sums += s[rng.integers(0, s.size, size=(draws, s.size))].sum(axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(sums / total, [alpha, 1.0 - alpha])
    return {"mean": round(float(np.concatenate(strata).mean()), 4), "ci95": [round(float(lo), 4), round(float(hi), 4)],
            "per_seed": [round(float(s.mean()), 4) for s in strata], "clips": int(total)}


def paired_difference(a_by_seed: Sequence[Sequence[float]], b_by_seed: Sequence[Sequence[float]], *,
                      draws: int = DRAWS, confidence: float = CONFIDENCE, seed: int = 0) -> dict:
    """A minus B on the same clips: :func:`stratified_bootstrap` of the per-clip differences
    (clip ``i`` of seed ``k`` in ``a_by_seed`` and ``b_by_seed`` is the same clip). Raises
    ``ValueError`` when the two do not have the same clips per seed."""
    if len(a_by_seed) != len(b_by_seed) or any(len(a) != len(b) for a, b in zip(a_by_seed, b_by_seed)):
        raise ValueError("a paired difference needs the same clips in both, seed by seed")
    return stratified_bootstrap([np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
                                 for a, b in zip(a_by_seed, b_by_seed)], draws=draws, confidence=confidence, seed=seed)


def significant(interval: Sequence[float]) -> int:
    """+1 when an interval of a difference lies above 0, -1 below, 0 when it holds 0."""
    lo, hi = interval
    return 1 if lo > 0 else -1 if hi < 0 else 0
