"""The late-fusion baselines: weighted averages of the streams' probabilities."""
from __future__ import annotations

import numpy as np
import pytest

from fusion.late import FACE_AUDIO_WEIGHTS, search_weights, weighted_score


def test_weighted_score_renormalises_over_available_streams():
    probs = {"face": np.array([[0.9, 0.1], [0.9, 0.1]]), "audio": np.array([[0.2, 0.8], [0.2, 0.8]])}
    avail = {"face": np.array([True, False]), "audio": np.array([True, True])}
    out = weighted_score(probs, avail, FACE_AUDIO_WEIGHTS)
    np.testing.assert_allclose(out[0], 0.6 * probs["face"][0] + 0.4 * probs["audio"][0])
    np.testing.assert_allclose(out[1], probs["audio"][1])  # no face: audio alone
    none = weighted_score(probs, {"face": np.array([False] * 2), "audio": np.array([False] * 2)}, FACE_AUDIO_WEIGHTS)
    np.testing.assert_allclose(none, 0.5)


def test_weight_search_finds_the_informative_stream():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 60)
    good = np.eye(3)[labels] * 0.7 + 0.1
    noise = rng.dirichlet(np.ones(3), 60)
    probs = {"visual": noise, "audio": good}
    avail = {s: np.ones(60, bool) for s in probs}
    w, acc = search_weights(probs, avail, labels, step=0.1)
    assert acc == pytest.approx(1.0)
    assert w["audio"] > w["visual"]
    assert sum(w.values()) == pytest.approx(1.0)
