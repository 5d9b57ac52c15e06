"""Tests for training.label_maps: a dataset's classes mapped onto a task's, every class mapped or
dropped, clear errors naming the class, and the mapping applied to labels and dataset records."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.config import ConfigError, load_config
from media.datasets import RAVDESS_CLASSES, ClipRecord
from media.fer2013 import FER2013_CLASSES
from training.label_maps import create_label_map, relabel_records

ROOT = Path(__file__).resolve().parents[2]


def test_the_valence_recipe_maps_fer2013_onto_the_vgaf_classes_in_their_order():
    section = load_config(ROOT / "configs/faces/fer2013_valence.yaml")["labels"]
    label_map = create_label_map(section, FER2013_CLASSES)
    assert label_map.target_classes == ("Positive", "Neutral", "Negative")
    by_name = dict(zip(FER2013_CLASSES, label_map.targets))
    assert by_name == {"Angry": 2, "Disgust": 2, "Fear": 2, "Happy": 0, "Sad": 2, "Surprise": None, "Neutral": 1}
    keep, mapped = label_map.map_labels(np.array([3, 5, 0, 6, 5, 4]))
    assert keep.tolist() == [True, False, True, True, False, True]
    assert mapped.tolist() == [0, 2, 1, 2]
    assert label_map.describe() == ("Happy -> Positive; Neutral -> Neutral; Angry, Disgust, Fear, Sad -> Negative; "
                                    "dropped: Surprise")


def test_without_classes_the_targets_come_in_order_of_first_appearance_and_names_fold_case():
    label_map = create_label_map({"map": {"sad": "low", "Happy": "high", "neutral": "low"},
                                  "drop": ["CALM", "angry", "fearful", "disgust", "surprised"]}, RAVDESS_CLASSES)
    assert label_map.target_classes == ("low", "high")
    assert [label_map.map_label(i) for i in range(8)] == [0, None, 1, 0, None, None, None, None]


@pytest.mark.parametrize("section, message", [
    ({"map": {"Happy": "Positive"}},
     "'Angry', 'Disgust', 'Fear', 'Sad', 'Surprise', 'Neutral' are neither mapped nor dropped"),
    ({"map": {"Joy": "Positive"}}, "labels.map: 'Joy' is not a class of the dataset; its classes are Angry, Disgust"),
    ({"map": {"Happy": "P"}, "drop": ["Happy", "Angry", "Disgust", "Fear", "Sad", "Surprise", "Neutral"]},
     "'Happy' is in map and in drop"),
    ({"map": {"Happy": "P", "happy": "N"}}, "'Happy' is mapped twice"),
    ({"map": {"Happy": "P"}, "drop": ["Sad", "Sad"]}, "'Sad' is listed twice"),
    ({"drop": list(FER2013_CLASSES)}, "every class is dropped"),
    ({"map": {c: "P" for c in FER2013_CLASSES}, "classes": ["P", "N"]}, "no class maps to \\['N'\\]"),
    ({"map": {c: "P" for c in FER2013_CLASSES}, "mapping": {}}, "unknown key\\(s\\) \\['mapping'\\]"),
    ({"map": ["Happy"]}, "labels.map must be a mapping"),
])
def test_bad_sections_are_config_errors_naming_the_class(section, message):
    with pytest.raises(ConfigError, match=message):
        create_label_map(section, FER2013_CLASSES)


def test_no_section_keeps_the_dataset_classes():
    assert create_label_map(None, FER2013_CLASSES) is None
    records = [ClipRecord("a", Path("a.mp4"), 2, RAVDESS_CLASSES, "train")]
    assert relabel_records(records, None) == records


def test_relabel_records_maps_labels_drops_classes_and_keeps_unlabelled_clips():
    def rec(clip_id: str, label, split="train") -> ClipRecord:
        return ClipRecord(clip_id, Path(f"/d/{clip_id}.mp4"), label, RAVDESS_CLASSES, split)

    records = [rec("a", 2), rec("b", 1), rec("c", 3), rec("d", None, "test")]
    section = {"map": {"happy": "Positive", "surprised": "Positive", "neutral": "Neutral", "sad": "Negative",
                       "angry": "Negative", "fearful": "Negative", "disgust": "Negative"}, "drop": ["calm"],
               "classes": ["Positive", "Neutral", "Negative"]}
    out = relabel_records(records, section)
    assert [(r.clip_id, r.label_name) for r in out] == [("a", "Positive"), ("c", "Negative"), ("d", None)]
    assert all(r.class_names == ("Positive", "Neutral", "Negative") for r in out)
    with pytest.raises(ConfigError, match="one labelled dataset"):
        relabel_records([rec("a", 2), ClipRecord("x", Path("x.mp4"), 0, ("A", "B"), "train")], section)
