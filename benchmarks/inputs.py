"""What the benchmarks run on: a generated group scene (so no dataset is needed), the keyframe
scorer (trained, or a random-init ResNet of the same cost), small wrappers that count, and an
untrained fusion run of the tiny recipes (the prediction path without a trained demo)."""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

import numpy as np
import torch

from core.config import ConfigError
from keyframes.extraction import KeyframeSettings
from keyframes.scorer import SentimentScorer, create_scorer
from media.decoding import VideoReader
from media.encoding import write_mp4
from media.layouts import ClipRecord
from synthetic.faces import draw_cartoon_face

DEFAULT_CLASSES = ("Positive", "Neutral", "Negative")


def write_scene_clip(path: str | os.PathLike, *, seconds: float = 5.0, size: tuple[int, int] = (1280, 720),
                     fps: float = 25.0, faces: int = 3, audio: bool = True, sample_rate: int = 16000,
                     audio_channels: int = 1, seed: int = 0) -> Path:
    """Write a synthetic group scene to ``path`` (H.264/AAC mp4) and return the path.

    ``size`` is (width, height) in pixels; ``round(seconds * fps)`` frames of a textured
    background with ``faces`` cartoon faces (head height 38 % of the frame) that sway sideways
    and change expression over time; ``audio`` adds a track at ``sample_rate`` Hz (a tone whose
    pitch and loudness change, plus noise) with ``audio_channels`` channels (1, 2 or 6 as in 5.1
    films; each channel the tone at another loudness). Frames are streamed to the encoder, so
    long clips do not sit in memory.
    """
    w, h = (int(v) for v in size)
    n_frames = max(1, int(round(seconds * fps)))
    rng = np.random.default_rng(seed)
    bg = rng.integers(50, 210, (h // 16 + 1, w // 16 + 1, 3)).astype(np.uint8)
    bg = np.kron(bg, np.ones((16, 16, 1), np.uint8))[:h, :w]
    xs = np.linspace(w * 0.2, w * 0.8, max(faces, 1))
    phases = rng.uniform(0, 2 * np.pi, max(faces, 1))

    def frames() -> Iterable[np.ndarray]:
        for t in range(n_frames):
            img = bg.copy()
            sec = t / fps
            for k in range(faces):
                cx = int(xs[k] + 0.04 * w * np.sin(2 * np.pi * sec / 3.0 + phases[k]))
                cy = int(h * 0.45 + 0.01 * h * np.sin(2 * np.pi * sec / 1.3 + phases[k]))
                mouth = float(np.sin(2 * np.pi * sec / 4.0 + phases[k]))
                draw_cartoon_face(img, (cx, cy), int(h * 0.38), mouth)
            yield img

    tone = None
    if audio:
        t = np.arange(int(n_frames / fps * sample_rate)) / sample_rate
        pitch = 220.0 + 110.0 * np.sin(2 * np.pi * t / 2.5)
        loud = 0.1 + 0.1 * (1 + np.sin(2 * np.pi * t / 1.7))
        tone = (loud * np.sin(2 * np.pi * np.cumsum(pitch) / sample_rate)
                + 0.02 * rng.standard_normal(t.size)).astype(np.float32)
        if audio_channels > 1:
            tone = np.stack([tone * (1.0 - 0.1 * c) for c in range(audio_channels)])
    return write_mp4(path, frames(), fps=fps, audio=tone, sample_rate=sample_rate if audio else None)


class ScorerModel(NamedTuple):
    """The scorer network a benchmark runs: ``model`` (eval mode), its ``class_names``, a
    ``description`` for the report and ``trained_size``, the size (px) it was trained at
    (``None`` for a random-init network, which was trained at no size)."""

    model: torch.nn.Module
    class_names: tuple[str, ...]
    description: str
    trained_size: int | None


def load_scorer_model(scorer: str | os.PathLike | None, *, depth: int = 50, num_classes: int = 3,
                      seed: int = 0) -> ScorerModel:
    """The scorer network to time: a trained run/checkpoint when ``scorer`` is given, else a
    random-init torchvision ResNet-``depth`` (same cost, meaningless scores)."""
    if scorer:
        loaded = SentimentScorer.from_checkpoint(scorer)
        return ScorerModel(loaded.model, loaded.class_names, f"trained scorer {scorer}", loaded.input_size)
    torch.manual_seed(seed)
    model = create_scorer(num_classes=num_classes, depth=depth).eval()
    names = DEFAULT_CLASSES if num_classes == 3 else tuple(f"class{i}" for i in range(num_classes))
    return ScorerModel(model, names, (f"random-init ResNet-{depth} (no --scorer given): timings are representative, "
                                      "scores and therefore the selection are not"), None)


def scoring_size(trained_size: int | None, asked: int | None, *, default: int = 224, what: str = "score") -> int:
    """The size (px) a benchmark arm scores at: ``asked`` when given, else the scorer's
    ``trained_size`` (``default`` for a random-init scorer). A trained scorer asked to score at
    another size raises :class:`ConfigError`, as :meth:`SentimentScorer.from_checkpoint` does in
    preprocessing: its scores there would not be the ones its validation accuracy vouches for."""
    size = int(asked if asked is not None else (trained_size if trained_size is not None else default))
    if trained_size is not None and size != int(trained_size):
        raise ConfigError(f"the scorer was trained at {trained_size} px (data.input_size of its recipe) but is asked "
                          f"to {what} at {size} px; score at {trained_size} px, or train a scorer with "
                          f"data.input_size: {size}")
    return size


def clip_info(video: Path) -> dict:
    with VideoReader(video) as reader:
        info = reader.info
    return {"width": info.width, "height": info.height, "fps": round(info.fps, 3),
            "duration_s": round(info.duration, 3), "frames": info.frame_count, "has_audio": info.has_audio}


class CountingScorer:
    """Wraps a :class:`SentimentScorer`, counting the frames it rated since :meth:`reset`
    (``last_count``) and the seconds its calls took (``last_s``; they may run on a worker thread
    while the decoding pass goes on)."""

    def __init__(self, scorer: SentimentScorer) -> None:
        self.inner, self.class_names, self.input_size = scorer, scorer.class_names, scorer.input_size
        self.precision = scorer.precision
        self.last_count, self.last_s = 0, 0.0

    @classmethod
    def scoring_as(cls, scorer: ScorerModel, settings: KeyframeSettings, *,
                   timing_only: bool = False) -> "CountingScorer":
        """A counting :class:`SentimentScorer` of ``scorer``'s network that scores as the keyframe
        ``settings`` say: at ``score_size``, in batches of ``batch_size``, in ``precision``. A
        ``score_size`` other than the size a trained scorer was trained at raises
        :class:`ConfigError` (see :func:`scoring_size`), as preprocessing does, unless
        ``timing_only`` (an arm that is only timed, e.g. the naive baseline at 224 px, whose
        scores and selection no figure uses)."""
        size = settings.score_size if timing_only else scoring_size(
            scorer.trained_size, settings.score_size, what="score (keyframes.score_size)")
        return cls(SentimentScorer(scorer.model, scorer.class_names, input_size=size,
                                   batch_size=settings.batch_size, precision=settings.precision))

    def reset(self) -> None:
        self.last_count, self.last_s = 0, 0.0

    def score(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        t0 = time.perf_counter()
        probs = self.inner.score(frames)
        self.last_count += len(frames)
        self.last_s += time.perf_counter() - t0
        return probs


def clip_record(video: Path) -> ClipRecord:
    return ClipRecord(clip_id="clip", path=Path(video), label=None, class_names=(), split=None)


def untrained_pipeline_run(root: str | os.PathLike, *, streams: Sequence[str] = ("visual", "audio", "flow", "face"),
                           class_names: Sequence[str] = DEFAULT_CLASSES, seed: int = 0,
                           full_size: bool = False) -> Path:
    """A complete but UNTRAINED fusion run under ``root`` that
    :meth:`fusion.prediction.Predictor.from_run` rebuilds: random-init stream runs of the tiny
    recipes (``configs/streams/<stream>_tiny.yaml``), a random-init ResNet-18 keyframe scorer,
    a random-init Concat-FC head over the streams' features, and the pipeline record
    ``train_fusion`` writes (configs/preprocess/demo.yaml). Its predictions mean nothing; it runs
    the whole prediction and live path at the cost of the tiny networks. Returns the fusion run
    directory (``root/fusion``).

    ``full_size``: the full recipes instead (``configs/streams/<stream>.yaml`` without their
    pretrained weights: 3D ResNet-101 with attention at 16x224x224, the 2D ResNet-101 audio
    stream at 224, 3D ResNet-50 flow and face), a ResNet-50 scorer and
    configs/preprocess/default.yaml: what the method's full-size system costs to run."""
    from core.config import load_config
    from fusion.heads import create_fusion_head
    from streams.training import build_stream_model
    from training.checkpoints import checkpoint_hash, save_checkpoint

    root, configs = Path(root), Path(__file__).resolve().parents[1] / "configs"
    torch.manual_seed(seed)
    scorer = root / "scorer"
    depth, size, recipe_name = (50, 112, "{}.yaml") if full_size else (18, 64, "{}_tiny.yaml")
    save_checkpoint(scorer / "best", state_dict=create_scorer(num_classes=len(class_names), depth=depth).state_dict(),
                    meta={"config": {"model": {"depth": depth}, "data": {"input_size": size}},
                          "class_names": list(class_names), "epoch": 1, "metrics": {}})
    dims, records = {}, {}
    for stream in streams:
        recipe = {k: v for k, v in load_config(configs / "streams" / recipe_name.format(stream)).items()
                  if k != "train"}
        if full_size:
            recipe["model"] = {**recipe.get("model", {}), "pretrained": None}
        model = build_stream_model(recipe, len(class_names))
        run = root / "streams" / stream
        save_checkpoint(run / "best", state_dict=model.state_dict(),
                        meta={"config": recipe, "class_names": list(class_names), "epoch": 1, "metrics": {}})
        dims[stream] = int(model.feature_dim)
        records[stream] = {"run": str(run), "checkpoint_hash": checkpoint_hash(run)}
    fusion_cfg = load_config(configs / "fusion/concat_fc.yaml")
    head = create_fusion_head(fusion_cfg["model"], stream_dims=dims, num_classes=len(class_names))
    recipe = {"streams": list(streams), "model": dict(fusion_cfg["model"]), "stream_dims": dims,
              "features": str(root / "features"),
              "pipeline": {"streams": records, "cache": None,
                           "preprocess": {"config": load_config(configs / "preprocess" / (
                               "default.yaml" if full_size else "demo.yaml")),
                                          "scorer": str(scorer), "scorer_hash": checkpoint_hash(scorer)}}}
    run = root / "fusion"
    save_checkpoint(run / "best", state_dict=head.state_dict(),
                    meta={"config": recipe, "class_names": list(class_names), "epoch": 1, "metrics": {}})
    return run
