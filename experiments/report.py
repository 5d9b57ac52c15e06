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
on the same clips (:mod:`training.statistics`); ECE, NLL and Brier score with their intervals, raw
and after temperature scaling (:mod:`experiments.report_calibration`). Nothing is chosen on test:
every choice (the checkpoints, inside :func:`training.loop.fit`; the late-fusion weights; the
stream drawn beside the method in the curves) is made on train or val, and the test features are
read only after the last of them; each model's temperature is fitted on its val probabilities
alone. :func:`write_report` writes ``report.json``, ``report.md`` and the figures
(:mod:`training.plots`): ``roc_curves.png``, ``pr_curves.png``, ``confusion_<model>.png`` (every
model but the leave-one-out heads), ``reliability.png`` (a panel per model, the same models) and
``contributions.png``, on test when it is labelled, else on val.

The report's parts: :mod:`experiments.report_runs` finds the runs, the method and the ablation
table and trains the leave-one-out heads; this module scores the models (the bootstrap, McNemar)
and writes the files; :mod:`experiments.report_markdown` turns ``report.json`` into text.
"""
from __future__ import annotations

import datetime as _dt
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from core.storage import atomic_write_json, atomic_write_text
from experiments.report_calibration import (
    RELIABILITY_FIGURE,
    add_calibration,
    reliability_data,
    write_reliability_figure,
)
from experiments.report_markdown import format_markdown, format_table
from experiments.report_runs import (
    DEFAULT_ABLATION,
    HELD_OUT_SPLIT,
    LATE_TITLES,
    LEAVE_ONE_OUT_DIR,
    REPORT_SPLITS,
    SELECTION_SPLIT,
    FoundRuns,
    FusionRun,
    ReportError,
    choose_method,
    find_runs,
    load_comparable_head,
    read_ablation,
    train_leave_one_out,
)
from fusion.evaluation import fusion_probabilities, late_fusion_weights
from fusion.features import FeatureSet
from fusion.late import weighted_score
from fusion.training import load_fusion_head
from training.checkpoints import CheckpointError, checkpoint_hash
from training.plots import confusion_matrix_figure, contributions_figure, pr_figure, roc_figure, save_figure
from training.statistics import (
    CONFIDENCE,
    DRAWS,
    bootstrap_accuracy_difference,
    mcnemar_test,
    pr_curves,
    roc_curves,
    score_classifier,
)

#: what callers of the report import from here (``tools/report.py``, the tests)
__all__ = ["Report", "ReportError", "Scored", "build_report", "format_markdown", "format_table", "left_out_name",
           "slug", "write_report"]

log = logging.getLogger(__name__)


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
        head, why = load_comparable_head(run.path, class_names, "the method's")
        if head is None:
            not_scored[str(run.path)] = why
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
        split_info[split] = {"scored": True, "clips": len(method_scored.labels),
                             "unlabelled": int((fs.labels < 0).sum())}
        method_pred = method_scored.probs.argmax(1)
        for name, model in scored.items():
            same = model.clip_ids == method_scored.clip_ids
            rows.append(_row(name, split, model, class_names,
                             method_pred=None if name == names[chosen.path] or not same else method_pred,
                             draws=draws, seed=seed))
        if split == SELECTION_SPLIT:
            stream_rows = [r for r in rows if r["kind"] == "stream" and r["split"] == split]
            best_stream = max(stream_rows, key=lambda r: r["accuracy"])["name"] if stream_rows else None

    add_calibration(rows, scored_by_split, draws=draws, seed=seed)  # temperatures fitted on val
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
        "reliability": reliability_data(rows, scored_by_split, figure_split) if scored_by_split else None,
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
    {"precision", "recall", "f1", "support"}}, "roc_auc_per_class", "confusion_matrix", "ece",
    "ece_ci95", "nll", "nll_ci95", "brier", "brier_ci95", "calibrated": {"temperature" (fitted on
    val), "fitted_on", "ece", "nll", "brier" and their "_ci95"}}`` (:mod:`experiments.report_calibration`);
    ``reliability``: the reliability diagrams' bins of the figure split, drawn in ``reliability.png``.
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
        if data.get("reliability") and write_reliability_figure(data["reliability"], out_dir):
            written["reliability"] = str(out_dir / RELIABILITY_FIGURE)
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
