"""Fitted scikit-learn models exported as arrays reproduce the models' own outputs."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.svm import SVC

from fusion.heads import sklearn_arrays as arrays_of


def _data(classes: int, n: int = 80, dim: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    X = rng.normal(0, 1, (n, dim)) + rng.normal(0, 1.5, (classes, dim))[y]
    Xt = rng.normal(0, 1, (40, dim)) + rng.normal(0, 1.5, (classes, dim))[np.arange(40) % classes]
    return X, y, Xt


@pytest.mark.parametrize("classes", [2, 3, 4])
@pytest.mark.parametrize("kernel", ["rbf", "linear"])
def test_svc_decision_function(classes, kernel):
    X, y, Xt = _data(classes)
    svc = SVC(C=1.0, kernel=kernel, gamma=0.2).fit(X, y)
    got = arrays_of.svc_decision(arrays_of.svc_arrays(svc), Xt, kernel=kernel)
    np.testing.assert_allclose(got, svc.decision_function(Xt).reshape(len(Xt), -1), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("classes", [2, 3])
def test_random_forest_probabilities(classes):
    X, y, Xt = _data(classes)
    forest = RandomForestClassifier(n_estimators=15, random_state=0, n_jobs=1).fit(X, y)
    np.testing.assert_allclose(arrays_of.forest_proba(arrays_of.forest_arrays(forest), Xt), forest.predict_proba(Xt),
                               rtol=1e-12, atol=1e-12)


def test_trees_split_on_float32_values_as_scikit_learn_does():
    """A value between a float32 threshold's neighbours: compared in float64 it would go the
    other way."""
    X = np.array([[0.0], [1.0], [0.0], [1.0]])
    y = np.array([0, 1, 0, 1])
    forest = RandomForestClassifier(n_estimators=1, bootstrap=False, random_state=0).fit(X, y)
    thr = float(forest.estimators_[0].tree_.threshold[0])
    x = np.array([[np.nextafter(thr, 1.0)]])  # above the threshold in float64, equal in float32
    assert np.float32(x[0, 0]) <= thr < x[0, 0]
    np.testing.assert_array_equal(arrays_of.forest_proba(arrays_of.forest_arrays(forest), x), forest.predict_proba(x))


@pytest.mark.parametrize("classes", [2, 3])
def test_gradient_boosting_probabilities(classes):
    X, y, Xt = _data(classes)
    gb = GradientBoostingClassifier(n_estimators=12, max_depth=2, init="zero", max_features="sqrt",
                                    random_state=0).fit(X, y)
    np.testing.assert_allclose(arrays_of.boosting_proba(arrays_of.boosting_arrays(gb), Xt), gb.predict_proba(Xt),
                               rtol=1e-10, atol=1e-12)


def test_gradient_boosting_must_start_from_zero():
    X, y, _ = _data(3)
    with pytest.raises(ValueError, match="init='zero'"):
        arrays_of.boosting_arrays(GradientBoostingClassifier(n_estimators=2).fit(X, y))


@pytest.mark.parametrize("classes", [2, 3])
def test_logistic_probabilities(classes):
    X, y, Xt = _data(classes)
    model = LogisticRegression(max_iter=500).fit(X, y)
    np.testing.assert_allclose(arrays_of.logistic_proba(arrays_of.logistic_arrays(model), Xt), model.predict_proba(Xt),
                               rtol=1e-10, atol=1e-12)
