"""Tests for synthetic.output: claiming the output folder, seeded labels and subsets, argument
checks and the process pool."""
from __future__ import annotations

import pytest

from synthetic.output import (
    balanced_labels,
    check_counts,
    check_fractions,
    check_geometry,
    chosen,
    claim_output_folder,
    run_in_processes,
)


def test_claiming_a_folder_refuses_an_existing_dataset_unless_told_to_replace_it(tmp_path):
    out = tmp_path / "set"
    owned = [out / "Train", out / "synthetic.json"]
    claim_output_folder(out, owned, overwrite=False)          # nothing there yet: just made
    assert out.is_dir()
    (out / "Train").mkdir()
    (out / "Train" / "1_1.mp4").write_bytes(b"x")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"set: already holds a dataset \(Train\); pass overwrite=True"):
        claim_output_folder(out, owned, overwrite=False)
    assert (out / "Train" / "1_1.mp4").exists()
    claim_output_folder(out, owned, overwrite=True)
    assert not (out / "Train").exists() and (out / "notes.txt").read_text() == "mine"   # only owned paths go


def test_balanced_labels_and_chosen_subsets_are_seeded_and_exact():
    labels = balanced_labels(10, 3, seed=1, purpose=100)
    assert sorted(labels) == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert labels == balanced_labels(10, 3, seed=1, purpose=100)
    assert labels != balanced_labels(10, 3, seed=1, purpose=101)
    subset = chosen(10, 0.34, seed=1, purpose=200, split_index=0)
    assert len(subset) == 3 and subset <= set(range(10))
    assert subset == chosen(10, 0.34, seed=1, purpose=200, split_index=0)
    assert chosen(10, 0.0, seed=1, purpose=200, split_index=0) == set()
    assert chosen(10, 1.0, seed=1, purpose=200, split_index=0) == set(range(10))


def test_argument_checks_name_the_argument():
    with pytest.raises(ValueError, match="n_val must be a non-negative int, got -1"):
        check_counts({"n_train": 2, "n_val": -1})
    with pytest.raises(ValueError, match="n_train must be a non-negative int"):
        check_counts({"n_train": 1.5})
    with pytest.raises(ValueError, match=r"audio_fraction must be in \[0, 1\], got 1.2"):
        check_fractions({"cue_noise": 0.5, "audio_fraction": 1.2})
    with pytest.raises(ValueError, match="even and at least 32x32"):
        check_geometry(33, 32, 15, 1.0)
    with pytest.raises(ValueError, match="fps and duration must be positive"):
        check_geometry(32, 32, 0, 1.0)


def test_the_process_pool_returns_results_in_task_order():
    tasks = [-3, 1, -2, 5, -4]
    assert run_in_processes(abs, tasks, workers=1) == [3, 1, 2, 5, 4]
    assert run_in_processes(abs, tasks, workers=2) == [3, 1, 2, 5, 4]
