"""core.batch.run_batch's record of when the job was ready and when each clip finished, and the
steady seconds per clip a throughput measurement reads from it (start-up and each worker's first
clip left out)."""
from __future__ import annotations

from pathlib import Path

import pytest

from core.batch import BatchSummary, run_batch
from media.layouts import ClipRecord

pytestmark = pytest.mark.slow  # launches worker processes


def _records(n: int) -> list[ClipRecord]:
    return [ClipRecord(clip_id=f"c{i}", path=Path(f"/nowhere/c{i}.mp4"), label=None, class_names=(), split=None)
            for i in range(n)]


def _job(record: ClipRecord) -> str:
    if record.clip_id == "c2":
        raise ValueError("unreadable")
    return "skipped" if record.clip_id == "c3" else "done"


def _make_job():
    return _job


@pytest.mark.parametrize("workers", [0, 2])
def test_every_clip_is_stamped_when_it_finishes_whatever_its_outcome(workers, tmp_path):
    summary = run_batch(_records(6), _make_job, errors_log=tmp_path / "errors.jsonl", workers=workers)
    assert (summary.done, summary.skipped, summary.failed) == (4, 1, 1)
    assert len(summary.finished_s) == 6
    assert summary.finished_s == sorted(summary.finished_s)
    assert 0 <= summary.ready_s <= summary.finished_s[0] <= summary.finished_s[-1] <= summary.seconds


def test_steady_seconds_per_clip_leaves_out_each_workers_first_clip():
    # two workers: their first clips end at 5.0 and 5.5 s (start-up, models' first calls), then one
    # clip every 1.0 s per worker, i.e. 0.5 s per clip for the run
    summary = BatchSummary(done=6, finished_s=[5.0, 5.5, 6.0, 6.5, 7.0, 7.5])
    assert summary.steady_seconds_per_clip(skip=2) == pytest.approx(0.5)
    assert summary.steady_seconds_per_clip(skip=1) == pytest.approx(0.5)
    one_process = BatchSummary(done=3, finished_s=[4.0, 5.2, 6.4])  # a slow first clip, then 1.2 s each
    assert one_process.steady_seconds_per_clip() == pytest.approx(1.2)
    assert BatchSummary(done=2, finished_s=[1.0, 2.0]).steady_seconds_per_clip(skip=2) is None
    assert BatchSummary().steady_seconds_per_clip() is None
