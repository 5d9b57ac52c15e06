"""A fusion run -> a release bundle directory (and optionally a ``.tar.gz`` of it):

    BUNDLE/manifest.json           :mod:`release.manifest`
    BUNDLE/model_card.md           :mod:`release.model_card`
    BUNDLE/scorer.onnx             the keyframe scorer (when a fused stream uses keyframes)
    BUNDLE/streams/<stream>.onnx   each fused stream's network
    BUNDLE/fusion.onnx             the fusion head (score-level fusion too, its weights in the manifest)
    BUNDLE/checkpoints/<name>/     the same networks' safetensors checkpoints (meta.json,
                                   calibration.json), for ``--engine torch``

The bundle is written in a temporary directory beside ``out`` and renamed into place, so a
failed export leaves no half bundle.
"""
from __future__ import annotations

import logging
import os
import shutil
import statistics
import tarfile
import tempfile
from pathlib import Path

import torch

from fusion.heads.score_weighted import ScoreWeightedHead
from fusion.prediction import load_recorded_pipeline, run_temperatures
from keyframes.extraction import KeyframeSettings
from keyframes.scorer import SentimentScorer
from release.manifest import MANIFEST, BundleError, read_manifest, sha256_file, write_manifest
from release.model_card import cache_clip_metas, clip_durations, report_path, write_model_card
from release.onnx_export import export_graph
from release.onnx_graphs import ATTENTION_OUTPUT, STREAM_OUTPUTS, ScorerGraph, StreamGraph, head_graph
from streams.data import StreamDataset
from streams.specs import STREAM_SPECS
from streams.training import load_trained_stream
from training.checkpoints import checkpoint_hash, code_version, resolve_checkpoint

log = logging.getLogger(__name__)

SCORER_FILE = "scorer.onnx"
FUSION_FILE = "fusion.onnx"
STREAM_INPUT = "input"
SCORER_INPUT = "frames"
SCORER_OUTPUT = "probs"
HEAD_OUTPUT = "logits"
CHECKPOINT_FILES = ("model.safetensors", "meta.json", "calibration.json")


def stream_file(stream: str) -> str:
    """The bundle path of stream ``stream``'s ONNX graph."""
    return f"streams/{stream}.onnx"


def checkpoint_dir(name: str) -> str:
    """The bundle path of network ``name``'s checkpoint copy (``scorer``, ``fusion``, ``streams/<s>``)."""
    return f"checkpoints/{name}"


def _copy_checkpoint(src: str | os.PathLike, dest: Path) -> None:
    ckpt = resolve_checkpoint(src)
    dest.mkdir(parents=True, exist_ok=True)
    for name in CHECKPOINT_FILES:
        if (ckpt / name).is_file():
            shutil.copy2(ckpt / name, dest / name)


def _example(shape: tuple[int, ...], dtype: torch.dtype, batch: int = 2) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    if dtype == torch.uint8:
        return torch.randint(0, 256, (batch, *shape), generator=gen, dtype=torch.int64).to(torch.uint8)
    return torch.randn((batch, *shape), generator=gen).to(dtype)


def _stream_normalisation(stream: str, dtype: torch.dtype, data: dict) -> str:
    spec = STREAM_SPECS[stream]
    how = ("uint8 RGB clip (0-255), scaled and ImageNet-normalised inside the graph" if dtype == torch.uint8
           else "float32 as the stream's eval view gives it (streams/specs/" + f"{stream}.py, load_input)")
    return f"{how}; eval view of the stored {stream} array with data settings {data} ({type(spec).__name__})"


def _report_record(run: Path, report: str | os.PathLike | None) -> dict | None:
    path = report_path(run, report)
    return None if path is None else {"path": str(path), "sha256": sha256_file(path)}


def bundle_is_current(bundle: str | os.PathLike, run: str | os.PathLike,
                      report: str | os.PathLike | None = None) -> bool:
    """Whether ``bundle`` is an intact bundle of fusion run ``run``'s current checkpoint (which
    records its streams' and scorer's) whose model card read the same report as now."""
    try:
        manifest = read_manifest(bundle)
    except BundleError:
        return False
    fusion = (manifest.get("runs") or {}).get("fusion") or {}
    return (fusion.get("checkpoint_hash") == checkpoint_hash(run)
            and manifest.get("report") == _report_record(Path(run), report))


