"""The robustness report's files, from the content of ``robustness.json``
(:func:`experiments.robustness.build_robustness`): :func:`format_markdown` (``robustness.md``: one
table row per model and damage), :func:`heat_map_figure` (``robustness_heatmap.png``: accuracy,
model x damage, the clean accuracy first) and :func:`write_robustness`, which writes all three.

``robustness.json``: ``rows``, one per model and damage, each ``{"model", "kind": "stream" |
"late_fusion" | "fusion_head", "run", "damage", "severity", "accuracy", "ci95": [lo, hi],
"clean_accuracy", "clean_ci95", "clips", "failed_clips"}``; ``damages`` (per damage key: its
name, severity, modality, the streams it changed, the clips preprocessed/reused/failed and the
error log); ``command`` and ``commit``; the settings of the intervals.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np
from matplotlib.figure import Figure

from core.storage import atomic_write_json, atomic_write_text
from training.plots import save_figure

JSON_FILE = "robustness.json"
MARKDOWN_FILE = "robustness.md"
HEAT_MAP_FILE = "robustness_heatmap.png"


def _interval(lo_hi) -> str:
    lo, hi = lo_hi
    return f"[{lo:.3f}, {hi:.3f}]"


def _columns(data: Mapping) -> list[tuple[str, str]]:
    """(damage, severity) in the order the rows first name them."""
    seen: dict[tuple[str, str], None] = {}
    for r in data["rows"]:
        seen.setdefault((r["damage"], r["severity"]), None)
    return list(seen)


def _models(data: Mapping) -> list[str]:
    return list(dict.fromkeys(r["model"] for r in data["rows"]))


def format_markdown(data: Mapping, *, heat_map: bool = True) -> str:
    """``robustness.md``: what was damaged and how, what it cost, then per damage a table of every
    model's accuracy with its interval, its clean accuracy on the same clips and the change
    (points); ``heat_map``: end with a link to the heat map written beside it."""
    lines = [f"# Robustness: {data['split']} split, {data['clips']} clips", "",
             f"Runs `{data['root']}`, commit `{data.get('commit', 'unknown')}`.", ""]
    if data.get("command"):
        lines += ["```", data["command"], "```", ""]
    if data.get("wall_s") is not None:
        made = sum(v["clips"].get("done", 0) for v in data["damages"].values())
        reused = sum(v["clips"].get("skipped", 0) for v in data["damages"].values())
        lines += [f"Cost: {data['wall_s'] / 60:.1f} min wall clock on this machine with {data['workers']} "
                  f"preprocessing worker process(es) (0: in the tool's process); {made} damaged clips made and "
                  f"preprocessed in this run, {reused} reused from an earlier one.", ""]
    lines += ["Accuracy under each damage with its 95 % percentile bootstrap interval (clips resampled); "
              "*clean* is the same model on the same clips undamaged, *change* the difference in points. "
              "A damaged clip that failed to preprocess is left out of that damage's rows "
              "(*failed*, see its errors.jsonl). `missing` rows: those streams marked missing on the clean "
              "clips.", ""]
    failed = {k: v for k, v in data["damages"].items() if v["clips"]["failed"] or not v.get("scored", True)}
    for key, info in failed.items():
        lines.append(f"- `{key}`: {info['clips']['failed']} clips failed ({info['errors_log']})"
                     + ("" if info.get("scored", True) else "; not scored"))
    if failed:
        lines.append("")
    for damage, severity in _columns(data):
        rows = [r for r in data["rows"] if r["damage"] == damage and r["severity"] == severity]
        lines += [f"## {damage}: {severity}", "",
                  f"| model | accuracy [95% CI] ({rows[0]['clips']} clips) | clean | change | failed |",
                  "|---|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['model']} | {r['accuracy']:.3f} {_interval(r['ci95'])} | {r['clean_accuracy']:.3f} | "
                         f"{100 * (r['accuracy'] - r['clean_accuracy']):+.1f} | {r['failed_clips']} |")
        lines.append("")
    if data.get("degradation"):
        lines += ["## Losing a modality: each fusion head against the best stream that remains", "",
                  "*margin*: the head's accuracy minus that of the best remaining stream alone (points); "
                  "*graceful*: the margin is at least -2 points, so losing the streams cost the head no more "
                  "than they were worth.", "",
                  "| head | missing | accuracy | best remaining stream | its accuracy | margin | graceful |",
                  "|---|---|---|---|---|---|---|"]
        for d in data["degradation"]:
            lines.append(f"| {d['model']} | {d['missing']} | {d['accuracy']:.3f} | {d['best_remaining_stream']} | "
                         f"{d['best_remaining_accuracy']:.3f} | {100 * d['margin']:+.1f} | "
                         f"{'yes' if d['graceful'] else 'no'} |")
        lines.append("")
    if heat_map:
        lines += [f"![accuracy per model and damage]({HEAT_MAP_FILE})", ""]
    return "\n".join(lines)


def accuracy_grid(data: Mapping) -> tuple[list[str], list[str], np.ndarray]:
    """(models, column labels, (models, 1 + damages, 3) accuracy, interval low, interval high):
    the first column the clean accuracy on every scored clip (the modality rows' clean accuracy),
    NaN where a model has no row."""
    models, columns = _models(data), _columns(data)
    grid = np.full((len(models), 1 + len(columns), 3), np.nan)
    for r in data["rows"]:
        i = models.index(r["model"])
        grid[i, 1 + columns.index((r["damage"], r["severity"]))] = [r["accuracy"], *r["ci95"]]
        if r["damage"] == "missing" or np.isnan(grid[i, 0, 0]):
            grid[i, 0] = [r["clean_accuracy"], *r["clean_ci95"]]
    return models, ["clean"] + [f"{d}: {s}" for d, s in columns], grid


def heat_map_figure(data: Mapping) -> Figure:
    """Accuracy as a grid of cells, one row per model and one column per damage (the clean
    accuracy first), each cell showing its accuracy over its 95 % interval; shading by accuracy
    from 0 (dark) to 1 (light)."""
    models, labels, grid = accuracy_grid(data)
    width = 2.5 + 0.6 * len(labels) + 0.07 * max(len(m) for m in models)
    fig = Figure(figsize=(width, 2.5 + 0.45 * len(models) + 0.06 * max(len(c) for c in labels)), dpi=100,
                 layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(grid[..., 0], cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            acc, lo, hi = grid[i, j]
            if not np.isnan(acc):
                ax.text(j, i, f"{acc:.2f}\n{lo:.2f}-{hi:.2f}", ha="center", va="center", fontsize=6,
                        color="black" if acc > 0.6 else "white")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(models)), models, fontsize=8)
    ax.set_title(f"accuracy under damage and its 95 % interval ({data['split']}, {data['clips']} clips)")
    fig.colorbar(image, ax=ax, shrink=0.8, label="accuracy")
    return fig


def write_robustness(data: Mapping, out_dir: str | os.PathLike) -> dict[str, str]:
    """Write ``robustness.json``, ``robustness.md`` and ``robustness_heatmap.png`` into
    ``out_dir``; returns ``{what: path}``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"json": str(out_dir / JSON_FILE), "markdown": str(out_dir / MARKDOWN_FILE)}
    atomic_write_json(out_dir / JSON_FILE, dict(data))
    atomic_write_text(out_dir / MARKDOWN_FILE, format_markdown(data))
    if data["rows"]:
        save_figure(out_dir / HEAT_MAP_FILE, heat_map_figure(data))
        written["heat_map"] = str(out_dir / HEAT_MAP_FILE)
    return written
