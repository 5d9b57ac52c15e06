"""Calibration in the results report: is each model's 0.9 a 90 %, before and after temperature
scaling?

:func:`add_calibration` gives every row of ``report.json`` (each stream, late fusion, fusion
head and leave-one-out head, on val and test):

* ``ece``, ``nll``, ``brier`` and their ``_ci95`` (:func:`training.calibration.calibration_scores`,
  the same bootstrap resamples as the accuracy interval) of the probabilities the row is scored on;
* ``calibrated``: ``{"temperature", "fitted_on": "val", "at_bound", "ece", "ece_ci95", "nll",
  "nll_ci95", "brier", "brier_ci95"}``: the same scores after temperature scaling, the temperature fitted on
  that model's val probabilities (their logarithms, so one rule serves the streams, the late
  fusions and every head) and applied to the row's split. On val the calibrated figures are
  in-sample (the temperature was fitted there); on test they are the estimate. A model without
  val probabilities gets ``temperature`` None and no calibrated figures. ``at_bound``: the fit
  reached a bound of :data:`training.calibration.TEMPERATURE_BOUNDS` (at the upper one the model's
  val probabilities carry no information its NLL can use, and the calibrated ones are uniform).

Fitting on the report's own val probabilities is what a run's ``calibration.json`` holds for a
fusion head (the same val features; :func:`fusion.training.calibrate_fusion_run`); for a stream the
report fits on the stream's cached feature probabilities, which give clips without the modality a
uniform row. :func:`reliability_data` and :func:`write_reliability_figure` give one figure, a panel
per model (raw and calibrated); :func:`calibration_markdown` the tables of ``report.md``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from experiments.report_runs import REPORT_SPLITS, SELECTION_SPLIT
from training.calibration import (
    ECE_BINS,
    apply_temperature,
    calibration_scores,
    fit_temperature,
    log_probabilities,
    reliability_bins,
)
from training.plots import reliability_figure, save_figure

RELIABILITY_FIGURE = "reliability.png"
SCORES = ("ece", "nll", "brier")


def add_calibration(rows: Sequence[dict], scored: Mapping[str, Mapping[str, Any]], *, draws: int,
                    seed: int) -> dict[str, float]:
    """Add the calibration keys (module docstring) to each row of ``rows`` (dicts with ``name``
    and ``split``), whose outputs are ``scored[split][name]`` (``labels`` (N,), ``probs`` (N, C)).
    Returns ``{model name: temperature}`` (fitted on val)."""
    fits = {name: fit_temperature(log_probabilities(model.probs), model.labels)
            for name, model in scored.get(SELECTION_SPLIT, {}).items()}
    temperatures = {name: fit["temperature"] for name, fit in fits.items()}
    for row in rows:
        model = scored[row["split"]][row["name"]]
        row.update(calibration_scores(model.labels, model.probs, draws=draws, seed=seed))
        t = temperatures.get(row["name"])
        if t is None:
            row["calibrated"] = {"temperature": None, "fitted_on": None, "at_bound": None,
                                 **{k: None for s in SCORES for k in (s, f"{s}_ci95")}}
            continue
        scaled = apply_temperature(log_probabilities(model.probs), t)
        row["calibrated"] = {"temperature": t, "fitted_on": SELECTION_SPLIT, "at_bound": fits[row["name"]]["at_bound"],
                             **calibration_scores(model.labels, scaled, draws=draws, seed=seed)}
    return temperatures


def reliability_data(rows: Sequence[Mapping], scored: Mapping[str, Mapping[str, Any]], split: str) -> dict:
    """``{"split", "bins", "models": {name: {"raw": bins, "calibrated": bins}}}`` for the rows of
    ``split`` but the leave-one-out heads (:func:`training.calibration.reliability_bins`; a model
    without a temperature has only ``raw``)."""
    models: dict[str, dict] = {}
    for row in rows:
        if row["split"] != split or row["kind"] == "leave_one_out":
            continue
        model = scored[split][row["name"]]
        curves = {"raw": reliability_bins(model.labels, model.probs)}
        t = row["calibrated"]["temperature"]
        if t is not None:
            curves["calibrated"] = reliability_bins(model.labels,
                                                    apply_temperature(log_probabilities(model.probs), t))
        models[row["name"]] = curves
    return {"split": split, "bins": ECE_BINS, "models": models}


def write_reliability_figure(reliability: Mapping, out_dir: str | os.PathLike) -> Path | None:
    """``OUT/reliability.png``: a panel per model of ``reliability`` (:func:`reliability_data`);
    None (nothing written) when it has no model."""
    if not reliability.get("models"):
        return None
    path = Path(out_dir) / RELIABILITY_FIGURE
    save_figure(path, reliability_figure(reliability["models"],
                                         title=f"reliability ({reliability['split']} split, "
                                               f"{reliability['bins']} confidence bins)"))
    return path


def _with_ci(row: Mapping, key: str) -> str:
    value, ci = row.get(key), row.get(f"{key}_ci95")
    if value is None:
        return "n/a"
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{value:.3f}"


def calibration_markdown(report: Mapping) -> list[str]:
    """``report.md``'s calibration section: per scored split, each model's ECE, NLL and Brier,
    raw beside calibrated, and the temperature; then how to read them."""
    rows = [r for r in report["rows"] if "ece" in r]
    if not rows:
        return []
    md = ["## Calibration", ""]
    for split in REPORT_SPLITS:
        here = [r for r in rows if r["split"] == split]
        if not here:
            continue
        note = "in-sample for the calibrated columns" if split == SELECTION_SPLIT else "held out"
        md += [f"### {split} ({note})", "",
               "| model | T | ECE raw | ECE calibrated | NLL raw | NLL calibrated | Brier raw | Brier calibrated |",
               "|---|---|---|---|---|---|---|---|"]
        for r in here:
            cal = r["calibrated"]
            t = "n/a" if cal["temperature"] is None else f"{cal['temperature']:.3f}"
            t += " (search bound)" if cal.get("at_bound") else ""
            md.append(f"| {r['name']} | {t} | " + " | ".join(f"{_with_ci(r, s)} | {_with_ci(cal, s)}" for s in SCORES)
                      + " |")
        md.append("")
    if report.get("figures", {}).get("reliability"):
        md += [f"Reliability diagrams ({report['reliability']['split']} split): `{RELIABILITY_FIGURE}`.", ""]
    md += [CALIBRATION_NOTE, ""]
    return md


CALIBRATION_NOTE = (
    "ECE (expected calibration error): the clips are put in equal-width bins by their top "
    "probability, and the gap between each bin's accuracy and its mean top probability is averaged, "
    "weighted by the bin's clips; 0 means a model's confidence is its hit rate. NLL: the mean of "
    "minus the log probability given to the true class (nats; lower is better, and it punishes a "
    "confident mistake hardest). Brier: the mean squared distance between the probabilities and the "
    "one-hot label (0 best, 2 worst). T is the temperature fitted on val by minimising the NLL: the "
    "calibrated probabilities are softmax(log p / T); T above 1 means the raw model was "
    "over-confident, below 1 under-confident, and the top class (so the accuracy) never changes. "
    "Read the test columns: the val ones are where T was fitted. ECE is biased upward on few clips "
    "(each bin's gap is noisy), so compare models on the same split and prefer NLL for small "
    "differences.")
