"""Evaluating a fusion run on a split: Concat-FC, each stream alone, the late-fusion baselines,
and accuracy split by modality availability.

Writes ``RUN/eval_<split>/metrics.json``, ``confusion_matrix.png`` and ``predictions.jsonl`` (one
line per clip: id, label, prediction, probabilities, availability), from which every number in
``metrics.json`` can be recomputed.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch

from media.storage import atomic_write_json, atomic_write_text
from training.metrics import classification_report, format_report, render_confusion_matrix, save_png
from fusion.features import FeatureSet
from fusion.dataset import FeatureDataset
from fusion.late import FACE_AUDIO_WEIGHTS, search_weights, weighted_score
from fusion.training import load_fusion_head


def _accuracy(pred: np.ndarray, labels: np.ndarray) -> float | None:
    return float((pred == labels).mean()) if len(labels) else None


@torch.inference_mode()
def fusion_probabilities(head, fs: FeatureSet, streams) -> np.ndarray:
    return torch.softmax(head(FeatureDataset(fs, streams).batch()), dim=1).numpy()


def evaluate_run(run: str | os.PathLike, split: str = "val", *, weights_split: str = "val") -> dict:
    """Evaluate fusion run ``run`` on ``split`` (labelled clips only); see the module docstring.
    Late-fusion weights are searched on ``weights_split`` (the method's val split)."""
    run = Path(run)
    head, recipe, class_names = load_fusion_head(run)
    streams = tuple(recipe["streams"])
    fs = FeatureSet(recipe["features"], split, streams)
    labelled = fs.labels >= 0
    if not labelled.any():
        raise ValueError(f"{recipe['features']}/{split}: no labelled clips to evaluate")
    probs = fusion_probabilities(head, fs, streams)
    labels = fs.labels[labelled]
    pred = probs.argmax(1)[labelled]
    report = classification_report(labels, pred, class_names)

    per_stream = {}
    for s in streams:
        m = fs.available[s][labelled]
        sp = fs.probs[s][labelled].argmax(1)
        per_stream[s] = {"accuracy_when_available": _accuracy(sp[m], labels[m]), "available": int(m.sum()),
                         "accuracy_all_clips": _accuracy(np.where(m, sp, -1), labels)}

    ws = fs if weights_split == split else FeatureSet(recipe["features"], weights_split, streams)
    wl = ws.labels >= 0
    weights, _ = search_weights({s: ws.probs[s][wl] for s in streams}, {s: ws.available[s][wl] for s in streams},
                                ws.labels[wl])
    avail = {s: fs.available[s][labelled] for s in streams}
    sprobs = {s: fs.probs[s][labelled] for s in streams}
    late = {"weighted_average": {"weights": weights, "weights_searched_on": weights_split,
                                 "accuracy": _accuracy(weighted_score(sprobs, avail, weights).argmax(1), labels)}}
    if all(s in streams for s in FACE_AUDIO_WEIGHTS):
        late["face0.6_audio0.4"] = {"weights": FACE_AUDIO_WEIGHTS,
                                    "accuracy": _accuracy(weighted_score(sprobs, avail, FACE_AUDIO_WEIGHTS).argmax(1), labels)}

    by_availability = {}
    for s in streams:
        m = avail[s]
        by_availability[s] = {"with": {"clips": int(m.sum()), "accuracy": _accuracy(pred[m], labels[m])},
                              "without": {"clips": int((~m).sum()), "accuracy": _accuracy(pred[~m], labels[~m])}}

    metrics = {
        "run": str(run), "head": recipe["model"]["name"], "split": split, "clips": int(labelled.sum()), "class_names": class_names,
        "accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "per_class": report["per_class"],
        "confusion_matrix": report["confusion_matrix"], "streams": per_stream, "late_fusion": late,
        "by_availability": by_availability,
    }
    out = run / f"eval_{split}"
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    ids = np.asarray(fs.clip_ids)[labelled]
    for i, cid in enumerate(ids):
        j = np.flatnonzero(labelled)[i]
        lines.append(json.dumps({"clip_id": cid, "label": int(labels[i]), "pred": int(pred[i]),
                                 "probs": [round(float(p), 6) for p in probs[j]],
                                 "available": {s: bool(fs.available[s][j]) for s in streams}}))
    atomic_write_text(out / "predictions.jsonl", "\n".join(lines) + "\n")
    save_png(out / "confusion_matrix.png", render_confusion_matrix(np.asarray(report["confusion_matrix"]), class_names))
    atomic_write_json(out / "metrics.json", metrics)
    metrics["table"] = format_report(report)
    return metrics


def format_summary(metrics: dict) -> str:
    """A table of Concat-FC, each stream and each late fusion, then the per-class table."""
    rows = [(f"{metrics.get('head', 'concat_fc')} (fusion)", metrics["accuracy"])]
    rows += [(f"{s} stream", v["accuracy_when_available"]) for s, v in metrics["streams"].items()]
    rows += [(f"late: {k}", v["accuracy"]) for k, v in metrics["late_fusion"].items()]
    w = max(len(r[0]) for r in rows)
    lines = [f"{'model'.ljust(w)}  accuracy ({metrics['split']}, {metrics['clips']} clips)"]
    lines += [f"{name.ljust(w)}  {'n/a' if acc is None else f'{acc:.3f}'}" for name, acc in rows]
    lines.append("")
    lines.append("availability: " + "; ".join(
        f"{s} with {v['with']['clips']} ({'n/a' if v['with']['accuracy'] is None else format(v['with']['accuracy'], '.3f')})"
        f" / without {v['without']['clips']} ({'n/a' if v['without']['accuracy'] is None else format(v['without']['accuracy'], '.3f')})"
        for s, v in metrics["by_availability"].items()))
    if "table" in metrics:
        lines += ["", metrics["table"]]
    return "\n".join(lines)
