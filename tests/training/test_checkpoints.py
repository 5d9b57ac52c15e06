"""Checkpoints: safetensors + meta.json round trip, run-dir resolution, damage detection, no pickle."""
import hashlib
import json
import logging
import pickle
import shutil
import struct
import subprocess

import pytest
import torch

from training import checkpoints
from training.checkpoints import (
    CheckpointError,
    checkpoint_hash,
    code_version,
    load_checkpoint,
    read_meta,
    resolve_checkpoint,
    save_checkpoint,
)


def make_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))

META = {"config": {"train": {"epochs": 3}}, "class_names": ["Positive", "Neutral", "Negative"], "epoch": 2,
        "metrics": {"val_acc": 0.5}}


def save_model(directory, seed=0, epoch=2):
    model = make_model(seed)
    save_checkpoint(directory, state_dict=model.state_dict(), meta={**META, "epoch": epoch})
    return model


def test_round_trip_gives_the_same_outputs_and_meta(tmp_path):
    model = save_model(tmp_path / "ckpt")
    state, meta = load_checkpoint(tmp_path / "ckpt")
    other = make_model(seed=99)
    x = torch.randn(5, 8)
    assert not torch.equal(other(x), model(x))
    other.load_state_dict(state, strict=True)
    assert torch.equal(other(x), model(x))
    assert meta["class_names"] == META["class_names"] and meta["epoch"] == 2
    assert meta["config"] == META["config"] and meta["metrics"] == META["metrics"]
    assert meta["code_version"] == code_version() and meta["created"]
    weights = tmp_path / "ckpt" / "model.safetensors"
    assert meta["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()


def test_load_by_file_and_by_run_dir(tmp_path):
    run = tmp_path / "run"
    save_model(run / "last", seed=1, epoch=3)
    save_model(run / "best", seed=2, epoch=2)
    by_run, meta_run = load_checkpoint(run)
    assert meta_run["epoch"] == 2  # best is preferred
    by_file, _ = load_checkpoint(run / "best" / "model.safetensors")
    assert all(torch.equal(by_run[k], by_file[k]) for k in by_run)
    _, meta_last = load_checkpoint(run, which="last")
    assert meta_last["epoch"] == 3
    assert resolve_checkpoint(run) == run / "best"


def test_run_without_best_falls_back_to_last_with_a_message(tmp_path, caplog):
    run = tmp_path / "run"
    save_model(run / "last", epoch=4)
    with caplog.at_level(logging.WARNING, logger="training.checkpoints"):
        _, meta = load_checkpoint(run)
    assert meta["epoch"] == 4
    assert "no best checkpoint" in caplog.text


def test_tampered_file_is_reported_as_corrupted(tmp_path):
    save_model(tmp_path / "ckpt")
    weights = tmp_path / "ckpt" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0xFF  # flip bits inside the last tensor's data
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*corrupted"):
        load_checkpoint(tmp_path / "ckpt")


def test_safetensors_without_meta_is_incomplete(tmp_path):
    save_model(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "meta.json").unlink()
    with pytest.raises(CheckpointError, match=r"meta\.json.*incomplete"):
        load_checkpoint(tmp_path / "ckpt")


def test_missing_and_wrong_paths(tmp_path):
    with pytest.raises(CheckpointError, match="nothing_here.*not found"):
        load_checkpoint(tmp_path / "nothing_here")
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(CheckpointError, match="empty_run.*no checkpoint"):
        load_checkpoint(tmp_path / "empty_run")
    other = tmp_path / "weights.bin"
    other.write_bytes(b"x")
    with pytest.raises(CheckpointError, match="weights.bin"):
        load_checkpoint(other)
    save_model(tmp_path / "ckpt")
    (tmp_path / "ckpt" / "meta.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"meta\.json.*not valid JSON"):
        read_meta(tmp_path / "ckpt")


def test_loading_never_unpickles(tmp_path, monkeypatch):
    save_model(tmp_path / "ckpt")

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle used while loading a checkpoint")

    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "Unpickler", forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    state, _ = load_checkpoint(tmp_path / "ckpt")
    assert set(state) == set(make_model().state_dict())
    raw = (tmp_path / "ckpt" / "model.safetensors").read_bytes()
    (header_len,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + header_len])  # safetensors: a JSON header, then raw tensor bytes
    assert "0.weight" in header


def test_tied_and_viewed_tensors_round_trip(tmp_path):
    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = torch.nn.Linear(4, 4)
            self.dec = torch.nn.Linear(4, 4)
            self.dec.weight = self.enc.weight  # tied
            self.register_buffer("flat", self.enc.bias.detach().view(2, 2))  # a view of another tensor

    model = Tied()
    save_checkpoint(tmp_path / "ckpt", state_dict=model.state_dict(), meta={})
    state, _ = load_checkpoint(tmp_path / "ckpt")
    fresh = Tied()
    fresh.load_state_dict(state, strict=True)
    assert torch.equal(fresh.enc.weight, model.enc.weight) and torch.equal(fresh.dec.weight, model.enc.weight)
    assert torch.equal(state["flat"], model.enc.bias.detach().view(2, 2))
    # a slice of a larger tensor is stored as its own bytes
    big = torch.arange(100.0)
    save_checkpoint(tmp_path / "slice", state_dict={"part": big[10:14]}, meta={})
    assert torch.equal(load_checkpoint(tmp_path / "slice")[0]["part"], torch.tensor([10.0, 11.0, 12.0, 13.0]))


def test_overwrite_replaces_tensors_and_meta(tmp_path):
    save_model(tmp_path / "ckpt", seed=0, epoch=1)
    h1 = checkpoint_hash(tmp_path / "ckpt")
    model = save_model(tmp_path / "ckpt", seed=5, epoch=2)
    state, meta = load_checkpoint(tmp_path / "ckpt")
    assert meta["epoch"] == 2
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    h2 = checkpoint_hash(tmp_path / "ckpt")
    assert h1 != h2 and len(h2) == 16 and meta["sha256"].startswith(h2)
    assert not [p for p in (tmp_path / "ckpt").iterdir() if p.name.endswith(".tmp")]


def test_the_same_weights_give_the_same_bytes_every_time(tmp_path):
    """safetensors writes its header metadata (here "format" and "aliases") in hash-map order, which
    changes between saves (safetensors issue #584); the checkpoint's bytes and sha256, which key
    the feature caches, must not."""
    hashes = set()
    for i in range(8):  # 8 saves in one random order each: all alike by chance with probability 1/128
        save_model(tmp_path / f"ckpt{i}")
        hashes.add(read_meta(tmp_path / f"ckpt{i}")["sha256"])
        header_size = struct.unpack("<Q", (tmp_path / f"ckpt{i}" / "model.safetensors").read_bytes()[:8])[0]
        header = json.loads((tmp_path / f"ckpt{i}" / "model.safetensors").read_bytes()[8:8 + header_size])
        assert list(header["__metadata__"]) == sorted(header["__metadata__"])
    assert len(hashes) == 1
    state, _ = load_checkpoint(tmp_path / "ckpt7")
    assert all(torch.equal(state[k], v) for k, v in make_model().state_dict().items())


def test_checkpoint_files_are_readable_by_others(tmp_path):
    import stat

    save_model(tmp_path / "ckpt")
    for name in ("model.safetensors", "meta.json"):
        assert stat.S_IMODE((tmp_path / "ckpt" / name).stat().st_mode) & 0o044 == 0o044, name


def test_checkpoint_hash_without_meta_hashes_the_file(tmp_path):
    save_model(tmp_path / "ckpt")
    expected = checkpoint_hash(tmp_path / "ckpt")
    shutil.copy(tmp_path / "ckpt" / "model.safetensors", tmp_path / "model.safetensors")
    assert checkpoint_hash(tmp_path / "model.safetensors") == expected


def test_code_version_is_the_git_short_hash(monkeypatch):
    version = code_version()
    assert version
    head = subprocess.run(["git", "-C", str(checkpoints.Path(checkpoints.__file__).parents[1]), "rev-parse",
                           "--short", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        assert version.split("-")[0] == head.stdout.strip()


def test_a_resumed_run_removes_the_temp_files_a_killed_checkpoint_write_left(tmp_path):
    """safetensors' save_file writes ``.tmp`` + 6 random characters and renames it onto the target
    (our own staging file is ``.model.safetensors.<random>.tmp``): a kill between the two leaves
    either in ``last/``; resuming deletes both and nothing else."""
    import threading
    import time

    from core.storage import is_temp_file_name
    from training.run_directory import recover_state_dir

    seen: set[str] = set()
    target = tmp_path / "probe.safetensors"
    for _ in range(10):  # a write lasts tens of ms; a fast disk may need a second look
        writer = threading.Thread(target=lambda: checkpoints.save_file({"w": torch.zeros(20_000_000)}, str(target)))
        writer.start()
        while writer.is_alive():
            seen.update(p.name for p in tmp_path.iterdir() if p != target)
            time.sleep(0.0005)
        if seen:
            break
    assert seen and all(is_temp_file_name(name) for name in seen), seen  # the names it really uses

    last = tmp_path / "run" / "last"
    save_checkpoint(last, state_dict={"w": torch.ones(3)}, meta={"epoch": 1})
    kept = sorted(p.name for p in last.iterdir())
    for name in (".tmpNswM7z", ".model.safetensors.k2j4l1.tmp"):
        (last / name).write_bytes(b"partial")
    recover_state_dir(tmp_path / "run")
    assert sorted(p.name for p in last.iterdir()) == kept
