"""The results report of a runs directory: every model on val and test, with uncertainty.

:func:`build_report` finds the runs under a root by what their checkpoints record (a stream run's
config names its ``stream``; a fusion run's names its head, ``streams`` and ``features``), takes
the method (the Concat-FC run) and its feature directory, and scores on the same clips:

* each stream alone (its own class probabilities from the feature cache; a clip without the
  modality gets uniform probabilities, as a late fusion of that stream alone would);
* each late fusion of :func:`fusion.evaluation.late_fusion_weights` (weights chosen on val);
* each fusion run found (every head of the family present);
* Concat-FC trained without each stream in turn, with the method's recipe on the method's
  train features (cached in ``OUT/leave_one_out/without_<stream>``; a re-run reuses them, and
  retrains one whose features or recipe changed).

Per model and split: accuracy with a percentile bootstrap interval (clips resampled), macro F1,
per-class precision/recall/F1, macro one-vs-rest ROC AUC and McNemar's p-value against the method
on the same clips (:mod:`training.statistics`). Nothing is chosen on test: every choice (the
checkpoints, inside :func:`training.loop.fit`; the late-fusion weights; the stream drawn beside the
method in the curves) is made on train or val, and the test features are read only after the last
of them. :func:`write_report` writes ``report.json``, ``report.md`` and the figures
(:mod:`training.plots`): ``roc_curves.png``, ``pr_curves.png``, ``confusion_<model>.png`` (every
model but the leave-one-out heads) and ``contributions.png``, on test when it is labelled, else
on val.
"""
from __future__ import annotations

import datetime as _dt
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from core.storage import atomic_write_json, atomic_write_text, config_hash, read_json
from fusion.evaluation import fusion_probabilities, late_fusion_weights
from fusion.features import FeatureSet
from fusion.heads import DEFAULT_HEAD, FUSION_HEADS
from fusion.late import weighted_score
from fusion.training import load_fusion_head, train_fusion_head
from streams.cache import PIPELINE_FILE
from streams.specs import STREAM_SPECS
from training.checkpoints import CheckpointError, checkpoint_hash, read_meta
from training.plots import confusion_matrix_figure, contributions_figure, pr_figure, roc_figure, save_figure
from training.run_directory import RunConfigMismatchError
from training.statistics import (
    CONFIDENCE,
    DRAWS,
    bootstrap_accuracy_difference,
    mcnemar_test,
    pr_curves,
    roc_curves,
    score_classifier,
)

log = logging.getLogger(__name__)

#: the split every choice is made on, and the split nothing is chosen on
SELECTION_SPLIT = "val"
HELD_OUT_SPLIT = "test"
REPORT_SPLITS = (SELECTION_SPLIT, HELD_OUT_SPLIT)
LEAVE_ONE_OUT_DIR = "leave_one_out"
#: where ``tools/ablate.py keyframes`` writes its table, relative to the runs root
DEFAULT_ABLATION = Path("ablation") / "ablation.json"
ABLATION_KEYS = ("selection", "salient_recall", "val_accuracy")
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
            record["pipeline"] = {**pipeline, "streams": {s: v for s, v in pipeline["streams"].items() if s != left_out}}
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


@dataclass
class Scored:
    """One model's outputs on one split: its labelled clips (ids), their labels (N,) and its class
    probabilities (N, C); ``kind`` is the model's row kind, ``run`` its run directory if any."""

    kind: str
    clip_ids: list[str]
    labels: np.ndarray
    probs: np.ndarray
    run: str | None = None


@dataclass
class Report:
    """What :func:`build_report` found: ``data`` (the content of ``report.json``) and ``scored``
    (split -> model name -> :class:`Scored`, the per-clip outputs the figures are drawn from)."""

    data: dict
    scored: dict[str, dict[str, Scored]]


