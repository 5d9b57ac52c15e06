"""Feature caching: each frozen stream's ``features()`` over every clip, once.

``FEATS/<split>/`` holds, for every stream ``s``:

* ``<s>.npy``        float32 (N, D_s) feature vectors (zeros where the modality is missing),
* ``<s>_probs.npy``  float32 (N, C) the stream's own class probabilities (zeros where missing),

and ``index.json`` with the clip ids, labels, class names, how the train features were made
(``features``: the mode below) and per stream its availability mask, run directory, checkpoint
hash, the hash of the cache arrays it read (their config hashes, clip by clip), the runs that
produced the split's features (``runs``) and, per clip, which of them (``clip_run``). A stream is
recomputed when one of its checkpoints, the clip list or any of those arrays changed (e.g. the
cache was re-made with other flow settings); the others are reused. Fusion epochs then cost
milliseconds instead of stream forwards.

How the TRAIN split's features are made (the ``features:`` setting, ``configs/features/*.yaml``,
docs/concepts/leakage.md); it follows from the stream runs given, as each run records the
clips it fitted (:mod:`streams.folds`):

* ``in_sample``: the streams were fitted on every train clip, and fusion trains on their features
  of those same clips (the method's recipe: more confident than on unseen clips);
* ``holdout``: the streams held back part of the train split (``exclude: {fraction: f}``); the
  fusion train split is that part, featured by streams that never saw it;
* ``cross_fit``: per stream, K fold runs (``exclude: {folds: K, fold: k}``) besides the run on the
  whole train split; each train clip's features come from the fold run that held it back, and
  val/test features (and prediction) from the run on the whole train split. That is how
  scikit-learn's ``StackingClassifier`` combines ``cross_val_predict`` with final estimators
  fitted on all data: the deployed system is one network per stream (prediction costs the same as
  in the other modes), and the head sees single-network features in training and at test time
  (a mean over the K fold networks would be a smoother vector than any it trained on). Cost:
  K + 1 stream trainings.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from core.config import ConfigError, check_keys, check_settings, setting, settings_from_section
from core.storage import StorageError, atomic_save_npy, atomic_write_json, config_hash, read_json, remove_temp_files
from streams.cache import CacheEntry, load_entries
from streams.data import StreamDataset
from streams.folds import FOLDS_LIMITS, FRACTION_LIMITS, ExcludeSettings, TrainClips, read_train_clips
from streams.specs import STREAM_SPECS
from streams.training import load_trained_stream
from training import devices
from training.checkpoints import CheckpointError

log = logging.getLogger(__name__)
INDEX_FILE = "index.json"


def parse_stream_runs(spec: str) -> dict[str, str]:
    """``"NAME=RUN,NAME=RUN"`` -> ``{NAME: RUN, ...}``; names must be streams of the spec table."""
    out = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        if "=" not in part:
            raise ValueError(f"--streams entry {part!r} must look like name=RUN_DIR")
        name, run = (x.strip() for x in part.split("=", 1))
        if name not in STREAM_SPECS:
            raise ValueError(f"--streams: unknown stream {name!r}; choose from {', '.join(STREAM_SPECS)}")
        out[name] = run
    if not out:
        raise ValueError("--streams: no stream given")
    return out


def parse_fold_runs(spec: str) -> dict[str, list[str]]:
    """``"NAME=RUN,NAME=RUN2,..."`` -> ``{NAME: [RUN, RUN2], ...}`` (a name repeats, once per fold)."""
    out: dict[str, list[str]] = {}
    for part in spec.split(","):
        if part.strip():
            for name, run in parse_stream_runs(part).items():
                out.setdefault(name, []).append(run)
    if not out:
        raise ValueError("--fold-runs: no run given")
    return out


def cache_arrays_hash(entries: list[CacheEntry], stream: str) -> str:
    """Hash of the config hashes of ``stream``'s arrays over ``entries`` (in order): it changes
    when any of those arrays was recomputed with other settings."""
    return config_hash([[e.clip_id, e.array_hash(stream)] for e in entries])


@torch.inference_mode()
def stream_outputs(model, dataset: StreamDataset, entries, *,
                   batch_size: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(features (N, D), probs (N, C), available (N,) bool)`` of one stream over ``entries``
    (eval view of each input; missing modalities give zero rows). Batches of ``batch_size``
    inputs run on ``model``'s device; the outputs come to the CPU once, at the end."""
    available = np.array([e.available(dataset.stream) for e in entries], dtype=bool)
    device = devices.module_device(model)
    idx = np.flatnonzero(available)
    outputs = []
    for start in range(0, len(idx), batch_size):
        x = torch.stack([dataset.load_input(entries[i]) for i in idx[start:start + batch_size]]).to(device)
        f = model.features(x)
        outputs.append((f, torch.softmax(model.head(f), dim=1)))
    if not outputs:  # no clip has this modality
        return (np.zeros((len(entries), getattr(model, "feature_dim", 1)), np.float32),
                np.zeros((len(entries), getattr(model, "num_classes", 1)), np.float32), available)
    f, p = (torch.cat(parts).float() for parts in zip(*outputs))
    host = devices.to_host(torch.cat([f, p], dim=1))                  # (A, D + C): the one move
    feats = np.zeros((len(entries), f.shape[1]), np.float32)
    probs = np.zeros((len(entries), p.shape[1]), np.float32)
    feats[idx], probs[idx] = host[:, :f.shape[1]], host[:, f.shape[1]:]
    return feats, probs, available


