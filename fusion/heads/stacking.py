"""Stacking ensemble (scikit-learn): an SVM, a random forest and gradient boosting on the
stream features, and a logistic meta-classifier on their out-of-fold outputs.

    streams --standardise, 0 (the train mean) where missing--> [f_1 | ... | f_S | mask] = X
    X --SVC (rbf)--------------> decision scores (N, C)   \
    X --random forest----------> probabilities (N, C)      > out-of-fold on train (cross_val_predict)
    X --gradient boosting------> probabilities (N, C)     /   (each split looks at sqrt(F) features)
    [the three] --logistic regression--> p (N, C);  logits = log p

The meta-classifier learns from outputs the base learners produced on clips they did not fit
(K-fold ``cross_val_predict`` on the train split); then each base learner is refitted on the
whole train split. The SVM contributes its one-vs-rest decision scores, not probabilities (as
scikit-learn's ``StackingClassifier`` does for an SVC without Platt scaling). Missing streams:
their standardised features are 0 (the train mean imputed) and the availability mask is part of
``X``.

Saving without pickle: every fitted estimator is exported to arrays
(:mod:`fusion.heads.sklearn_arrays`) held as buffers, so the run's ``model.safetensors`` holds the
whole ensemble, and predictions (also the ones written during training) are computed by NumPy
from those arrays. Nothing here is trained by gradient: :meth:`StackingHead.fit_inputs` fits it.
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
import torch

from core.config import ConfigError
from fusion.heads import sklearn_arrays as arrays_of
from fusion.heads.base import FusionHead
from fusion.heads.inputs import MASK_KEY, standardisation

#: fitted buffers: name -> dtype (shapes come from the fit)
FITTED: dict[str, torch.dtype] = {
    **{f"svm_{k}": torch.float64 for k in ("support_vectors", "dual_coef", "intercept", "gamma")},
    "svm_n_support": torch.int64,
    **{f"{m}_{k}": torch.int64 for m in ("forest", "boosting") for k in ("roots", "left", "right", "feature")},
    **{f"{m}_{k}": torch.float64 for m in ("forest", "boosting") for k in ("threshold", "value")},
    "boosting_learning_rate": torch.float64,
    "meta_coef": torch.float64,
    "meta_intercept": torch.float64,
}
KERNELS = ("rbf", "linear")


class StackingHead(FusionHead):
    """``forward(inputs) -> logits (B, C)`` = log of the meta-classifier's probabilities;
    ``inputs`` as in :mod:`fusion.heads.inputs` (``probs`` unused)."""

    def __init__(self, *, stream_dims: Mapping[str, int], num_classes: int, folds: int = 5, svm_C: float = 1.0,
                 svm_kernel: str = "rbf", forest_trees: int = 100, forest_max_depth: int | None = None,
                 boosting_stages: int = 50, boosting_learning_rate: float = 0.1, boosting_max_depth: int = 2,
                 boosting_max_features: str | float | None = "sqrt", meta_C: float = 1.0) -> None:
        if not (boosting_max_features in (None, "sqrt", "log2")
                or (isinstance(boosting_max_features, float) and 0 < boosting_max_features <= 1)):
            raise ConfigError("model.boosting_max_features must be sqrt, log2, a fraction in (0, 1] or null, "
                              f"got {boosting_max_features!r}")
        if svm_kernel not in KERNELS:
            raise ConfigError(f"model.svm_kernel must be one of {KERNELS}, got {svm_kernel!r}")
        for key, value, least in (("folds", folds, 2), ("forest_trees", forest_trees, 1),
                                  ("boosting_stages", boosting_stages, 1),
                                  ("boosting_max_depth", boosting_max_depth, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ConfigError(f"model.{key} must be an integer >= {least}, got {value!r}")
        if forest_max_depth is not None and (not isinstance(forest_max_depth, int) or forest_max_depth < 1):
            raise ConfigError(f"model.forest_max_depth must be null or an integer >= 1, got {forest_max_depth!r}")
        for key, value in (("svm_C", svm_C), ("boosting_learning_rate", boosting_learning_rate), ("meta_C", meta_C)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ConfigError(f"model.{key} must be a positive number, got {value!r}")
        super().__init__(stream_dims=stream_dims, num_classes=num_classes, masked_front=False)
        self.settings = dict(folds=folds, svm_C=float(svm_C), svm_kernel=svm_kernel, forest_trees=forest_trees,
                             forest_max_depth=forest_max_depth, boosting_stages=boosting_stages,
                             boosting_learning_rate=float(boosting_learning_rate),
                             boosting_max_depth=boosting_max_depth, boosting_max_features=boosting_max_features,
                             meta_C=float(meta_C))
        for s, d in self.stream_dims.items():
            self.register_buffer(f"mean_{s}", torch.zeros(d))
            self.register_buffer(f"std_{s}", torch.ones((), dtype=torch.float64))
        self.register_fitted(FITTED)

    # ---------------------------------------------------------------------------------- inputs

    def design_matrix(self, inputs: Mapping[str, torch.Tensor]) -> np.ndarray:
        """X (B, sum_s D_s + S) float64: each stream standardised (0 where missing), then the mask."""
        mask = inputs[MASK_KEY].detach().cpu().double().numpy()
        parts = []
        for i, s in enumerate(self.streams):
            x = inputs[s].detach().cpu().double().numpy()
            mean = getattr(self, f"mean_{s}").cpu().double().numpy()
            z = (x - mean) / float(getattr(self, f"std_{s}"))
            parts.append(np.where(mask[:, i:i + 1] > 0, z, 0.0))
        parts.append((mask > 0).astype(np.float64))
        return np.concatenate(parts, axis=1)

    # --------------------------------------------------------------------------------- predict

    def _arrays(self, prefix: str) -> dict[str, np.ndarray]:
        n = len(prefix) + 1
        return {k[n:]: getattr(self, k).cpu().numpy() for k in FITTED if k.startswith(prefix + "_")}

    def base_outputs(self, X: np.ndarray) -> np.ndarray:
        """The meta-classifier's input for ``X``: [SVM scores | forest probs | boosting probs]."""
        return np.concatenate([arrays_of.svc_decision(self._arrays("svm"), X, kernel=self.settings["svm_kernel"]),
                               arrays_of.forest_proba(self._arrays("forest"), X),
                               arrays_of.boosting_proba(self._arrays("boosting"), X)], axis=1)

    def probabilities(self, inputs: Mapping[str, torch.Tensor]) -> np.ndarray:
        """(B, C) float64 class probabilities, computed from the exported arrays."""
        if self.meta_coef.numel() == 0:
            raise RuntimeError("the stacking head is not fitted (fit_inputs) or loaded")
        return arrays_of.logistic_proba(self._arrays("meta"), self.base_outputs(self.design_matrix(inputs)))

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        return self.logits_from_probabilities(self.probabilities(inputs), inputs)

    # ------------------------------------------------------------------------------------- fit

    def fit_inputs(self, inputs: Mapping[str, torch.Tensor], labels: np.ndarray, *, seed: int,
                   split_inputs: Callable[[str], tuple] | None = None) -> dict:
        """Fit the ensemble on the train split's ``inputs`` and ``labels`` (N,) (rows labelled -1
        are left out); ``seed`` fixes the folds, the forest and the boosting. Returns the base
        learners' out-of-fold accuracies, for the run's record."""
        from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import StratifiedKFold, cross_val_predict
        from sklearn.svm import SVC

        del split_inputs  # fitted on train only
        labels = np.asarray(labels)
        keep = labels >= 0
        y = labels[keep]
        counts = np.bincount(y, minlength=self.num_classes)
        folds = self.settings["folds"]
        if counts.min() < folds:
            raise ConfigError(f"stacking: class {int(counts.argmin())} has {int(counts.min())} train clips, fewer than "
                              f"model.folds={folds} (every fold needs every class)")
        mask = inputs[MASK_KEY].cpu().numpy()[keep] > 0
        for i, s in enumerate(self.streams):
            mean, scale = standardisation(inputs[s].cpu().numpy()[keep], mask[:, i])
            getattr(self, f"mean_{s}").copy_(torch.from_numpy(mean))
            getattr(self, f"std_{s}").fill_(scale)
        X = self.design_matrix(inputs)[keep]
        st = self.settings
        variance = float(X.var())
        svm = SVC(C=st["svm_C"], kernel=st["svm_kernel"], gamma=1.0 / (X.shape[1] * variance) if variance > 0 else 1.0)
        forest = RandomForestClassifier(n_estimators=st["forest_trees"], max_depth=st["forest_max_depth"],
                                        random_state=seed, n_jobs=1)
        boosting = GradientBoostingClassifier(n_estimators=st["boosting_stages"],
                                              learning_rate=st["boosting_learning_rate"],
                                              max_depth=st["boosting_max_depth"],
                                              max_features=st["boosting_max_features"], init="zero", random_state=seed)
        cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
        oof = {"svm": cross_val_predict(svm, X, y, cv=cv, method="decision_function").reshape(len(y), -1),
               "forest": cross_val_predict(forest, X, y, cv=cv, method="predict_proba"),
               "boosting": cross_val_predict(boosting, X, y, cv=cv, method="predict_proba")}
        meta = LogisticRegression(C=st["meta_C"], max_iter=1000).fit(np.concatenate(list(oof.values()), axis=1), y)
        fitted = {"svm": arrays_of.svc_arrays(svm.fit(X, y)), "forest": arrays_of.forest_arrays(forest.fit(X, y)),
                  "boosting": arrays_of.boosting_arrays(boosting.fit(X, y)), "meta": arrays_of.logistic_arrays(meta)}
        for model, arrays in fitted.items():
            for key, value in arrays.items():
                name = f"{model}_{key}"
                setattr(self, name, torch.from_numpy(np.array(value, order="C")).to(FITTED[name]))

        def oof_accuracy(scores: np.ndarray) -> float:
            pred = (scores[:, 0] > 0).astype(int) if scores.shape[1] == 1 else scores.argmax(1)
            return float((pred == y).mean())

        return {"out_of_fold_accuracy": {k: oof_accuracy(v) for k, v in oof.items()}, "folds": folds,
                "svm_gamma": float(self.svm_gamma), "svm_support_vectors": int(self.svm_support_vectors.shape[0]),
                "forest_nodes": int(self.forest_left.numel()), "boosting_nodes": int(self.boosting_left.numel())}


#: the builder the head table calls: the class itself. ``configs/fusion/stacking.yaml``'s ``model:``
#: section is its keyword arguments (``stream_dims`` {stream: D_s} and ``num_classes`` come from the features)
create_stacking = StackingHead