class _Splits:
    """FeatureSets by (feature dir, split, streams), each read once."""

    def __init__(self) -> None:
        self._sets: dict[tuple, FeatureSet | None] = {}

    def get(self, features: Path, split: str, streams: Sequence[str]) -> FeatureSet | None:
        key = (str(Path(features).resolve()), split, tuple(streams))
        if key not in self._sets:
            try:
                self._sets[key] = FeatureSet(features, split, tuple(streams))
            except FileNotFoundError:
                self._sets[key] = None
        return self._sets[key]


def _labelled(kind: str, fs: FeatureSet, probs: np.ndarray, run: str | os.PathLike | None = None) -> Scored:
    keep = fs.labels >= 0
    return Scored(kind, [c for c, k in zip(fs.clip_ids, keep) if k], fs.labels[keep],
                  np.asarray(probs, np.float64)[keep], None if run is None else str(run))


def build_report(root: str | os.PathLike, out_dir: str | os.PathLike, *, method: str | os.PathLike | None = None,
                 ablation: str | os.PathLike | None = None, draws: int = DRAWS, seed: int = 0) -> Report:
    """Score every model of the runs under ``root`` on val and test (see the module docstring),
    training the leave-one-stream-out heads into ``out_dir/leave_one_out``; returns the
    :class:`Report` (its ``data`` is the content of ``report.json``, see :func:`write_report`).
    ``method``: the method's run (default: the one Concat-FC run found). ``ablation``: a
    ``tools/ablate.py keyframes`` table (default ``root/ablation/ablation.json`` when it exists).
    ``draws``/``seed``: the bootstrap's. A fusion run whose head cannot be loaded or whose classes
    differ from the method's is left out, with the reason under ``provenance.not_scored``."""
    root, out_dir = Path(root), Path(out_dir)
    found = find_runs(root, exclude=[out_dir])
    chosen = choose_method(found, method)
    ablation_table = read_ablation(ablation if ablation is not None else root / DEFAULT_ABLATION,
                                   required=ablation is not None)
    splits = _Splits()

    # --- every choice, on train and val only
    loo_runs = train_leave_one_out(chosen, out_dir / LEAVE_ONE_OUT_DIR)
    val_fs = splits.get(chosen.features, SELECTION_SPLIT, chosen.streams)
    if val_fs is None or not (val_fs.labels >= 0).any():
        raise ReportError(f"{chosen.features}: no labelled {SELECTION_SPLIT} features for the method's streams")
    late = late_fusion_weights(val_fs, chosen.streams)
    method_head, _, class_names = load_fusion_head(chosen.path)
    heads, not_scored = {chosen.path: method_head}, {}
    for run in found.fusion:
        if run.path == chosen.path:
            continue
        try:
            head, _, names_of_run = load_fusion_head(run.path)
        except CheckpointError as e:
            not_scored[str(run.path)] = str(e)
            continue
        if names_of_run != class_names:
            not_scored[str(run.path)] = f"classes {names_of_run}, the method's are {class_names}"
            continue
        heads[run.path] = head
    runs = [r for r in found.fusion if r.path in heads]
    loo_heads = {s: (load_fusion_head(run)[0], run) for s, run in loo_runs.items()}
    names = _model_names(chosen, runs)

    rows: list[dict] = []
    scored_by_split: dict[str, dict[str, Scored]] = {}
    split_info: dict[str, dict] = {}
    best_stream = None
    for split in REPORT_SPLITS:  # val first: the stream shown beside the method is picked there
        fs = splits.get(chosen.features, split, chosen.streams)
        if fs is None:
            split_info[split] = {"scored": False, "why": f"no {split} features in {chosen.features}"}
            continue
        if not (fs.labels >= 0).any():
            split_info[split] = {"scored": False, "why": f"the {split} clips are unlabelled"}
            continue
        scored = _score_models(chosen, runs, heads, loo_heads, late, fs, splits, names)
        scored_by_split[split] = scored
        method_scored = scored[names[chosen.path]]
        split_info[split] = {"scored": True, "clips": len(method_scored.labels), "unlabelled": int((fs.labels < 0).sum())}
        method_pred = method_scored.probs.argmax(1)
        for name, model in scored.items():
            same = model.clip_ids == method_scored.clip_ids
            rows.append(_row(name, split, model, class_names,
                             method_pred=None if name == names[chosen.path] or not same else method_pred,
                             draws=draws, seed=seed))
        if split == SELECTION_SPLIT:
            stream_rows = [r for r in rows if r["kind"] == "stream" and r["split"] == split]
            best_stream = max(stream_rows, key=lambda r: r["accuracy"])["name"] if stream_rows else None

    contributions = {}
    for split, scored in scored_by_split.items():
        m = scored[names[chosen.path]]
        contributions[split] = {
            s: bootstrap_accuracy_difference(m.labels, m.probs.argmax(1), scored[left_out_name(chosen, s)]
                                             .probs.argmax(1), draws=draws, seed=seed)
            for s in loo_runs}
    figure_split = HELD_OUT_SPLIT if HELD_OUT_SPLIT in scored_by_split else SELECTION_SPLIT
    data = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "root": str(root), "out_dir": str(out_dir),
        "method": {"name": names[chosen.path], "run": str(chosen.path), "head": chosen.head,
                   "streams": list(chosen.streams), "features": str(chosen.features)},
        "class_names": class_names,
        "settings": {"draws": draws, "seed": seed, "confidence": CONFIDENCE,
                     "interval": "percentile bootstrap over the split's clips",
                     "p_vs_method": "McNemar's test against the method on the same clips "
                                    "(exact binomial below 25 discordant clips)"},
        "splits": split_info,
        "selection": {"split": SELECTION_SPLIT, "late_fusion_weights": late, "best_stream": best_stream,
                      "leave_one_out_runs": {s: str(p) for s, p in loo_runs.items()}},
        "rows": rows,
        "contributions": contributions,
        "figure_split": figure_split,
        "keyframe_ablation": ablation_table,
        "provenance": {**_provenance(chosen, found, splits), "not_scored": not_scored},
    }
    return Report(data=data, scored=scored_by_split)


