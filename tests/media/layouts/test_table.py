"""media.layouts: the table of layouts, and detect_layout, read_dataset and skipped_files dispatching through it."""
from __future__ import annotations

from pathlib import Path

import pytest

from media.layouts import (
    LAYOUTS,
    RAVDESS_CLASSES,
    ClipLayout,
    ClipRecord,
    DatasetError,
    DatasetWarning,
    Evidence,
    SkippedFile,
    detect_layout,
    get_layout,
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


# ------------------------------------------------------------------------------- the table


def test_the_table_holds_one_layout_per_module_under_its_own_name():
    assert list(LAYOUTS) == ["vgaf", "groupemow", "ravdess", "cremad", "fer2013", "video_folder"]
    for name, layout in LAYOUTS.items():
        assert layout.name == name and get_layout(name) is layout
        assert layout.split_protocol and layout.title
        assert type(layout).__module__ == f"media.layouts.{name}"
    assert [n for n, layout in LAYOUTS.items() if layout.speakers is not None] == ["ravdess", "cremad"]
    assert LAYOUTS["ravdess"].class_names == RAVDESS_CLASSES
    with pytest.raises(ValueError, match="unknown layout 'afew'"):
        get_layout("afew")


class _ToyLayout(ClipLayout):
    """A layout added for the test: every ``*.toy`` file is a clip of class 'a', split train."""

    name = "toy"
    title = "Toy"
    class_names = ("a",)
    split_protocol = "everything is train"
    options = ("suffix",)

    def detect(self, root: Path) -> Evidence:
        return Evidence.LABEL_FILES if any(root.glob("*.toy")) else Evidence.NONE

    def splits(self, root: Path) -> tuple[str, ...]:
        return ("train",)

    def read(self, root, split=None, *, suffix=".toy"):
        return [ClipRecord(p.stem, p, 0, self.class_names, "train") for p in sorted(Path(root).glob(f"*{suffix}"))]

    def skipped(self, root: Path, splits) -> list[SkippedFile]:
        return [SkippedFile(p, "not a toy") for p in sorted(Path(root).glob("*.txt"))]


def test_a_layout_added_to_the_table_is_detected_read_and_asked_what_it_skips(tmp_path, monkeypatch):
    touch(tmp_path / "one.toy")
    touch(tmp_path / "one.mp4")
    touch(tmp_path / "notes.txt")
    assert detect_layout(tmp_path) == "video_folder"
    monkeypatch.setitem(LAYOUTS, "toy", _ToyLayout())
    assert detect_layout(tmp_path) == "toy"
    assert [(r.clip_id, r.label_name) for r in read_dataset(tmp_path)] == [("one", "a")]
    assert read_dataset(tmp_path, suffix=".mp4")[0].path.name == "one.mp4"
    assert [s.reason for s in skipped_files(tmp_path)] == ["not a toy"]
    assert read_dataset(tmp_path, layout="video_folder")[0].clip_id == "one"


def test_detection_takes_the_strongest_evidence_and_the_earlier_row_on_a_tie(tmp_path):
    both = tmp_path / "both"
    touch(both / "01-01-05-01-01-01-01.mp4")
    touch(both / "1001_DFA_ANG_XX.mp4")  # one name of each pattern: half each, a tie
    assert LAYOUTS["ravdess"].detect(both) == LAYOUTS["cremad"].detect(both) == Evidence.FILE_NAMES
    assert detect_layout(both) == "ravdess"
    labelled = make_vgaf(tmp_path / "vgaf")
    touch(labelled / "train" / "positive" / "x.jpg")  # GroupEmoW folders too: the label files win
    assert LAYOUTS["groupemow"].detect(labelled) == Evidence.CLASS_FOLDERS
    assert detect_layout(labelled) == "vgaf"


def test_read_dataset_refuses_a_layout_that_does_not_hold_clips(tmp_path):
    (tmp_path / "fer2013.csv").write_text("emotion,pixels,Usage\n")
    assert detect_layout(tmp_path) == "video_folder"  # FER2013 is never guessed
    with pytest.raises(DatasetError, match=r"FER2013 layout holds no clips") as err:
        read_dataset(tmp_path, layout="fer2013")
    assert str(tmp_path) in str(err.value)


def test_batch_selection_passes_allow_missing_only_to_layouts_that_take_it(tmp_path):
    from media.selection import select_records

    vgaf = make_vgaf(tmp_path / "vgaf")
    touch(vgaf / "Train" / "unlabeled.mp4")
    assert "allow_missing" in LAYOUTS["vgaf"].options and "allow_missing" not in LAYOUTS["ravdess"].options
    with pytest.raises(DatasetError, match="without a label"):
        select_records(str(vgaf), split="train", shard=None)
    with pytest.warns(DatasetWarning):
        assert len(select_records(str(vgaf), split="train", shard=None, allow_missing=True)) == 3
    rav = make_ravdess(tmp_path / "rav")
    assert {_actor(r) for r in select_records(str(rav), split="val", shard=None, allow_missing=True)} == {19, 20, 21}
