"""A release bundle's fusion head evaluated on a feature directory (tools/extract_features.py's),
as tools/evaluate.py evaluates a fusion run: the head under ONNX Runtime (or PyTorch), each
stream and the late fusions from the features, accuracy per set of available streams. The
bundle is checked first; the metrics go to a directory of the caller's (never into the bundle,
whose files its manifest fixes)."""
from __future__ import annotations

import os
from pathlib import Path

from fusion.evaluation import evaluate_head
from fusion.training import load_fusion_head
from release.bundle_predictor import DEFAULT_ENGINE, ENGINES
from release.bundle_writer import checkpoint_dir
from release.manifest import BundleError, read_manifest
from release.onnx_engine import OnnxHead, default_providers, open_session
from training.checkpoints import read_meta


def evaluate_bundle(bundle: str | os.PathLike, split: str, *, out: str | os.PathLike,
                    features: str | os.PathLike | None = None, weights_split: str = "val",
                    engine: str = DEFAULT_ENGINE, device: str = "cpu", calibrated: bool = True) -> dict:
    """Evaluate ``bundle``'s fusion head on ``split`` of feature directory ``features`` (default:
    the one its fusion run was trained on, as its checkpoint records); writes ``out``/metrics.json,
    confusion_matrix.png, predictions.jsonl and returns the metrics (:func:`evaluate_head`)."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    root = Path(bundle)
    manifest = read_manifest(root)
    recipe = dict(read_meta(root / checkpoint_dir("fusion")).get("config") or {})
    features = features or recipe.get("features")
    if not features or not Path(features).is_dir():
        raise BundleError(f"{root}: no feature directory to evaluate on (the fusion run's {features!r} is not here); "
                          "give --features FEATS")
    class_names = list(manifest["class_names"])
    model = manifest["models"]["fusion"]
    if engine == "onnxruntime":
        head = OnnxHead(open_session(root / model["file"], default_providers(device)),
                        stream_dims=model["stream_dims"], num_classes=len(class_names))
    else:
        head = load_fusion_head(root / checkpoint_dir("fusion"))[0].to(device)
    recipe = {"streams": list(manifest["streams"]), "model": {"name": manifest["fusion_head"]["name"]}}
    temperature = float((manifest.get("temperatures") or {}).get("fusion", 1.0)) if calibrated else None
    return evaluate_head(head, recipe, class_names, features=features, split=split, weights_split=weights_split,
                         out=out, name=f"{root} ({engine})", temperature=temperature)