#: the ``features:`` modes (see the module docstring)
FEATURE_MODES: tuple[str, ...] = ("in_sample", "holdout", "cross_fit")


@dataclass(frozen=True)
class FeaturePlan:
    """How fusion's training features are made: a features recipe's ``features:`` section
    (:class:`FeaturesSettings`, written ``in_sample``, ``{holdout: FRACTION, seed: S}`` or
    ``{cross_fit: K, seed: S}``), or what the stream runs given make."""

    mode: str
    fraction: float = 0.25
    folds: int = 3
    seed: int = 0

    @classmethod
    def from_config(cls, value: Any) -> "FeaturePlan":
        """The plan of a ``features:`` section (see :class:`FeaturesSettings`); a
        :class:`ConfigError` names a bad key or value, or a section naming no mode or two."""
        if isinstance(value, str):
            value = {value: None}
        if not isinstance(value, Mapping) or not value:
            raise ConfigError(f"'features' must be one of {', '.join(FEATURE_MODES)} or a mapping such as "
                              f"{{holdout: 0.25}} / {{cross_fit: 3}}, got {value!r}")
        settings = settings_from_section(FeaturesSettings, value, "features")
        modes = [k for k in value if k in FEATURE_MODES]
        if len(modes) != 1:
            raise ConfigError(f"'features' names one mode of {', '.join(FEATURE_MODES)}, got {dict(value)}")
        plan = cls(mode=modes[0], seed=settings.seed)
        if settings.holdout is not None:
            plan = replace(plan, fraction=settings.holdout)
        elif settings.cross_fit is not None:
            plan = replace(plan, folds=settings.cross_fit)
        return plan

    def deployed_exclude(self) -> dict | None:
        """The ``exclude:`` section of the stream runs the fusion run deploys (``None``: all of train)."""
        return {"fraction": self.fraction, "seed": self.seed} if self.mode == "holdout" else None

    def fold_excludes(self) -> list[dict]:
        """The ``exclude:`` sections of the fold runs (cross-fitting only)."""
        if self.mode != "cross_fit":
            return []
        return [{"folds": self.folds, "fold": k, "seed": self.seed} for k in range(self.folds)]

    def record(self) -> dict:
        """What ``index.json`` records under ``features``."""
        if self.mode == "holdout":
            return {"mode": self.mode, "fraction": self.fraction, "seed": self.seed}
        if self.mode == "cross_fit":
            return {"mode": self.mode, "folds": self.folds, "seed": self.seed, "val_test_features": "whole-train run"}
        return {"mode": self.mode}


