"""The keyframe stream trained on each selection of the keyframe ablation, and its per-clip val
results (what the intervals are made of).

Each training uses the stream's tiny recipe with the set's seed and one torch thread, in its own
spawned process (``workers`` at a time), into ``OUT/runs/<set>/<selection>-<hash>[-e<epochs>]``
(a finished run is reused). The val score is that of the *last* epoch's weights (no checkpoint is
chosen on val, so the number is not the maximum of a noisy curve); the per-clip correctness is
written beside the run (``val_clips.json``) and reused with it.
"""
from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import torch

from core.config import load_config
from core.storage import atomic_write_json, read_json
from training.checkpoints import checkpoint_hash

TrainTask = tuple[str, str, str, int, "int | None"]
"""``(recipe path, cache, run directory, seed, epochs or None)`` of one stream training."""
VAL_CLIPS = "val_clips.json"


@torch.inference_mode()
def val_correctness(run_dir: Path, cache_root: str) -> dict[str, Any]:
    """The last epoch's weights of ``run_dir`` on the labelled val clips of ``cache_root``:
    ``{"clip_ids": [...], "correct": [0/1 ...], "checkpoint_hash"}``, in clip-id order; reused
    from ``run_dir/val_clips.json`` while the checkpoint is the same."""
    from streams.cache import load_entries
    from streams.data import StreamDataset
    from streams.training import load_trained_stream

    last = run_dir / "last"
    stored = read_json(run_dir / VAL_CLIPS)
    made_with = checkpoint_hash(last)
    if stored and stored.get("checkpoint_hash") == made_with:
        return stored
    model, recipe, _, _ = load_trained_stream(last)
    stream = recipe["stream"]
    entries = sorted(load_entries(cache_root, split="val", require=(stream,), labelled=True), key=lambda e: e.clip_id)
    dataset = StreamDataset(entries, stream, recipe.get("data", {}), train=False)
    correct = []
    for x, y in torch.utils.data.DataLoader(dataset, batch_size=16):
        correct += (model(x).argmax(dim=1) == y).int().tolist()
    out = {"clip_ids": [e.clip_id for e in entries], "correct": correct, "checkpoint_hash": made_with}
    atomic_write_json(run_dir / VAL_CLIPS, out)
    return out


def train_one(task: TrainTask) -> dict[str, Any]:
    """Train the keyframe stream's tiny recipe on one cache (a process pool's job), with one
    torch thread (restored afterwards), and score its last epoch per val clip."""
    from streams.training import train_stream

    recipe, cache_root, run_dir, seed, epochs = task
    overrides = [f"train.seed={seed}"] + ([f"train.epochs={epochs}"] if epochs is not None else [])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    started = time.perf_counter()
    try:
        metrics = train_stream(load_config(recipe, overrides), cache_root, run_dir)
        val = val_correctness(Path(run_dir), cache_root)
    finally:
        torch.set_num_threads(threads)
    last = metrics["history"][-1]
    return {"val_accuracy_last": round(float(last["val_acc"]), 4),
            "best_val_accuracy": round(float(metrics["best_val_acc"]), 4), "best_epoch": metrics["best_epoch"],
            "epochs": last["epoch"], "train_seconds": round(time.perf_counter() - started, 1), "run": str(run_dir),
            "val": val}


def train_streams(tasks: Sequence[TrainTask], workers: int) -> list[dict[str, Any]]:
    """:func:`train_one` for every task, ``workers`` at a time in spawned processes (in this
    process when ``workers <= 1``)."""
    if workers <= 1 or len(tasks) <= 1:
        return [train_one(t) for t in tasks]
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=spawn) as pool:
        return list(pool.map(train_one, tasks))
