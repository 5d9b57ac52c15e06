"""Tests for synthetic.stills: the stills written alone are those of the VGAF-layout set, and the
per-split counts are checked."""
from __future__ import annotations

import pytest

from synthetic.group import generate_dataset
from synthetic.stills import generate_stills, stills_per_split


def test_stills_alone_are_the_stills_of_the_vgaf_set(tmp_path):
    generate_dataset(tmp_path / "vgaf", n_train=0, n_val=0, n_stills_per_class=1, seed=5, width=96, height=64)
    summary = generate_stills(tmp_path / "stills", n_per_class=1, seed=5, width=96, height=64)
    assert summary["stills"]["train"] == {"Positive": 1, "Neutral": 1, "Negative": 1}
    from media.layouts import detect_layout, read_groupemow

    assert detect_layout(tmp_path / "stills") == "groupemow"
    records = read_groupemow(tmp_path / "stills", "val")
    assert [r.label_name for r in records] == ["Negative", "Neutral", "Positive"]
    for rec in records:
        twin = tmp_path / "vgaf" / "groupemow" / rec.path.relative_to(tmp_path / "stills")
        assert rec.path.read_bytes() == twin.read_bytes()


def test_stills_per_split_takes_one_count_or_a_mapping_and_names_bad_ones():
    assert stills_per_split(4, "n") == {"train": 4, "val": 4, "test": 4}
    assert stills_per_split({"val": 2}, "n") == {"train": 0, "val": 2, "test": 0}
    with pytest.raises(ValueError, match="n_per_class: unknown splits"):
        stills_per_split({"dev": 1}, "n_per_class")
    with pytest.raises(ValueError, match="n must be >= 0"):
        stills_per_split(-1, "n")
