"""Evaluating a fusion run (any head of :mod:`fusion.heads`) on a split: the head, each stream
alone, the late-fusion baselines, and accuracy split by modality availability.

``by_availability`` in ``metrics.json``:

* ``streams``: per stream, the head's accuracy on the clips ``with`` and ``without`` it;
* ``subsets``: per set of streams the clips actually have (``"audio+face+flow+visual"``, names
  sorted, ``"none"`` for nothing), the number of clips and the head's accuracy on them;
* ``given_only``: per non-empty set of streams, the head's accuracy on EVERY clip when it is
  given only those streams (the others marked missing, as a deployment without those sensors
  would see it); what modality dropout in training is for.

``calibration`` in ``metrics.json``: the temperature applied to the head's probabilities (the
run's, fitted on val: :mod:`training.run_calibration`; 1 with ``calibrated=False`` or for a run
saved before calibration) and their ECE, NLL and Brier score (:mod:`training.calibration`). The
accuracies do not depend on it (a temperature never changes the top class).

Writes ``RUN/eval_<split>/metrics.json``, ``confusion_matrix.png`` and ``predictions.jsonl`` (one
line per clip: id, label, prediction, probabilities, availability), from which every number in
``metrics.json`` can be recomputed.
"""
from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from core.storage import atomic_write_json, atomic_write_text
from fusion.dataset import FeatureDataset
from fusion.features import FeatureSet
from fusion.heads import FUSION_HEADS
from fusion.heads.inputs import MASK_KEY, PROBS_KEY
from fusion.late import FACE_AUDIO_WEIGHTS, refuse_test_split, search_weights, weighted_score
from fusion.training import load_fusion_head
from training import devices
from training.calibration import brier_score, expected_calibration_error, negative_log_likelihood
from training.metrics import classification_report, format_report
from training.plots import confusion_matrix_figure, save_figure
from training.run_calibration import run_temperature


def _accuracy(pred: np.ndarray, labels: np.ndarray) -> float | None:
    return float((pred == labels).mean()) if len(labels) else None


@torch.inference_mode()
def fusion_probabilities(head, fs: FeatureSet, streams: Sequence[str], *,
                         given: Sequence[str] | None = None, temperature: float = 1.0) -> np.ndarray:
    """(N, C) the head's class probabilities ``softmax(head / temperature)`` on every clip of
    ``fs``, computed on the head's device; with ``given``, only those streams are given (the others
    marked missing, their features and probabilities zeroed)."""
    device = devices.module_device(head)
    inputs = {k: v.to(device) for k, v in FeatureDataset(fs, streams).batch().items()}
    if given is not None:
        keep = torch.tensor([s in given for s in streams], dtype=torch.float32, device=device)
        inputs = {**{s: inputs[s] if s in given else torch.zeros_like(inputs[s]) for s in streams},
                  MASK_KEY: inputs[MASK_KEY] * keep, PROBS_KEY: inputs[PROBS_KEY] * keep[:, None]}
    return devices.to_host(torch.softmax(head(inputs).float() / temperature, dim=1))


def subset_name(streams: Sequence[str]) -> str:
    """``"audio+visual"``: the sorted stream names joined by ``+``; ``"none"`` when empty."""
    return "+".join(sorted(streams)) or "none"


def availability_breakdown(head, fs: FeatureSet, streams: Sequence[str], labelled: np.ndarray, pred: np.ndarray,
                           labels: np.ndarray) -> dict:
    """``by_availability`` (see the module docstring) for the labelled clips of ``fs``; ``pred``
    and ``labels`` are the head's predictions and the labels of those clips."""
    avail = {s: fs.available[s][labelled] for s in streams}
    per_stream = {}
    for s in streams:
        m = avail[s]
        per_stream[s] = {"with": {"clips": int(m.sum()), "accuracy": _accuracy(pred[m], labels[m])},
                         "without": {"clips": int((~m).sum()), "accuracy": _accuracy(pred[~m], labels[~m])}}
    have = [subset_name([s for s in streams if avail[s][i]]) for i in range(len(labels))]
    subsets = {}
    for name in sorted(set(have), key=lambda n: (-len(n.split("+")), n)):
        m = np.array([h == name for h in have])
        subsets[name] = {"clips": int(m.sum()), "accuracy": _accuracy(pred[m], labels[m])}
    given_only = {}
    for k in range(len(streams), 0, -1):
        for subset in itertools.combinations(streams, k):
            p = fusion_probabilities(head, fs, streams, given=subset)[labelled].argmax(1)
            given_only[subset_name(subset)] = {"clips": int(len(labels)), "accuracy": _accuracy(p, labels)}
    return {"streams": per_stream, "subsets": subsets, "given_only": given_only}


