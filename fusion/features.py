"""Feature caching: each frozen stream's ``features()`` over every clip, once.

``FEATS/<split>/`` holds, for every stream ``s``:

* ``<s>.npy``        float32 (N, D_s) feature vectors (zeros where the modality is missing),
* ``<s>_probs.npy``  float32 (N, C) the stream's own class probabilities (zeros where missing),

and ``index.json`` with the clip ids, labels, class names and per stream its availability mask,
run directory, checkpoint hash and the hash of the cache arrays it read (their config hashes, clip
by clip). A stream is recomputed when its checkpoint, the clip list or any of those arrays changed
(e.g. the cache was re-made with other flow settings); the others are reused. Fusion epochs then
cost milliseconds instead of stream forwards.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Mapping

import numpy as np
import torch

from media.storage import atomic_save_npy, atomic_write_json, config_hash, read_json
from streams.cache import CacheEntry, load_entries
from streams.data import StreamDataset
from streams.specs import STREAM_SPECS
from streams.training import load_trained_stream

log = logging.getLogger(__name__)
INDEX_FILE = "index.json"


def parse_stream_runs(spec: str) -> dict[str, str]:
    """``"NAME=RUN,NAME=RUN"`` -> ``{NAME: RUN, ...}``; names must be streams of the spec table."""
    out = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise ValueError(f"--streams entry {part!r} must look like name=RUN_DIR")
        name, run = (x.strip() for x in part.split("=", 1))
        if name not in STREAM_SPECS:
            raise ValueError(f"--streams: unknown stream {name!r}; choose from {', '.join(STREAM_SPECS)}")
        out[name] = run
    if not out:
        raise ValueError("--streams: no stream given")
    return out


def cache_arrays_hash(entries: list[CacheEntry], stream: str) -> str:
    """Hash of the config hashes of ``stream``'s arrays over ``entries`` (in order): it changes
    when any of those arrays was recomputed with other settings."""
    return config_hash([[e.clip_id, e.array_hash(stream)] for e in entries])


@torch.inference_mode()
def stream_outputs(model, dataset: StreamDataset, entries, *, batch_size: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(features (N, D), probs (N, C), available (N,) bool)`` of one stream over ``entries``
    (eval view of each input; missing modalities give zero rows)."""
    available = np.array([e.available(dataset.stream) for e in entries], dtype=bool)
    feats = probs = None
    idx = np.flatnonzero(available)
    for start in range(0, len(idx), batch_size):
        chunk = idx[start:start + batch_size]
        x = torch.stack([dataset.load_input(entries[i]) for i in chunk])
        f = model.features(x)
        p = torch.softmax(model.head(f), dim=1)
        if feats is None:
            feats = np.zeros((len(entries), f.shape[1]), np.float32)
            probs = np.zeros((len(entries), p.shape[1]), np.float32)
        feats[chunk] = f.numpy()
        probs[chunk] = p.numpy()
    if feats is None:  # no clip has this modality
        feats = np.zeros((len(entries), getattr(model, "feature_dim", 1)), np.float32)
        probs = np.zeros((len(entries), getattr(model, "num_classes", 1)), np.float32)
    return feats, probs, available


def extract_features(stream_runs: Mapping[str, str], cache_root: str | os.PathLike, out_dir: str | os.PathLike, *,
                     splits: tuple[str, ...] = ("train", "val", "test"), batch_size: int = 8) -> dict:
    """Compute (or reuse) the features of every stream in ``stream_runs`` for every split of the
    cache; returns ``{split: {stream: "computed" | "reused"}}``."""
    out_dir = Path(out_dir)
    status: dict[str, dict[str, str]] = {}
    loaded = {}
    for split in splits:
        entries = load_entries(cache_root, split=split)
        if not entries:
            continue
        split_dir = out_dir / split
        index = read_json(split_dir / INDEX_FILE) or {}
        clip_ids = [e.clip_id for e in entries]
        labels = [e.label for e in entries]
        # other clips, or the same clips relabelled (a labels: mapping of preprocessing): recompute
        same_clips = (index.get("clip_ids") == clip_ids and index.get("labels") == labels
                      and index.get("class_names") == list(entries[0].class_names))
        streams_meta = dict(index.get("streams", {})) if same_clips else {}
        status[split] = {}
        for stream, run in stream_runs.items():
            if stream not in loaded:
                loaded[stream] = load_trained_stream(run)
            model, recipe, class_names, ckpt_hash = loaded[stream]
            old = streams_meta.get(stream)
            inputs_hash = cache_arrays_hash(entries, stream)
            if (old and old.get("checkpoint_hash") == ckpt_hash and old.get("inputs_hash") == inputs_hash
                    and (split_dir / f"{stream}.npy").exists()):
                status[split][stream] = "reused"
                continue
            dataset = StreamDataset([], stream, recipe.get("data", {}), train=False)
            feats, probs, available = stream_outputs(model, dataset, entries, batch_size=batch_size)
            atomic_save_npy(split_dir / f"{stream}.npy", feats)
            atomic_save_npy(split_dir / f"{stream}_probs.npy", probs)
            streams_meta[stream] = {"run": str(Path(run).resolve()), "checkpoint_hash": ckpt_hash,
                                    "inputs_hash": inputs_hash,
                                    "dim": int(feats.shape[1]), "class_names": class_names,
                                    "available": available.tolist()}
            status[split][stream] = "computed"
            # index after each stream, so a kill keeps what is done
            atomic_write_json(split_dir / INDEX_FILE, {
                "split": split, "clip_ids": clip_ids,
                "labels": labels,
                "class_names": list(entries[0].class_names),
                "cache": str(Path(cache_root).resolve()),
                "streams": streams_meta,
            })
        log.info("features %s: %s", split, ", ".join(f"{k} {v}" for k, v in status[split].items()))
    if not status:
        raise ValueError(f"{cache_root}: no clips in the cache for splits {splits}")
    return status


class FeatureSet:
    """One split of a feature cache: ``features[s]`` (N, D_s), ``probs[s]`` (N, C), ``available[s]``
    (N,) bool, ``labels`` (N,) (-1 when unlabelled), ``clip_ids``, ``class_names``."""

    def __init__(self, feats_dir: str | os.PathLike, split: str, streams: tuple[str, ...] | None = None) -> None:
        split_dir = Path(feats_dir) / split
        index = read_json(split_dir / INDEX_FILE)
        if index is None:
            raise FileNotFoundError(f"{split_dir / INDEX_FILE}: no features for split {split!r} "
                                    "(run tools/extract_features.py)")
        names = tuple(streams) if streams else tuple(s for s in STREAM_SPECS if s in index["streams"])
        missing = [s for s in names if s not in index["streams"]]
        if missing:
            raise ValueError(f"{split_dir / INDEX_FILE}: no features for streams {missing}")
        self.split = split
        self.streams = names
        self.index = index
        self.clip_ids = list(index["clip_ids"])
        self.labels = np.array([-1 if v is None else int(v) for v in index["labels"]], dtype=np.int64)
        self.class_names = list(index["class_names"])
        self.features = {s: np.load(split_dir / f"{s}.npy") for s in names}
        self.probs = {s: np.load(split_dir / f"{s}_probs.npy") for s in names}
        self.available = {s: np.asarray(index["streams"][s]["available"], dtype=bool) for s in names}
        self.stream_info = {s: index["streams"][s] for s in names}

    def __len__(self) -> int:
        return len(self.clip_ids)