def _model_names(method: FusionRun, runs: Sequence[FusionRun]) -> dict[Path, str]:
    """A unique row name per fusion run: its head's title (the method's marked), with the run's
    directory added when two runs share a title."""
    titles = [r.title for r in runs]
    names = {}
    for r in runs:
        name = r.title if titles.count(r.title) == 1 else f"{r.title} [{r.path.name}]"
        names[r.path] = f"{r.title} (the method)" if r.path == method.path else name
    names.setdefault(method.path, f"{method.title} (the method)")
    return names


def left_out_name(method: FusionRun, stream: str) -> str:
    """The row name of the method's head retrained without ``stream``."""
    return f"{method.title} without {stream}"


def _score_models(method: FusionRun, runs: Sequence[FusionRun], heads: Mapping[Path, Any],
                  loo_heads: Mapping[str, Any], late: Mapping[str, Mapping[str, float]], fs: FeatureSet,
                  splits: _Splits, names: Mapping[Path, str]) -> dict[str, Scored]:
    """Every model's outputs on the labelled clips of split ``fs`` (the method's features): the
    streams, the late fusions, the method, every other fusion run (on its own features of that
    split, when it has them) and the leave-one-out heads, in that order."""
    out: dict[str, Scored] = {}
    for s in method.streams:
        out[f"{s} stream"] = _labelled("stream", fs, weighted_score({s: fs.probs[s]}, {s: fs.available[s]}, {s: 1.0}),
                                       fs.stream_info[s].get("run"))
    for key, weights in late.items():
        out[LATE_TITLES.get(key, f"late: {key}")] = _labelled(
            "late_fusion", fs, weighted_score({s: fs.probs[s] for s in method.streams},
                                              {s: fs.available[s] for s in method.streams}, weights))
    out[names[method.path]] = _labelled("fusion_head", fs, fusion_probabilities(heads[method.path], fs, method.streams),
                                        method.path)
    for run in runs:
        if run.path == method.path:
            continue
        own = splits.get(run.features, fs.split, run.streams)
        if own is None or not (own.labels >= 0).any():
            log.info("%s: no labelled %s features in %s; left out of that split", run.path, fs.split, run.features)
            continue
        out[names[run.path]] = _labelled("fusion_head", own, fusion_probabilities(heads[run.path], own, run.streams),
                                         run.path)
    for s, (head, run) in loo_heads.items():
        keep = tuple(x for x in method.streams if x != s)
        out[left_out_name(method, s)] = _labelled("leave_one_out", fs, fusion_probabilities(head, fs, keep), run)
    return out