def late_fusion_weights(fs: FeatureSet, streams: Sequence[str]) -> dict[str, dict[str, float]]:
    """The late fusions reported beside a head, by name, with their weights: ``weighted_average``
    (grid-searched on the labelled clips of ``fs``, which must not be a test split) and
    ``face0.6_audio0.4`` (:data:`fusion.late.FACE_AUDIO_WEIGHTS`, when both streams are fused)."""
    refuse_test_split(fs.split, "the late-fusion weight search")
    keep = fs.labels >= 0
    if not keep.any():
        raise ValueError(f"{fs.split}: no labelled clips to search late-fusion weights on")
    weights, _ = search_weights({s: fs.probs[s][keep] for s in streams}, {s: fs.available[s][keep] for s in streams},
                                fs.labels[keep])
    out = {"weighted_average": weights}
    if all(s in streams for s in FACE_AUDIO_WEIGHTS):
        out["face0.6_audio0.4"] = dict(FACE_AUDIO_WEIGHTS)
    return out


def evaluate_run(run: str | os.PathLike, split: str = "val", *, weights_split: str = "val",
                 device: str = "cpu", calibrated: bool = True) -> dict:
    """Evaluate fusion run ``run`` on ``split`` (labelled clips only), its head on ``device``; see
    the module docstring. Late-fusion weights are searched on ``weights_split`` (the method's val
    split; a test split is refused), before ``split`` is read. ``calibrated``: the head's
    probabilities with the run's temperature (else the raw ones)."""
    refuse_test_split(weights_split, "weights_split")
    run = Path(run)
    head, recipe, class_names = load_fusion_head(run)
    return evaluate_head(head.to(device), recipe, class_names, features=recipe["features"], split=split,
                         weights_split=weights_split, out=run / f"eval_{split}", name=str(run),
                         temperature=run_temperature(run) if calibrated else None)


