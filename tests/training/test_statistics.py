"""Bootstrap intervals (width, coverage, pairing), McNemar's test against hand computations, and
one-vs-rest ROC AUC / curves of perfect, random and incomplete cases."""
import json
import math

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from training.statistics import (
    bootstrap_accuracy,
    bootstrap_accuracy_difference,
    mcnemar_test,
    pr_curves,
    roc_auc_one_vs_rest,
    roc_curves,
    score_classifier,
)

NAMES3 = ["Positive", "Neutral", "Negative"]


def _bernoulli_split(n: int, p: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Labels (n,) over 3 classes and predictions that are right with probability ``p``."""
    labels = rng.integers(0, 3, n)
    right = rng.random(n) < p
    return labels, np.where(right, labels, (labels + 1) % 3)


def test_bootstrap_interval_shrinks_as_the_split_grows():
    rng = np.random.default_rng(0)
    widths = []
    for n in (50, 200, 800):
        labels, pred = _bernoulli_split(n, 0.7, rng)
        r = bootstrap_accuracy(labels, pred, seed=1)
        lo, hi = r["interval"]
        assert lo <= r["accuracy"] <= hi
        assert r["num_samples"] == n and r["draws"] == 1000
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]
    assert 2.5 < widths[0] / widths[2] < 6  # 1 / sqrt(n): 16x the clips, about 4x narrower


def test_bootstrap_interval_covers_the_true_accuracy():
    p, n, splits = 0.7, 200, 200
    rng = np.random.default_rng(42)
    right = rng.random((splits, n)) < p  # 200 test splits of a classifier right 70 % of the time
    labels = np.zeros(n, dtype=int)
    covered, widths = 0, []
    for i in range(splits):
        lo, hi = bootstrap_accuracy(labels, np.where(right[i], 0, 1), seed=i)["interval"]
        covered += lo <= p <= hi
        widths.append(hi - lo)
    assert 0.90 <= covered / splits <= 0.99
    normal_width = 2 * 1.96 * math.sqrt(p * (1 - p) / n)  # the interval is not merely wide
    assert np.mean(widths) == pytest.approx(normal_width, rel=0.15)


def test_bootstrap_is_seeded_and_handles_a_perfect_split():
    rng = np.random.default_rng(3)
    labels, pred = _bernoulli_split(60, 0.6, rng)
    a = bootstrap_accuracy(labels, pred, seed=5)
    assert a == bootstrap_accuracy(labels, pred, seed=5)
    # the seed is used (on 60 clips neighbouring seeds can land on the same 1/60 grid points)
    assert len({tuple(bootstrap_accuracy(labels, pred, seed=s)["interval"]) for s in range(6)}) > 1
    assert bootstrap_accuracy(labels, labels)["interval"] == [1.0, 1.0]
    with pytest.raises(ValueError, match="labels has 60 entries but predictions has 59"):
        bootstrap_accuracy(labels, pred[:-1])
    with pytest.raises(ValueError, match="at least one sample"):
        bootstrap_accuracy([], [])


def test_accuracy_difference_is_paired():
    rng = np.random.default_rng(7)
    labels, full = _bernoulli_split(200, 0.7, rng)
    without = full.copy()
    hit = np.flatnonzero(full == labels)[:4]
    without[hit] = (labels[hit] + 1) % 3  # the left-out part fixed exactly 4 clips
    d = bootstrap_accuracy_difference(labels, full, without, seed=0)
    assert d["difference"] == pytest.approx(4 / 200)
    assert d["accuracy_a"] - d["accuracy_b"] == pytest.approx(d["difference"])
    lo, hi = d["interval"]
    # the same clips in both: only the 4 flipped clips vary; unpaired intervals would be ~ +-0.09
    assert 0.0 < lo <= d["difference"] <= hi < 0.045
    same = bootstrap_accuracy_difference(labels, full, full)
    assert same["difference"] == 0.0 and same["interval"] == [0.0, 0.0]


def _pairs(b: int, c: int, both_right: int = 5, both_wrong: int = 3) -> tuple[np.ndarray, ...]:
    """Labels and two predictions with ``b`` clips only A gets right and ``c`` only B gets right."""
    a_right = [1] * b + [0] * c + [1] * both_right + [0] * both_wrong
    b_right = [0] * b + [1] * c + [1] * both_right + [0] * both_wrong
    labels = np.zeros(len(a_right), dtype=int)
    return labels, np.where(a_right, 0, 1), np.where(b_right, 0, 2)


def test_mcnemar_exact_matches_a_hand_computation():
    # b=10, c=2: two-sided exact binomial, 2 * P(X <= 2) for X ~ Bin(12, 1/2)
    # = 2 * (C(12,0) + C(12,1) + C(12,2)) / 2**12 = 2 * (1 + 12 + 66) / 4096 = 158 / 4096
    r = mcnemar_test(*_pairs(10, 2))
    assert r["method"] == "exact binomial" and r["statistic"] is None
    assert (r["a_right_b_wrong"], r["a_wrong_b_right"], r["num_samples"]) == (10, 2, 20)
    assert r["p_value"] == pytest.approx(158 / 4096, rel=1e-12)
    swapped = mcnemar_test(*(_pairs(10, 2)[i] for i in (0, 2, 1)))
    assert swapped["p_value"] == pytest.approx(r["p_value"])
    assert mcnemar_test(*_pairs(3, 3))["p_value"] == 1.0  # capped, not 2 * P(X <= 3) > 1
    assert mcnemar_test(*_pairs(0, 0))["p_value"] == 1.0  # no discordant clip: no evidence


def test_mcnemar_chi_square_with_continuity_correction():
    # b=30, c=15 (45 discordant >= 25): chi2 = (|30 - 15| - 1)^2 / 45 = 196 / 45 on 1 dof;
    # the chi-square(1) survival function is erfc(sqrt(x / 2))
    r = mcnemar_test(*_pairs(30, 15))
    assert r["method"] == "chi-square with continuity correction"
    assert r["statistic"] == pytest.approx(196 / 45)
    assert r["p_value"] == pytest.approx(math.erfc(math.sqrt(196 / 45 / 2)), rel=1e-9)
    assert mcnemar_test(*_pairs(30, 15), exact_below=100)["method"] == "exact binomial"


def test_roc_auc_of_perfect_and_random_scorers():
    rng = np.random.default_rng(11)
    labels = rng.integers(0, 3, 3000)
    perfect = np.eye(3)[labels] * 0.5 + rng.random((3000, 3)) * 0.4  # the true class always ranks first
    r = roc_auc_one_vs_rest(labels, perfect, NAMES3)
    assert r["macro"] == 1.0 and r["skipped"] == {}
    random = rng.dirichlet(np.ones(3), 3000)
    r = roc_auc_one_vs_rest(labels, random, NAMES3)
    assert r["macro"] == pytest.approx(0.5, abs=0.03)
    assert r["macro"] == pytest.approx(roc_auc_score(labels, random, multi_class="ovr", average="macro"))


def test_roc_auc_skips_a_class_absent_from_the_labels():
    rng = np.random.default_rng(2)
    labels = np.array([0, 0, 1, 1, 0, 1])
    probs = rng.dirichlet(np.ones(3), 6)
    probs[labels == 0, 0] += 1.0  # class 0 perfectly separated
    r = roc_auc_one_vs_rest(labels, probs, NAMES3)
    assert r["per_class"]["Negative"] is None
    assert r["skipped"] == {"Negative": "no clip of this class"}
    assert r["per_class"]["Positive"] == 1.0
    assert r["macro"] == pytest.approx((1.0 + r["per_class"]["Neutral"]) / 2)
    json.dumps(r, allow_nan=False)
    one_class = roc_auc_one_vs_rest(np.zeros(4, dtype=int), probs[:4], NAMES3)
    assert one_class["macro"] is None and one_class["skipped"]["Positive"] == "every clip is of this class"
    with pytest.raises(ValueError, match=r"probabilities must be \(N, 3\)"):
        roc_auc_one_vs_rest(labels, probs[:, :2], NAMES3)


def test_curves_are_json_ready_and_skip_absent_classes():
    labels = np.array([0, 0, 1, 1, 1, 0])
    probs = np.array([[.8, .1, .1], [.6, .3, .1], [.2, .7, .1], [.4, .5, .1], [.1, .8, .1], [.3, .6, .1]])
    roc = roc_curves(labels, probs, NAMES3)
    assert roc["class_names"] == NAMES3 and set(roc["curves"]) == {"Positive", "Neutral"}
    assert roc["skipped"] == {"Negative": "no clip of this class"}
    pos = roc["curves"]["Positive"]
    assert pos["fpr"][0] == 0.0 and pos["tpr"][-1] == 1.0 and pos["auc"] == pytest.approx(8 / 9)
    pr = pr_curves(labels, probs, NAMES3)
    assert pr["curves"]["Neutral"]["prevalence"] == 0.5 and "Negative" in pr["skipped"]
    assert pr["curves"]["Positive"]["recall"][0] == 1.0 and pr["curves"]["Positive"]["precision"][-1] == 1.0
    json.dumps([roc, pr], allow_nan=False)


def test_score_classifier_row():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, 60)
    probs = rng.dirichlet(np.ones(3), 60)
    probs[np.arange(60), labels] += 0.6
    row = score_classifier(labels, probs, NAMES3, seed=3)
    json.dumps(row, allow_nan=False)
    assert row["accuracy"] == pytest.approx(np.mean(probs.argmax(1) == labels))
    assert row["interval"] == bootstrap_accuracy(labels, probs.argmax(1), seed=3)["interval"]
    assert row["interval"][0] <= row["accuracy"] <= row["interval"][1]
    assert row["roc_auc"] == roc_auc_one_vs_rest(labels, probs, NAMES3)["macro"]
    assert set(row["per_class"]) == set(NAMES3) and np.sum(row["confusion_matrix"]) == 60
    assert 0.0 < row["macro_f1"] <= 1.0
