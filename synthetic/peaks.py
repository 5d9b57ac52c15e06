"""Clips whose emotion is somewhere in particular: the cues swell to full strength around
recorded moments and are weaker (or show another class) elsewhere, what the keyframe ablation
(:mod:`experiments.keyframe_ablation`) asks the keyframe selection to find. ``synthetic.json``
records each clip's moments as drawn here.

Two kinds of spec, both dicts (JSON as they are):

* :func:`draw_peak`, the demo set's peak clips (``peak_fraction``): one bump of sigma 0.4 s around
  ``center_s``, cues at 30 % (``floor``) elsewhere;
* :func:`draw_moments`, the ablation's *families* (:data:`FAMILIES`): ``peak``, one emotional
  second; ``spread``, two or three short moments spread over the clip; ``steady``, the whole clip
  emotional (the control). Away from the moments the cues show Neutral, or with probability
  :data:`OFF_PEAK_CLASS_PROBABILITY` the *opposite* emotion at strength ``off_peak`` (a negative
  ``floor``: the clip's valence times ``-off_peak``). ``windows_s`` records where the emotion is,
  the intervals salient recall counts keyframes in.

The envelope multiplies each modality's valence (:class:`synthetic.scenes.ScenePlan`), so a
Neutral clip (valence 0) looks the same whatever its spec says.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

PEAK_SIGMA_S = 0.4
"""Width (sigma, s) of the bump."""
PEAK_FLOOR = 0.3
"""Cue intensity away from the peak (the demo set's peak clips)."""
FAMILIES = ("peak", "spread", "steady")
PEAK_HALF_WIDTH_S = 0.5
"""A ``peak`` clip's emotion window: its centre +- this (the peak second)."""
SPREAD_SIGMA_S = 0.35
"""Width (sigma, s) of each of a ``spread`` clip's moments: wide enough that two or three of them
together usually hold more than N = 16 of the 48 candidates above the threshold, which rules 1, 3
and 4 need to act at all (with fewer, rule 5 takes every above-threshold candidate)."""
SPREAD_HALF_WIDTH_S = 0.5
"""A ``spread`` moment's window: its centre +- this (where the envelope is above about 0.35)."""
SPREAD_GAP_S = 1.2
"""Least distance (s) between two moments of a ``spread`` clip."""
OFF_PEAK_CLASS_PROBABILITY = 0.5
"""Chance that a clip's off-moment frames show the opposite emotion rather than Neutral."""
MAX_OFF_PEAK = 0.3


def draw_peak(rng: np.random.Generator, duration: float) -> dict[str, float]:
    """A clip's peak (one draw from ``rng``): ``center_s`` uniform in 30-70 % of ``duration``
    (s), ``sigma_s`` and ``floor``."""
    return {"center_s": float(rng.uniform(0.3, 0.7) * duration), "sigma_s": PEAK_SIGMA_S, "floor": PEAK_FLOOR}


def _spread_centres(rng: np.random.Generator, duration: float) -> list[float]:
    """Two or three centres (s) at least :data:`SPREAD_GAP_S` apart, each window inside the clip."""
    lo, hi = SPREAD_HALF_WIDTH_S, duration - SPREAD_HALF_WIDTH_S
    count = int(rng.integers(2, 4))
    while count > 1 and (count - 1) * SPREAD_GAP_S > hi - lo:
        count -= 1
    # spacing drawn as the minimum gaps plus a random share of the slack
    slack = (hi - lo) - (count - 1) * SPREAD_GAP_S
    cuts = np.sort(rng.uniform(0.0, slack, count))
    return [float(lo + c + i * SPREAD_GAP_S) for i, c in enumerate(cuts)]


def check_family(family: str, off_peak: float) -> None:
    """Raise ``ValueError`` unless ``family`` is one of :data:`FAMILIES` and ``off_peak`` is in
    ``[0, MAX_OFF_PEAK]``."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    if not 0.0 <= off_peak <= MAX_OFF_PEAK:
        raise ValueError(f"off_peak must be in [0, {MAX_OFF_PEAK}], got {off_peak}")


def draw_moments(rng: np.random.Generator, duration: float, *, family: str, off_peak: float) -> dict[str, Any]:
    """A clip's emotional moments for ``family`` (:data:`FAMILIES`), from ``rng``; ``duration`` s.

    Returns ``family``, ``centers_s`` (s; ``center_s`` too, the first), ``sigma_s``, ``floor``
    (the envelope away from the moments: 0, or ``-off_peak`` with probability
    :data:`OFF_PEAK_CLASS_PROBABILITY`; 1 for ``steady``) and ``windows_s``, the ``[start, end]``
    intervals (s) where the emotion is. Raises ``ValueError`` for an unknown family, an
    ``off_peak`` outside ``[0, MAX_OFF_PEAK]`` or a clip too short for its moments."""
    check_family(family, off_peak)
    if family == "steady":
        return {"family": family, "centers_s": [], "sigma_s": 0.0, "floor": 1.0, "windows_s": [[0.0, float(duration)]]}
    if family == "peak":
        if duration <= 2 * PEAK_HALF_WIDTH_S:
            raise ValueError(f"a peak clip must be longer than its peak second, got {duration} s")
        centres, sigma, half = [float(rng.uniform(0.3, 0.7) * duration)], PEAK_SIGMA_S, PEAK_HALF_WIDTH_S
    else:
        if duration < 2 * SPREAD_HALF_WIDTH_S + SPREAD_GAP_S:
            raise ValueError(f"a spread clip needs at least {2 * SPREAD_HALF_WIDTH_S + SPREAD_GAP_S:g} s for two "
                             f"moments, got {duration} s")
        centres, sigma, half = _spread_centres(rng, duration), SPREAD_SIGMA_S, SPREAD_HALF_WIDTH_S
    floor = -float(off_peak) if rng.uniform() < OFF_PEAK_CLASS_PROBABILITY else 0.0
    return {"family": family, "center_s": centres[0], "centers_s": centres, "sigma_s": sigma, "floor": floor,
            "windows_s": [[round(c - half, 6), round(c + half, 6)] for c in centres]}


def emotion_windows(spec: Mapping[str, Any]) -> list[tuple[float, float]]:
    """Where a clip's emotion is (s): its spec's ``windows_s``, or for a demo peak clip (no
    windows recorded) its peak second ``center_s +- PEAK_HALF_WIDTH_S``."""
    if "windows_s" in spec:
        return [(float(a), float(b)) for a, b in spec["windows_s"]]
    centre = float(spec["center_s"])
    return [(centre - PEAK_HALF_WIDTH_S, centre + PEAK_HALF_WIDTH_S)]


def peak_envelope(peak: Mapping[str, Any] | None, t: np.ndarray | float) -> np.ndarray:
    """Cue intensity at times ``t`` (s), same shape as ``t``: ``floor`` far from every moment, 1 at
    a moment's centre (the largest bump counts); 1 everywhere when ``peak`` is None or has no
    moments. A negative floor shows the opposite valence there."""
    t = np.asarray(t, dtype=np.float64)
    centres = [] if peak is None else peak.get("centers_s", [peak.get("center_s")] if "center_s" in peak else [])
    if not centres:
        return np.ones_like(t)
    bump = np.max([np.exp(-0.5 * ((t - c) / peak["sigma_s"]) ** 2) for c in centres], axis=0)
    return peak["floor"] + (1.0 - peak["floor"]) * bump
