"""Peak clips: group clips whose cues swell to full strength for about one second and stay at
30 % elsewhere (a Gaussian bump of sigma 0.4 s around a drawn centre), the emotional moment that
the keyframe ablation (:mod:`experiments.keyframe_ablation`) asks the keyframe selection to find.
``synthetic.json`` records each clip's peak as drawn here."""
from __future__ import annotations

from typing import Mapping

import numpy as np

PEAK_SIGMA_S = 0.4
"""Width (sigma, s) of the bump."""
PEAK_FLOOR = 0.3
"""Cue intensity away from the peak."""


def draw_peak(rng: np.random.Generator, duration: float) -> dict[str, float]:
    """A clip's peak (one draw from ``rng``): ``center_s`` uniform in 30-70 % of ``duration``
    (s), ``sigma_s`` and ``floor``."""
    return {"center_s": float(rng.uniform(0.3, 0.7) * duration), "sigma_s": PEAK_SIGMA_S, "floor": PEAK_FLOOR}


def peak_envelope(peak: Mapping[str, float] | None, t: np.ndarray | float) -> np.ndarray:
    """Cue intensity in [floor, 1] at times ``t`` (s), same shape as ``t``; 1 everywhere when
    ``peak`` is None."""
    t = np.asarray(t, dtype=np.float64)
    if peak is None:
        return np.ones_like(t)
    bump = np.exp(-0.5 * ((t - peak["center_s"]) / peak["sigma_s"]) ** 2)
    return peak["floor"] + (1.0 - peak["floor"]) * bump
