"""media.layouts.ravdess: labels from the coded file names, splits by actor."""
from __future__ import annotations

from pathlib import Path

import pytest

from media.layouts import RAVDESS_CLASSES, DatasetError, DatasetWarning, read_ravdess
from tests.conftest import load_helper

trees = load_helper(Path(__file__).with_name("trees.py"), "tests_media_layouts_trees")
touch, ravdess_name, make_ravdess, _actor = trees.touch, trees.ravdess_name, trees.make_ravdess, trees.actor_of

def test_ravdess_labels_from_file_names(tmp_path):
    make_ravdess(tmp_path)
    recs = read_ravdess(tmp_path)
    by_id = {r.clip_id: r for r in recs}
    assert by_id["Actor_01/01-01-01-01-01-01-01"].label_name == "neutral"
    assert by_id["Actor_01/01-01-05-02-01-01-01"].label == 4
    assert by_id["Actor_01/01-01-05-02-01-01-01"].label_name == "angry"
    assert by_id["Actor_01/01-01-08-02-01-01-01"].label_name == "surprised"
    assert by_id["Actor_01/02-01-03-02-01-01-01"].label_name == "happy"
    assert all(r.class_names == RAVDESS_CLASSES for r in recs)
    # default modalities: full-AV (01) and video-only (02); .wav and MM=03 excluded
    assert len(recs) == 24 * 4
    assert not any(r.clip_id.split("/")[1].startswith("03-") for r in recs)
    assert [r.clip_id for r in recs] == sorted(r.clip_id for r in recs)
    assert len(read_ravdess(tmp_path, modalities=(1,))) == 24 * 3


def test_ravdess_splits_are_actor_disjoint_and_default_documented(tmp_path):
    make_ravdess(tmp_path)
    actors = {s: {_actor(r) for r in read_ravdess(tmp_path, s)} for s in ("train", "val", "test")}
    assert actors["train"] == set(range(1, 19))
    assert actors["val"] == {19, 20, 21}
    assert actors["test"] == {22, 23, 24}
    every = read_ravdess(tmp_path)
    assert {r.split for r in every if _actor(r) == 20} == {"val"}
    custom = read_ravdess(tmp_path, "val", val_actors=[1, 2], test_actors=[3])
    assert {_actor(r) for r in custom} == {1, 2}
    assert {_actor(r) for r in read_ravdess(tmp_path, "train", val_actors=[1, 2], test_actors=[3])} == set(range(4, 25))
    with pytest.raises(ValueError, match="overlap"):
        read_ravdess(tmp_path, val_actors=[1, 2], test_actors=[2])
    with pytest.raises(ValueError, match="1..24"):
        read_ravdess(tmp_path, test_actors=[25])


def test_ravdess_invalid_names_reported_unless_allowed(tmp_path):
    make_ravdess(tmp_path)
    touch(tmp_path / "Actor_01" / "holiday.mp4")
    touch(tmp_path / "Actor_01" / "01-01-09-01-01-01-01.mp4")  # emotion 09 does not exist
    with pytest.raises(DatasetError, match=r"2 file\(s\) do not match") as err:
        read_ravdess(tmp_path)
    assert "Actor_01/holiday.mp4" in str(err.value)
    assert "01-01-09-01-01-01-01.mp4" in str(err.value)
    with pytest.warns(DatasetWarning, match="holiday.mp4"):
        recs = read_ravdess(tmp_path, allow_invalid=True)
    assert len(recs) == 24 * 4


def test_ravdess_same_file_in_two_folders_is_an_error(tmp_path):
    make_ravdess(tmp_path)
    touch(tmp_path / "copy" / ravdess_name(1, 5, 7))
    with pytest.raises(DatasetError, match="appears twice"):
        read_ravdess(tmp_path)