def _row(name: str, split: str, model: Scored, class_names: Sequence[str], *,
         method_pred: np.ndarray | None, draws: int, seed: int) -> dict:
    """One row of ``report.json`` (see :func:`write_report`)."""
    s = score_classifier(model.labels, model.probs, class_names, draws=draws, seed=seed)
    mc = None if method_pred is None else mcnemar_test(model.labels, method_pred, model.probs.argmax(1))
    return {"name": name, "kind": model.kind, "split": split, "run": model.run, "clips": s["num_samples"],
            "accuracy": s["accuracy"], "ci95": s["interval"], "macro_f1": s["macro_f1"], "roc_auc": s["roc_auc"],
            "p_vs_method": None if mc is None else mc["p_value"], "mcnemar": mc, "per_class": s["per_class"],
            "roc_auc_per_class": s["roc_auc_per_class"], "roc_auc_skipped": s["roc_auc_skipped"],
            "confusion_matrix": s["confusion_matrix"]}


def _provenance(method: FusionRun, found: FoundRuns, splits: _Splits) -> dict:
    """Which stream runs made the method's features, whether their checkpoints are still the ones
    the features and the method recorded, and the runs found but not reported."""
    recorded = ((method.recipe.get("pipeline") or {}).get("streams")) or {}
    fs = splits.get(method.features, SELECTION_SPLIT, method.streams)
    streams, warnings = {}, []
    for s in method.streams:
        info = fs.stream_info[s]
        run = Path(info["run"])
        try:
            now = checkpoint_hash(run)
        except CheckpointError:
            now = None
        streams[s] = {"run": str(run), "features_checkpoint_hash": info.get("checkpoint_hash"),
                      "checkpoint_hash_now": now,
                      "method_trained_on": (recorded.get(s) or {}).get("checkpoint_hash")}
        if now is None:
            warnings.append(f"{s}: its run {run} is gone or unreadable")
        elif now != info.get("checkpoint_hash"):
            warnings.append(f"{s}: {run} changed after the features were extracted (re-run tools/extract_features.py)")
        if recorded.get(s) and recorded[s].get("checkpoint_hash") != info.get("checkpoint_hash"):
            warnings.append(f"{s}: the features were re-extracted after {method.path} was trained (retrain it)")
    used = {Path(v["run"]).resolve() for v in streams.values()}
    return {"streams": streams, "warnings": warnings,
            "fusion_runs": [str(r.path) for r in found.fusion],
            "other_stream_runs": {str(p): s for p, s in found.streams.items() if p.resolve() not in used},
            "unreadable_runs": {str(p): why for p, why in found.unreadable.items()}}


