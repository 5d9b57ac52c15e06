"""What the results report reads: the runs under a root, the method among them, the method's
head retrained without each stream, and the keyframe ablation table.

:func:`find_runs` classifies every run directory by what its checkpoint records (a stream run's
config names its ``stream``; a fusion run's names its head, ``streams`` and ``features``);
:func:`choose_method` takes the method's run (the one Concat-FC run, or the one named);
:func:`train_leave_one_out` trains (or reuses) the method's head without each stream, on train
and val only; :func:`read_ablation` reads ``tools/ablate.py keyframes``'s table. The report
itself: :mod:`experiments.report`.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from core.storage import config_hash, read_json
from fusion.features import FeatureSet
from fusion.heads import DEFAULT_HEAD, FUSION_HEADS
from fusion.training import load_fusion_head, train_fusion_head
from streams.cache import PIPELINE_FILE
from streams.specs import STREAM_SPECS
from training.checkpoints import CheckpointError, read_meta
from training.run_directory import RunConfigMismatchError

log = logging.getLogger(__name__)

#: the split every choice is made on, and the split nothing is chosen on
SELECTION_SPLIT = "val"
HELD_OUT_SPLIT = "test"
REPORT_SPLITS = (SELECTION_SPLIT, HELD_OUT_SPLIT)
LEAVE_ONE_OUT_DIR = "leave_one_out"
#: where ``tools/ablate.py keyframes`` writes its table, relative to the runs root
DEFAULT_ABLATION = Path("ablation") / "ablation.json"
ABLATION_KEYS = ("family", "selection", "salient_recall", "val_accuracy", "diff_vs_uniform")
"""What a row of ``tools/ablate.py keyframes``'s ``ablation.json`` must hold for the report; the
last three are ``{"mean": number, ...}`` (with ``ci95`` for the last two)."""
LATE_TITLES = {"weighted_average": "late: weighted average (weights from val)",
               "face0.6_audio0.4": "late: 0.6 face + 0.4 audio"}



class ReportError(ValueError):
    """The runs directory cannot be reported as asked (no fusion run, an ambiguous method, a bad
    ablation table); the message names the directory or file."""


@dataclass(frozen=True)
class FusionRun:
    """A fusion run found under the root: its directory, head (a key of ``FUSION_HEADS``), fused
    streams, feature directory and the config its checkpoint records."""

    path: Path
    head: str
    streams: tuple[str, ...]
    features: Path
    recipe: dict = field(repr=False)

    @property
    def title(self) -> str:
        return FUSION_HEADS[self.head].title


@dataclass(frozen=True)
class FoundRuns:
    """What :func:`find_runs` found: stream runs (directory -> stream), fusion runs, and run
    directories whose checkpoint could not be read (directory -> why)."""

    root: Path
    streams: dict[Path, str]
    fusion: tuple[FusionRun, ...]
    unreadable: dict[Path, str]


def read_fusion_run(path: str | os.PathLike) -> FusionRun:
    """The :class:`FusionRun` of a run or checkpoint directory; :class:`ReportError` when its
    checkpoint is not a fusion head's."""
    path = Path(path)
    recipe = dict(read_meta(path).get("config") or {})
    name = (recipe.get("model") or {}).get("name")
    if name not in FUSION_HEADS or not recipe.get("streams") or not recipe.get("features"):
        raise ReportError(f"{path}: not a fusion run (its checkpoint records no fusion head, streams and features)")
    return FusionRun(path=path, head=name, streams=tuple(recipe["streams"]), features=Path(recipe["features"]),
                     recipe=recipe)