@dataclass(frozen=True)
class FeaturesSettings:
    """The ``features:`` section of a features recipe (``configs/features/*.yaml``) as written: ONE
    of ``in_sample``, ``holdout`` and ``cross_fit`` with its value, and the ``seed``; the mode's
    name alone (``features: holdout``) takes its default. Read into a :class:`FeaturePlan`."""

    in_sample: bool | None = setting(None, accepts="null or true (it takes no value)", help=(
        "the streams fit every train clip; fusion trains on their features of those clips"))
    holdout: float | None = setting(None, **FRACTION_LIMITS, help=(
        f"the fraction of each class the streams hold back (exclude.fraction); null: {FeaturePlan.fraction}"))
    cross_fit: int | None = setting(None, **FOLDS_LIMITS, help=(
        f"K: each stream's fold runs (exclude.folds); null: {FeaturePlan.folds}"))
    seed: int = setting(0, help="the seed of the held-back part or folds (exclude.seed)")

    def __post_init__(self) -> None:
        check_settings(self, "features")
        if self.in_sample is False:
            raise ConfigError("features: in_sample takes no value, got False")


def load_feature_plan(path: str | os.PathLike, overrides: Sequence[str] = ()) -> FeaturePlan:
    """The :class:`FeaturePlan` of a features recipe (``configs/features/<mode>.yaml``: one key,
    ``features``)."""
    from core.config import load_config

    cfg = load_config(path, overrides)
    check_keys(cfg, ("features",), f"the features recipe {path}")
    if "features" not in cfg:
        raise ConfigError(f"{path}: a features recipe needs the key 'features' (in_sample, holdout or cross_fit)")
    return FeaturePlan.from_config(cfg["features"])


@dataclass
class FeatureSources:
    """Where one stream's features of one split come from: ``runs`` (run directories) and, for
    each clip of ``clip_ids`` (cache order), the index of its run in ``clip_run``."""

    clip_ids: list[str]
    runs: list[str]
    clip_run: list[int]
    plan: FeaturePlan


def _train_record(run: str, role: str) -> TrainClips:
    record = read_train_clips(run)
    if record is None:
        raise ConfigError(f"{run}: the {role} records no train_clips.json (train it with tools/train_stream.py "
                          "and an exclude section)")
    return record


def train_sources(stream: str, run: str, fold_runs: Sequence[str], entries: Sequence[CacheEntry]) -> FeatureSources:
    """The sources of stream ``stream``'s TRAIN features (see the module docstring for the modes).
    ``run``: the run fusion deploys; ``fold_runs``: its cross-fitting runs (empty otherwise);
    ``entries``: the cache's train split. Refuses any feature a run would make of a clip it fitted."""
    record = read_train_clips(run)
    ids = [e.clip_id for e in entries]
    if fold_runs:
        if record is not None and record.held_out:
            raise ConfigError(f"{run}: with fold runs, the {stream} run given for val/test must be trained on the "
                              f"whole train split, but it held back {len(record.held_out)} clips ({record.exclude})")
        records = [_train_record(r, f"{stream} fold run") for r in fold_runs]
        settings = [ExcludeSettings.from_config(r.exclude) for r in records]
        if any(x is None or x.folds is None for x in settings):
            bad = [r for r, x in zip(fold_runs, settings) if x is None or x.folds is None]
            raise ConfigError(f"{stream} fold runs {bad}: not trained with exclude: {{folds: K, fold: k}}")
        kinds = {(x.folds, x.seed) for x in settings}
        folds = sorted(x.fold for x in settings)
        if len(kinds) != 1 or folds != list(range(settings[0].folds)):
            raise ConfigError(f"{stream} fold runs {list(fold_runs)}: need one run per fold of one partition, got "
                              + ", ".join(x.describe() for x in settings))
        holder: dict[str, int] = {}
        for i, r in enumerate(records):
            for c in r.held_out:
                if c in holder:
                    raise ConfigError(f"{stream} fold runs {fold_runs[holder[c]]} and {fold_runs[i]} both held back "
                                      f"clip {c}: they were trained on different train splits; "
                                      "retrain them on this cache")
                holder[c] = i
        uncovered = [e.clip_id for e in entries if e.label is not None and e.clip_id not in holder]
        if uncovered:
            raise ConfigError(f"{stream} fold runs {list(fold_runs)} hold back none of {len(uncovered)} labelled train "
                              f"clips (e.g. {uncovered[0]}): they were trained on another train split; retrain them")
        plan = FeaturePlan(mode="cross_fit", folds=settings[0].folds, seed=settings[0].seed)
        runs = list(fold_runs)
    elif record is not None and record.held_out:
        records = [record]
        holder = dict.fromkeys(record.held_out, 0)
        x = ExcludeSettings.from_config(record.exclude)
        plan = FeaturePlan(mode="holdout", fraction=x.fraction if x.fraction is not None else 1.0 / x.folds,
                           seed=x.seed)
        runs = [run]
    else:
        return FeatureSources(clip_ids=ids, runs=[run], clip_run=[0] * len(ids), plan=FeaturePlan(mode="in_sample"))
    for c, i in holder.items():
        if c in set(records[i].trained_on):  # a record that contradicts itself: never use it
            raise ConfigError(f"{runs[i]}: train_clips.json lists clip {c} as held back and as trained on")
    kept = [c for c in ids if c in holder]
    return FeatureSources(clip_ids=kept, runs=runs, clip_run=[holder[c] for c in kept], plan=plan)


