"""The matplotlib figures: they draw the statistics they are given and write readable PNGs atomically."""
import numpy as np
import pytest
from PIL import Image

from training.plots import (
    confusion_matrix_figure,
    contributions_figure,
    figure_to_rgb,
    pr_figure,
    reliability_figure,
    roc_figure,
    save_figure,
)
from training.statistics import bootstrap_accuracy_difference, pr_curves, roc_curves

NAMES3 = ["Positive", "Neutral", "Negative"]


def _two_models():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 90)
    good = rng.dirichlet(np.ones(3), 90)
    good[np.arange(90), labels] += 1.0
    weak = rng.dirichlet(np.ones(3), 90)
    return labels, {"method": good, "best stream": weak}


def _png(path):
    assert path.stat().st_size > 0
    with Image.open(path) as im:
        assert im.format == "PNG"
        im.load()
        return im.size


@pytest.mark.parametrize("kind", ["roc", "pr"])
def test_curve_figures_draw_every_model_per_class(tmp_path, kind):
    labels, models = _two_models()
    curves_of, figure = (roc_curves, roc_figure) if kind == "roc" else (pr_curves, pr_figure)
    data = {name: curves_of(labels, probs, NAMES3) for name, probs in models.items()}
    fig = figure(data, title=f"{kind} on val")
    panels = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in panels] == [f"{n} vs rest" for n in NAMES3]
    legend = [t.get_text() for t in panels[0].get_legend().get_texts()]
    score = "AUC" if kind == "roc" else "AP"
    assert [s.split(" (")[0] for s in legend] == ["method", "best stream"] and all(score in s for s in legend)
    save_figure(tmp_path / "fig" / f"{kind}.png", fig, dpi=100)
    w, h = _png(tmp_path / "fig" / f"{kind}.png")
    assert (w, h) == tuple(round(100 * v) for v in fig.get_size_inches())
    assert [p.name for p in (tmp_path / "fig").iterdir()] == [f"{kind}.png"]  # no temp file left


def test_curve_figure_marks_a_class_no_model_can_score(tmp_path):
    labels = np.array([0, 1, 0, 1])
    probs = np.array([[.7, .2, .1], [.2, .7, .1], [.6, .3, .1], [.3, .6, .1]])
    fig = roc_figure({"m": roc_curves(labels, probs, NAMES3)})
    negative = [ax for ax in fig.axes if ax.get_title() == "Negative vs rest"][0]
    assert negative.get_legend() is None and "not scorable" in negative.texts[0].get_text()
    with pytest.raises(ValueError, match="has classes"):
        roc_figure({"a": roc_curves(labels, probs, NAMES3), "b": roc_curves(labels, probs, ["x", "y", "z"])})


def test_contributions_bar_chart_with_intervals(tmp_path):
    labels, models = _two_models()
    full = models["method"].argmax(1)
    rng = np.random.default_rng(1)
    drops = {}
    for stream, flips in (("visual", 20), ("audio", 5), ("faces", 0)):
        without = full.copy()
        idx = rng.choice(90, flips, replace=False)
        without[idx] = (without[idx] + 1) % 3
        drops[stream] = bootstrap_accuracy_difference(labels, full, without)
    fig = contributions_figure(drops)
    ax = fig.axes[0]
    bars = ax.patches
    assert [round(b.get_height(), 6) for b in bars] == [round(100 * d["difference"], 6) for d in drops.values()]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["visual", "audio", "faces"]
    assert "95% bootstrap interval" in ax.get_xlabel()
    save_figure(tmp_path / "contributions.png", fig)
    assert _png(tmp_path / "contributions.png")[0] > 0


def test_figure_to_rgb_is_an_rgb_uint8_image():
    img = figure_to_rgb(confusion_matrix_figure([[2, 1], [0, 3]], ["yes", "no"]))
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3 and img.shape[0] > 100
    assert img.min() < 50 and img.max() == 255  # dark text/cells on a white background


def test_the_reliability_figure_has_a_panel_per_model_with_a_curve_per_probability_set(tmp_path):
    from training.calibration import apply_temperature, log_probabilities, reliability_bins

    labels, models = _two_models()
    models = {**models, "third": models["method"]}
    data = {name: {"raw": reliability_bins(labels, p),
                   "calibrated": reliability_bins(labels, apply_temperature(log_probabilities(p), 2.0))}
            for name, p in models.items()}
    fig = reliability_figure(data, title="test split")
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in panels] == list(models)
    assert all(len(ax.get_legend().get_texts()) == 2 for ax in panels)
    save_figure(tmp_path / "reliability.png", fig)
    assert _png(tmp_path / "reliability.png")[0] > _png(tmp_path / "reliability.png")[1]  # 3 panels in a row
    with pytest.raises(ValueError):
        reliability_figure({})
