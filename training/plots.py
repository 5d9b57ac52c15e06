"""Figures of classification results, drawn with matplotlib on the headless Agg canvas.

Every builder returns a :class:`matplotlib.figure.Figure` made without ``pyplot``, so nothing
depends on a display, on the global backend setting or on pyplot's list of open figures (a
figure is freed when the last reference to it goes). :func:`save_figure` writes one as PNG
atomically; :func:`figure_to_rgb` turns one into an RGB array (for TensorBoard images).

The builders take the plain dicts of :mod:`training.statistics` (curve data, bootstrap
differences), of :mod:`training.calibration` (reliability bins) and of
:func:`training.metrics.confusion_matrix`, so a figure can be redrawn from
a saved JSON report.
"""
from __future__ import annotations

import io
import math
import os
from typing import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from core.storage import atomic_write_bytes

_PANEL_INCHES = 3.2  # width and height of one per-class panel of the curve figures


def confusion_matrix_figure(cm: np.ndarray | Sequence[Sequence[int]], class_names: Sequence[str],
                            title: str | None = None) -> Figure:
    """A confusion matrix ``cm`` (C, C) (rows true class, columns predicted) as a grid of cells.

    Each cell shows the count and its share of the true-class row; the shading is that row
    share (white 0 % -> dark blue 100 %), so per-class recall reads at a glance even when the
    classes are imbalanced. A row without samples stays white.
    """
    cm = np.asarray(cm, dtype=np.int64)
    names = [str(c) for c in class_names]
    c = len(names)
    if cm.shape != (c, c):
        raise ValueError(f"confusion matrix shape {cm.shape} does not match {c} class names")
    row_sum = cm.sum(axis=1, keepdims=True)
    share = np.divide(cm, row_sum, out=np.zeros(cm.shape, dtype=np.float64), where=row_sum > 0)
    label_inches = 0.09 * max(len(n) for n in names)
    side = 0.75 * c
    # "compressed": the constrained layout made for fixed-aspect axes such as imshow's
    fig = Figure(figsize=(1.9 + label_inches + side, 1.4 + label_inches + side), dpi=100, layout="compressed")
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(c):
        for j in range(c):
            ax.text(j, i, f"{cm[i, j]}\n{100 * share[i, j]:.0f}%", ha="center", va="center", fontsize=9,
                    color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(c), names, rotation=90)
    ax.set_yticks(range(c), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if title:
        ax.set_title(title)
    fig.colorbar(image, ax=ax, shrink=0.8, label="share of the true class")
    return fig


def roc_figure(models: Mapping[str, Mapping], title: str | None = None) -> Figure:
    """One-vs-rest ROC curves: one panel per class, one line per model.

    ``models``: model name -> the dict of :func:`training.statistics.roc_curves` (all for the
    same class names). A class a model could not score (see ``skipped`` there) is left out of
    that model's lines; the legend gives each model's AUC. The diagonal is a random scorer.
    """
    return _curves_figure(models, kind="roc", title=title)


def pr_figure(models: Mapping[str, Mapping], title: str | None = None) -> Figure:
    """One-vs-rest precision-recall curves: one panel per class, one line per model.

    ``models``: model name -> the dict of :func:`training.statistics.pr_curves`. The legend
    gives each model's average precision; the dotted line is the class's prevalence (the
    precision of a random scorer).
    """
    return _curves_figure(models, kind="pr", title=title)


def _curves_figure(models: Mapping[str, Mapping], *, kind: str, title: str | None) -> Figure:
    if not models:
        raise ValueError("no model to plot")
    class_names = list(next(iter(models.values()))["class_names"])
    for name, data in models.items():
        if list(data["class_names"]) != class_names:
            raise ValueError(f"model {name!r} has classes {list(data['class_names'])}, expected {class_names}")
    c = len(class_names)
    cols = min(c, 4)
    rows = math.ceil(c / cols)
    fig = Figure(figsize=(_PANEL_INCHES * cols, _PANEL_INCHES * rows + (0.4 if title else 0.0)), dpi=100,
                 layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for k, class_name in enumerate(class_names):
        ax = axes[k]
        prevalence = None
        for model, data in models.items():
            curve = data["curves"].get(class_name)
            if curve is None:
                continue
            if kind == "roc":
                ax.plot(curve["fpr"], curve["tpr"], label=f"{model} (AUC {curve['auc']:.3f})")
            else:
                ax.step(curve["recall"], curve["precision"], where="post",
                        label=f"{model} (AP {curve['average_precision']:.3f})")
                prevalence = curve["prevalence"]
        if kind == "roc":
            ax.plot([0, 1], [0, 1], linestyle=":", color="grey", linewidth=1)
            ax.set_xlabel("false positive rate")
            ax.set_ylabel("true positive rate")
        else:
            if prevalence is not None:
                ax.axhline(prevalence, linestyle=":", color="grey", linewidth=1)
            ax.set_xlabel("recall")
            ax.set_ylabel("precision")
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"{class_name} vs rest")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="lower right" if kind == "roc" else "lower left", fontsize=7)
        else:
            ax.text(0.5, 0.5, "not scorable on this split", ha="center", va="center", fontsize=8)
    for ax in axes[c:]:
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    return fig


