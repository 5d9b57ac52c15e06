"""The trained networks wrapped as graphs with plain tensor inputs and outputs, for
:func:`torch.onnx.export`: the keyframe scorer (normalised frames -> probabilities), a stream
(its network input -> features, logits and, with spatial attention, the attention map) and a
fusion head (per-stream features, mask, per-stream probabilities -> logits). The heads fitted in
one pass (score weighting, stacking), which compute in NumPy in the runs, are re-expressed here
in torch operations (float64, as the NumPy code) so that they export too.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fusion.heads.base import MIN_PROBABILITY, FusionHead
from fusion.heads.inputs import MASK_KEY, PROBS_KEY
from fusion.heads.score_weighted import ScoreWeightedHead
from fusion.heads.sklearn_arrays import LEAF
from fusion.heads.stacking import StackingHead

#: the ONNX names of a stream graph's outputs
STREAM_OUTPUTS = ("features", "logits")
ATTENTION_OUTPUT = "attention"


class ScorerGraph(nn.Module):
    """``(N, 3, S, S)`` ImageNet-normalised frames -> ``(N, C)`` class probabilities."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.eval()

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(frames).float(), dim=1)


def spatial_attention(model: nn.Module):
    """The model's first :class:`streams.models.attention.SpatialAttention`, or ``None``."""
    from streams.models.attention import SpatialAttention

    return next((m for m in model.modules() if isinstance(m, SpatialAttention)), None)


class StreamGraph(nn.Module):
    """A stream's input ``(B, *input_shape)`` -> ``features (B, D)``, ``logits (B, C)`` and, when
    the model has spatial attention, ``attention (B, 1, *S)`` (its weights over the feature map)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.eval()
        self.attention = spatial_attention(model)

    def forward(self, x: torch.Tensor):
        f = self.model.features(x)
        logits = self.model.head(f).float()
        if self.attention is None:
            return f, logits
        return f, logits, self.attention.last_weights


class HeadGraph(nn.Module):
    """A neural fusion head: ``(*features (B, D_s) per stream, mask (B, S), probs (B, S, C))`` -> logits (B, C)."""

    def __init__(self, head: FusionHead) -> None:
        super().__init__()
        self.head = head.eval()
        self.streams = tuple(head.streams)

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        *feats, mask, probs = args
        return self.head({**dict(zip(self.streams, feats)), MASK_KEY: mask, PROBS_KEY: probs}).float()


class ScoreWeightedGraph(HeadGraph):
    """:class:`ScoreWeightedHead` in torch operations: log of the weighted average of the
    available streams' probabilities, uniform where no weighted stream is available."""

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        *_, mask, probs = args
        w = self.head.weights.double()[None, :, None] * (mask.double() > 0).double()[:, :, None]  # (B, S, 1)
        num = (w * probs.double()).sum(1)                                                       # (B, C)
        den = w.sum(1)                                                                          # (B, 1)
        c = probs.shape[2]
        p = torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), torch.full_like(num, 1.0 / c))
        return torch.log(torch.clamp(p, min=MIN_PROBABILITY)).float()


def tree_depth(left: np.ndarray, right: np.ndarray, roots: np.ndarray) -> int:
    """The number of splits on the longest root-to-leaf path of a node table (global indices)."""
    depth = np.full(len(left), -1, np.int64)
    frontier = np.asarray(roots).reshape(-1)
    d = 0
    while frontier.size:
        depth[frontier] = d
        inner = frontier[left[frontier] != LEAF]
        frontier = np.concatenate([left[inner], right[inner]])
        d += 1
    return max(d - 1, 0)


def _leaves(x32: torch.Tensor, table: dict[str, torch.Tensor], roots: torch.Tensor, depth: int) -> torch.Tensor:
    """The leaf each row of ``x32`` (B, F) reaches in each tree of ``roots`` (R,): (B, R)."""
    left, right, feature, threshold = table["left"], table["right"], table["feature"], table["threshold"]
    node = roots[None, :].expand(x32.shape[0], -1)
    for _ in range(depth):  # fixed iterations: a leaf points at itself
        inner = left[node] != LEAF
        f = torch.where(inner, feature[node], torch.zeros_like(node))
        go_left = torch.gather(x32, 1, f) <= threshold[node]
        node = torch.where(inner, torch.where(go_left, left[node], right[node]), node)
    return node


