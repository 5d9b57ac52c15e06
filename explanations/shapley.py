"""Exact Shapley values of the streams behind one fusion head.

A *coalition* is a set of streams given to the head; a stream outside it is marked missing, so the
head puts its own learned "missing" input in that slot (:mod:`fusion.heads.missing`), as it does for
a clip that lacks the modality. The value of a coalition is the head's probability of one class.
With n available streams every one of the 2^n coalitions is evaluated (one batch of 2^n rows: 16 for
the method's four streams), and each stream's Shapley value is the weighted mean of its marginal
contributions. By construction they add up to ``value(all) - value(none)`` (efficiency), which
:func:`shapley_values` returns for the caller to record.
"""
from __future__ import annotations

import itertools
import math
from typing import Callable, Mapping, Sequence

import torch

from fusion.heads.inputs import MASK_KEY, PROBS_KEY
from training import devices

Coalition = frozenset


def coalitions(players: Sequence[str]) -> list[frozenset[str]]:
    """Every subset of ``players`` (2^n of them), smallest first."""
    return [frozenset(c) for k in range(len(players) + 1) for c in itertools.combinations(players, k)]


def shapley_values(players: Sequence[str], value: Mapping[frozenset[str], float] | Callable[[frozenset[str]], float]
                   ) -> tuple[dict[str, float], dict[str, float]]:
    """``(shapley {player: phi}, check {"full", "empty", "sum"})`` for the game ``value`` (a
    mapping or function from a coalition to a number, defined on every subset of ``players``).

    ``phi_i = sum over S not holding i of |S|! (n - |S| - 1)! / n! * (v(S + i) - v(S))``, in float64.
    ``check["sum"]`` is ``sum(phi)``, which equals ``full - empty`` up to rounding."""
    v = value if callable(value) else value.__getitem__
    n = len(players)
    cache: dict[frozenset[str], float] = {}

    def val(s: frozenset[str]) -> float:
        if s not in cache:
            cache[s] = float(v(s))
        return cache[s]

    phi = {}
    for p in players:
        others = [q for q in players if q != p]
        total = 0.0
        for s in coalitions(others):
            weight = math.factorial(len(s)) * math.factorial(n - len(s) - 1) / math.factorial(n)
            total += weight * (val(s | {p}) - val(s))
        phi[p] = total
    full, empty = val(frozenset(players)), val(frozenset())
    return phi, {"full": full, "empty": empty, "sum": float(sum(phi.values()))}


@torch.inference_mode()
def head_coalition_values(head, inputs: Mapping[str, torch.Tensor], streams: Sequence[str],
                          players: Sequence[str], class_index: int, *,
                          temperature: float = 1.0) -> dict[frozenset[str], float]:
    """The probability of class ``class_index`` (``softmax(head / temperature)``) for every
    coalition of ``players`` (the streams the clip has, a subset of the head's ``streams``).

    ``inputs``: the head inputs of ONE clip (:mod:`fusion.heads.inputs`: ``inputs[s]`` (1, D_s),
    ``mask`` (1, S), ``probs`` (1, S, C)), all streams of ``players`` available. A stream outside a
    coalition gets a zero row, mask 0 and zero probabilities, exactly as
    :func:`fusion.evaluation.fusion_probabilities` gives ``given=`` subsets. One forward pass of
    2^n rows."""
    subsets = coalitions(players)
    device = devices.module_device(head)
    keep = torch.tensor([[1.0 if s in c else 0.0 for s in streams] for c in subsets], device=device)   # (K, S)
    k = len(subsets)
    batch = {s: inputs[s].to(device).expand(k, -1) * keep[:, i:i + 1] for i, s in enumerate(streams)}
    batch[MASK_KEY] = inputs[MASK_KEY].to(device).expand(k, -1) * keep
    batch[PROBS_KEY] = inputs[PROBS_KEY].to(device).expand(k, -1, -1) * keep[:, :, None]
    probs = torch.softmax(head(batch).double() / temperature, dim=1)[:, class_index]                  # (K,)
    host = devices.to_host(probs)
    return {c: float(p) for c, p in zip(subsets, host)}
