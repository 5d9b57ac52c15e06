"""Tests for media.layouts.fer2013: both published forms read identically, malformed rows and files are
named, and the synthetic FER2013 faces carry seven separable expressions."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from media.layouts import DatasetError
from media.layouts.fer2013 import FER2013_CLASSES, detect_fer2013_form, read_fer2013, read_fer2013_csv
from synthetic.fer2013 import generate_fer2013, render_fer_face


@pytest.fixture(scope="module")
def both_forms(tmp_path_factory):
    root = tmp_path_factory.mktemp("fer")
    for form in ("csv", "folder"):
        generate_fer2013(root / form, form=form, n_train=21, n_val=14, n_test=7, seed=6)
    return root / "csv", root / "folder"


def test_the_same_images_in_both_forms_read_identically(both_forms):
    csv_root, folder_root = both_forms
    assert detect_fer2013_form(csv_root) == "csv" and detect_fer2013_form(folder_root) == "folder"
    assert detect_fer2013_form(csv_root / "fer2013.csv") == "csv"
    for split, n in (("train", 21), ("val", 14), ("test", 7)):
        a, b = read_fer2013(csv_root, split), read_fer2013(folder_root, split)
        assert a.images.shape == (n, 48, 48) and a.images.dtype == np.uint8
        assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
        assert a.class_names == b.class_names == FER2013_CLASSES
        assert sorted(np.bincount(a.labels, minlength=7).tolist()) == [n // 7] * 7
    assert read_fer2013(csv_root, "train").sources[0] == "fer2013.csv:2"


def test_csv_columns_in_any_order_with_spaces_and_a_bom(tmp_path):
    pixels = " ".join(str(i % 256) for i in range(48 * 48))
    (tmp_path / "fer2013.csv").write_text("\ufeff Usage , emotion ,pixels\nPrivateTest,3," + pixels + "\n"
                                          "Training,6," + pixels + "\n\n", encoding="utf-8")
    data = read_fer2013(tmp_path, "test")
    assert data.labels.tolist() == [3] and data.images[0, 0, :3].tolist() == [0, 1, 2]
    assert data.images[0, 1, 0] == 48 and FER2013_CLASSES[3] == "Happy"


@pytest.mark.parametrize("row, problem", [
    ("7,{px},Training", "emotion '7' is not a label 0-6"),
    ("2,{short},Training", "2303 pixel values, expected 2304"),
    ("2,{big},Training", "pixel values must be 0-255"),
    ("2,{px},Validation", "Usage 'Validation' is not one of"),
])
def test_a_bad_csv_row_names_the_file_and_line(tmp_path, row, problem):
    px = " ".join(["7"] * 2304)
    values = {"px": px, "short": " ".join(["7"] * 2303), "big": " ".join(["7"] * 2303 + ["300"])}
    path = tmp_path / "fer2013.csv"
    path.write_text("emotion,pixels,Usage\n0," + px + ",Training\n" + row.format(**values) + "\n")
    with pytest.raises(DatasetError, match=problem) as info:
        read_fer2013_csv(path, "train")
    assert f"{path}:3" in str(info.value)


def test_csv_without_a_column_or_rows_of_a_split_is_named(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_text("emotion,Usage\n0,Training\n")
    with pytest.raises(DatasetError, match="lacks the column"):
        read_fer2013(path, "train")
    path.write_text("emotion,pixels,Usage\n0," + " ".join(["1"] * 2304) + ",Training\n")
    with pytest.raises(DatasetError, match="no PrivateTest rows"):
        read_fer2013(path, "test")


def test_folder_errors_name_the_image_or_folder(tmp_path, both_forms):
    _, folder_root = both_forms
    root = tmp_path / "kaggle"
    (root / "train" / "happy").mkdir(parents=True)
    cv2.imwrite(str(root / "train" / "happy" / "a.png"), np.zeros((64, 48), np.uint8))
    with pytest.raises(DatasetError, match="a.png: image is 48x64"):
        read_fer2013(root, "train")
    with pytest.raises(DatasetError, match="only train/ and test/"):
        read_fer2013(root, "val")
    (root / "train" / "contempt").mkdir()
    with pytest.raises(DatasetError, match="contempt: not a FER2013 emotion folder"):
        read_fer2013(root, "train")
    both = tmp_path / "both"
    (both / "train").mkdir(parents=True)
    (both / "fer2013.csv").write_text("emotion,pixels,Usage\n")
    with pytest.raises(DatasetError, match="holds both"):
        read_fer2013(both, "train")


def test_synthetic_faces_are_48px_grey_and_the_seven_expressions_separate():
    """Nearest-centroid on the images themselves: centroids from 12 faces per class classify
    other faces well above chance (1/7)."""
    def image(cls: str, i: int) -> np.ndarray:
        x = render_fer_face(cls, np.random.default_rng([i, 9])).astype(np.float32)
        assert x.shape == (48, 48)
        return ((x - x.mean()) / (x.std() + 1e-6)).ravel()

    centroids = {c: np.mean([image(c, i) for i in range(12)], axis=0) for c in FER2013_CLASSES}
    right = [min(centroids, key=lambda k: np.linalg.norm(image(c, i) - centroids[k])) == c
             for c in FER2013_CLASSES for i in range(100, 106)]
    assert np.mean(right) >= 0.6, np.mean(right)
