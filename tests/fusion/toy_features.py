"""Toy stream features for the fusion tests: feature directories as :mod:`fusion.features` writes
them, and in-memory batches, with the class readable from one stream or only from a pair."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

import numpy as np

CLASSES = ["Positive", "Neutral", "Negative"]


def toy_streams(n: int, dims: Mapping[str, int], *, mode: str = "one", informative: str | None = None,
                separation: float | Mapping[str, float] = 4.0, missing: Mapping[str, float] | None = None,
                seed: int = 0) -> tuple[dict, dict, dict, np.ndarray]:
    """``(features {s: (n, D_s) float32}, probs {s: (n, 3) float32}, available {s: (n,) bool},
    labels (n,))`` for 3 classes, balanced and shuffled.

    Features are a class centre plus unit Gaussian noise; centres are ``separation`` noise sds
    apart on average. ``mode="one"``: only stream ``informative`` (default: the first) carries
    the class; the others are noise. ``mode="pair"``: the first stream tells class 0 from {1, 2},
    the second class 1 from {0, 2}, so each alone is right on at most 2/3 of the clips and only
    the pair reads every class; the rest are noise. ``mode="all"``: every stream carries the
    class (``separation`` may then be a mapping per stream). Probabilities: what the stream can read,
    its Bayes posterior (spread evenly over the classes it cannot tell apart); a Dirichlet draw
    for noise streams. ``missing``: per stream,
    the fraction of clips without it (zero rows, as the feature cache writes them)."""
    if mode not in ("one", "pair", "all"):
        raise ValueError(f"mode must be 'one', 'pair' or 'all', got {mode!r}")
    rng = np.random.default_rng(seed)
    names = list(dims)
    labels = np.arange(n) % 3
    rng.shuffle(labels)
    centre_rng = np.random.default_rng(1234)  # the same centres for every split
    features, probs, available = {}, {}, {}
    for k, s in enumerate(names):
        d = dims[s]
        sep = separation[s] if isinstance(separation, Mapping) else separation
        centres = centre_rng.normal(0, 1, (3, d)) * sep / np.sqrt(2 * d)
        if mode == "all" or (mode == "one" and s == (informative or names[0])):
            code, groups = labels, np.eye(3)  # the stream reads each class
        elif mode == "pair" and k < 2:
            code = (labels == k).astype(int)  # 1: the class this stream recognises, 0: one of the other two
            groups = np.full((2, 3), 0.5)
            groups[0, k], groups[1] = 0.0, np.eye(3)[k]
        else:
            code = groups = None
        if code is None:
            f = rng.normal(0, 1, (n, d))
            p = rng.dirichlet(np.ones(3), n)
        else:
            f = centres[code] + rng.normal(0, 1, (n, d))
            # the stream's own classifier: the posterior of its readable groups (unit noise, known centres)
            logit = -0.5 * ((f[:, None, :] - centres[None, :len(groups)]) ** 2).sum(-1)
            post = np.exp(logit - logit.max(1, keepdims=True))
            post /= post.sum(1, keepdims=True)
            p = post @ groups
        a = rng.random(n) >= (missing or {}).get(s, 0.0)
        features[s] = (f * a[:, None]).astype(np.float32)
        probs[s] = (p * a[:, None]).astype(np.float32)
        available[s] = a
    return features, probs, available, labels


def write_feature_dir(root: Path, dims: Mapping[str, int], *, splits: Mapping[str, int] | None = None,
                      seed: int = 0, **kwargs) -> Path:
    """``root/<split>/{<s>.npy, <s>_probs.npy, index.json}`` for each split (default train 60,
    val 30) from :func:`toy_streams` (``kwargs`` go there); returns ``root``."""
    root = Path(root)
    for i, (split, n) in enumerate((splits or {"train": 60, "val": 30}).items()):
        features, probs, available, labels = toy_streams(n, dims, seed=seed + 100 * i, **kwargs)
        d = root / split
        d.mkdir(parents=True, exist_ok=True)
        streams = {}
        for s in dims:
            np.save(d / f"{s}.npy", features[s])
            np.save(d / f"{s}_probs.npy", probs[s])
            streams[s] = {"run": f"toy/{s}", "checkpoint_hash": f"toy-{s}", "dim": int(dims[s]),
                          "class_names": CLASSES, "available": available[s].tolist()}
        index = {"split": split, "clip_ids": [f"{split}_{j:03d}" for j in range(n)], "labels": labels.tolist(),
                 "class_names": CLASSES, "streams": streams}
        (d / "index.json").write_text(json.dumps(index), encoding="utf-8")
    return root


def toy_batch(n: int, dims: Mapping[str, int], **kwargs):
    """:func:`toy_streams` as a head's inputs (:mod:`fusion.heads.inputs`) and labels:
    ``({s: (n, D_s), "mask": (n, S), "probs": (n, S, 3)}, labels (n,) int64)``, plus the raw
    ``(features, available)`` for a head's normalisation."""
    import torch

    features, probs, available, labels = toy_streams(n, dims, **kwargs)
    inputs = {s: torch.from_numpy(features[s]) for s in dims}
    inputs["mask"] = torch.from_numpy(np.stack([available[s] for s in dims], 1).astype(np.float32))
    inputs["probs"] = torch.from_numpy(np.stack([probs[s] for s in dims], 1))
    return inputs, torch.from_numpy(labels), (features, available)


def train_plain(head, inputs, labels, *, steps: int = 200, lr: float = 0.01, seed: int = 0):
    """Full-batch Adam on cross-entropy for ``steps`` steps (train mode, so modality dropout is
    on); returns the head in eval mode. Fast stand-in for :func:`training.loop.fit` in head tests."""
    import torch

    torch.manual_seed(seed)
    head.train()
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(head(inputs), labels).backward()
        opt.step()
    return head.eval()


def accuracy(head, inputs, labels) -> float:
    """The head's accuracy on ``inputs`` (eval mode, no gradients)."""
    import torch

    with torch.no_grad():
        return float((head.eval()(inputs).argmax(1) == labels).float().mean())


def without(inputs, stream: str, streams) -> dict:
    """``inputs`` with ``stream`` missing for every clip (zero features, mask 0, zero probs)."""
    import torch

    i = list(streams).index(stream)
    out = {k: v.clone() for k, v in inputs.items()}
    out[stream] = torch.zeros_like(out[stream])
    out["mask"][:, i] = 0.0
    out["probs"][:, i] = 0.0
    return out


#: stream widths of the head tests (tiny, unequal)
TOY_DIMS = {"visual": 8, "audio": 6, "face": 5}


def trained_head(create, *, mode: str, missing: Mapping[str, float] | None = None, n: int = 90,
                 steps: int = 200, separation: float = 4.0, **head_args):
    """A head from builder ``create`` over :data:`TOY_DIMS`, normalised on and trained
    (:func:`train_plain`) on ``n`` toy clips of ``mode``; returns ``(head, val inputs, val labels)``
    with ``n`` fresh val clips drawn the same way."""
    import torch

    x, y, (features, available) = toy_batch(n, TOY_DIMS, mode=mode, missing=missing, separation=separation, seed=0)
    xv, yv, _ = toy_batch(n, TOY_DIMS, mode=mode, missing=missing, separation=separation, seed=1)
    torch.manual_seed(0)
    head = create(stream_dims=TOY_DIMS, num_classes=3, **head_args)
    head.set_normalisation(features, available)
    return train_plain(head, x, y, steps=steps), xv, yv
