"""Is a 0.9 a 90 %? Calibration scores of class probabilities, and temperature scaling.

Inputs are plain NumPy arrays: ``labels`` (N,) integer class indices ``0..C-1`` and
``probabilities`` (N, C), each row a distribution (rows are renormalised; a row of zeros is not
allowed). Outputs are JSON-ready dicts of Python floats and lists.

* :func:`expected_calibration_error`: top-label ECE over equal-width confidence bins (15 by
  default): ``sum_b (n_b / N) * |accuracy_b - mean confidence_b|``, where a clip's confidence is its
  top probability and it is right when the top class is its label. 0 is perfectly calibrated.
* :func:`negative_log_likelihood`: mean ``-log p_label`` (nats; probabilities clipped at
  :data:`PROBABILITY_FLOOR`). A uniform guess over C classes scores ``log C``.
* :func:`brier_score`: mean over clips of ``sum_k (p_k - y_k)^2`` with ``y`` the one-hot label
  (0 best, 2 worst).
* :func:`reliability_bins`: the data of a reliability diagram (per bin: clips, mean confidence,
  accuracy).
* :func:`calibration_scores`: the three scores with percentile bootstrap intervals
  (:func:`training.statistics.bootstrap_interval`: the same resamples, draws and seed as the
  accuracy intervals).
* :func:`fit_temperature` / :func:`apply_temperature`: temperature scaling, ``softmax(z / T)``
  with one scalar ``T > 0`` fitted by minimising the NLL of labelled logits ``z`` (a bounded
  Brent search over ``log T``; the NLL is unimodal there). ``T > 1`` softens over-confident
  probabilities, ``T < 1`` sharpens under-confident ones; the top class never changes, so the
  accuracy does not either. Fit it on val, never on the clips it is reported on.

Log-probabilities work wherever logits do (``log softmax(z)`` differs from ``z`` by a constant per
row, which the softmax ignores): :func:`log_probabilities` turns probabilities into them, so the
same temperature scaling serves heads that output probabilities (late fusion, score weighting,
stacking).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import optimize

from training.statistics import CONFIDENCE, DRAWS, bootstrap_interval

ECE_BINS = 15
PROBABILITY_FLOOR = 1e-12
#: the temperatures :func:`fit_temperature` searches (a fit at a bound is reported as such)
TEMPERATURE_BOUNDS = (0.01, 100.0)


def _checked(labels: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    probs = np.asarray(probabilities, dtype=np.float64)
    t = np.asarray(labels)
    if probs.ndim != 2 or probs.shape[0] == 0:
        raise ValueError(f"probabilities must be (N, C) with N >= 1, got shape {probs.shape}")
    if t.shape != (probs.shape[0],) or not np.issubdtype(t.dtype, np.integer):
        raise ValueError(f"labels must be (N,) = ({probs.shape[0]},) class indices, got {t.dtype} {t.shape}")
    if t.min() < 0 or t.max() >= probs.shape[1]:
        raise ValueError(f"labels must be in 0..{probs.shape[1] - 1}")
    if not np.isfinite(probs).all() or (probs < 0).any():
        raise ValueError("probabilities must be finite and non-negative")
    total = probs.sum(axis=1, keepdims=True)
    if (total <= 0).any():
        raise ValueError("a row of probabilities sums to 0")
    return t.astype(np.int64), probs / total


def _confidence_terms(labels: np.ndarray, probs: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per clip: its bin (N,) int, its top probability (N,) and whether it is right (N,) float."""
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    conf = probs.max(axis=1)
    right = (probs.argmax(axis=1) == labels).astype(np.float64)
    # bins (0, 1/B], (1/B, 2/B], ...: a confidence of exactly 1 is in the last bin
    which = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
    return which, conf, right


def expected_calibration_error(labels: np.ndarray, probabilities: np.ndarray, *, bins: int = ECE_BINS) -> float:
    """Top-label ECE over ``bins`` equal-width confidence bins (see the module docstring)."""
    t, probs = _checked(labels, probabilities)
    which, conf, right = _confidence_terms(t, probs, bins)
    gap = np.bincount(which, weights=right - conf, minlength=bins)
    return float(np.abs(gap).sum() / t.size)


def reliability_bins(labels: np.ndarray, probabilities: np.ndarray, *, bins: int = ECE_BINS) -> dict:
    """A reliability diagram's data: ``{"edges": [B + 1 floats], "clips": [B ints], "confidence":
    [B], "accuracy": [B], "ece"}``; a bin without clips has ``None`` confidence and accuracy."""
    t, probs = _checked(labels, probabilities)
    which, conf, right = _confidence_terms(t, probs, bins)
    count = np.bincount(which, minlength=bins)
    conf_sum = np.bincount(which, weights=conf, minlength=bins)
    right_sum = np.bincount(which, weights=right, minlength=bins)
    filled = count > 0
    return {"edges": np.linspace(0.0, 1.0, bins + 1).tolist(), "clips": count.tolist(),
            "confidence": [float(c / n) if f else None for c, n, f in zip(conf_sum, count, filled)],
            "accuracy": [float(r / n) if f else None for r, n, f in zip(right_sum, count, filled)],
            "ece": float(np.abs(right_sum - conf_sum).sum() / t.size)}