def read_ablation(path: str | os.PathLike, *, required: bool) -> dict | None:
    """The keyframe ablation table ``{"path", "rows": [{"selection", "salient_recall",
    "val_accuracy", ...}]}`` of ``tools/ablate.py keyframes``, or None when ``path`` does not
    exist and is not ``required``. :class:`ReportError` naming the file for a malformed table."""
    path = Path(path)
    data = read_json(path)
    if data is None:
        if required:
            raise ReportError(f"{path}: no keyframe ablation table here (run tools/ablate.py keyframes)")
        return None
    rows = data.get("rows") if isinstance(data, dict) else None
    if not isinstance(rows, list) or not rows:
        raise ReportError(f"{path}: expected {{\"rows\": [...]}} with one row per keyframe selection")
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or any(k not in row for k in ABLATION_KEYS):
            raise ReportError(f"{path}: row {i} lacks one of {', '.join(ABLATION_KEYS)}")
        for k in ABLATION_KEYS[1:]:
            if row[k] is not None and (isinstance(row[k], bool) or not isinstance(row[k], (int, float))):
                raise ReportError(f"{path}: row {i}: {k} must be a number or null, got {row[k]!r}")
    return {"path": str(path), "rows": rows}


# ------------------------------------------------------------------------------------------ output

def slug(name: str) -> str:
    """A file-name part for a model name: ``"Concat-FC (the method)"`` -> ``"concat_fc_the_method"``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "model"


def write_report(report: Report, out_dir: str | os.PathLike) -> dict[str, str]:
    """Write ``report.json`` (``report.data`` with the figures' paths), ``report.md`` and the
    figures into ``out_dir``; returns ``{what: path}`` of what was written.

    ``report.json``'s ``rows``: one per model and scored split, ``{"name", "kind": "stream" |
    "late_fusion" | "fusion_head" | "leave_one_out", "split": "val" | "test", "clips",
    "accuracy", "ci95": [lo, hi], "macro_f1", "roc_auc" (macro one-vs-rest, null when no class
    is scorable), "p_vs_method" (null for the method itself), "mcnemar", "per_class": {class:
    {"precision", "recall", "f1", "support"}}, "roc_auc_per_class", "confusion_matrix"}``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scored, data = report.scored, report.data
    split = data["figure_split"]
    method = data["method"]["name"]
    names = data["class_names"]
    written: dict[str, str] = {}
    if split in scored:
        models = scored[split]
        shown = [method] + ([data["selection"]["best_stream"]] if data["selection"]["best_stream"] else [])
        n = len(models[method].labels)
        for what, curves, draw in (("roc_curves", roc_curves, roc_figure), ("pr_curves", pr_curves, pr_figure)):
            fig = draw({m: curves(models[m].labels, models[m].probs, names) for m in shown},
                       title=f"{split} split ({n} clips), one vs rest")
            save_figure(out_dir / f"{what}.png", fig)
            written[what] = str(out_dir / f"{what}.png")
        used: set[str] = set()
        for row in (r for r in data["rows"] if r["split"] == split and r["kind"] != "leave_one_out"):
            name = slug(row["name"])
            name = next(f"{name}_{k}" if k else name for k in range(len(used) + 1)
                        if (f"{name}_{k}" if k else name) not in used)
            used.add(name)
            path = out_dir / f"confusion_{name}.png"
            save_figure(path, confusion_matrix_figure(row["confusion_matrix"], names,
                                                      title=f"{row['name']}\n{split}, {row['clips']} clips"))
            written[f"confusion {row['name']}"] = str(path)
        for old in out_dir.glob("confusion_*.png"):  # models an earlier report had and this one has not
            if str(old) not in written.values():
                old.unlink()
        if data["contributions"].get(split):
            fig = contributions_figure(data["contributions"][split],
                                       title=f"accuracy lost without each stream ({split}, {n} clips)")
            save_figure(out_dir / "contributions.png", fig)
            written["contributions"] = str(out_dir / "contributions.png")
    public = {**data, "figures": dict(written)}
    atomic_write_json(out_dir / "report.json", public)
    written["json"] = str(out_dir / "report.json")
    atomic_write_text(out_dir / "report.md", format_markdown(public))
    written["markdown"] = str(out_dir / "report.md")
    return written


def _acc(row: Mapping | None) -> str:
    if row is None:
        return "n/a"
    lo, hi = row["ci95"]
    return f"{row['accuracy']:.3f} [{lo:.3f}, {hi:.3f}]"


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    if value is None:
        return "—"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _points(d: Mapping) -> str:
    lo, hi = d["interval"]
    return f"{100 * d['difference']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"


