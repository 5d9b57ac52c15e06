"""Running one job per clip over a dataset: worker processes, a progress bar, a per-clip error
log that lets the run go on, and a summary.

A job is built once per worker process by ``make_job()`` (so each worker loads its models once)
and called as ``job(record) -> status`` where status is ``"done"`` or ``"skipped"`` (already up
to date). Any exception from a job is written to ``errors.jsonl`` with the clip id and reason,
and counted as failed; ``KeyboardInterrupt`` stops the run (finished clips stay finished, because
jobs write atomically).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from tqdm import tqdm

from media.datasets import ClipRecord
from media.storage import append_error

Job = Callable[[ClipRecord], str]


@dataclass
class BatchSummary:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return self.done + self.skipped + self.failed

    @property
    def all_failed(self) -> bool:
        return self.total > 0 and self.failed == self.total

    def format(self) -> str:
        lines = [f"done {self.done} | skipped (up to date) {self.skipped} | failed {self.failed} "
                 f"| {self.seconds:.1f} s"]
        for clip_id, reason in self.failures[:5]:
            lines.append(f"  failed {clip_id}: {reason}")
        if len(self.failures) > 5:
            lines.append(f"  ... and {len(self.failures) - 5} more (see errors.jsonl)")
        return "\n".join(lines)


_worker_job: Job | None = None


def _init_worker(make_job: Callable[[], Job]) -> None:
    global _worker_job
    import torch

    torch.set_num_threads(1)  # K processes x 1 thread each, instead of K x all cores
    _worker_job = make_job()


def _run_one(record: ClipRecord) -> tuple[str, str, str | None]:
    assert _worker_job is not None
    return _call(_worker_job, record)


def _call(job: Job, record: ClipRecord) -> tuple[str, str, str | None]:
    try:
        return record.clip_id, job(record), None
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 - a failing clip is logged with its reason and the run goes on
        detail = f"{type(e).__name__}: {e}"
        if not isinstance(e, (ValueError, OSError)):
            detail += "\n" + traceback.format_exc(limit=3)
        return record.clip_id, "failed", detail


def run_batch(records: Sequence[ClipRecord], make_job: Callable[[], Job], *, errors_log: str | os.PathLike,
              workers: int = 0, desc: str = "clips") -> BatchSummary:
    """Run ``make_job()(record)`` for every record; see the module docstring.

    ``workers`` 0 or 1 runs in this process; K > 1 uses K processes (spawned, so CUDA and
    threads are safe). ``make_job`` must be picklable (a module-level function or a
    ``functools.partial`` of one) when ``workers > 1``.
    """
    summary = BatchSummary()
    start = time.perf_counter()
    errors_log = Path(errors_log)
    bar = tqdm(total=len(records), desc=desc, unit="clip", dynamic_ncols=True)

    def account(result: tuple[str, str, str | None]) -> None:
        clip_id, status, detail = result
        if status == "failed":
            summary.failed += 1
            first_line = (detail or "").splitlines()[0] if detail else ""
            summary.failures.append((clip_id, first_line))
            append_error(errors_log, clip_id, detail or "failed")
        elif status == "skipped":
            summary.skipped += 1
        else:
            summary.done += 1
        bar.set_postfix(done=summary.done, skipped=summary.skipped, failed=summary.failed)
        bar.update(1)

    try:
        if workers <= 1:
            job = make_job()
            for record in records:
                account(_call(job, record))
        else:
            ctx = mp.get_context("spawn")
            with ctx.Pool(workers, initializer=_init_worker, initargs=(make_job,)) as pool:
                for result in pool.imap_unordered(_run_one, records, chunksize=1):
                    account(result)
    finally:
        bar.close()
        summary.seconds = time.perf_counter() - start
    return summary


def add_batch_arguments(parser) -> None:
    """The arguments every per-clip batch tool takes: --config, --set, --videos, --out, --workers,
    --shard, --split, --allow-missing."""
    parser.add_argument("--config", required=True, help="preprocessing recipe (YAML)")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override config values")
    parser.add_argument("--videos", required=True, help="dataset root (VGAF, RAVDESS, CREMA-D) or a folder of videos")
    parser.add_argument("--out", required=True, help="cache directory")
    parser.add_argument("--workers", type=int, default=0, help="worker processes (0: this process)")
    parser.add_argument("--shard", default=None, help="i/N: process a deterministic 1/N slice (cluster arrays)")
    parser.add_argument("--split", default=None, help="only this split (train/val/test)")
    parser.add_argument("--allow-missing", action="store_true",
                        help="skip labelled clips whose video is missing and videos without a label")


def select_records(videos: str, *, split: str | None, shard: str | None, allow_missing: bool = False) -> list[ClipRecord]:
    """The dataset's records (layout detected), restricted to ``split`` and to shard ``i/N``."""
    from media.datasets import detect_layout, read_dataset
    from media.storage import parse_shard, shard_items

    layout = detect_layout(videos)
    kwargs = {"allow_missing": True} if allow_missing and layout == "vgaf" else {}
    records = read_dataset(videos, split, layout=layout, **kwargs)
    return shard_items(records, parse_shard(shard), key=lambda r: r.clip_id)


def exit_code(summary: BatchSummary) -> int:
    """Non-zero only when every clip failed (a usage error exits earlier, through argparse)."""
    return 1 if summary.all_failed else 0
