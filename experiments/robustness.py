"""The robustness report card: every model of a runs directory on test clips damaged in the media
files themselves, and with modalities missing.

:func:`build_robustness` finds the runs as the results report does (:mod:`experiments.report_runs`:
the method is the Concat-FC run, and every fusion run on the method's feature directory is scored
beside it). From that feature directory's test split it takes the clips, the preprocessing cache
that made them (its ``pipeline.json``: the recipe and the keyframe scorer) and the stream runs. For
each damage of :data:`media.damage.DAMAGES` asked for, each test clip's source file is damaged
(:func:`media.damage.damage_file`: only the damaged track is re-encoded, the other's packets are
copied), then preprocessed by the same :class:`streams.preprocessing.ClipPreprocessor` (same
recipe, same scorer) for the streams that read the damaged track, into a cache of its own
(``OUT/cache/<recipe hash>/<damage>/``); the streams' features of that cache are extracted
(:func:`fusion.features.extract_features`, ``OUT/features/<damage>/``) and take the place of the
clean features of those streams. The other streams read the same decoded samples as the clean
clip, so their clean features stand. Both steps keep what is up to date: a re-run decodes, damages
and computes nothing again. A clip whose damage or preprocessing fails is written to the damage's
``errors.jsonl`` and left out of that damage's rows; the run goes on.

Rows: each stream alone (a missing modality gives uniform probabilities, as in the report), each
late fusion (weights chosen on val), each fusion head; for every media damage, and for every
non-empty set of the method's streams marked missing on the clean clips (the ``given_only``
mechanism of :func:`fusion.evaluation.fusion_probabilities`: ``damage "missing"``, ``severity`` the
missing streams). Each row: test accuracy with its percentile bootstrap interval, and the same
model's clean accuracy on the same clips. :func:`degradation` sets each fusion head with streams
missing against the best stream that remains. Files: :mod:`experiments.robustness_output`.
"""
from __future__ import annotations

import copy
import datetime as _dt
import functools
import itertools
import logging
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from core.batch import run_batch
from core.storage import StorageError, config_hash, read_json
from experiments.report_runs import (
    HELD_OUT_SPLIT,
    LATE_TITLES,
    SELECTION_SPLIT,
    ReportError,
    choose_method,
    find_runs,
    load_comparable_head,
)
from fusion.evaluation import fusion_probabilities, late_fusion_weights, subset_name
from fusion.features import FeatureSet, extract_features
from fusion.late import weighted_score
from media.damage import DAMAGES, Damage, damage_file
from media.layouts import ClipRecord
from streams import cache
from streams.preprocessing import ClipPreprocessor, build_preprocess_job
from streams.specs import STREAM_SPECS
from synthetic.audio import synthesize_babble
from training.checkpoints import CheckpointError, checkpoint_hash
from training.statistics import CONFIDENCE, DRAWS, bootstrap_accuracy

log = logging.getLogger(__name__)

MISSING = "missing"   # the damage name of the modality rows


class RobustnessError(ReportError):
    """The runs cannot be scored under damage (no test features, no preprocessing record, an
    unknown damage); the message names the directory or the damage."""


@dataclass
class Scene:
    """What every damage is scored against: the method's streams, the clean test features, the
    models (stream rows, late-fusion weights, fusion heads with their streams), the preprocessing
    recipe and scorer, and the test clips' records."""

    streams: tuple[str, ...]
    clean: FeatureSet
    late: dict[str, dict[str, float]]
    heads: dict[str, tuple[object, tuple[str, ...], str]]   # row name -> (head, streams, run)
    recipe: dict
    scorer: str | None
    scorer_hash: str
    stream_runs: dict[str, str]
    records: list[ClipRecord]
    not_scored: dict[str, str] = field(default_factory=dict)