def _scored_splits(report: Mapping) -> list[str]:
    return [s for s in REPORT_SPLITS if report["splits"].get(s, {}).get("scored")]


def format_table(report: Mapping) -> str:
    """The models as a text table: accuracy with its interval on each scored split, then the
    macro F1, ROC AUC and McNemar p of the last (held-out) split."""
    splits = _scored_splits(report)
    by = {(r["name"], r["split"]): r for r in report["rows"]}
    names = list(dict.fromkeys(r["name"] for r in report["rows"]))
    last = splits[-1]
    head = ["model"] + [f"{s} acc [95% CI] ({report['splits'][s]['clips']} clips)" for s in splits] + \
           [f"{last} F1", f"{last} AUC", f"{last} p vs method"]
    lines = [[n] + [_acc(by.get((n, s))) for s in splits]
             + [_num((by.get((n, last)) or {}).get("macro_f1")), _num((by.get((n, last)) or {}).get("roc_auc")),
                _p((by.get((n, last)) or {}).get("p_vs_method"))] for n in names]
    widths = [max(len(x[i]) for x in [head] + lines) for i in range(len(head))]
    text = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
            for row in [head] + lines]
    for s in REPORT_SPLITS:
        if not report["splits"].get(s, {}).get("scored") and s in report["splits"]:
            text.append(f"({s}: not scored, {report['splits'][s]['why']})")
    return "\n".join(text)