def evaluate_head(head, recipe: dict, class_names: list[str], *, features: str | os.PathLike, split: str,
                  weights_split: str, out: str | os.PathLike, name: str, temperature: float | None) -> dict:
    """:func:`evaluate_run`'s work for any ``head`` (a fusion head, or a release bundle's: anything
    called on the inputs of :mod:`fusion.heads.inputs` that returns logits) over ``recipe``'s
    ``streams`` (its ``model.name`` titles it) on the feature directory ``features``; writes
    ``out``/metrics.json, confusion_matrix.png, predictions.jsonl. ``temperature``: the head's
    calibration (None: raw probabilities); ``name``: the ``run`` recorded in metrics.json."""
    refuse_test_split(weights_split, "weights_split")
    calibrated, temperature = temperature is not None, 1.0 if temperature is None else float(temperature)
    streams = tuple(recipe["streams"])
    ws = FeatureSet(features, weights_split, streams)
    late_weights = late_fusion_weights(ws, streams)
    fs = ws if weights_split == split else FeatureSet(features, split, streams)
    labelled = fs.labels >= 0
    if not labelled.any():
        raise ValueError(f"{features}/{split}: no labelled clips to evaluate")
    probs = fusion_probabilities(head, fs, streams, temperature=temperature)
    labels = fs.labels[labelled]
    pred = probs.argmax(1)[labelled]
    report = classification_report(labels, pred, class_names)

    per_stream = {}
    for s in streams:
        m = fs.available[s][labelled]
        sp = fs.probs[s][labelled].argmax(1)
        per_stream[s] = {"accuracy_when_available": _accuracy(sp[m], labels[m]), "available": int(m.sum()),
                         "accuracy_all_clips": _accuracy(np.where(m, sp, -1), labels)}

    avail = {s: fs.available[s][labelled] for s in streams}
    sprobs = {s: fs.probs[s][labelled] for s in streams}
    late = {name: {"weights": w, **({"weights_searched_on": weights_split} if name == "weighted_average" else {}),
                   "accuracy": _accuracy(weighted_score(sprobs, avail, w).argmax(1), labels)}
            for name, w in late_weights.items()}

    by_availability = availability_breakdown(head, fs, streams, labelled, pred, labels)

    metrics = {
        "run": name, "head": recipe["model"]["name"], "split": split, "clips": int(labelled.sum()),
        "class_names": class_names,
        "accuracy": report["accuracy"], "macro_f1": report["macro_f1"], "per_class": report["per_class"],
        "confusion_matrix": report["confusion_matrix"], "streams": per_stream, "late_fusion": late,
        "by_availability": by_availability,
        "calibration": {"applied": calibrated, "temperature": temperature,
                        "ece": expected_calibration_error(labels, probs[labelled]),
                        "nll": negative_log_likelihood(labels, probs[labelled]),
                        "brier": brier_score(labels, probs[labelled])},
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    ids = np.asarray(fs.clip_ids)[labelled]
    for i, cid in enumerate(ids):
        j = np.flatnonzero(labelled)[i]
        lines.append(json.dumps({"clip_id": cid, "label": int(labels[i]), "pred": int(pred[i]),
                                 "probs": [round(float(p), 6) for p in probs[j]],
                                 "available": {s: bool(fs.available[s][j]) for s in streams}}))
    atomic_write_text(out / "predictions.jsonl", "\n".join(lines) + "\n")
    save_figure(out / "confusion_matrix.png", confusion_matrix_figure(report["confusion_matrix"], class_names,
                                                                      title=f"{recipe['model']['name']}, {split}"))
    atomic_write_json(out / "metrics.json", metrics)
    metrics["table"] = format_report(report)
    return metrics


def _acc_text(acc: float | None) -> str:
    return "n/a" if acc is None else f"{acc:.3f}"


def format_summary(metrics: dict) -> str:
    """A table of the fusion head, each stream and each late fusion, the availability breakdown,
    then the per-class table."""
    head = metrics.get("head", "concat_fc")
    title = FUSION_HEADS[head].title if head in FUSION_HEADS else head
    rows = [(f"{title} (fusion)", metrics["accuracy"])]
    rows += [(f"{s} stream", v["accuracy_when_available"]) for s, v in metrics["streams"].items()]
    rows += [(f"late: {k}", v["accuracy"]) for k, v in metrics["late_fusion"].items()]
    w = max(len(r[0]) for r in rows)
    lines = [f"{'model'.ljust(w)}  accuracy ({metrics['split']}, {metrics['clips']} clips)"]
    lines += [f"{name.ljust(w)}  {_acc_text(acc)}" for name, acc in rows]
    cal = metrics.get("calibration")
    if cal:
        what = f"calibrated, temperature {cal['temperature']:.3f}" if cal["applied"] else "raw (--no-calibration)"
        lines += ["", f"{title} probabilities, {what}: ECE {cal['ece']:.3f}, NLL {cal['nll']:.3f}, "
                      f"Brier {cal['brier']:.3f}"]
    by = metrics["by_availability"]
    lines.append("")
    lines.append("availability: " + "; ".join(
        f"{s} with {v['with']['clips']} ({_acc_text(v['with']['accuracy'])})"
        f" / without {v['without']['clips']} ({_acc_text(v['without']['accuracy'])})"
        for s, v in by["streams"].items()))
    lines.append("clips by the streams they have: " + "; ".join(
        f"{name} {v['clips']} ({_acc_text(v['accuracy'])})" for name, v in by["subsets"].items()))
    lines.append("every clip given only: " + "; ".join(
        f"{name} {_acc_text(v['accuracy'])}" for name, v in by["given_only"].items()))
    if "table" in metrics:
        lines += ["", metrics["table"]]
    return "\n".join(lines)
