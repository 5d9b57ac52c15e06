"""media.layouts.video_folder: every video of a folder, unlabelled and unsplit."""
from __future__ import annotations

from pathlib import Path

import pytest

from media.layouts import DatasetError, read_video_folder
from tests.conftest import load_helper

trees = load_helper(Path(__file__).with_name("trees.py"), "tests_media_layouts_trees")
touch = trees.touch

def test_read_video_folder_recursive_unlabeled(tmp_path):
    touch(tmp_path / "b.MP4")
    touch(tmp_path / "sub" / "deeper" / "a.mkv")
    touch(tmp_path / "sub" / "c.avi")
    touch(tmp_path / "sub" / "notes.txt")
    touch(tmp_path / ".hidden" / "z.mp4")
    recs = read_video_folder(tmp_path)
    assert [r.clip_id for r in recs] == ["b", "sub/c", "sub/deeper/a"]
    assert all(r.label is None and r.class_names == () and r.split is None for r in recs)
    assert recs[0].path == tmp_path / "b.MP4"
    assert [r.clip_id for r in read_video_folder(tmp_path, extensions=(".avi",))] == ["sub/c"]
    with pytest.raises(DatasetError, match="no video files"):
        read_video_folder(tmp_path / "sub" / "deeper", extensions=(".webm",))
    with pytest.raises(DatasetError, match="not a directory"):
        read_video_folder(tmp_path / "missing")
