"""media.layouts.speakers: the speaker-independent split protocol of RAVDESS and CREMA-D, and the
refusal of a split that shares a speaker with another."""
from __future__ import annotations

from pathlib import Path

import pytest

from media.layouts import (
    CREMAD_SPEAKERS,
    LAYOUTS,
    RAVDESS_SPEAKERS,
    ClipRecord,
    DatasetError,
    SpeakerSplit,
    read_cremad,
    read_dataset,
    read_ravdess,
    refuse_shared_speakers,
)
from media.layouts.cremad import cremad_actor
from media.layouts.ravdess import ravdess_actor
from tests.conftest import load_helper

trees = load_helper(Path(__file__).with_name("trees.py"), "tests_media_layouts_trees")


def test_each_speaker_layout_states_its_default_actors_and_every_actor_is_in_one_split():
    rav = RAVDESS_SPEAKERS.members()
    assert rav == {"train": tuple(range(1, 19)), "val": (19, 20, 21), "test": (22, 23, 24)}
    crema = CREMAD_SPEAKERS.members()
    assert (len(crema["train"]), len(crema["val"]), len(crema["test"])) == (63, 14, 14)
    assert crema["val"][0] == 1064 and crema["test"] == tuple(range(1078, 1092))
    for speakers in (RAVDESS_SPEAKERS, CREMAD_SPEAKERS):
        groups = [set(v) for v in speakers.members().values()]
        assert set().union(*groups) == set(range(speakers.first, speakers.last + 1))
        assert sum(map(len, groups)) == speakers.last - speakers.first + 1
    assert LAYOUTS["ravdess"].speakers is RAVDESS_SPEAKERS and LAYOUTS["cremad"].speakers is CREMAD_SPEAKERS
    assert "speaker-independent by actor" in LAYOUTS["ravdess"].split_protocol


def test_the_readers_split_by_the_protocol_they_carry(tmp_path):
    root = trees.make_ravdess(tmp_path)
    for split, actors in RAVDESS_SPEAKERS.members().items():
        assert {ravdess_actor(r) for r in read_ravdess(root, split)} == set(actors)


def test_reading_refuses_val_and_test_actors_that_share_an_actor_naming_the_root_and_the_actor(tmp_path):
    rav = trees.make_ravdess(tmp_path / "rav")
    with pytest.raises(DatasetError, match=r"actor 20 would be in both val and test") as err:
        read_ravdess(rav, "train", val_actors=[19, 20], test_actors=[20, 21])
    assert str(rav) in str(err.value)
    with pytest.raises(DatasetError, match=r"actor 20 would be in both"):
        read_dataset(rav, val_actors=[20], test_actors=[20])
    crema = tmp_path / "crema"
    trees.touch(crema / "1001_DFA_ANG_XX.flv")
    with pytest.raises(DatasetError, match=r"actor 1070 would be in both val and test") as err:
        read_cremad(crema, test_actors=[1070, 1080])
    assert str(crema) in str(err.value)


def test_a_speaker_in_two_splits_is_refused_naming_the_root_the_speaker_and_a_clip_of_each(tmp_path):
    def record(name: str, split: str | None) -> ClipRecord:
        return ClipRecord(f"x/{name}", tmp_path / "x" / f"{name}.mp4", 0, ("a",), split)

    apart = [record("1001_A", "train"), record("1001_B", "train"), record("1002_A", "val"), record("1003_A", None)]
    refuse_shared_speakers(tmp_path, apart, cremad_actor, dataset="CREMA-D", kind="actor")  # nothing shared
    shared = apart + [record("1001_C", "test")]
    with pytest.raises(DatasetError) as err:
        refuse_shared_speakers(tmp_path, shared, cremad_actor, dataset="CREMA-D", kind="actor")
    assert str(err.value).startswith(f"{tmp_path}: CREMA-D actor 1001 is in more than one split")
    assert "train: x/1001_A, test: x/1001_C" in str(err.value)


def test_actor_ids_out_of_range_are_still_a_value_error():
    speakers = SpeakerSplit("Toy", "speaker", 1, 4, val=(3,), test=(4,))
    split_of = speakers.assign("root", speakers.val, speakers.test)
    assert [split_of(a) for a in (1, 2, 3, 4)] == ["train", "train", "val", "test"]
    with pytest.raises(ValueError, match=r"Toy speakers must be in 1..4, got \[5\]"):
        speakers.assign("root", [5], [])
