"""media.layouts: the table of layouts, and detect_layout, read_dataset and skipped_files dispatching through it."""
from __future__ import annotations

from pathlib import Path

import pytest

from media.layouts import (
    DatasetError,
    DatasetWarning,
    detect_layout,
    read_dataset,
    read_vgaf,
    skipped_files,
)
from tests.conftest import load_helper

trees = load_helper(Path(__file__).with_name("trees.py"), "tests_media_layouts_trees")
touch, make_vgaf, make_groupemow, make_ravdess, _actor = (trees.touch, trees.make_vgaf, trees.make_groupemow,
                                                          trees.make_ravdess, trees.actor_of)

def test_detect_layout_and_read_dataset_dispatch(tmp_path):
    vgaf = make_vgaf(tmp_path / "vgaf")
    assert detect_layout(vgaf) == "vgaf"
    recs = read_dataset(vgaf)
    assert {r.split for r in recs} == {"train", "val", "test"}
    assert len(recs) == 3 + 2 + 2
    assert [r.clip_id for r in recs] == sorted(r.clip_id for r in recs)
    assert read_dataset(vgaf, "train") == read_vgaf(vgaf, "train")

    # VGAF without label files is still VGAF when Train/ holds videos
    only_videos = tmp_path / "vgaf_videos"
    touch(only_videos / "Test" / "x.mp4")
    assert detect_layout(only_videos) == "vgaf"
    assert [r.clip_id for r in read_dataset(only_videos)] == ["Test/x"]

    gew = make_groupemow(tmp_path / "gew")
    assert detect_layout(gew) == "groupemow"
    assert len(read_dataset(gew)) == 5
    assert read_dataset(gew, "test")[0].label_name == "Negative"

    rav = make_ravdess(tmp_path / "rav")
    assert detect_layout(rav) == "ravdess"
    assert {_actor(r) for r in read_dataset(rav, "test")} == {22, 23, 24}

    crema = tmp_path / "crema"
    touch(crema / "VideoFlash" / "1001_DFA_ANG_XX.flv")
    touch(crema / "VideoFlash" / "1090_IEO_SAD_HI.flv")
    assert detect_layout(crema) == "cremad"
    assert [r.label_name for r in read_dataset(crema)] == ["anger", "sad"]

    plain = tmp_path / "plain"
    touch(plain / "party.mp4")
    touch(plain / "Train" / "notes.txt")  # a Train folder without videos is not VGAF
    assert detect_layout(plain) == "video_folder"
    assert [r.clip_id for r in read_dataset(plain)] == ["party"]
    with pytest.raises(DatasetError, match="no splits"):
        read_dataset(plain, "test")

    # an explicit layout overrides detection
    assert read_dataset(rav, layout="video_folder")[0].label is None
    with pytest.raises(ValueError, match="unknown layout"):
        read_dataset(plain, layout="kinetics")


def test_read_dataset_passes_reader_options(tmp_path):
    vgaf = make_vgaf(tmp_path)
    touch(vgaf / "Train" / "unlabeled.mp4")
    with pytest.raises(DatasetError, match="without a label"):
        read_dataset(vgaf)
    with pytest.warns(DatasetWarning):
        assert len(read_dataset(vgaf, allow_missing=True)) == 7


def test_skipped_files_lists_what_the_reader_passes_over_with_the_reason(tmp_path):
    vgaf = make_vgaf(tmp_path / "vgaf")
    touch(vgaf / "Train" / "notes.txt")
    touch(vgaf / "Val" / "10_9.avi")                   # a video, but VGAF reads .mp4 only
    touch(vgaf / "Val" / ".DS_Store")                  # hidden: not listed
    touch(vgaf / "groupemow" / "train" / "positive" / "a.jpg")  # beside the split folders: not clips
    found = {(s.path.relative_to(vgaf).as_posix(), s.reason) for s in skipped_files(vgaf)}
    assert found == {("Train/notes.txt", "not a video file (.txt; expected .mp4)"),
                     ("Val/10_9.avi", "not a video file (.avi; expected .mp4)")}
    assert [s.path.name for s in skipped_files(vgaf, "val")] == ["10_9.avi"]
    assert len(read_dataset(vgaf)) == 3 + 2 + 2  # the train, val and test clips, as before

    folder = tmp_path / "folder"
    for name in ("a.mp4", "sub/b.MKV", "sub/talk.m4a", "README"):
        touch(folder / name)
    skipped = skipped_files(folder)
    assert [s.path.relative_to(folder).as_posix() for s in skipped] == ["README", "sub/talk.m4a"]
    assert skipped[0].reason.startswith("not a video file (no extension;")
    assert len(read_dataset(folder)) == 2
