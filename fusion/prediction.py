"""Prediction on raw videos: decode once -> keyframes -> stream inputs -> the streams -> fusion head.

``Predictor.from_run(FUSION_RUN).predict(path)`` returns, per video, the fused label and class
probabilities, each stream's probabilities, which modalities were missing (and, for streams that
could not run at all, why: a file without a video stream or without decodable frames is predicted
from its audio alone), the keyframe times used and the time per stage. A fusion run is
self-describing: it records the stream runs (with checkpoint hashes), the preprocessing config
and the scorer, and :meth:`Predictor.from_run` refuses with a clear message when one is absent
or changed since training.

Probabilities are calibrated by default: the fused ones with the fusion run's temperature, each
stream's shown probabilities with its stream run's (``calibration.json`` beside each checkpoint,
:mod:`training.run_calibration`; a run without one has temperature 1). The fusion head itself is
fed the streams' raw probabilities, as in training. ``calibrated=False`` gives the raw ones.
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Iterable

import torch

from fusion.heads.inputs import MASK_KEY, PROBS_KEY
from fusion.training import load_fusion_head
from keyframes.extraction import KeyframeSettings
from keyframes.scorer import SentimentScorer
from media.decoding import MediaError
from streams.cache import MISSING_MODALITIES, MemoryEntry
from streams.data import StreamDataset
from streams.preprocessing import ClipInputs, ClipPreprocessor
from streams.specs import STREAM_SPECS
from streams.training import load_trained_stream
from training import devices
from training.checkpoints import CheckpointError, checkpoint_hash
from training.run_calibration import read_calibration

log = logging.getLogger(__name__)


class PipelineError(RuntimeError):
    """The fusion run's pipeline cannot be rebuilt (a piece is missing or changed)."""


def check_piece(run: str | os.PathLike, kind: str, path: str | None, expected_hash: str | None) -> None:
    if not path or not Path(path).exists():
        raise PipelineError(f"{kind} {path!r} recorded by the fusion run {os.fspath(run)} does not exist "
                            "(moved or deleted?)")
    if expected_hash is not None:
        try:
            actual = checkpoint_hash(path)
        except CheckpointError as e:
            raise PipelineError(f"{kind} {path}: {e}") from None
        if actual != expected_hash:
            raise PipelineError(f"{kind} {path} changed since the fusion run was trained "
                                f"(checkpoint hash {actual} != recorded {expected_hash}); "
                                "re-extract features and retrain fusion, or restore the original")


def load_recorded_pipeline(run: str | os.PathLike):
    """``(head, recipe, class_names, pipeline, preprocess)`` of fusion run ``run``, after checking
    that every piece it records is where it was and unchanged (each stream run and, when a stream
    uses keyframes, the scorer): ``pipeline`` is the recipe's ``pipeline`` section, ``preprocess``
    its preprocessing record (``config``, ``scorer``, ``scorer_hash``). Raises
    :class:`PipelineError` naming the run and the missing or changed piece."""
    head, recipe, class_names = load_fusion_head(run)
    pipeline = recipe.get("pipeline") or {}
    pre = pipeline.get("preprocess")
    if not pre:
        raise PipelineError(f"{run}: the fusion run records no preprocessing config (was the cache made by "
                            "tools/preprocess.py?)")
    streams = tuple(recipe["streams"])
    for s in streams:
        info = pipeline["streams"][s]
        check_piece(run, f"{s} stream run", info["run"], info["checkpoint_hash"])
    if any(STREAM_SPECS[s].uses_keyframes for s in streams):
        check_piece(run, "keyframe scorer", pre.get("scorer"), pre.get("scorer_hash"))
    return head, recipe, class_names, pipeline, pre