def contributions_figure(drops: Mapping[str, Mapping], title: str | None = None) -> Figure:
    """A bar per left-out part: the accuracy lost without it, with its confidence interval.

    ``drops``: name (e.g. a stream) -> the dict of
    :func:`training.statistics.bootstrap_accuracy_difference` computed as full model minus the
    model without that part (positive = the part helps). Bars are in percentage points; error
    bars span the interval, which is asymmetric in general.
    """
    if not drops:
        raise ValueError("no contribution to plot")
    names = list(drops)
    diff = np.array([100 * drops[n]["difference"] for n in names])
    lo = np.array([100 * drops[n]["interval"][0] for n in names])
    hi = np.array([100 * drops[n]["interval"][1] for n in names])
    fig = Figure(figsize=(1.6 + 1.1 * len(names), 3.6), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.bar(names, diff, yerr=np.stack([diff - lo, hi - diff]), capsize=4, color="tab:blue")
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_ylabel("accuracy lost when left out (points)")
    level = next(iter(drops.values())).get("confidence")
    if level is not None:
        ax.set_xlabel(f"left out (error bars: {100 * level:.0f}% bootstrap interval)")
    if title:
        ax.set_title(title)
    return fig


def reliability_figure(models: Mapping[str, Mapping[str, Mapping]], title: str | None = None) -> Figure:
    """Reliability diagrams, a panel per model: ``models`` maps a name to ``{curve name:
    reliability bins}`` (:func:`training.calibration.reliability_bins`, e.g. ``"raw"`` and
    ``"calibrated"``). Each curve is the accuracy of each confidence bin against its mean
    confidence (points sized by the bin's clips), with the diagonal a calibrated model follows
    and the ECE in the legend."""
    if not models:
        raise ValueError("no model to draw")
    cols = min(4, len(models))
    rows = math.ceil(len(models) / cols)
    fig = Figure(figsize=(_PANEL_INCHES * cols, _PANEL_INCHES * rows + 0.4), dpi=100, layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, (name, curves) in zip(axes.flat, models.items()):
        ax.plot([0, 1], [0, 1], color="0.6", linestyle=":", linewidth=1)
        for curve, bins in curves.items():
            kept = [(c, a, n) for c, a, n in zip(bins["confidence"], bins["accuracy"], bins["clips"]) if n]
            if not kept:
                continue
            conf, acc, clips = (np.array(v, dtype=np.float64) for v in zip(*kept))
            line, = ax.plot(conf, acc, marker=None, linewidth=1.2, label=f"{curve} (ECE {bins['ece']:.3f})")
            ax.scatter(conf, acc, s=8 + 60 * clips / clips.max(), color=line.get_color(), zorder=3)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("confidence (top probability)", fontsize=8)
        ax.set_ylabel("accuracy", fontsize=8)
        ax.legend(fontsize=7, loc="upper left")
    for ax in list(axes.flat)[len(models):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title)
    return fig


def figure_to_rgb(fig: Figure) -> np.ndarray:
    """Render ``fig`` with Agg: an RGB ``(H, W, 3)`` uint8 array (H, W from its size and dpi)."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save_figure(path: str | os.PathLike, fig: Figure, *, dpi: int = 150) -> None:
    """Write ``fig`` to ``path`` as PNG at ``dpi``, atomically (temp file + rename)."""
    FigureCanvasAgg(fig)  # attach an Agg canvas: never a GUI backend
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    atomic_write_bytes(path, buf.getvalue())