class StackingGraph(HeadGraph):
    """:class:`StackingHead` in torch operations (float64, trees compare float32-rounded inputs with
    float64 thresholds as scikit-learn does): design matrix -> SVM, forest, boosting -> logistic."""

    def __init__(self, head: StackingHead) -> None:
        super().__init__(head)
        self.kernel = head.settings["svm_kernel"]
        self.depth = {m: tree_depth(getattr(head, f"{m}_left").numpy(), getattr(head, f"{m}_right").numpy(),
                                    getattr(head, f"{m}_roots").numpy()) for m in ("forest", "boosting")}

    def _table(self, prefix: str) -> dict[str, torch.Tensor]:
        return {k: getattr(self.head, f"{prefix}_{k}") for k in ("left", "right", "feature", "threshold", "value")}

    def forward(self, *args: torch.Tensor) -> torch.Tensor:
        *feats, mask, _ = args
        h = self.head
        available = (mask.double() > 0).double()
        parts = []
        for i, (s, x) in enumerate(zip(self.streams, feats)):
            z = (x.double() - getattr(h, f"mean_{s}").double()) / getattr(h, f"std_{s}").double()
            parts.append(z * available[:, i:i + 1])
        X = torch.cat([*parts, available], dim=1)                                     # (B, F)
        outputs = [self._svm(X), self._forest(X), self._boosting(X)]
        z = torch.cat(outputs, dim=1) @ h.meta_coef.T + h.meta_intercept
        p = _sigmoid_pair(z[:, 0]) if z.shape[1] == 1 else torch.softmax(z, dim=1)
        return torch.log(torch.clamp(p, min=MIN_PROBABILITY)).float()

    def _svm(self, X: torch.Tensor) -> torch.Tensor:
        h = self.head
        sv, coef, intercept = h.svm_support_vectors, h.svm_dual_coef, h.svm_intercept
        if self.kernel == "rbf":
            sq = (X * X).sum(1, keepdim=True) + (sv * sv).sum(1)[None, :] - 2.0 * X @ sv.T
            k = torch.exp(-h.svm_gamma * torch.clamp(sq, min=0.0))
        else:
            k = X @ sv.T
        n_support = [int(v) for v in h.svm_n_support.tolist()]
        n_classes = len(n_support)
        start = np.concatenate([[0], np.cumsum(n_support)]).tolist()
        ovo = []
        for i in range(n_classes):
            for j in range(i + 1, n_classes):
                si, sj = slice(start[i], start[i + 1]), slice(start[j], start[j + 1])
                ovo.append(k[:, si] @ coef[j - 1, si] + k[:, sj] @ coef[i, sj] + intercept[len(ovo)])
        if n_classes == 2:
            return ovo[0][:, None]
        votes = [torch.zeros_like(ovo[0]) for _ in range(n_classes)]
        confidence = [torch.zeros_like(ovo[0]) for _ in range(n_classes)]
        p = 0
        for i in range(n_classes):
            for j in range(i + 1, n_classes):
                confidence[i] = confidence[i] + ovo[p]
                confidence[j] = confidence[j] - ovo[p]
                positive = (ovo[p] >= 0).double()
                votes[i] = votes[i] + positive
                votes[j] = votes[j] + (1.0 - positive)
                p += 1
        v, c = torch.stack(votes, 1), torch.stack(confidence, 1)
        return v + c / (3 * (torch.abs(c) + 1))

    def _forest(self, X: torch.Tensor) -> torch.Tensor:
        table = self._table("forest")
        leaf = _leaves(X.float().double(), table, self.head.forest_roots, self.depth["forest"])   # (B, T)
        return table["value"][leaf].mean(1)                                                       # (B, C)

    def _boosting(self, X: torch.Tensor) -> torch.Tensor:
        table = self._table("boosting")
        roots = self.head.boosting_roots                                                          # (stages, K)
        leaf = _leaves(X.float().double(), table, roots.reshape(-1), self.depth["boosting"])
        raw = table["value"][leaf].reshape(X.shape[0], *roots.shape).sum(1) * self.head.boosting_learning_rate
        return _sigmoid_pair(raw[:, 0]) if raw.shape[1] == 1 else torch.softmax(raw, dim=1)


def _sigmoid_pair(z: torch.Tensor) -> torch.Tensor:
    p = 1.0 / (1.0 + torch.exp(-z))
    return torch.stack([1.0 - p, p], dim=1)


def head_graph(head: FusionHead) -> HeadGraph:
    """The exportable graph of any fusion head of :data:`fusion.heads.FUSION_HEADS`."""
    if isinstance(head, StackingHead):
        return StackingGraph(head)
    if isinstance(head, ScoreWeightedHead):
        return ScoreWeightedGraph(head)
    return HeadGraph(head)