def _check_plan(expected: FeaturePlan | None, found: Mapping[str, FeatureSources]) -> FeaturePlan:
    plans = {s: src.plan for s, src in found.items()}
    first = next(iter(found.values()))
    if len(set(plans.values())) != 1 or any(src.clip_ids != first.clip_ids for src in found.values()):
        raise ConfigError("the stream runs make the train features in different ways ("
                          + ", ".join(f"{s}: {p.record()}" for s, p in plans.items())
                          + "); train every stream with the same exclude settings")
    plan = first.plan
    if expected is not None and expected.record() != plan.record():
        raise ConfigError(f"the features recipe asks for {expected.record()} but the stream runs given make "
                          f"{plan.record()} (their exclude settings, and --fold-runs for cross_fit)")
    return plan


def extract_features(stream_runs: Mapping[str, str], cache_root: str | os.PathLike, out_dir: str | os.PathLike, *,
                     fold_runs: Mapping[str, Sequence[str]] | None = None, plan: FeaturePlan | None = None,
                     splits: tuple[str, ...] = ("train", "val", "test"), batch_size: int = 8,
                     device: str = "cpu") -> dict:
    """Compute (or reuse) the features of every stream in ``stream_runs`` for every split of the
    cache; returns ``{split: {stream: "computed" | "reused"}}``.

    ``stream_runs``: stream -> the run fusion deploys (val/test features; train features too,
    unless cross-fitting). ``fold_runs``: stream -> its K cross-fitting runs. ``plan``: the features
    recipe, checked against what the runs make (``None``: whatever they make). In the holdout and
    cross-fitting modes the train split holds only the clips some run held back. Every network
    (the fold runs' too) runs on ``device``, ``batch_size`` clips at a time."""
    out_dir = Path(out_dir)
    fold_runs = {s: list(r) for s, r in (fold_runs or {}).items() if r}
    unknown = sorted(set(fold_runs) - set(stream_runs))
    if unknown:
        raise ConfigError(f"fold runs given for {unknown}, which have no run in --streams")
    status: dict[str, dict[str, str]] = {}
    loaded = {}

    def load(run: str, stream: str | None = None):
        if run not in loaded:
            loaded[run] = load_trained_stream(run, stream=stream, device=device)
        elif stream is not None and loaded[run][1].get("stream") != stream:  # one run given for two streams
            raise CheckpointError(f"{run}: a run of the {loaded[run][1].get('stream')} stream, given for the "
                                  f"{stream} stream")
        return loaded[run]

    for stream, runs in [*((s, [r]) for s, r in stream_runs.items()), *fold_runs.items()]:
        for run in runs:  # a run given for the wrong stream is refused before any split is read
            load(run, stream)

    for split in splits:
        entries = load_entries(cache_root, split=split)
        if not entries:
            continue
        if split == "train":
            sources = {s: train_sources(s, run, fold_runs.get(s, ()), entries) for s, run in stream_runs.items()}
            found = _check_plan(plan, sources)
            keep = set(next(iter(sources.values())).clip_ids)
            entries = [e for e in entries if e.clip_id in keep]
            if not entries:
                raise ConfigError(f"{cache_root}: the stream runs hold back no train clip of this cache for fusion")
        else:
            found = None
            sources = {s: FeatureSources(clip_ids=[e.clip_id for e in entries], runs=[run],
                                         clip_run=[0] * len(entries), plan=FeaturePlan(mode="in_sample"))
                       for s, run in stream_runs.items()}
        split_dir = out_dir / split
        remove_temp_files(split_dir)  # of writes a killed run left
        index = read_json(split_dir / INDEX_FILE) or {}
        clip_ids = [e.clip_id for e in entries]
        labels = [e.label for e in entries]
        # other clips, or the same clips relabelled (a labels: mapping of preprocessing): recompute
        same_clips = (index.get("clip_ids") == clip_ids and index.get("labels") == labels
                      and index.get("class_names") == list(entries[0].class_names))
        streams_meta = dict(index.get("streams", {})) if same_clips else {}
        features_record = found.record() if found else _recorded_features(out_dir, plan, fold_runs)
        status[split] = {}
        for stream, run in stream_runs.items():
            src = sources[stream]
            _, recipe, class_names, ckpt_hash = load(run)
            sources_hash = config_hash({"runs": [load(r)[3] for r in src.runs], "clip_run": src.clip_run})
            old = streams_meta.get(stream)
            inputs_hash = cache_arrays_hash(entries, stream)
            if (old and old.get("checkpoint_hash") == ckpt_hash and old.get("inputs_hash") == inputs_hash
                    and old.get("sources_hash") == sources_hash and (split_dir / f"{stream}.npy").exists()):
                status[split][stream] = "reused"
                continue
            feats, probs, available = sourced_outputs(stream, src, entries, load, batch_size=batch_size)
            atomic_save_npy(split_dir / f"{stream}.npy", feats)
            atomic_save_npy(split_dir / f"{stream}_probs.npy", probs)
            streams_meta[stream] = {"run": str(Path(run).resolve()), "checkpoint_hash": ckpt_hash,
                                    "inputs_hash": inputs_hash, "sources_hash": sources_hash,
                                    "dim": int(feats.shape[1]), "class_names": class_names,
                                    "available": available.tolist(),
                                    "runs": [str(Path(r).resolve()) for r in src.runs], "clip_run": src.clip_run}
            status[split][stream] = "computed"
            # index after each stream, so a kill keeps what is done
            write_index(split_dir, split, entries, cache_root, features_record, streams_meta)
        if index.get("features") != features_record and "computed" not in status[split].values():
            write_index(split_dir, split, entries, cache_root, features_record, streams_meta)  # same arrays, new mode
        log.info("features %s: %s", split, ", ".join(f"{k} {v}" for k, v in status[split].items()))
    if not status:
        raise StorageError(f"{cache_root}: no clips in the cache for splits {splits} (is it a cache made by "
                           "tools/preprocess.py?)")
    return status