def run_temperatures(run: str | os.PathLike, stream_runs: dict[str, str]) -> tuple[float, dict[str, float]]:
    """``(the fusion run's temperature, {stream: its run's temperature})``; a run without a
    calibration (saved before calibration existed) has temperature 1, said in one log line."""
    uncalibrated: list[str] = []

    def temperature(path: str | os.PathLike) -> float:
        data = read_calibration(path)
        if data is None:
            uncalibrated.append(os.fspath(path))
            return 1.0
        return float(data["temperature"])

    fused = temperature(run)
    streams = {s: temperature(path) for s, path in stream_runs.items()}
    if uncalibrated:
        log.warning("no calibration.json for %s (saved before calibration): temperature 1, raw probabilities",
                    ", ".join(uncalibrated))
    return fused, streams


def stream_outputs(model, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features (B, D), logits (B, C) float32)`` of a stream network on its input ``x``: a
    :class:`streams.models.recognizer.StreamRecognizer`'s ``features`` then ``head``, or one call of
    ``features_and_logits`` for a network that computes both at once (a release bundle's ONNX graph)."""
    both = getattr(model, "features_and_logits", None)
    if both is not None:
        f, logits = both(x)
        return f, logits.float()
    f = model.features(x)
    return f, model.head(f).float()


class Predictor:
    """The whole trained system, ready to run on video files."""

    def __init__(self, *, preprocessor: ClipPreprocessor, streams: dict, head, class_names: list[str],
                 stream_order: tuple[str, ...], temperature: float = 1.0,
                 stream_temperatures: dict[str, float] | None = None, engine: str | None = None) -> None:
        self.preprocessor = preprocessor
        self.streams = streams            # name -> (model, StreamDataset for the eval view)
        self.head = head
        self.class_names = class_names
        self.stream_order = stream_order
        self.temperature = float(temperature)  # of the fused probabilities; 1: raw
        self.stream_temperatures = {s: 1.0 for s in stream_order} | dict(stream_temperatures or {})
        #: what runs the networks when built from a release bundle (``torch``, ``onnxruntime``), said in
        #: each result's ``engine``; None for a pipeline built from runs (no ``engine`` field)
        self.engine = engine

    @classmethod
    def from_run(cls, run: str | os.PathLike, *, device: str = "cpu", calibrated: bool = True) -> "Predictor":
        """Rebuild the pipeline recorded by fusion run ``run`` (see the module docstring), its
        networks (the keyframe scorer, the face detector, the streams and the head) on ``device``;
        ``calibrated``: apply the runs' temperatures to the probabilities it returns."""
        head, recipe, class_names, pipeline, pre = load_recorded_pipeline(run)
        stream_order = tuple(recipe["streams"])
        scorer = None
        if any(STREAM_SPECS[s].uses_keyframes for s in stream_order):
            settings = KeyframeSettings.from_config(pre["config"].get("keyframes"))
            scorer = SentimentScorer.from_checkpoint(pre["scorer"], input_size=settings.score_size,
                                                     batch_size=settings.batch_size, device=device,
                                                     precision=settings.precision)
        preprocessor = ClipPreprocessor(pre["config"], cache_root=".", scorer=scorer,
                                        scorer_hash=pre.get("scorer_hash") or "none", streams=stream_order,
                                        device=device)
        streams = {}
        for s in stream_order:
            model, srecipe, _, _ = load_trained_stream(pipeline["streams"][s]["run"], device=device, stream=s)
            streams[s] = (model, StreamDataset([], s, srecipe.get("data", {}), train=False))
        temps = {s: 1.0 for s in stream_order}
        temperature = 1.0
        if calibrated:
            temperature, temps = run_temperatures(run, {s: pipeline["streams"][s]["run"] for s in stream_order})
        return cls(preprocessor=preprocessor, streams=streams, head=head.to(device), class_names=class_names,
                   stream_order=stream_order, temperature=temperature, stream_temperatures=temps)

    @torch.inference_mode()
    def predict(self, path: str | os.PathLike) -> dict:
        """Predict one video. Raises :class:`media.decoding.MediaError` for an unreadable file."""
        inputs = self.preprocessor.compute(path, self.stream_order)
        return self.predict_inputs(inputs, str(path))

    @torch.inference_mode()
    def predict_inputs(self, inputs: ClipInputs, name: str, *, only: Iterable[str] | None = None) -> dict:
        """Run the streams and the fusion head on already computed ``inputs`` (what
        ``self.preprocessor.compute(source, self.stream_order)`` returns for a file or for a live
        window). ``name`` goes into the result's ``"video"`` field. ``only``: run just these
        streams (e.g. those a score-level fusion weighs), the others count as missing. Returns
        the dict documented in the module docstring; ``timings_s["total"]`` includes the
        preprocessing time recorded in ``inputs.timings``."""
        t0 = time.perf_counter()
        timings = dict(inputs.timings)
        run = set(self.stream_order if only is None else only)
        entry = MemoryEntry(name, inputs.arrays, {**inputs.meta, "arrays": {s: "memory" for s in self.stream_order}})
        device = devices.module_device(self.head)
        feats, mask, stream_probs, shown = {}, [], [], []
        for s in self.stream_order:
            model, view = self.streams[s]
            where = devices.module_device(model)
            t = time.perf_counter()
            if s in run and entry.available(s):
                f, logits = stream_outputs(model, view.load_input(entry)[None].to(where))
                p, q = torch.softmax(logits, 1), torch.softmax(logits / self.stream_temperatures[s], 1)
                feats[s] = f.to(device)
                mask.append(1.0)
            else:
                feats[s] = torch.zeros(1, self.head.stream_dims[s], device=device)
                p = q = torch.zeros(1, len(self.class_names), device=device)
                mask.append(0.0)
            stream_probs.append(p.float().to(device))  # the head is fed the raw probabilities it was trained on
            shown.append(q.float().to(device))
            devices.synchronize(where)  # the stream's time is its own, not the next stage's
            timings[f"stream_{s}"] = time.perf_counter() - t
        t = time.perf_counter()
        stacked = torch.stack(stream_probs, dim=1)                                      # (1, S, C)
        head_inputs = {**feats, MASK_KEY: torch.tensor([mask], device=device), PROBS_KEY: stacked}
        fused = torch.softmax(self.head(head_inputs).float() / self.temperature, 1)     # (1, C)
        host = devices.to_host(torch.cat([fused[:, None], torch.stack(shown, dim=1)], dim=1)[0])  # (1 + S, C)
        probs = host[0]
        per_stream = {s: dict(zip(self.class_names, host[1 + i].tolist())) if m else None
                      for i, (s, m) in enumerate(zip(self.stream_order, mask))}
        timings["fusion"] = time.perf_counter() - t
        timings["total"] = float(inputs.timings.get("compute_total", 0.0)) + time.perf_counter() - t0
        kf = inputs.meta.get("keyframes", {})
        engine = {} if self.engine is None else {"engine": self.engine}
        return {
            "video": name,
            "label": self.class_names[int(probs.argmax())],
            "probs": {c: round(float(p), 6) for c, p in zip(self.class_names, probs)},
            "streams": per_stream,
            "missing": [s for s, m in zip(self.stream_order, mask) if m == 0.0],
            # why a stream could not even be computed (e.g. no decodable video frames)
            "missing_reasons": {s: why for s, why in (inputs.meta.get(MISSING_MODALITIES) or {}).items()
                                if s in self.stream_order},
            "n_faces": int(inputs.meta.get("n_faces", 0)),
            "has_audio": bool(inputs.meta.get("has_audio", False)),
            "keyframe_times": kf.get("times", []),
            "temperatures": {"fusion": self.temperature, "streams": dict(self.stream_temperatures)},
            "timings_s": {k: round(v, 4) for k, v in timings.items()},
            **engine,
        }

    def predict_many(self, paths: Iterable[str | os.PathLike]) -> list[dict]:
        """Predict each video; an unreadable one yields ``{"video", "error"}`` and the rest go on."""
        out = []
        for p in paths:
            try:
                out.append(self.predict(p))
            except (MediaError, OSError) as e:
                out.append({"video": str(p), "error": f"{type(e).__name__}: {e}"})
        return out
