"""Stacking (SVM + random forest + gradient boosting -> logistic): learns, handles missing streams
with the mask and imputed means, and reloads from safetensors without pickle, predicting exactly
as it did."""
from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from core.config import ConfigError
from fusion.heads.stacking import create_stacking
from tests.conftest import load_helper
from training.checkpoints import load_checkpoint, save_checkpoint

toy = load_helper(Path(__file__).parents[1] / "toy_features.py", "tests_fusion_toy_features")
SMALL = dict(folds=3, forest_trees=10, boosting_stages=8)


def fitted(mode: str = "one", missing=None, seed_data: int = 0, **settings):
    x, y, _ = toy.toy_batch(90, toy.TOY_DIMS, mode=mode, missing=missing, seed=seed_data)
    xv, yv, _ = toy.toy_batch(90, toy.TOY_DIMS, mode=mode, missing=missing, seed=seed_data + 1)
    head = create_stacking(stream_dims=toy.TOY_DIMS, num_classes=3, **{**SMALL, **settings})
    info = head.fit_inputs(x, y.numpy(), seed=0)
    return head.eval(), xv, yv, info


def forbid_pickle(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("pickle used")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(torch, "load", refuse)


def test_reads_the_class_from_one_stream():
    head, x, y, info = fitted("one")
    assert toy.accuracy(head, x, y) >= 0.9
    assert set(info["out_of_fold_accuracy"]) == {"svm", "forest", "boosting"}


def test_reads_a_class_only_the_combination_of_two_streams_shows():
    head, x, y, _ = fitted("pair")
    assert toy.accuracy(head, x, y) >= 0.8  # either stream alone: at most 2/3


def test_predicts_from_the_other_streams_when_one_is_missing_for_every_clip():
    head, x, y, _ = fitted("all")
    assert toy.accuracy(head, toy.without(x, "visual", toy.TOY_DIMS), y) >= 0.7  # chance: 1/3
    head, x, y, _ = fitted("all", missing={"visual": 1.0})
    assert toy.accuracy(head, x, y) >= 0.7


def test_a_missing_stream_is_the_imputed_train_mean_plus_the_mask():
    head, x, _, _ = fitted("all", missing={"audio": 0.3})
    X = head.design_matrix(x)
    gone = x["mask"][:, 1] == 0
    assert np.array_equal(X[gone.numpy(), 8:14], np.zeros((int(gone.sum()), 6)))  # standardised train mean
    assert np.array_equal(X[:, -3:], x["mask"].numpy())


def test_reloads_without_pickle_and_reproduces_its_predictions_exactly(tmp_path, monkeypatch):
    head, x, _, _ = fitted("all", missing={"audio": 0.2})
    before = head.probabilities(x)
    save_checkpoint(tmp_path / "ckpt", state_dict=head.state_dict(), meta={"config": {}, "class_names": list("abc")})
    assert not [p for p in tmp_path.rglob("*") if p.suffix in (".pkl", ".pickle", ".joblib", ".pt", ".pth")]
    forbid_pickle(monkeypatch)
    state, _ = load_checkpoint(tmp_path / "ckpt")
    again = create_stacking(stream_dims=toy.TOY_DIMS, num_classes=3, **SMALL)
    again.load_state_dict(state)
    np.testing.assert_array_equal(again.probabilities(x), before)
    assert torch.equal(again.eval()(x), head(x))


def test_numpy_predictions_match_the_fitted_scikit_learn_ensemble():
    """The exported arrays are what scikit-learn fitted: refitting the same learners with the
    same seeds and the same out-of-fold outputs gives the same probabilities."""
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.svm import SVC

    x, y, _ = toy.toy_batch(90, toy.TOY_DIMS, mode="all", seed=0)
    xv, _, _ = toy.toy_batch(30, toy.TOY_DIMS, mode="all", seed=1)
    head = create_stacking(stream_dims=toy.TOY_DIMS, num_classes=3, **SMALL)
    head.fit_inputs(x, y.numpy(), seed=0)
    X, Xv, y = head.design_matrix(x), head.design_matrix(xv), y.numpy()
    learners = [SVC(gamma=float(head.svm_gamma)),
                RandomForestClassifier(n_estimators=10, random_state=0, n_jobs=1),
                GradientBoostingClassifier(n_estimators=8, max_depth=2, max_features="sqrt", init="zero",
                                           random_state=0)]
    cv = StratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    methods = ["decision_function", "predict_proba", "predict_proba"]
    oof = np.concatenate([cross_val_predict(m, X, y, cv=cv, method=k) for m, k in zip(learners, methods)], axis=1)
    meta = LogisticRegression(max_iter=1000).fit(oof, y)
    base = np.concatenate([getattr(m.fit(X, y), k)(Xv) for m, k in zip(learners, methods)], axis=1)
    np.testing.assert_allclose(head.probabilities(xv), meta.predict_proba(base), rtol=1e-8, atol=1e-10)


def test_unfitted_head_refuses_to_predict():
    x, _, _ = toy.toy_batch(3, toy.TOY_DIMS)
    with pytest.raises(RuntimeError, match="not fitted"):
        create_stacking(stream_dims=toy.TOY_DIMS, num_classes=3)(x)


def test_too_few_clips_per_class_for_the_folds_is_a_config_error():
    x, y, _ = toy.toy_batch(12, toy.TOY_DIMS)
    with pytest.raises(ConfigError, match="folds"):
        create_stacking(stream_dims=toy.TOY_DIMS, num_classes=3, folds=5).fit_inputs(x, y.numpy(), seed=0)


def test_settings_are_checked():
    with pytest.raises(ConfigError, match="svm_kernel"):
        create_stacking(stream_dims=toy.TOY_DIMS, num_classes=3, svm_kernel="poly")
    with pytest.raises(ConfigError, match="folds"):
        create_stacking(stream_dims=toy.TOY_DIMS, num_classes=3, folds=1)
