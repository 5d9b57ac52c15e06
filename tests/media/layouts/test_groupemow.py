"""media.layouts.groupemow: split folders of class folders of stills, named with the VGAF classes."""
from __future__ import annotations

from pathlib import Path

import pytest

from media.layouts import GROUPEMOW_CLASSES, VGAF_CLASSES, DatasetError, read_groupemow
from tests.conftest import load_helper

trees = load_helper(Path(__file__).with_name("trees.py"), "tests_media_layouts_trees")
touch, make_groupemow = trees.touch, trees.make_groupemow

def test_groupemow_case_insensitive_folders_map_to_vgaf_names(tmp_path):
    make_groupemow(tmp_path)
    recs = read_groupemow(tmp_path, "train")
    assert [(r.clip_id, r.label_name, r.label) for r in recs] == [
        ("train/NEGATIVE/img2", "Negative", 2),
        ("train/Positive/img1", "Positive", 0),
        ("train/neutral/img3", "Neutral", 1),
    ]
    assert GROUPEMOW_CLASSES == VGAF_CLASSES
    assert all(r.split == "train" for r in recs)
    val = read_groupemow(tmp_path, "val")
    assert [(r.clip_id, r.label, r.split) for r in val] == [("Val/positive/v1", 0, "val")]


def test_groupemow_errors_name_the_folder(tmp_path):
    make_groupemow(tmp_path)
    (tmp_path / "test" / "negative" / "t1.jpg").unlink()
    with pytest.raises(DatasetError, match="no GroupEmoW images") as err:
        read_groupemow(tmp_path, "test")
    assert str(tmp_path / "test") in str(err.value)

    touch(tmp_path / "train" / "happy" / "x.jpg")
    with pytest.raises(DatasetError, match="unknown GroupEmoW class folder 'happy'"):
        read_groupemow(tmp_path, "train")

    for p in sorted((tmp_path / "test").rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    (tmp_path / "test").rmdir()
    with pytest.raises(DatasetError, match="test folder not found") as err:
        read_groupemow(tmp_path, "test")
    assert str(tmp_path / "test") in str(err.value)
