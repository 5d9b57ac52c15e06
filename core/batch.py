"""Running one job per clip over a dataset (which clips: :mod:`media.selection`): worker
processes, a progress bar, a per-clip error log that lets the run go on, and a summary.

A job is built once per worker process by ``make_job()`` (so each worker loads its models once)
and called as ``job(record) -> status`` where status is ``"done"`` or ``"skipped"`` (already up
to date). Any exception from a job is written to ``errors.jsonl`` with the clip id, the
exception's class and the reason, and counted as failed; ``KeyboardInterrupt`` stops the run
(finished clips stay finished, because jobs write atomically). An exception from ``make_job()``
itself (a bad scorer checkpoint, a bad config key) concerns every clip: it stops the run before
any clip starts and is raised to the caller, also from a worker process; a tool writes what
describes the whole run (``ready``) only once the job is built, so a refused run writes nothing.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

from tqdm import tqdm

from core.storage import append_error


class ClipRecord(Protocol):
    """What the runner needs of an item: its id (the key of the error log and the summary)."""

    clip_id: str


Job = Callable[[ClipRecord], str]


@dataclass
class BatchSummary:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    ready_s: float | None = None  # seconds from the start until the job was built (in a worker: the first)
    finished_s: list[float] = field(default_factory=list)  # seconds from the start until each clip was accounted

    def steady_seconds_per_clip(self, skip: int = 1) -> float | None:
        """Seconds per clip once the run is under way: the time between the ``skip``-th and the
        last clip to finish, over the clips in between (so a worker's start-up and its first clip,
        with the models' first-call costs, do not count; ``skip`` = the number of workers).
        ``None`` when fewer than ``skip + 1`` clips finished."""
        if skip < 1 or len(self.finished_s) <= skip:
            return None
        return (self.finished_s[-1] - self.finished_s[skip - 1]) / (len(self.finished_s) - skip)

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
_worker_setup_error: Exception | None = None

# (clip_id, status, detail, exception class name); detail and class name are None unless failed
Result = tuple[str, str, str | None, str | None]


def _init_worker(make_job: Callable[[], Job]) -> None:
    global _worker_job, _worker_setup_error
    import torch

    torch.set_num_threads(1)  # K processes x 1 thread each, instead of K x all cores
    try:
        _worker_job = make_job()
    except Exception as e:  # noqa: BLE001 - kept for the parent: a Pool respawns a worker whose initializer raises, forever
        e.add_note(f"raised while building the job in worker process {os.getpid()}:\n{traceback.format_exc()}")
        _worker_setup_error = e


def _setup_error() -> Exception | None:
    return _worker_setup_error


def _run_one(record: ClipRecord) -> Result:
    if _worker_setup_error is not None:  # this worker's setup failed where the first one's did not
        raise _worker_setup_error
    return _call(_worker_job, record)


def _call(job: Job, record: ClipRecord) -> Result:
    try:
        return record.clip_id, job(record), None, None
    except KeyboardInterrupt:
        raise
    except Exception as e:  # noqa: BLE001 - a failing clip is logged with its reason and the run goes on
        detail = f"{type(e).__name__}: {e}"
        if not isinstance(e, (ValueError, OSError)):
            detail += "\n" + traceback.format_exc(limit=3)
        return record.clip_id, "failed", detail, type(e).__name__


def run_batch(records: Sequence[ClipRecord], make_job: Callable[[], Job], *, errors_log: str | os.PathLike,
              workers: int = 0, desc: str = "clips", ready: Callable[[], None] | None = None) -> BatchSummary:
    """Run ``make_job()(record)`` for every record; see the module docstring.

    ``workers`` 0 or 1 runs in this process; K > 1 uses K processes (spawned, so CUDA and
    threads are safe). ``make_job`` must be picklable (a module-level function or a
    ``functools.partial`` of one) when ``workers > 1``. ``ready()``, when given, runs in this
    process once the job has been built (in a worker: once the first worker built it) and before
    the first clip.
    """
    summary = BatchSummary()
    start = time.perf_counter()
    errors_log = Path(errors_log)
    bar = None

    def account(result: Result) -> None:
        clip_id, status, detail, error_type = result
        if status == "failed":
            summary.failed += 1
            first_line = (detail or "").splitlines()[0] if detail else ""
            summary.failures.append((clip_id, first_line))
            append_error(errors_log, clip_id, detail or "failed", error_type=error_type)
        elif status == "skipped":
            summary.skipped += 1
        else:
            summary.done += 1
        summary.finished_s.append(time.perf_counter() - start)
        bar.set_postfix(done=summary.done, skipped=summary.skipped, failed=summary.failed)
        bar.update(1)

    def progress_bar() -> tqdm:  # started once the job is built, so a setup error prints no bar
        return tqdm(total=len(records), desc=desc, unit="clip", dynamic_ncols=True)

    try:
        if workers <= 1:
            job = make_job()
            summary.ready_s = time.perf_counter() - start
            if ready is not None:
                ready()
            bar = progress_bar()
            for record in records:
                account(_call(job, record))
        else:
            ctx = mp.get_context("spawn")
            with ctx.Pool(workers, initializer=_init_worker, initargs=(make_job,)) as pool:
                error = pool.apply(_setup_error)  # waits for one worker's make_job(); the same in all
                if error is not None:
                    raise error
                summary.ready_s = time.perf_counter() - start
                if ready is not None:
                    ready()
                bar = progress_bar()
                for result in pool.imap_unordered(_run_one, records, chunksize=1):
                    account(result)
    finally:
        if bar is not None:
            bar.close()
        summary.seconds = time.perf_counter() - start
    return summary


def exit_code(summary: BatchSummary) -> int:
    """Non-zero only when every clip failed (a usage error exits earlier, through argparse)."""
    return 1 if summary.all_failed else 0