def affected_streams(damage: Damage, streams: Sequence[str], recipe: Mapping) -> tuple[str, ...]:
    """The ``streams`` that read the track ``damage`` damages: the audio track's readers for an
    audio damage, the frames' readers (keyframes included) for a video damage."""
    if damage.modality == "audio":
        return tuple(s for s in streams if STREAM_SPECS[s].audio_rate(recipe) is not None)
    return tuple(s for s in streams if STREAM_SPECS[s].reads_frames(recipe))


def build_scene(root: str | os.PathLike, out_dir: str | os.PathLike, *, method: str | os.PathLike | None = None,
                max_clips: int | None = None) -> Scene:
    """The :class:`Scene` of the runs under ``root`` (see the module docstring); ``max_clips``:
    only the first that many labelled test clips (in the features' order)."""
    found = find_runs(root, exclude=[out_dir])
    chosen = choose_method(found, method)
    try:
        clean = FeatureSet(chosen.features, HELD_OUT_SPLIT, chosen.streams)
        val = FeatureSet(chosen.features, SELECTION_SPLIT, chosen.streams)
    except FileNotFoundError as e:
        raise RobustnessError(str(e)) from None
    cache_root = clean.index.get("cache")
    pipeline = read_json(cache.pipeline_path(cache_root)) if cache_root else None
    pipeline = pipeline or (chosen.recipe.get("pipeline") or {}).get("preprocess")
    if not pipeline or not pipeline.get("config"):
        raise RobustnessError(f"{chosen.features}: its cache {cache_root} records no preprocessing recipe "
                              "(pipeline.json of tools/preprocess.py), so damaged clips cannot be preprocessed alike")
    _check_scorer(pipeline, chosen.streams, cache_root)
    entries = {e.clip_id: e for e in cache.load_entries(cache_root, split=HELD_OUT_SPLIT)}
    records = []
    for clip_id, label in zip(clean.clip_ids, clean.labels):
        if label >= 0 and clip_id in entries:
            meta = entries[clip_id].meta
            records.append(ClipRecord(clip_id=clip_id, path=Path(meta["source"]), label=int(label),
                                      class_names=tuple(clean.class_names), split=HELD_OUT_SPLIT))
    if not records:
        raise RobustnessError(f"{cache_root}: no labelled {HELD_OUT_SPLIT} clip of {chosen.features} in the cache")
    records = records[:max_clips] if max_clips else records
    heads, not_scored = {}, {}
    for run in found.fusion:
        name = run.title + (" (the method)" if run.path == chosen.path else "")
        if Path(run.features).resolve() != Path(chosen.features).resolve():
            not_scored[str(run.path)] = f"fuses features of {run.features}, not the method's {chosen.features}"
            continue
        head, why = load_comparable_head(run.path, clean.class_names, "the test features'")
        if head is None:
            not_scored[str(run.path)] = why
            continue
        heads[name if name not in heads else f"{name} [{run.path.name}]"] = (head, run.streams, str(run.path))
    return Scene(streams=chosen.streams, clean=clean, late=late_fusion_weights(val, chosen.streams), heads=heads,
                 recipe=pipeline["config"], scorer=pipeline.get("scorer"),
                 scorer_hash=pipeline.get("scorer_hash") or "none",
                 stream_runs={s: clean.stream_info[s]["run"] for s in chosen.streams}, records=records,
                 not_scored=not_scored)


def _check_scorer(pipeline: Mapping, streams: Sequence[str], cache_root) -> None:
    """Refuse when streams read keyframes and the scorer that selected the cache's is gone or
    changed: damaged clips would be selected by another scorer than the clean ones."""
    if not any(STREAM_SPECS[s].uses_keyframes for s in streams):
        return
    scorer = pipeline.get("scorer")
    try:
        now = checkpoint_hash(scorer) if scorer else None
    except CheckpointError as e:
        raise RobustnessError(f"{cache_root}: its keyframe scorer {scorer}: {e}") from None
    if now is None or now != pipeline.get("scorer_hash"):
        raise RobustnessError(f"{cache_root}: its keyframe scorer {scorer} is gone or changed since the cache was made "
                              "(checkpoint hash differs); damaged clips must be selected by the same scorer")


