"""Metrics on hand-made examples (scikit-learn underneath, the project's conventions on top);
the confusion-matrix image."""
import json

import numpy as np
import pytest

from training.metrics import classification_report, confusion_matrix, format_report, render_confusion_matrix
from training.plots import confusion_matrix_figure

NAMES3 = ["Positive", "Neutral", "Negative"]
NAMES8 = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"]


def test_three_class_example_by_hand():
    y_true = [0, 0, 1, 1, 2, 2]
    y_pred = [0, 1, 1, 1, 2, 0]
    cm = confusion_matrix(y_true, y_pred, 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    r = classification_report(y_true, y_pred, NAMES3)
    assert r["accuracy"] == pytest.approx(4 / 6)
    pc = r["per_class"]
    assert pc["Positive"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert pc["Neutral"] == pytest.approx({"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2})
    assert pc["Negative"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert r["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    assert r["confusion_matrix"] == cm.tolist()


def test_eight_classes_with_a_class_never_predicted_and_one_absent():
    # class 7 ("surprised") never predicted; class 6 ("disgust") has no samples but is predicted once
    y_true = np.array([0, 1, 2, 3, 4, 5, 7, 7, 0, 1])
    y_pred = np.array([0, 1, 2, 3, 4, 5, 0, 6, 0, 1])
    r = classification_report(y_true, y_pred, NAMES8)
    assert r["per_class"]["surprised"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    assert r["per_class"]["disgust"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert r["per_class"]["neutral"]["precision"] == pytest.approx(2 / 3)
    assert r["accuracy"] == pytest.approx(8 / 10)
    assert r["macro_f1"] == pytest.approx((0.8 + 1 + 1 + 1 + 1 + 1 + 0 + 0) / 8)
    json.dumps(r, allow_nan=False)  # no NaN anywhere
    assert np.array(r["confusion_matrix"]).sum() == 10


def test_bad_labels_are_refused():
    with pytest.raises(ValueError, match="outside 0..2"):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ValueError, match="2 labels but y_pred has 1"):
        confusion_matrix([0, 1], [0], 3)
    with pytest.raises(ValueError, match="at least one sample"):
        classification_report([], [], NAMES3)


def test_format_report_lists_every_class():
    text = format_report(classification_report([0, 0, 1, 1, 2, 2], [0, 1, 1, 1, 2, 0], NAMES3))
    lines = text.splitlines()
    for name, f1 in [("Positive", "0.500"), ("Neutral", "0.800"), ("Negative", "0.667")]:
        row = next(line for line in lines if line.strip().startswith(name))
        assert row.split()[3] == f1
    accuracy = next(line for line in lines if line.strip().startswith("accuracy")).split()
    assert accuracy[1:] == ["0.667", "6"]


def test_format_report_rebuilds_the_table_from_a_stored_report():
    # a report read back from metrics.json; never-predicted and absent classes keep 0, not nan
    report = json.loads(json.dumps(classification_report([0, 1, 7, 7], [0, 1, 0, 6], NAMES8)))
    lines = format_report(report).splitlines()
    assert "nan" not in "\n".join(lines)
    row = next(line for line in lines if line.strip().startswith("surprised")).split()
    assert row[1:] == ["0.000", "0.000", "0.000", "2"]
    macro = next(line for line in lines if line.strip().startswith("macro avg")).split()
    assert float(macro[4]) == pytest.approx(report["macro_f1"], abs=5e-4)


def _dark_blue(img: np.ndarray) -> np.ndarray:
    return (img[..., 2].astype(int) - img[..., 0].astype(int) > 60) & (img[..., 0] < 80)


def test_confusion_matrix_figure_shows_counts_and_row_percentages():
    fig = confusion_matrix_figure([[3, 1, 0], [0, 0, 0], [2, 0, 2]], NAMES3, title="val")
    ax = fig.axes[0]
    shading = ax.images[0].get_array()
    assert np.allclose(shading, [[0.75, 0.25, 0], [0, 0, 0], [0.5, 0, 0.5]])  # row shares; empty row stays 0
    cells = [t.get_text() for t in ax.texts]
    assert cells[:3] == ["3\n75%", "1\n25%", "0\n0%"] and cells[3:6] == ["0\n0%"] * 3
    assert [t.get_text() for t in ax.get_yticklabels()] == NAMES3
    assert ax.get_xlabel() == "predicted" and ax.get_ylabel() == "true" and ax.get_title() == "val"


def test_render_confusion_matrix_shading_and_size():
    diag = render_confusion_matrix(np.diag([5, 5, 5]), NAMES3)
    assert diag.dtype == np.uint8 and diag.ndim == 3 and diag.shape[2] == 3
    empty = render_confusion_matrix(np.zeros((3, 3), dtype=int), NAMES3)
    assert empty.shape == diag.shape
    # full rows shade the diagonal dark; rows without samples stay unshaded (both have the colour bar)
    assert _dark_blue(diag).sum() > _dark_blue(empty).sum() + 1000
    assert not np.array_equal(render_confusion_matrix([[5, 0, 0], [0, 5, 0], [0, 0, 4]], NAMES3), diag)
    big = render_confusion_matrix(np.ones((8, 8), dtype=int), NAMES8)
    assert big.shape[0] > diag.shape[0] and big.shape[1] > diag.shape[1]
    with pytest.raises(ValueError, match="does not match 3 class names"):
        render_confusion_matrix(np.ones((2, 2)), NAMES3)

