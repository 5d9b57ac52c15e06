"""Shared fixtures: a tiny scorer checkpoint and a writer of small real clips; loaders for the
tools (scripts, not a package) and for test helper modules by path."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import av
import numpy as np
import pytest
import torch

CLASSES = ("Positive", "Neutral", "Negative")
ROOT = Path(__file__).resolve().parents[1]


def load_tool(name: str) -> ModuleType:
    """``tools/<name>.py`` as a module, to call its ``main(argv)`` in-process."""
    spec = importlib.util.spec_from_file_location(f"tool_{name}", ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_helper(path: Path, name: str) -> ModuleType:
    """A helper module next to the tests, loaded once by path (the suite runs with
    ``--import-mode=importlib``, so test folders are not packages on ``sys.path``)."""
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(autouse=True)
def torch_threads_unchanged():
    """Fail a test that leaves torch's thread count changed: later tests (the seeded demo pipeline)
    would run slower and reach other numbers."""
    before = torch.get_num_threads()
    yield
    after = torch.get_num_threads()
    assert after == before, f"the test changed torch's thread count {before} -> {after}"


@pytest.fixture(scope="session")
def tiny_scorer_run(tmp_path_factory) -> Path:
    """A run directory with a random-init ResNet-18 scorer checkpoint (best/), 3 classes."""
    from keyframes.scorer import create_scorer
    from training.checkpoints import save_checkpoint

    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("scorer_run")
    model = create_scorer(num_classes=3, depth=18)
    save_checkpoint(run / "best", state_dict=model.state_dict(),
                    meta={"config": {"model": {"depth": 18}, "data": {"input_size": 64}},
                          "class_names": list(CLASSES), "epoch": 1, "metrics": {}})
    return run


def make_scene_clip(path: Path, *, n_frames: int = 30, fps: float = 15.0, size=(320, 180), faces: int = 3,
                    audio: bool = True, sample_rate: int = 16000, seed: int = 0, motion=(0, 2)) -> Path:
    """A small group scene: textured background, ``faces`` cartoon faces drifting by ``motion``
    px/frame, optional tone audio. Returns ``path``."""
    from media.encoding import write_mp4
    from synthetic.faces import draw_cartoon_face

    rng = np.random.default_rng(seed)
    w, h = size
    bg = (rng.integers(60, 200, (h // 8 + 1, w // 8 + 1, 3))).astype(np.uint8)
    bg = np.kron(bg, np.ones((8, 8, 1), np.uint8))[:h, :w]
    xs = np.linspace(w * 0.18, w * 0.82, max(faces, 1))
    frames = []
    for t in range(n_frames):
        img = bg.copy()
        for k in range(faces):
            draw_cartoon_face(img, (int(xs[k] + motion[0] * t), int(h * 0.45 + motion[1] * t % 10)),
                              int(h * 0.38), 0.8)
        frames.append(img)
    tone = None
    if audio:
        n = int(n_frames / fps * sample_rate)
        tone = (0.2 * np.sin(2 * np.pi * 330 * np.arange(n) / sample_rate)).astype(np.float32)
    write_mp4(path, frames, fps=fps, audio=tone, sample_rate=sample_rate if audio else None)
    return path


def make_frameless_clip(path: Path, *, seconds: float = 1.0, sample_rate: int = 16000) -> Path:
    """A Matroska file whose declared H.264 video track holds no frame, with a 330 Hz tone: a
    video that cannot be decoded but whose audio can. Returns ``path``."""
    import av

    container = av.open(str(path), mode="w", format="matroska")
    video = container.add_stream("libx264", rate=15)
    video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
    audio = container.add_stream("aac", rate=sample_rate, layout="mono")
    n = int(seconds * sample_rate)
    tone = (0.2 * np.sin(2 * np.pi * 330 * np.arange(n) / sample_rate)).astype(np.float32)[None]
    for start in range(0, n, 1024):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, start:start + 1024]), format="fltp",
                                           layout="mono")
        frame.sample_rate, frame.pts = sample_rate, start
        for packet in audio.encode(frame):
            container.mux(packet)
    for stream in (audio, video):
        for packet in stream.encode():
            container.mux(packet)
    container.close()
    return path


@pytest.fixture
def scene_clip():
    return make_scene_clip


@pytest.fixture(scope="session")
def tiny_pipeline_run(tmp_path_factory, tiny_scorer_run) -> Path:
    """A complete but UNTRAINED fusion run that :meth:`fusion.prediction.Predictor.from_run` can
    rebuild: random-init tiny stream runs (configs/streams/*_tiny.yaml), a random-init Concat-FC
    head over their features, and the pipeline record ``train_fusion`` would write (stream runs
    with checkpoint hashes, configs/preprocess/demo.yaml, the tiny scorer). Returns the fusion
    run directory. Its predictions mean nothing; it exercises the whole code path quickly."""
    from core.config import load_config
    from fusion.heads import create_fusion_head
    from streams.training import build_stream_model
    from training.checkpoints import checkpoint_hash, save_checkpoint

    root = Path(__file__).resolve().parents[1]
    base = tmp_path_factory.mktemp("tiny_pipeline")
    torch.manual_seed(0)
    streams = ("visual", "audio", "flow", "face")
    dims, pipeline_streams = {}, {}
    for s in streams:
        recipe = {k: v for k, v in load_config(root / f"configs/streams/{s}_tiny.yaml").items() if k != "train"}
        model = build_stream_model(recipe, len(CLASSES))
        run = base / f"{s}_run"
        save_checkpoint(run / "best", state_dict=model.state_dict(),
                        meta={"config": recipe, "class_names": list(CLASSES), "epoch": 1, "metrics": {}})
        dims[s] = int(model.feature_dim)
        pipeline_streams[s] = {"run": str(run), "checkpoint_hash": checkpoint_hash(run)}
    fusion_cfg = load_config(root / "configs/fusion/concat_fc.yaml")
    head = create_fusion_head(fusion_cfg["model"], stream_dims=dims, num_classes=len(CLASSES))
    recipe = {
        "streams": list(streams),
        "model": dict(fusion_cfg["model"]),
        "stream_dims": dims,
        "features": str(base / "features"),
        "pipeline": {
            "streams": pipeline_streams,
            "cache": None,
            "preprocess": {"config": load_config(root / "configs/preprocess/demo.yaml"),
                           "scorer": str(tiny_scorer_run), "scorer_hash": checkpoint_hash(tiny_scorer_run)},
        },
    }
    run = base / "fusion_run"
    save_checkpoint(run / "best", state_dict=head.state_dict(),
                    meta={"config": recipe, "class_names": list(CLASSES), "epoch": 1, "metrics": {}})
    return run


def decode_media(path: Path) -> tuple[np.ndarray, np.ndarray | None, int | None]:
    """(frames (T, H, W, 3) RGB, mono audio (N,) or None, sample rate or None)."""
    with av.open(str(path)) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return frames, None, None
        rate = c.streams.audio[0].rate
        audio = np.concatenate([f.to_ndarray()[0] for f in c.decode(audio=0)])
    return frames, audio, rate


@pytest.fixture
def stand_in_host(monkeypatch) -> list[tuple[int, ...]]:
    """Inference with the networks on the ``meta`` device, the stand-in for a GPU on a CPU
    machine: a tensor made on the CPU and mixed in fails there ("... is not on the expected
    device"), and so does any move of a meta tensor to the host except through
    ``training.devices.to_host``, the one move of results, which this stands in for: a meta
    tensor comes back filled with 1 / its last dimension (meta holds shapes, no numbers; so a row
    of probabilities is a distribution, uniform) and its shape is recorded in the returned list;
    a CPU tensor is converted as usual."""
    from training import devices

    moved: list[tuple[int, ...]] = []
    real = devices.to_host

    def to_host(tensor: torch.Tensor) -> np.ndarray:
        if tensor.device.type != "meta":
            return real(tensor)
        moved.append(tuple(tensor.shape))
        return np.full(tuple(tensor.shape), 1.0 / max(1, tensor.shape[-1] if tensor.ndim else 1), np.float32)

    monkeypatch.setattr(devices, "to_host", to_host)
    return moved