# ------------------------------------------------------------------------------ damaged caches

def clip_seed(clip_id: str) -> int:
    """The seed of a clip's damage draws (noise, babble): fixed by its id, the same in every run."""
    return zlib.crc32(clip_id.encode("utf-8"))


def face_box_finder(recipe: Mapping, *, device: str = "cpu") -> Callable[[np.ndarray], np.ndarray]:
    """``frame -> (K, 4)`` boxes: the face stream's MTCNN with the recipe's ``faces:`` settings
    (detection size, confidence and smallest face), as its preprocessing finds faces."""
    from streams.specs.face import create_face_extractor

    settings = STREAM_SPECS["face"].checked_settings(recipe)
    extractor = create_face_extractor(settings, device=device)

    def boxes(frame: np.ndarray) -> np.ndarray:
        found, probs, _ = extractor.detect([frame])[0]
        if found is None or len(found) == 0:
            return np.zeros((0, 4))
        found, probs = np.asarray(found, np.float64), np.asarray(probs, np.float64)
        sides = np.minimum(found[:, 2] - found[:, 0], found[:, 3] - found[:, 1])
        return found[(probs >= settings.min_confidence) & (sides >= settings.min_size)]
    return boxes


def clip_babble(n_samples: int, sample_rate: int, seed: int) -> np.ndarray:
    """The babble mixed into a clip: :func:`synthetic.audio.synthesize_babble` seeded by the clip."""
    return synthesize_babble(n_samples, sample_rate, seed=seed)


