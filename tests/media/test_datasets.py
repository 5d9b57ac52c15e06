"""Dataset readers on fabricated trees of empty files (the readers never decode media)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from media.datasets import (
    CREMAD_CLASSES,
    GROUPEMOW_CLASSES,
    RAVDESS_CLASSES,
    VGAF_CLASSES,
    ClipRecord,
    DatasetError,
    DatasetWarning,
    detect_layout,
    read_cremad,
    read_dataset,
    read_groupemow,
    read_ravdess,
    read_vgaf,
    read_video_folder,
    skipped_files,
)


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def make_vgaf(root: Path, train: dict[str, int] | None = None, val: dict[str, int] | None = None,
              test: tuple[str, ...] = ("t1", "t2")) -> Path:
    """VGAF tree: videos for every labelled name plus the test names; 1-based labels on disk."""
    train = {"10_1": 1, "10_2": 2, "11_1": 3} if train is None else train
    val = {"20_1": 3, "20_2": 1} if val is None else val
    for folder, labels, fname in (("Train", train, "Train_labels.txt"), ("Val", val, "Val_labels.txt")):
        for name in labels:
            touch(root / folder / f"{name}.mp4")
        text = "Vid_name Label\n" + "".join(f"{n} {lab}\n" for n, lab in labels.items())
        (root / fname).write_text(text)
    for name in test:
        touch(root / "Test" / f"{name}.mp4")
    return root


def write_labels(root: Path, text: str, fname: str = "Train_labels.txt") -> Path:
    path = root / fname
    path.write_bytes(text.encode())
    return path


# ------------------------------------------------------------------------------------------ VGAF


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


# ------------------------------------------------------------------------------------- GroupEmoW


def make_groupemow(root: Path) -> Path:
    touch(root / "train" / "Positive" / "img1.jpg")
    touch(root / "train" / "NEGATIVE" / "img2.png")
    touch(root / "train" / "neutral" / "img3.jpeg")
    touch(root / "train" / "neutral" / "readme.txt")
    touch(root / "Val" / "positive" / "v1.JPG")
    touch(root / "test" / "negative" / "t1.jpg")
    return root


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


# --------------------------------------------------------------------------------------- RAVDESS


def ravdess_name(modality: int, emotion: int, actor: int, statement: int = 1) -> str:
    intensity = 1 if emotion == 1 else 2
    return f"{modality:02d}-01-{emotion:02d}-{intensity:02d}-{statement:02d}-01-{actor:02d}.mp4"


def make_ravdess(root: Path) -> Path:
    for actor in range(1, 25):
        for emotion in (1, 5, 8):
            touch(root / f"Actor_{actor:02d}" / ravdess_name(1, emotion, actor))
        touch(root / f"Actor_{actor:02d}" / ravdess_name(2, 3, actor))
        touch(root / f"Actor_{actor:02d}" / ravdess_name(3, 4, actor))  # audio-only stray mp4
        touch(root / f"Actor_{actor:02d}" / ravdess_name(3, 4, actor).replace(".mp4", ".wav"))
    return root


def _actor(rec: ClipRecord) -> int:
    return int(rec.clip_id.rsplit("-", 1)[1])


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


# --------------------------------------------------------------------------------------- CREMA-D


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


# ----------------------------------------------------------------------- video folder, detection


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


# ------------------------------------------------------------------------------ skipped files


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
