"""media.layouts.vgaf: split folders of .mp4 and 1-based label files, on fabricated trees of empty files."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from media.layouts import VGAF_CLASSES, DatasetError, DatasetWarning, read_dataset, read_vgaf
from tests.conftest import load_helper

trees = load_helper(Path(__file__).with_name("trees.py"), "tests_media_layouts_trees")
touch, make_vgaf, write_labels = trees.touch, trees.make_vgaf, trees.write_labels

def test_vgaf_train_labels_are_zero_based_and_sorted(tmp_path):
    make_vgaf(tmp_path)
    recs = read_vgaf(tmp_path, "train")
    assert [r.clip_id for r in recs] == ["Train/10_1", "Train/10_2", "Train/11_1"]
    assert [r.label for r in recs] == [0, 1, 2]
    assert [r.label_name for r in recs] == ["Positive", "Neutral", "Negative"]
    assert all(r.class_names == VGAF_CLASSES and r.split == "train" for r in recs)
    assert recs[0].path == tmp_path / "Train" / "10_1.mp4"
    assert recs[0].path.is_absolute()


def test_vgaf_split_is_case_insensitive_and_record_is_frozen(tmp_path):
    make_vgaf(tmp_path)
    recs = read_vgaf(tmp_path, "VAL")
    assert [(r.clip_id, r.label, r.split) for r in recs] == [("Val/20_1", 2, "val"), ("Val/20_2", 0, "val")]
    with pytest.raises(AttributeError):
        recs[0].label = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="split"):
        read_vgaf(tmp_path, "validation")


def test_vgaf_test_split_is_unlabeled(tmp_path):
    make_vgaf(tmp_path)
    recs = read_vgaf(tmp_path, "test")
    assert [r.clip_id for r in recs] == ["Test/t1", "Test/t2"]
    assert all(r.label is None and r.label_name is None and r.split == "test" for r in recs)
    assert recs[0].class_names == VGAF_CLASSES


def test_vgaf_test_labels_are_used_when_present(tmp_path):
    make_vgaf(tmp_path)
    write_labels(tmp_path, "Vid_name Label\nt1 3\nt2 2\n", "Test_labels.txt")
    assert [(r.clip_id, r.label) for r in read_vgaf(tmp_path, "test")] == [("Test/t1", 2), ("Test/t2", 1)]


def test_vgaf_tolerates_tabs_spaces_crlf_blank_lines_and_mp4_suffix(tmp_path):
    make_vgaf(tmp_path)
    write_labels(tmp_path, "\r\nVid_name\tLabel  \r\n10_1   1\r\n\r\n10_2.mp4\t2 \r\n  11_1 3\r\n\r\n")
    recs = read_vgaf(tmp_path, "train")
    assert [(r.clip_id, r.label) for r in recs] == [("Train/10_1", 0), ("Train/10_2", 1), ("Train/11_1", 2)]


@pytest.mark.parametrize("header", ["Name Label\n", "10_1 1\n", "Vid_name\n", ""])
def test_vgaf_bad_or_missing_header_names_the_file(tmp_path, header):
    make_vgaf(tmp_path)
    path = write_labels(tmp_path, header + "10_2 2\n11_1 3\n")
    with pytest.raises(DatasetError, match="header") as err:
        read_vgaf(tmp_path, "train")
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    "bad_line, problem",
    [
        ("10_2 2 extra", "2 columns"),
        ("10_2", "2 columns"),
        ("10_2 two", "not an integer"),
        ("10_2 1.0", "not an integer"),
        ("10_2 0", "out of range"),
        ("10_2 4", "out of range"),
        ("10_1 2", "duplicate"),
        ("../evil 1", "invalid video name"),
        ("/abs 1", "invalid video name"),
        ("/etc/passwd.mp4 1", "invalid video name"),
        ("sub/10_2 1", "invalid video name"),
        ("..\\evil 1", "invalid video name"),
        (".. 1", "invalid video name"),
    ],
)
def test_vgaf_bad_label_line_names_file_and_line(tmp_path, bad_line, problem):
    make_vgaf(tmp_path)
    # the bad line is physical line 4 (a blank line counts)
    path = write_labels(tmp_path, f"Vid_name Label\n10_1 1\n\n{bad_line}\n11_1 3\n")
    with pytest.raises(DatasetError, match=problem) as err:
        read_vgaf(tmp_path, "train")
    assert f"{path}:4:" in str(err.value)


def test_vgaf_missing_and_unlabeled_videos_reported_together(tmp_path):
    make_vgaf(tmp_path, train={"a": 1, "b": 2, "c": 3, "d": 1})
    os.remove(tmp_path / "Train" / "a.mp4")
    os.remove(tmp_path / "Train" / "b.mp4")
    touch(tmp_path / "Train" / "extra.mp4")
    with pytest.raises(DatasetError) as err:
        read_vgaf(tmp_path, "train")
    msg = str(err.value)
    assert "Train_labels.txt" in msg
    assert "2 labelled video(s) missing (a, b)" in msg
    assert "1 video(s) without a label (extra)" in msg

    with pytest.warns(DatasetWarning, match=r"2 labelled video\(s\) missing.*1 video\(s\) without a label"):
        recs = read_vgaf(tmp_path, "train", allow_missing=True)
    assert [(r.clip_id, r.label) for r in recs] == [("Train/c", 2), ("Train/d", 0)]


def test_vgaf_missing_report_lists_only_the_first_few(tmp_path):
    names = {f"clip{i:02d}": 1 for i in range(12)}
    make_vgaf(tmp_path, train=names)
    for name in names:
        os.remove(tmp_path / "Train" / f"{name}.mp4")
    touch(tmp_path / "Train" / "only.mp4")
    with pytest.raises(DatasetError, match=r"12 labelled video\(s\) missing \(clip00, .*clip04, \.\.\.\)") as err:
        read_vgaf(tmp_path, "train")
    assert "clip11" not in str(err.value)


def test_vgaf_missing_folder_or_label_file_is_named(tmp_path):
    make_vgaf(tmp_path)
    os.remove(tmp_path / "Val_labels.txt")
    with pytest.raises(DatasetError, match="Val_labels.txt"):
        read_vgaf(tmp_path, "val")
    for p in (tmp_path / "Test").iterdir():
        p.unlink()
    (tmp_path / "Test").rmdir()
    with pytest.raises(DatasetError, match="Test"):
        read_vgaf(tmp_path, "test")


def test_vgaf_ignores_non_mp4_and_hidden_files(tmp_path):
    make_vgaf(tmp_path)
    touch(tmp_path / "Train" / "notes.txt")
    touch(tmp_path / "Train" / "._10_1.mp4")
    assert len(read_vgaf(tmp_path, "train")) == 3


def test_read_dataset_vgaf_label_file_without_folder_is_reported(tmp_path):
    vgaf = make_vgaf(tmp_path)
    for p in (vgaf / "Val").iterdir():
        p.unlink()
    (vgaf / "Val").rmdir()
    with pytest.raises(DatasetError, match="val video folder not found"):
        read_dataset(vgaf)


def test_read_dataset_vgaf_skips_an_empty_unlabelled_test_folder_with_a_warning(tmp_path):
    vgaf = make_vgaf(tmp_path, test=())
    (vgaf / "Test").mkdir()
    with pytest.warns(DatasetWarning, match="test folder holds no .mp4"):
        records = read_dataset(vgaf)
    assert {r.split for r in records} == {"train", "val"}
    # asked for explicitly, the empty split is still an error
    with pytest.raises(DatasetError, match="no usable VGAF test videos"):
        read_dataset(vgaf, "test")
