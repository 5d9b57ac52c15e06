"""The keyframe ablation's intervals (experiments.keyframe_intervals) in seeded simulations with a
known truth: the paired interval over clips and seeds covers the true difference of two
selections' accuracies about 95 % of the time, and it is narrower than an unpaired one when the
clips' difficulty is shared; a real difference is found, a zero one is not."""
from __future__ import annotations

import numpy as np
import pytest

from experiments.keyframe_intervals import paired_difference, significant, stratified_bootstrap


def simulate(rng, *, seeds=3, clips=40, acc_a=0.80, acc_b=0.70):
    """Per seed, the correctness (0/1) of two selections on the same clips: each clip has a
    difficulty u; a selection gets it right when u is below its accuracy (so the two share
    difficulty, and A's extra right answers are the clips with u in [acc_b, acc_a))."""
    a, b = [], []
    for _ in range(seeds):
        u = rng.uniform(size=clips)
        a.append((u < acc_a).astype(float))
        b.append((u < acc_b).astype(float))
    return a, b


def test_the_paired_interval_covers_a_known_difference_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    truth, trials, covered = 0.10, 200, 0
    for t in range(trials):
        a, b = simulate(rng)
        ci = paired_difference(a, b, draws=500, seed=t)["ci95"]
        covered += ci[0] <= truth <= ci[1]
    # 95 % nominal; the percentile bootstrap on 120 clips runs a little short of it
    assert 0.88 <= covered / trials <= 0.99, covered


def test_a_real_difference_is_found_and_no_difference_is_not():
    rng = np.random.default_rng(1)
    a, b = simulate(rng, clips=60, acc_a=0.9, acc_b=0.6)
    result = paired_difference(a, b, seed=0)
    assert significant(result["ci95"]) == 1 and result["mean"] == pytest.approx(
        np.mean(np.concatenate(a)) - np.mean(np.concatenate(b)), abs=1e-4)
    same, _ = simulate(rng, clips=60)
    assert significant(paired_difference(same, same, seed=0)["ci95"]) == 0


def test_pairing_narrows_the_interval_when_difficulty_is_shared():
    a, b = simulate(np.random.default_rng(3))
    paired = paired_difference(a, b, seed=0)["ci95"]
    unpaired_a, unpaired_b = stratified_bootstrap(a, seed=0)["ci95"], stratified_bootstrap(b, seed=1)["ci95"]
    width = paired[1] - paired[0]
    assert width < (unpaired_a[1] - unpaired_a[0]) + (unpaired_b[1] - unpaired_b[0])


def test_strata_are_kept_and_reported():
    result = stratified_bootstrap([[1.0, 1.0], [0.0, 0.0, 0.0, 0.0]], draws=200)
    assert result["per_seed"] == [1.0, 0.0] and result["clips"] == 6
    assert result["mean"] == pytest.approx(2 / 6, abs=1e-4)
    assert result["ci95"] == [pytest.approx(2 / 6, abs=1e-4)] * 2  # nothing varies within a seed
    with pytest.raises(ValueError):
        stratified_bootstrap([[1.0], []])
    with pytest.raises(ValueError):
        paired_difference([[1.0, 0.0]], [[1.0]])