class DamagedClipJob:
    """``job(record) -> "done" | "skipped"`` (a :func:`core.batch.run_batch` job): brings the
    damaged cache entry of ``record`` up to date. When it already is, nothing is decoded; else the
    source is damaged into ``media_dir`` (removed again once preprocessed) and preprocessed.
    ``face_boxes``: the face finder, for a damage that needs it."""

    def __init__(self, preprocessor: ClipPreprocessor, damage: Damage, media_dir: Path, *,
                 face_boxes: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        self.preprocessor = preprocessor
        self.damage = damage
        self.media_dir = media_dir
        self.face_boxes = face_boxes

    def __call__(self, record: ClipRecord) -> str:
        directory = cache.entry_dir(self.preprocessor.cache_root, record.clip_id)
        if not self.preprocessor.todo(directory, cache.read_meta(directory)):
            return "skipped"
        seed = clip_seed(record.clip_id)
        damaged = Path(f"{cache.entry_dir(self.media_dir, record.clip_id)}.mp4")   # ids may hold dots
        try:
            damage_file(record.path, damaged, self.damage, seed=seed, face_boxes=self.face_boxes,
                        babble=lambda n, rate: clip_babble(n, rate, seed))
            return self.preprocessor(ClipRecord(clip_id=record.clip_id, path=damaged, label=record.label,
                                                class_names=record.class_names, split=record.split))
        finally:
            damaged.unlink(missing_ok=True)


def build_damaged_job(recipe: dict, scorer: str | None, cache_root: str, streams: tuple[str, ...], key: str,
                      media_dir: str, device: str = "cpu") -> DamagedClipJob:
    """A :class:`DamagedClipJob` with networks of its own (module-level, so each worker process
    of :func:`core.batch.run_batch` builds its own)."""
    damage = DAMAGES[key]
    preprocessor = build_preprocess_job(recipe, scorer, cache_root, streams, device=device)
    finder = face_box_finder(recipe, device=device) if "face_boxes" in damage.needs else None
    return DamagedClipJob(preprocessor, damage, Path(media_dir), face_boxes=finder)


class DamageJobs:
    """Makes each damage's ``make_job`` for :func:`core.batch.run_batch`: in this process
    (``workers`` 0 or 1) the preprocessors (by stream set) and the face finder are built once and
    shared by every damage; with ``workers`` > 1 each worker process builds its own."""

    def __init__(self, scene: Scene, *, workers: int = 0, device: str = "cpu") -> None:
        self.scene = scene
        self.workers = workers
        self.device = device
        self._preprocessors: dict[tuple[str, ...], ClipPreprocessor] = {}
        self._finder: Callable[[np.ndarray], np.ndarray] | None = None

    def make_job(self, key: str, streams: tuple[str, ...], cache_root: Path, media_dir: Path) -> Callable:
        if self.workers > 1:
            return functools.partial(build_damaged_job, self.scene.recipe, self.scene.scorer, str(cache_root),
                                     streams, key, str(media_dir), self.device)
        return functools.partial(self._shared_job, key, streams, cache_root, media_dir)

    def _shared_job(self, key: str, streams: tuple[str, ...], cache_root: Path, media_dir: Path) -> DamagedClipJob:
        if streams not in self._preprocessors:
            self._preprocessors[streams] = build_preprocess_job(self.scene.recipe, self.scene.scorer,
                                                                str(cache_root), streams, device=self.device)
        preprocessor = copy.copy(self._preprocessors[streams])   # the same networks, this damage's cache
        preprocessor.cache_root = cache_root
        damage = DAMAGES[key]
        if "face_boxes" in damage.needs and self._finder is None:
            self._finder = face_box_finder(self.scene.recipe, device=self.device)
        return DamagedClipJob(preprocessor, damage, media_dir,
                              face_boxes=self._finder if "face_boxes" in damage.needs else None)


@dataclass
class DamagedSet:
    """One damage's outcome: the features of the streams it changed (``None`` when no clip came
    through), those streams, and how many clips were preprocessed, reused and failed."""

    features: FeatureSet | None
    streams: tuple[str, ...]
    counts: dict[str, int]
    errors_log: str


def damaged_features(scene: Scene, key: str, out_dir: Path, *, jobs: DamageJobs, device: str = "cpu",
                     batch_size: int = 8) -> DamagedSet:
    """The damaged cache and features of damage ``key`` (see the module docstring); ``jobs``
    makes the per-clip job."""
    damage = DAMAGES[key]
    streams = affected_streams(damage, scene.streams, scene.recipe)
    recipe_key = config_hash({"recipe": scene.recipe, "scorer_hash": scene.scorer_hash})[:12]
    cache_root = out_dir / "cache" / recipe_key / key
    errors_log = cache.errors_path(cache_root)
    if not streams:
        return DamagedSet(None, streams, {"done": 0, "skipped": 0, "failed": 0}, str(errors_log))
    make_job = jobs.make_job(key, streams, cache_root, out_dir / "damaged_media" / key)
    summary = run_batch(scene.records, make_job, errors_log=errors_log, workers=jobs.workers, desc=key)
    counts = {"done": summary.done, "skipped": summary.skipped, "failed": summary.failed}
    log.info("%s: %s", key, summary.format())
    wanted = {r.clip_id for r in scene.records}
    if not any(e.clip_id in wanted for e in cache.load_entries(cache_root, split=HELD_OUT_SPLIT)):
        return DamagedSet(None, streams, counts, str(errors_log))
    feats_dir = out_dir / "features" / key
    try:
        extract_features({s: scene.stream_runs[s] for s in streams}, cache_root, feats_dir, splits=(HELD_OUT_SPLIT,),
                         batch_size=batch_size, device=device)
    except StorageError as e:
        log.warning("%s: no features (%s)", key, e)
        return DamagedSet(None, streams, counts, str(errors_log))
    return DamagedSet(FeatureSet(feats_dir, HELD_OUT_SPLIT, streams), streams, counts, str(errors_log))


def combined(clean: FeatureSet, damaged: FeatureSet, clip_ids: Sequence[str]) -> FeatureSet:
    """``clean`` restricted to ``clip_ids`` (all in both sets), with the streams of ``damaged``
    taking their damaged features, probabilities and availability."""
    out = subset(clean, clip_ids)
    where = {c: i for i, c in enumerate(damaged.clip_ids)}
    rows = np.array([where[c] for c in clip_ids], dtype=np.int64)
    for s in damaged.streams:
        out.features[s], out.probs[s] = damaged.features[s][rows], damaged.probs[s][rows]
        out.available[s] = damaged.available[s][rows]
    return out


def subset(fs: FeatureSet, clip_ids: Sequence[str]) -> FeatureSet:
    """A copy of ``fs`` holding only ``clip_ids`` (in that order)."""
    where = {c: i for i, c in enumerate(fs.clip_ids)}
    rows = np.array([where[c] for c in clip_ids], dtype=np.int64)
    out = copy.copy(fs)
    out.clip_ids = list(clip_ids)
    out.labels = fs.labels[rows]
    out.features = {s: v[rows] for s, v in fs.features.items()}
    out.probs = {s: v[rows] for s, v in fs.probs.items()}
    out.available = {s: v[rows] for s, v in fs.available.items()}
    return out


# ------------------------------------------------------------------------------------- scoring

def model_probabilities(scene: Scene, fs: FeatureSet, *, given: Sequence[str] | None = None) -> dict[str, tuple]:
    """Every model's (kind, run, (N, C) probabilities) on ``fs``, by row name: the streams, the
    late fusions, the fusion heads. ``given``: only those streams given, the others missing."""
    present = set(scene.streams if given is None else given)
    avail = {s: fs.available[s] & (s in present) for s in scene.streams}
    out = {}
    for s in scene.streams:
        out[f"{s} stream"] = ("stream", scene.stream_runs[s],
                              weighted_score({s: fs.probs[s]}, {s: avail[s]}, {s: 1.0}))
    for key, weights in scene.late.items():
        out[LATE_TITLES.get(key, f"late: {key}")] = (
            "late_fusion", None, weighted_score({s: fs.probs[s] for s in scene.streams}, avail, weights))
    for name, (head, streams, run) in scene.heads.items():
        keep = None if given is None else tuple(s for s in streams if s in present)
        out[name] = ("fusion_head", run, fusion_probabilities(head, fs, streams, given=keep))
    return out


def _rows(scene: Scene, damage: str, severity: str, fs: FeatureSet, clean: FeatureSet, *,
          given: Sequence[str] | None, draws: int, seed: int, failed: int) -> list[dict]:
    """One row per model: its accuracy on ``fs`` (damaged) and on ``clean`` (the same clips)."""
    damaged_probs = model_probabilities(scene, fs, given=given)
    clean_probs = model_probabilities(scene, clean)
    rows = []
    for name, (kind, run, probs) in damaged_probs.items():
        hit = bootstrap_accuracy(fs.labels, probs.argmax(1), draws=draws, seed=seed)
        base = bootstrap_accuracy(clean.labels, clean_probs[name][2].argmax(1), draws=draws, seed=seed)
        rows.append({"model": name, "kind": kind, "run": run, "damage": damage, "severity": severity,
                     "accuracy": hit["accuracy"], "ci95": hit["interval"], "clean_accuracy": base["accuracy"],
                     "clean_ci95": base["interval"], "clips": int(len(fs.labels)), "failed_clips": failed})
    return rows


def degradation(rows: Sequence[Mapping], streams: Sequence[str], *, allowance: float = 0.02) -> list[dict]:
    """How gracefully each fusion head loses a modality: for every ``missing`` row set that leaves
    at least one stream, each fusion head's accuracy against the best stream that remains (that
    stream alone, on the same clean clips). ``margin`` = head - best remaining stream (a fraction);
    ``graceful``: the margin is at least ``-allowance`` (the issue's 2 points), i.e. losing the
    modality cost the head no more than that modality was worth."""
    out = []
    for severity in dict.fromkeys(r["severity"] for r in rows if r["damage"] == MISSING):
        here = [r for r in rows if r["damage"] == MISSING and r["severity"] == severity]
        lost = set(severity.split("+"))
        remaining = {r["model"].removesuffix(" stream"): r["accuracy"] for r in here
                     if r["kind"] == "stream" and r["model"].removesuffix(" stream") not in lost}
        remaining = {s: a for s, a in remaining.items() if s in streams}
        if not remaining:
            continue
        best = max(remaining, key=remaining.get)
        for r in here:
            if r["kind"] == "fusion_head":
                margin = r["accuracy"] - remaining[best]
                out.append({"model": r["model"], "missing": severity, "accuracy": r["accuracy"],
                            "best_remaining_stream": best, "best_remaining_accuracy": remaining[best],
                            "margin": margin, "graceful": bool(margin >= -allowance - 1e-12)})
    return out


def build_robustness(root: str | os.PathLike, out_dir: str | os.PathLike, *, method: str | os.PathLike | None = None,
                     damages: Sequence[str] | None = None, missing: bool = True, max_clips: int | None = None,
                     draws: int = DRAWS, seed: int = 0, device: str = "cpu", batch_size: int = 8,
                     workers: int = 0) -> dict:
    """Score every model of the runs under ``root`` on damaged test clips (see the module
    docstring); returns the content of ``robustness.json`` (``rows`` and what they were made
    from). ``damages``: keys of :data:`media.damage.DAMAGES` (default all); ``missing``: also the
    modality rows; ``max_clips``: only the first that many test clips; ``draws``/``seed``: the
    bootstrap's; ``device``: the scorer, MTCNN and the streams; ``workers``: processes that
    damage and preprocess clips (0 or 1: this one)."""
    root, out_dir = Path(root), Path(out_dir)
    keys = list(DAMAGES) if damages is None else list(damages)
    unknown = [k for k in keys if k not in DAMAGES]
    if unknown:
        raise RobustnessError(f"unknown damage {', '.join(unknown)}; choose from {', '.join(DAMAGES)}")
    scene = build_scene(root, out_dir, method=method, max_clips=max_clips)
    clean = subset(scene.clean, [r.clip_id for r in scene.records])
    jobs = DamageJobs(scene, workers=workers, device=device)

    rows, damage_info = [], {}
    for key in keys:
        damage = DAMAGES[key]
        got = damaged_features(scene, key, out_dir, jobs=jobs, device=device, batch_size=batch_size)
        info = {"name": damage.name, "severity": damage.severity, "modality": damage.modality,
                "streams_changed": list(got.streams), "clips": got.counts, "errors_log": got.errors_log}
        damage_info[key] = info
        if got.features is None and got.streams:
            info["scored"] = False
            continue
        ids = clean.clip_ids if got.features is None else [c for c in clean.clip_ids if c in set(got.features.clip_ids)]
        fs = subset(clean, ids) if got.features is None else combined(clean, got.features, ids)
        rows += _rows(scene, damage.name, damage.severity, fs, subset(clean, ids), given=None, draws=draws,
                      seed=seed, failed=len(clean.clip_ids) - len(ids))
        info["scored"] = True
    if missing:
        for k in range(1, len(scene.streams) + 1):
            for lost in itertools.combinations(scene.streams, k):
                given = tuple(s for s in scene.streams if s not in lost)
                rows += _rows(scene, MISSING, subset_name(lost), clean, clean, given=given, draws=draws, seed=seed,
                              failed=0)
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "root": str(root), "out_dir": str(out_dir), "split": HELD_OUT_SPLIT, "clips": len(clean.clip_ids),
        "streams": list(scene.streams), "class_names": list(clean.class_names),
        "preprocess": {"scorer": scene.scorer, "scorer_hash": scene.scorer_hash,
                       "recipe_hash": config_hash(scene.recipe)},
        "settings": {"draws": draws, "seed": seed, "confidence": CONFIDENCE,
                     "interval": "percentile bootstrap over the scored clips",
                     "clean_accuracy": "the same model on the same clips, undamaged",
                     "late_fusion_weights": scene.late},
        "damages": damage_info,
        "not_scored": scene.not_scored,
        "rows": rows,
        "degradation": degradation(rows, scene.streams),
    }
