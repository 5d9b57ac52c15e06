"""A :class:`fusion.prediction.Predictor` built from a release bundle, its networks run by
ONNX Runtime (``engine="onnxruntime"``, the bundle's ONNX graphs) or PyTorch (``engine="torch"``,
the bundle's checkpoint copies); the preprocessing recipe and the temperatures come from the
manifest. The bundle is checked (:func:`release.manifest.read_manifest`) before anything is
loaded; nothing is unpickled (ONNX protobufs, safetensors, JSON).
"""
from __future__ import annotations

import os
from pathlib import Path

from fusion.prediction import Predictor
from fusion.training import load_fusion_head
from keyframes.extraction import KeyframeSettings
from keyframes.scorer import SentimentScorer
from release.bundle_writer import checkpoint_dir
from release.manifest import BundleError, read_manifest
from release.onnx_engine import OnnxHead, OnnxScorer, OnnxStream, default_providers, open_session
from streams.data import StreamDataset
from streams.preprocessing import ClipPreprocessor
from streams.training import load_trained_stream

ENGINES = ("onnxruntime", "torch")
#: the engine a bundle runs under unless told otherwise
DEFAULT_ENGINE = "onnxruntime"


def predictor_from_bundle(bundle: str | os.PathLike, *, engine: str = DEFAULT_ENGINE, device: str = "cpu",
                          calibrated: bool = True, threads: int | None = None) -> Predictor:
    """The pipeline of ``bundle`` (checked first: :class:`BundleError` naming a missing or changed
    file). ``engine``: :data:`ENGINES`; ``device``: where PyTorch runs (torch engine, and MTCNN) or
    which ONNX Runtime provider is tried first (:func:`default_providers`); ``calibrated``: apply
    the manifest's temperatures; ``threads``: ONNX Runtime intra-op threads (default its own)."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    root = Path(bundle)
    manifest = read_manifest(root)
    models = manifest["models"]
    streams = tuple(manifest["streams"])
    class_names = list(manifest["class_names"])
    recipe = manifest["recipe"]
    settings = KeyframeSettings.from_config(recipe.get("keyframes"))
    scorer_hash = (manifest.get("runs", {}).get("scorer") or {}).get("checkpoint_hash") or "none"
    views = {s: StreamDataset([], s, models[f"stream:{s}"].get("data", {}), train=False) for s in streams}
    if engine == "onnxruntime":
        providers = default_providers(device)
        scorer = None
        if "scorer" in models:
            m = models["scorer"]
            scorer = OnnxScorer(open_session(root / m["file"], providers, threads), m["class_names"],
                                input_size=m["input_size"], batch_size=settings.batch_size)
        nets = {s: OnnxStream(open_session(root / models[f"stream:{s}"]["file"], providers, threads),
                              feature_dim=models[f"stream:{s}"]["feature_dim"], num_classes=len(class_names))
                for s in streams}
        head = OnnxHead(open_session(root / models["fusion"]["file"], providers, threads),
                        stream_dims=models["fusion"]["stream_dims"], num_classes=len(class_names))
    else:
        scorer = None
        if "scorer" in models:
            scorer = SentimentScorer.from_checkpoint(root / checkpoint_dir("scorer"), input_size=settings.score_size,
                                                     batch_size=settings.batch_size, device=device,
                                                     precision=settings.precision)
        nets = {s: load_trained_stream(root / checkpoint_dir(f"streams/{s}"), device=device, stream=s)[0]
                for s in streams}
        head, _, head_classes = load_fusion_head(root / checkpoint_dir("fusion"))
        if list(head_classes) != class_names:
            raise BundleError(f"{root / checkpoint_dir('fusion')}: classes {head_classes} differ from the manifest's")
        head = head.to(device)
    preprocessor = ClipPreprocessor(recipe, cache_root=".", scorer=scorer, scorer_hash=scorer_hash, streams=streams,
                                    device=device)
    temps = manifest.get("temperatures") or {}
    fused_t = float(temps.get("fusion", 1.0)) if calibrated else 1.0
    stream_t = {s: float((temps.get("streams") or {}).get(s, 1.0)) if calibrated else 1.0 for s in streams}
    return Predictor(preprocessor=preprocessor, streams={s: (nets[s], views[s]) for s in streams}, head=head,
                     class_names=class_names, stream_order=streams, temperature=fused_t,
                     stream_temperatures=stream_t, engine=engine)