def write_index(split_dir: Path, split: str, entries: Sequence[CacheEntry], cache_root: str | os.PathLike,
                features_record: dict, streams_meta: dict) -> None:
    atomic_write_json(split_dir / INDEX_FILE, {
        "split": split, "clip_ids": [e.clip_id for e in entries],
        "labels": [e.label for e in entries],
        "class_names": list(entries[0].class_names),
        "cache": str(Path(cache_root).resolve()),
        "features": features_record,
        "streams": streams_meta,
    })


def _recorded_features(out_dir: Path, plan: FeaturePlan | None, fold_runs: Mapping[str, Sequence[str]]) -> dict:
    """The ``features`` record of a val/test split: the train split's, else the recipe's."""
    train = read_json(out_dir / "train" / INDEX_FILE) or {}
    if train.get("features"):
        return dict(train["features"])
    return (plan or FeaturePlan(mode="cross_fit" if fold_runs else "in_sample")).record()


def sourced_outputs(stream: str, src: FeatureSources, entries: Sequence[CacheEntry], load, *,
                    batch_size: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`stream_outputs` of each clip of ``entries`` by the run ``src`` assigns it;
    ``load(run) -> (model, recipe, class_names, checkpoint_hash)``."""
    clip_run = np.asarray(src.clip_run, dtype=np.int64)
    if len(src.runs) == 1:  # one network for every clip: the same batches as ever
        model, recipe, _, _ = load(src.runs[0])
        return stream_outputs(model, StreamDataset([], stream, recipe.get("data", {}), train=False), list(entries),
                              batch_size=batch_size)
    parts = []
    for i, run in enumerate(src.runs):
        model, recipe, _, _ = load(run)
        idx = np.flatnonzero(clip_run == i)
        view = StreamDataset([], stream, recipe.get("data", {}), train=False)
        parts.append((idx, stream_outputs(model, view, [entries[j] for j in idx], batch_size=batch_size)))
    shapes = {(f.shape[1], p.shape[1]) for _, (f, p, _) in parts}
    if len(shapes) != 1:
        raise ConfigError(f"{stream} runs {src.runs} give outputs of different sizes (features, classes) "
                          f"{sorted(shapes)}")
    dim, n_classes = shapes.pop()
    feats = np.zeros((len(entries), dim), np.float32)
    probs = np.zeros((len(entries), n_classes), np.float32)
    available = np.zeros(len(entries), bool)
    for idx, (f, p, a) in parts:
        feats[idx], probs[idx], available[idx] = f, p, a
    return feats, probs, available


def _load_array(path: Path) -> np.ndarray:
    """A stored feature array (no pickles); a missing, truncated or foreign file is a
    :class:`StorageError` naming it."""
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise StorageError(f"{path}: missing from the feature directory (re-run tools/extract_features.py)") from None
    except (ValueError, OSError, EOFError) as e:
        raise StorageError(f"{path}: not a readable feature array ({e}); re-run tools/extract_features.py, "
                           "which recomputes it") from None


class FeatureSet:
    """One split of a feature cache: ``features[s]`` (N, D_s), ``probs[s]`` (N, C), ``available[s]``
    (N,) bool, ``labels`` (N,) (-1 when unlabelled), ``clip_ids``, ``class_names``."""

    def __init__(self, feats_dir: str | os.PathLike, split: str, streams: tuple[str, ...] | None = None) -> None:
        split_dir = Path(feats_dir) / split
        index = read_json(split_dir / INDEX_FILE)
        if index is None:
            raise FileNotFoundError(f"{split_dir / INDEX_FILE}: no features for split {split!r} "
                                    "(run tools/extract_features.py)")
        names = tuple(streams) if streams else tuple(s for s in STREAM_SPECS if s in index["streams"])
        missing = [s for s in names if s not in index["streams"]]
        if missing:
            raise StorageError(f"{split_dir / INDEX_FILE}: no features for streams {missing} (it has "
                               f"{sorted(index['streams'])}; extract them with tools/extract_features.py, or name the "
                               "streams to fuse with the recipe's streams:)")
        self.split = split
        self.streams = names
        self.index = index
        self.clip_ids = list(index["clip_ids"])
        self.labels = np.array([-1 if v is None else int(v) for v in index["labels"]], dtype=np.int64)
        self.class_names = list(index["class_names"])
        self.features = {s: _load_array(split_dir / f"{s}.npy") for s in names}
        self.probs = {s: _load_array(split_dir / f"{s}_probs.npy") for s in names}
        self.available = {s: np.asarray(index["streams"][s]["available"], dtype=bool) for s in names}
        self.stream_info = {s: index["streams"][s] for s in names}

    def __len__(self) -> int:
        return len(self.clip_ids)
