"""media.layouts.cremad: labels from the coded file names, splits by actor."""
from __future__ import annotations

from pathlib import Path

import pytest

from media.layouts import CREMAD_CLASSES, DatasetError, DatasetWarning, read_cremad
from tests.conftest import load_helper

trees = load_helper(Path(__file__).with_name("trees.py"), "tests_media_layouts_trees")
touch = trees.touch

def test_cremad_labels_and_actor_splits(tmp_path):
    codes = ("ANG", "DIS", "FEA", "HAP", "NEU", "SAD")
    for actor in (1001, 1050, 1063, 1064, 1077, 1078, 1091):
        for code in codes:
            touch(tmp_path / "VideoFlash" / f"{actor}_DFA_{code}_XX.flv")
    touch(tmp_path / "VideoMP4" / "1002_ITS_hap_HI.mp4")
    touch(tmp_path / "AudioWAV" / "1001_DFA_ANG_XX.wav")
    recs = read_cremad(tmp_path)
    by_id = {r.clip_id: r for r in recs}
    assert len(recs) == 7 * 6 + 1
    for i, code in enumerate(codes):
        rec = by_id[f"VideoFlash/1001_DFA_{code}_XX"]
        assert rec.label == i and rec.label_name == CREMAD_CLASSES[i]
    assert by_id["VideoMP4/1002_ITS_hap_HI"].label_name == "happy"
    assert by_id["VideoFlash/1001_DFA_ANG_XX"].label_name == "anger"
    assert by_id["VideoFlash/1001_DFA_ANG_XX"].path == tmp_path / "VideoFlash" / "1001_DFA_ANG_XX.flv"

    def actors(split, **kw):
        return {int(r.clip_id.split("/")[1][:4]) for r in read_cremad(tmp_path, split, **kw)}

    assert actors("train") == {1001, 1002, 1050, 1063}
    assert actors("val") == {1064, 1077}
    assert actors("test") == {1078, 1091}
    assert actors("test", val_actors=[1050], test_actors=[1001, 1002]) == {1001, 1002}


def test_cremad_invalid_names_and_duplicate_ids(tmp_path):
    touch(tmp_path / "1001_DFA_ANG_XX.flv")
    touch(tmp_path / "1001_DFA_XXX_XX.flv")  # unknown emotion code
    touch(tmp_path / "2001_DFA_ANG_XX.flv")  # actor out of range
    with pytest.raises(DatasetError, match=r"2 file\(s\) do not match.*1001_DFA_XXX_XX\.flv"):
        read_cremad(tmp_path)
    with pytest.warns(DatasetWarning):
        assert len(read_cremad(tmp_path, allow_invalid=True)) == 1
    touch(tmp_path / "1001_DFA_ANG_XX.mp4")
    with pytest.raises(DatasetError, match="share the clip id"), pytest.warns(DatasetWarning):
        read_cremad(tmp_path, allow_invalid=True)
    # restricting the extensions picks one of the two (and leaves the invalid .flv names out)
    only_mp4 = read_cremad(tmp_path, extensions=(".mp4",))
    assert [(r.clip_id, r.path.suffix) for r in only_mp4] == [("1001_DFA_ANG_XX", ".mp4")]