def _per_clip_nll(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    return -np.log(np.maximum(probs[np.arange(labels.size), labels], PROBABILITY_FLOOR))


def _per_clip_brier(labels: np.ndarray, probs: np.ndarray) -> np.ndarray:
    onehot = np.zeros_like(probs)
    onehot[np.arange(labels.size), labels] = 1.0
    return ((probs - onehot) ** 2).sum(axis=1)


def negative_log_likelihood(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean ``-log p_label`` in nats (see the module docstring)."""
    t, probs = _checked(labels, probabilities)
    return float(_per_clip_nll(t, probs).mean())


def brier_score(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean over clips of ``sum_k (p_k - y_k)^2`` (see the module docstring)."""
    t, probs = _checked(labels, probabilities)
    return float(_per_clip_brier(t, probs).mean())


def calibration_scores(labels: np.ndarray, probabilities: np.ndarray, *, bins: int = ECE_BINS, draws: int = DRAWS,
                       confidence: float = CONFIDENCE, seed: int = 0) -> dict:
    """``{"ece", "ece_ci95", "nll", "nll_ci95", "brier", "brier_ci95"}``: each score and its
    percentile bootstrap interval ``[lo, hi]`` over ``draws`` resamples of the clips (the same
    resamples as :func:`training.statistics.bootstrap_accuracy` with the same ``seed``)."""
    t, probs = _checked(labels, probabilities)
    n = t.size
    which, conf, right = _confidence_terms(t, probs, bins)
    gap = right - conf

    def ece_of(idx: np.ndarray) -> np.ndarray:  # (K, N) resampled indices -> (K,) ECEs
        k = idx.shape[0]
        flat = (which[idx] + bins * np.arange(k)[:, None]).ravel()
        sums = np.bincount(flat, weights=gap[idx].ravel(), minlength=k * bins).reshape(k, bins)
        return np.abs(sums).sum(axis=1) / n

    out = {"ece": float(np.abs(np.bincount(which, weights=gap, minlength=bins)).sum() / n)}
    out["ece_ci95"] = list(bootstrap_interval(ece_of, n, draws=draws, confidence=confidence, seed=seed))
    for name, per_clip in (("nll", _per_clip_nll(t, probs)), ("brier", _per_clip_brier(t, probs))):
        out[name] = float(per_clip.mean())
        out[f"{name}_ci95"] = list(bootstrap_interval(lambda idx, v=per_clip: v[idx].mean(axis=1), n, draws=draws,
                                                      confidence=confidence, seed=seed))
    return out


# ------------------------------------------------------------------------------ temperature scaling

def log_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """(N, C) ``log p`` (floored at :data:`PROBABILITY_FLOOR`): logits for temperature scaling
    when a model outputs probabilities."""
    return np.log(np.maximum(np.asarray(probabilities, dtype=np.float64), PROBABILITY_FLOOR))


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """(N, C) ``softmax(logits / temperature)``, in float64."""
    if not (temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature}")
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _nll_at(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_norm = np.log(np.exp(z).sum(axis=1))
    return float((log_norm - z[np.arange(labels.size), labels]).mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> dict:
    """The temperature ``T`` minimising the mean NLL of ``softmax(logits / T)`` on ``labels``.

    ``logits`` (N, C) (or log-probabilities), ``labels`` (N,) class indices. Bounded Brent search
    over ``log T`` in :data:`TEMPERATURE_BOUNDS`; ``T = 1`` is kept when it is at least as good
    (so the NLL after is never above the NLL before). Returns ``{"temperature", "nll_before" (at
    T = 1), "nll_after", "n", "at_bound" (the fit reached a bound of the search)}``.
    """
    z = np.asarray(logits, dtype=np.float64)
    t = np.asarray(labels)
    if z.ndim != 2 or z.shape[0] == 0 or t.shape != (z.shape[0],):
        raise ValueError(f"logits must be (N, C) with N >= 1 and labels (N,), got {z.shape} and {t.shape}")
    if not np.isfinite(z).all():
        raise ValueError("logits hold NaN or inf")
    t = t.astype(np.int64)
    before = _nll_at(z, t, 1.0)
    lo, hi = (math.log(b) for b in TEMPERATURE_BOUNDS)
    res = optimize.minimize_scalar(lambda u: _nll_at(z, t, math.exp(u)), bounds=(lo, hi), method="bounded",
                                   options={"xatol": 1e-5})
    temperature, after = math.exp(float(res.x)), float(res.fun)
    if not after < before:
        temperature, after = 1.0, before
    at_bound = min(abs(math.log(temperature) - lo), abs(math.log(temperature) - hi)) < 1e-3
    return {"temperature": temperature, "nll_before": before, "nll_after": after, "n": int(t.size),
            "at_bound": bool(at_bound)}