def format_markdown(report: Mapping) -> str:
    """``report.md``: the tables per split, per-class metrics, the streams' contributions, the
    keyframe ablation when present, how to read the intervals, and the provenance."""
    cfg = report["settings"]
    method = report["method"]
    md = [f"# Results report: `{report['root']}`", "",
          f"Method: **{method['name']}** (`{method['run']}`), streams {', '.join(method['streams'])}, "
          f"features `{method['features']}`. Written {report['created']}.", "",
          f"Accuracy: point estimate and {100 * cfg['confidence']:.0f} % {cfg['interval']} "
          f"({cfg['draws']:,} resamples, seed {cfg['seed']}). p vs method: {cfg['p_vs_method']}. "
          "ROC AUC: macro one-vs-rest. Every choice (checkpoints, late-fusion weights, the stream drawn "
          f"beside the method) was made on {report['selection']['split']}; nothing was chosen on "
          f"{HELD_OUT_SPLIT}.", ""]
    for split in REPORT_SPLITS:
        info = report["splits"].get(split)
        if info is None:
            continue
        role = "selection split: optimistic for what was chosen on it" if split == SELECTION_SPLIT else \
            "held out: nothing chosen on it"
        if not info.get("scored"):
            md += [f"## {split}", "", f"Not scored: {info['why']}.", ""]
            continue
        md += [f"## {split} ({info['clips']} clips; {role})", "",
               "| model | accuracy [95 % CI] | macro F1 | ROC AUC | p vs method |", "|---|---|---|---|---|"]
        for r in (r for r in report["rows"] if r["split"] == split):
            name = f"**{r['name']}**" if r["name"] == method["name"] else r["name"]
            md.append(f"| {name} | {_acc(r)} | {_num(r['macro_f1'])} | {_num(r['roc_auc'])} | {_p(r['p_vs_method'])} |")
        md.append("")
    classes = report["class_names"]
    for split in _scored_splits(report):
        md += [f"### Per-class precision / recall / F1 ({split})", "",
               "| model | " + " | ".join(f"{c} P / R / F1" for c in classes) + " |",
               "|---|" + "---|" * len(classes)]
        for r in (r for r in report["rows"] if r["split"] == split):
            cells = [f"{r['per_class'][c]['precision']:.2f} / {r['per_class'][c]['recall']:.2f} / "
                     f"{r['per_class'][c]['f1']:.2f}" for c in classes]
            md.append(f"| {r['name']} | " + " | ".join(cells) + " |")
        md.append("")
    contrib = report["contributions"]
    if any(contrib.values()):
        splits = [s for s in REPORT_SPLITS if contrib.get(s)]
        md += ["## What each stream contributes", "",
               f"Accuracy of {method['name']} minus the same head retrained without the stream, in points, with "
               "a paired bootstrap interval (both scored on the same resampled clips). Positive: the stream helps.", "",
               "| left out | " + " | ".join(splits) + " |", "|---|" + "---|" * len(splits)]
        for s in next(contrib[x] for x in splits):
            md.append(f"| {s} | " + " | ".join(_points(contrib[x][s]) for x in splits) + " |")
        md.append("")
    figures = report.get("figures", {})
    if figures:
        md += [f"## Figures ({report['figure_split']} split)", ""]
        for key in ("roc_curves", "pr_curves", "contributions"):
            if key in figures:
                md.append(f"- {key.replace('_', ' ')}: `{Path(figures[key]).name}`")
        cms = [Path(v).name for k, v in figures.items() if k.startswith("confusion ")]
        if cms:
            md.append("- confusion matrices (counts and row percentages): " + ", ".join(f"`{c}`" for c in cms))
        md.append("")
    ablation = report.get("keyframe_ablation")
    if ablation:
        md += ["## Keyframe ablation", "", f"From `{ablation['path']}` (`tools/ablate.py keyframes`).", "",
               "| selection | salient recall | val accuracy |", "|---|---|---|"]
        md += [f"| {r['selection']} | {_num(r['salient_recall'])} | {_num(r['val_accuracy'])} |" for r in ablation["rows"]]
        md.append("")
    md += ["## Reading the intervals", "", INTERVALS_NOTE, ""]
    prov = report["provenance"]
    md += ["## Provenance", "", "| stream | run | checkpoint (features) | checkpoint now |", "|---|---|---|---|"]
    md += [f"| {s} | `{v['run']}` | {v['features_checkpoint_hash']} | {v['checkpoint_hash_now'] or 'missing'} |"
           for s, v in prov["streams"].items()]
    md.append("")
    md += [f"- warning: {w}" for w in prov["warnings"]]
    if report["selection"]["late_fusion_weights"]:
        md.append("- late-fusion weights (chosen on val): " + "; ".join(
            f"{k}: " + ", ".join(f"{s} {w:g}" for s, w in v.items())
            for k, v in report["selection"]["late_fusion_weights"].items()))
    md += [f"- not scored: `{p}` ({why})" for p, why in prov.get("not_scored", {}).items()]
    if prov["other_stream_runs"]:
        md.append("- stream runs found but not behind the method's features: "
                  + ", ".join(f"`{p}` ({s})" for p, s in prov["other_stream_runs"].items()))
    return "\n".join(md) + "\n"


INTERVALS_NOTE = (
    "An interval is the spread of the accuracy over resamples of the split's clips: it says how "
    "much the number would move on another draw of clips of the same kind, not how much training "
    "noise there is. On 60 clips it is wide: at 80 % accuracy the 95 % interval is about ±10 "
    "points, at 50 % about ±12, because one clip is 1.7 points. Two models whose intervals overlap "
    "can still differ reliably, and two ±12-point intervals say little about a 5-point gap. Both "
    "models were scored on the same clips, so most of that spread is shared (the hard clips are "
    "hard for both); McNemar's test looks only at the clips where exactly one of the two is right "
    "and asks whether those split unevenly, which is the sharper question. E.g. a 10-point gap on "
    "60 clips that comes from 6 clips only the method gets right and none the other way gives "
    "p = 0.03; the same gap from 9 against 3 gives p = 0.15. The contribution intervals are paired "
    "the same way. Val numbers of anything chosen on val (every checkpoint, the searched late-fusion "
    "weights) are optimistic; test is the estimate.")