def export_bundle(run: str | os.PathLike, out: str | os.PathLike, *, archive: bool = False,
                  report: str | os.PathLike | None = None, update: bool = False) -> dict:
    """Export fusion run ``run`` (its recorded scorer, stream runs and head) to bundle ``out``
    (which must not exist, or be an empty directory); ``archive``: also write ``out.tar.gz``;
    ``report``: a ``report.json`` for the model card (default: ``report/report.json`` beside the
    run's directory when present); ``update``: ``out`` may hold an earlier bundle, kept when
    :func:`bundle_is_current` (its manifest is returned, with ``"reused": True``), else replaced.
    Returns the manifest. Raises :class:`PipelineError` when a recorded piece is missing or
    changed, :class:`BundleError` when ``out`` holds files (other than a bundle, with ``update``)."""
    run, out = Path(run), Path(out)
    if update and (out / MANIFEST).is_file():
        if bundle_is_current(out, run, report):
            return {**read_manifest(out), "reused": True}
        shutil.rmtree(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BundleError(f"{out}: exists and is not empty (give a new directory, or --update a bundle)")
    head, recipe, class_names, pipeline, pre = load_recorded_pipeline(run)
    streams = tuple(recipe["streams"])
    needs_scorer = any(STREAM_SPECS[s].uses_keyframes for s in streams)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        models, runs = {}, {"fusion": {"run": str(run.resolve()), "checkpoint_hash": checkpoint_hash(run)}}
        if needs_scorer:
            settings = KeyframeSettings.from_config(pre["config"].get("keyframes"))
            scorer = SentimentScorer.from_checkpoint(pre["scorer"], input_size=settings.score_size)
            size = scorer.input_size
            spec = export_graph(ScorerGraph(scorer.model), (_example((3, size, size), torch.float32),),
                                tmp / SCORER_FILE, input_names=[SCORER_INPUT], output_names=[SCORER_OUTPUT])
            models["scorer"] = {"file": SCORER_FILE, **spec, "class_names": list(scorer.class_names),
                                "input_size": size,
                                "normalisation": f"RGB frames, short side resized to {size} px (area), centre "
                                                 f"{size}x{size} square, /255, ImageNet mean {[0.485, 0.456, 0.406]} "
                                                 f"and std {[0.229, 0.224, 0.225]}, NCHW float32"}
            runs["scorer"] = {"run": str(Path(pre["scorer"]).resolve()), "checkpoint_hash": pre.get("scorer_hash")}
            _copy_checkpoint(pre["scorer"], tmp / checkpoint_dir("scorer"))
        stream_runs = {}
        for s in streams:
            srun = pipeline["streams"][s]["run"]
            stream_runs[s] = srun
            model, srecipe, _, chash = load_trained_stream(srun, stream=s)
            data = srecipe.get("data", {})
            view = StreamDataset([], s, data, train=False)
            dtype = view.spec.input_dtype()
            graph = StreamGraph(model)
            outputs = [*STREAM_OUTPUTS, *([ATTENTION_OUTPUT] if graph.attention is not None else [])]
            spec = export_graph(graph, (_example(tuple(view.spec.input_shape(view.settings)), dtype),),
                                tmp / stream_file(s), input_names=[STREAM_INPUT], output_names=outputs)
            models[f"stream:{s}"] = {"file": stream_file(s), **spec, "stream": s, "data": data,
                                     "feature_dim": int(model.feature_dim),
                                     "normalisation": _stream_normalisation(s, dtype, data)}
            runs[s] = {"run": str(Path(srun).resolve()), "checkpoint_hash": chash}
            _copy_checkpoint(srun, tmp / checkpoint_dir(f"streams/{s}"))
        dims = dict(head.stream_dims)
        gen = torch.Generator().manual_seed(0)
        example = [torch.randn(2, dims[s], generator=gen) for s in streams]
        example += [torch.ones(2, len(streams)), torch.softmax(torch.randn(2, len(streams), len(class_names),
                                                                             generator=gen), dim=2)]
        spec = export_graph(head_graph(head), example, tmp / FUSION_FILE,
                            input_names=[*streams, "mask", "probs"], output_names=[HEAD_OUTPUT])
        head_name = recipe["model"].get("name", "concat_fc")
        models["fusion"] = {"file": FUSION_FILE, **spec, "head": head_name, "stream_dims": dims,
                            "normalisation": "features as the streams give them (standardised inside the graph); "
                                             "mask 1 where a stream is available; probs: each stream's raw "
                                             "softmax (zero rows where missing)"}
        fusion_head = {"name": head_name, "model": recipe.get("model")}
        if isinstance(head, ScoreWeightedHead):
            fusion_head["weights"] = head.weight_map()
        _copy_checkpoint(run, tmp / checkpoint_dir("fusion"))
        fused_t, stream_t = run_temperatures(run, stream_runs)
        durations = clip_durations(cache_clip_metas(pipeline.get("cache")))
        fields = {"class_names": list(class_names), "streams": list(streams), "models": models,
                  "recipe": pre["config"], "temperatures": {"fusion": fused_t, "streams": stream_t},
                  "fusion_head": fusion_head, "runs": runs, "exported_by": code_version(),
                  "report": _report_record(run, report),
                  "training_clip_seconds": statistics.median(durations) if durations else None}
        write_model_card(tmp / "model_card.md", run=run, fields=fields, report=report)
        manifest = write_manifest(tmp, fields)
        if out.exists():
            out.rmdir()
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if archive:
        write_archive(out)
    return manifest


def write_archive(bundle: str | os.PathLike) -> Path:
    """``BUNDLE.tar.gz`` holding the bundle directory (under its own name); returns its path."""
    bundle = Path(bundle)
    target = bundle.with_name(bundle.name + ".tar.gz")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=bundle.parent)
    os.close(fd)
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            tar.add(bundle, arcname=bundle.name)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