def find_runs(root: str | os.PathLike, *, exclude: Sequence[str | os.PathLike] = ()) -> FoundRuns:
    """Every run directory under ``root`` (one holding ``best/`` or ``last/`` with a
    ``meta.json``), sorted by path, classified by its checkpoint's config; directories in
    ``exclude``, preprocessing caches and the insides of runs are not searched, and the
    leave-one-out heads of an earlier report are not fusion runs to report."""
    root = Path(root)
    if not root.is_dir():
        raise ReportError(f"{root}: no such runs directory")
    skip = {Path(p).resolve() for p in exclude}
    streams: dict[Path, str] = {}
    fusion: list[FusionRun] = []
    unreadable: dict[Path, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames.sort()
        if here.resolve() in skip or PIPELINE_FILE in filenames:
            dirnames[:] = []
            continue
        if not any((here / which / "meta.json").is_file() for which in ("best", "last")):
            continue
        dirnames[:] = []  # a run holds checkpoints, not other runs
        try:
            config = read_meta(here).get("config") or {}
        except CheckpointError as e:
            unreadable[here] = str(e)
            continue
        if config.get("stream") in STREAM_SPECS:
            streams[here] = config["stream"]
        elif (config.get("model") or {}).get("name") in FUSION_HEADS and config.get("streams") \
                and "leave_one_out" not in config:  # a report's own heads are not models to report
            fusion.append(read_fusion_run(here))
    return FoundRuns(root=root, streams=streams, fusion=tuple(fusion), unreadable=unreadable)


def choose_method(found: FoundRuns, method: str | os.PathLike | None = None) -> FusionRun:
    """The method's run: ``method`` when given (a fusion run, found or not), else the one
    Concat-FC run under the root. :class:`ReportError` when there is none or several."""
    if method is not None:
        wanted = Path(method).resolve()
        for run in found.fusion:
            if run.path.resolve() == wanted:
                return run
        return read_fusion_run(method)
    candidates = [r for r in found.fusion if r.head == DEFAULT_HEAD]
    if not candidates:
        raise ReportError(f"{found.root}: no {FUSION_HEADS[DEFAULT_HEAD].title} run found "
                          "(train one with tools/train_fusion.py, or name the method's run with --method)")
    if len(candidates) > 1:
        raise ReportError(f"{found.root}: several {FUSION_HEADS[DEFAULT_HEAD].title} runs "
                          f"({', '.join(str(r.path) for r in candidates)}); name the method's run with --method")
    return candidates[0]


def train_leave_one_out(method: FusionRun, out_dir: str | os.PathLike) -> dict[str, Path]:
    """The method's head retrained without each of its streams in turn: ``{stream: run dir}``
    (``out_dir/without_<stream>``). Same recipe, same train features (whatever produced them:
    the method's feature directory's train split) and the same selection on val. A finished run
    with the same recipe and the same train and val feature indexes is reused; one made from
    other features is retrained. Empty when the method fuses a single stream."""
    if len(method.streams) < 2:
        return {}
    out_dir = Path(out_dir)
    runs = {}
    for left_out in method.streams:
        keep = tuple(s for s in method.streams if s != left_out)
        train_fs = FeatureSet(method.features, "train", keep)
        val_fs = FeatureSet(method.features, SELECTION_SPLIT, keep)
        cfg = {"streams": list(keep), "model": dict(method.recipe["model"]),
               "train": dict(method.recipe.get("train") or {})}
        record = {k: v for k, v in method.recipe.items()
                  if k not in ("streams", "model", "stream_dims", "train", "class_names")}
        pipeline = record.get("pipeline")
        if isinstance(pipeline, Mapping) and isinstance(pipeline.get("streams"), Mapping):
            kept = {s: v for s, v in pipeline["streams"].items() if s != left_out}
            record["pipeline"] = {**pipeline, "streams": kept}
        record["leave_one_out"] = {"left_out": left_out,
                                   "feature_indexes": {"train": config_hash(train_fs.index),
                                                       SELECTION_SPLIT: config_hash(val_fs.index)}}
        run = out_dir / f"without_{left_out}"
        try:
            train_fusion_head(cfg, train_fs, val_fs, run, recipe=record)
        except RunConfigMismatchError:
            log.info("%s: made from other features or another recipe; retraining it", run)
            train_fusion_head(cfg, train_fs, val_fs, run, recipe=record, fresh=True)
        runs[left_out] = run
    return runs


def read_ablation(path: str | os.PathLike, *, required: bool) -> dict | None:
    """The keyframe ablation table ``{"path", "rows": [{"family", "selection", "salient_recall",
    "val_accuracy", "diff_vs_uniform", ...}]}`` of ``tools/ablate.py keyframes``, or None when
    ``path`` does not exist and is not ``required``. :class:`ReportError` naming the file for a
    malformed table (or one written before the ablation had families and intervals)."""
    path = Path(path)
    data = read_json(path)
    if data is None:
        if required:
            raise ReportError(f"{path}: no keyframe ablation table here (run tools/ablate.py keyframes)")
        return None
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not rows:
        raise ReportError(f"{path}: expected {{\"rows\": [...]}} with one row per family and keyframe selection")
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or any(k not in row for k in ABLATION_KEYS):
            raise ReportError(f"{path}: row {i} lacks one of {', '.join(ABLATION_KEYS)} (a table written before "
                              "the ablation had families and intervals: run tools/ablate.py keyframes again)")
        for k in ABLATION_KEYS[2:]:
            value = row[k]
            mean = value.get("mean") if isinstance(value, dict) else None
            if isinstance(mean, bool) or not isinstance(mean, (int, float)) or (
                    k != "salient_recall" and not _interval(value.get("ci95"))):
                raise ReportError(f"{path}: row {i}: {k} must be {{\"mean\": number, \"ci95\": [lo, hi]}}, "
                                  f"got {value!r}")
    return {"path": str(path), "rows": rows}


def _interval(value: Any) -> bool:
    return (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value))


def load_comparable_head(run: str | os.PathLike, class_names: Sequence[str], whose: str):
    """``(head, None)``: the fusion head of ``run`` (eval mode) when it loads and predicts
    ``class_names``; else ``(None, why)``, the reason it is left out (``whose`` names the classes
    it was compared with in that reason, e.g. "the method's")."""
    try:
        head, _, names_of_run = load_fusion_head(run)
    except CheckpointError as e:
        return None, str(e)
    if list(names_of_run) != list(class_names):
        return None, f"classes {names_of_run}, {whose} are {list(class_names)}"
    return head, None
