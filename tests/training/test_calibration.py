"""Calibration scores on simulated predictors whose calibration is known, and temperature scaling
recovering a known temperature; a run's calibration.json (old runs load with temperature 1)."""
import json
import logging

import numpy as np
import pytest
import torch

from training.calibration import (
    apply_temperature,
    brier_score,
    calibration_scores,
    expected_calibration_error,
    fit_temperature,
    log_probabilities,
    negative_log_likelihood,
    reliability_bins,
)
from training.checkpoints import save_checkpoint
from training.statistics import bootstrap_accuracy


def _simulated(n: int, sharpness: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(logits (n, 3), labels drawn from softmax(logits)): a perfectly calibrated predictor."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, sharpness, size=(n, 3))
    probs = apply_temperature(logits, 1.0)
    labels = np.array([rng.choice(3, p=p) for p in probs])
    return logits, labels


def test_a_calibrated_predictor_has_an_ece_near_0_and_an_over_confident_one_does_not():
    logits, labels = _simulated(20000, 2.0, seed=0)
    calibrated = apply_temperature(logits, 1.0)
    over_confident = apply_temperature(logits, 0.4)  # the same ranking, sharper probabilities
    assert expected_calibration_error(labels, calibrated) < 0.02
    assert expected_calibration_error(labels, over_confident) > 0.1
    assert negative_log_likelihood(labels, calibrated) < negative_log_likelihood(labels, over_confident)
    assert brier_score(labels, calibrated) < brier_score(labels, over_confident)


def test_scores_match_hand_computations():
    labels = np.array([0, 1, 1, 0])
    probs = np.array([[0.9, 0.05, 0.05], [0.2, 0.7, 0.1], [0.62, 0.28, 0.1], [0.35, 0.35, 0.3]])
    # bins of width 1/15: 0.9 -> bin 13, 0.7 -> bin 10, 0.62 -> bin 9, 0.35 -> bin 5 (every clip alone);
    # the tie of the last clip goes to the first class, its label
    expected_ece = (abs(1 - 0.9) + abs(1 - 0.7) + abs(0 - 0.62) + abs(1 - 0.35)) / 4
    assert expected_calibration_error(labels, probs) == pytest.approx(expected_ece)
    assert negative_log_likelihood(labels, probs) == pytest.approx(-np.mean(np.log([0.9, 0.7, 0.28, 0.35])))
    brier = [0.1 ** 2 + 2 * 0.05 ** 2, 0.2 ** 2 + 0.3 ** 2 + 0.1 ** 2, 0.62 ** 2 + 0.72 ** 2 + 0.1 ** 2,
             0.65 ** 2 + 0.35 ** 2 + 0.3 ** 2]
    assert brier_score(labels, probs) == pytest.approx(np.mean(brier))
    bins = reliability_bins(labels, probs)
    assert len(bins["edges"]) == 16 and sum(bins["clips"]) == 4 and bins["ece"] == pytest.approx(expected_ece)
    assert bins["accuracy"][13] == 1.0 and bins["confidence"][9] == pytest.approx(0.62) and bins["clips"][0] == 0
    assert bins["accuracy"][0] is None


def test_intervals_hold_the_point_estimate_and_use_the_accuracy_bootstrap_draws():
    logits, labels = _simulated(300, 2.0, seed=1)
    probs = apply_temperature(logits, 0.7)
    s = calibration_scores(labels, probs, seed=3)
    for name in ("ece", "nll", "brier"):
        lo, hi = s[f"{name}_ci95"]
        assert lo < hi and (lo <= s[name] <= hi or name == "ece")  # ECE is biased upward by resampling
    assert json.loads(json.dumps(s)) == s
    assert calibration_scores(labels, probs, seed=3) == s
    # the same resamples as the accuracy interval: an accuracy-shaped score gives its interval
    right = (probs.argmax(1) == labels)
    acc = bootstrap_accuracy(labels, np.where(right, labels, (labels + 1) % 3), seed=3)
    from training.statistics import bootstrap_interval
    assert list(bootstrap_interval(lambda idx: right[idx].mean(axis=1), labels.size, seed=3)) == acc["interval"]


@pytest.mark.parametrize("true_t", [0.5, 2.5])
def test_temperature_scaling_recovers_a_known_temperature(true_t):
    rng = np.random.default_rng(7)
    base = rng.normal(0.0, 2.0, size=(6000, 4))
    labels = np.array([rng.choice(4, p=p) for p in apply_temperature(base, 1.0)])
    fit = fit_temperature(base * true_t, labels)  # the model's logits are the calibrated ones times T
    assert fit["temperature"] == pytest.approx(true_t, rel=0.08)
    assert fit["nll_after"] <= fit["nll_before"] and fit["n"] == 6000 and not fit["at_bound"]
    assert expected_calibration_error(labels, apply_temperature(base * true_t, fit["temperature"])) < \
        expected_calibration_error(labels, apply_temperature(base * true_t, 1.0))


def test_temperature_on_log_probabilities_is_temperature_on_logits():
    logits, labels = _simulated(500, 3.0, seed=2)
    a = fit_temperature(logits * 2.0, labels)
    b = fit_temperature(log_probabilities(apply_temperature(logits * 2.0, 1.0)), labels)
    assert a["temperature"] == pytest.approx(b["temperature"], rel=1e-3)
    assert apply_temperature(logits, 2.0).argmax(1).tolist() == logits.argmax(1).tolist()


def test_a_calibrated_model_keeps_temperature_1_when_nothing_is_better():
    labels = np.array([0, 1])
    logits = np.array([[0.0, 0.0], [0.0, 0.0]])  # uniform: every temperature gives the same NLL
    fit = fit_temperature(logits, labels)
    assert fit["temperature"] == 1.0 and fit["nll_after"] == fit["nll_before"]
    with pytest.raises(ValueError):
        apply_temperature(logits, 0.0)


def _checkpoint(path, seed: int = 0):
    torch.manual_seed(seed)
    save_checkpoint(path / "best", state_dict={"w": torch.randn(3)}, meta={"config": {}, "class_names": ["a", "b"]})
    return path


def test_a_run_stores_its_temperature_and_an_old_run_loads_with_1_said_once(tmp_path, caplog):
    from training.run_calibration import CALIBRATION_FILE, read_calibration, run_temperature, write_calibration

    old = _checkpoint(tmp_path / "old")
    with caplog.at_level(logging.WARNING, logger="training.run_calibration"):
        assert run_temperature(old) == 1.0 and run_temperature(old / "best") == 1.0
    assert caplog.text.count("temperature 1") == 1

    logits, labels = _simulated(400, 2.0, seed=4)
    record = write_calibration(old, logits * 3.0, labels)
    assert (old / "best" / CALIBRATION_FILE).is_file()
    assert record["fitted_on"] == "val" and record["nll_after"] <= record["nll_before"] and record["n"] == 400
    assert run_temperature(old) == pytest.approx(record["temperature"]) and record["temperature"] > 1.5
    with pytest.raises(ValueError, match="never on"):
        write_calibration(old, logits, labels, fitted_on="test")

    _checkpoint(old, seed=1)  # retrained: the file was fitted for other weights
    assert read_calibration(old) is None and run_temperature(old) == 1.0
