"""What the prediction tools (predict, live, evaluate) share: ``--run RUN`` or ``--bundle BUNDLE``
(one of them), ``--engine``, and the :class:`fusion.prediction.Predictor` they designate."""
from __future__ import annotations

import argparse

from fusion.prediction import Predictor
from release.bundle_predictor import DEFAULT_ENGINE, ENGINES, predictor_from_bundle


def add_pipeline_arguments(parser: argparse.ArgumentParser, *, run_help: str = "fusion run directory") -> None:
    """``--run RUN`` | ``--bundle BUNDLE`` (exactly one) and ``--engine`` (``torch`` or
    ``onnxruntime``; with ``--run`` only ``torch``)."""
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help=run_help)
    source.add_argument("--bundle", help="release bundle directory (tools/export.py) instead of --run")
    parser.add_argument("--engine", choices=ENGINES, default=None,
                        help=f"what runs the networks: a bundle's ONNX graphs under ONNX Runtime (CPU provider; "
                             f"CUDA first with --device cuda where ONNX Runtime has it) or its checkpoints under "
                             f"PyTorch (default for --bundle: {DEFAULT_ENGINE}; --run is always torch)")


def bundle_clip_seconds(bundle: str) -> float | None:
    """The median training clip length (s) ``bundle``'s manifest records (live mode's default
    window), None when it records none."""
    import json
    from pathlib import Path

    from release.manifest import MANIFEST

    seconds = json.loads((Path(bundle) / MANIFEST).read_text(encoding="utf-8")).get("training_clip_seconds")
    return float(seconds) if isinstance(seconds, (int, float)) and seconds > 0 else None


def build_predictor(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Predictor:
    """The Predictor of ``args.run`` or ``args.bundle`` (with ``args.engine``, ``args.device``,
    ``args.calibrated``); ``--run`` with ``--engine onnxruntime`` is a usage error."""
    if args.run is not None:
        if args.engine == "onnxruntime":
            parser.error("--engine onnxruntime needs --bundle (export the run with tools/export.py)")
        return Predictor.from_run(args.run, device=args.device, calibrated=args.calibrated)
    return predictor_from_bundle(args.bundle, engine=args.engine or DEFAULT_ENGINE, device=args.device,
                                 calibrated=args.calibrated)
