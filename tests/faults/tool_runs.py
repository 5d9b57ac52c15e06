"""A tool (``tools/<name>.py``) run as its own process, as a user runs it (a new interpreter, or a
fork of one that imported the tools' modules already: :class:`ForkLauncher`), and killed with
SIGKILL at a chosen moment; the same command re-run after the kill, and what it wrote compared with
an uninterrupted run.

A kill moment is a delay counted from the run's *first write* (the first change under the
directory the tool writes), so kills land in the work, not in the seconds of imports before it.
What each kill left on disk is described by a tool-specific function, so a report says what
moment each kill hit (e.g. "3/5 clips complete, 1 temp file").
"""
from __future__ import annotations

import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Sequence

ROOT = Path(__file__).resolve().parents[2]
POLL_S = 0.01


def child_env() -> dict[str, str]:
    """The tools' environment: the repository on ``PYTHONPATH``, one thread per library (results
    that depend on the thread count must not differ between a run and its re-run)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               TQDM_DISABLE="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def tree_state(root: Path) -> dict[str, tuple[int, int]]:
    """``{relative path: (size, mtime_ns)}`` of every file under ``root`` (``{}`` if absent)."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            try:
                st = os.stat(path)
            except FileNotFoundError:  # renamed away while we walked
                continue
            out[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns)
    return out


@dataclass
class Launch:
    """One run of a tool. Times in seconds from the launch; ``first_write`` and ``last_write``
    (the first and the last change seen under the watched directory) are ``None`` when the run
    changed nothing there; ``kill_delay`` counts from ``first_write``."""

    argv: list[str]
    killed: bool
    returncode: int
    seconds: float
    first_write: float | None
    last_write: float | None
    kill_delay: float | None = None
    moment: str | None = None  # what the kill left on disk (killed runs only)
    log_tail: str = ""


class ForkLauncher:
    """Runs tools as forks of ``tests/faults/fork_launcher.py`` (started once, with
    :func:`child_env`), which has imported what they import; see that file for the protocol."""

    def __init__(self, log_path: Path) -> None:
        self._log = open(log_path, "wb")
        self._proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("fork_launcher.py"))], cwd=ROOT,
                                      env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._log)
        self._pending = b""
        self._message("ready")

    def _message(self, key: str, timeout: float | None = None) -> dict | None:
        """The launcher's next message, which must hold ``key``; ``None`` if none came in ``timeout`` s.
        Read from the pipe unbuffered, so ``select`` sees every line not yet taken."""
        fd = self._proc.stdout.fileno()
        while b"\n" not in self._pending:
            if timeout is not None and not select.select([fd], [], [], timeout)[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"the fork launcher ended (exit {self._proc.wait()}); see {self._log.name}")
            self._pending += chunk
        line, self._pending = self._pending.split(b"\n", 1)
        message = json.loads(line)
        assert key in message, message
        return message

    def start(self, tool: str, argv: Sequence[str], log_path: Path) -> "_Forked":
        self._proc.stdin.write(json.dumps({"tool": tool, "argv": list(argv), "log": str(log_path)}).encode() + b"\n")
        self._proc.stdin.flush()
        return _Forked(self, self._message("started")["started"])

    def close(self) -> None:
        self._proc.stdin.close()
        self._proc.wait(timeout=60)
        self._log.close()


class _Forked:
    """A run started by :class:`ForkLauncher`, with the part of ``subprocess.Popen``'s interface
    :func:`run_tool` uses."""

    def __init__(self, launcher: ForkLauncher, pid: int) -> None:
        self.launcher, self.pid, self.returncode = launcher, pid, None

    def poll(self) -> int | None:
        if self.returncode is None:
            message = self.launcher._message("exited", timeout=0)
            if message is not None:
                self.returncode = message["returncode"]
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = self.launcher._message("exited")["returncode"]
        return self.returncode


def run_tool(tool: str, argv: Sequence[str], *, watch: Path, log_path: Path, kill_after: float | None = None,
             launcher: ForkLauncher | None = None, timeout: float = 900.0) -> Launch:
    """Run ``python tools/<tool>.py argv`` from the repository root and wait for it; with
    ``kill_after`` (s), SIGKILL its process group that long after its first write under ``watch``
    (if it is still running then). ``launcher``: start it as a fork of that launcher instead of a
    new interpreter (the same run, without the seconds of imports)."""
    cmd = [sys.executable, str(ROOT / "tools" / f"{tool}.py"), *argv]
    state = tree_state(watch)
    first = last = deadline = None
    start = time.monotonic()
    if launcher is None:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(), stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
    else:
        proc = launcher.start(tool, argv, log_path)
    try:
        while proc.poll() is None:
            now = time.monotonic()
            if now - start > timeout:
                raise TimeoutError(f"{' '.join(cmd)} ran over {timeout:.0f} s (log: {log_path})")
            current = tree_state(watch) if deadline is None else state
            if current != state:
                state, last = current, now
                if first is None:
                    first = now
                    if kill_after is not None:
                        deadline = first + kill_after
            elif deadline is not None and now >= deadline:
                _kill(proc.pid)
                proc.wait()
                break
            time.sleep(POLL_S if deadline is None else min(POLL_S, max(deadline - now, 0.0)))
    finally:
        if proc.poll() is None:
            _kill(proc.pid)
            proc.wait()
    end = time.monotonic()
    if deadline is None and tree_state(watch) != state:  # written between the last look and the exit
        last = end
        first = first or end
    killed = proc.returncode == -signal.SIGKILL
    return Launch(argv=list(argv), killed=killed, returncode=proc.returncode, seconds=round(end - start, 3),
                  first_write=None if first is None else round(first - start, 3),
                  last_write=None if last is None else round(last - start, 3),
                  kill_delay=round(end - first, 3) if killed and first is not None else None,
                  log_tail=_tail(log_path))


def _kill(pid: int) -> None:
    """SIGKILL the run's process group (it leads its own session), or the process if it has none yet."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # it ended by itself in the meantime


def _tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(encoding="utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class Reference:
    """An uninterrupted run, moved to ``directory`` after it finished."""

    directory: Path
    launch: Launch

    @property
    def window(self) -> float:
        return work_window(self.launch)


def work_window(launch: Launch) -> float:
    """The span of an uninterrupted run kill moments are drawn from: its first write to its last
    (a kill after the last write, while the tool prints and exits, would test nothing)."""
    return launch.last_write - launch.first_write


def reference_run(tool: str, argv: Sequence[str], *, out: Path, keep_as: Path, logs: Path) -> Reference:
    """Run the tool uninterrupted into ``out``, then move ``out`` to ``keep_as``: the kill trials
    write to the same ``out`` path, so paths recorded inside the outputs compare equal."""
    logs.mkdir(parents=True, exist_ok=True)
    launch = run_tool(tool, argv, watch=out, log_path=logs / f"{tool}_reference.log")
    assert launch.returncode == 0, f"the uninterrupted {tool} run failed:\n{launch.log_tail}"
    assert launch.first_write is not None, f"the uninterrupted {tool} run wrote nothing under {out}"
    out.rename(keep_as)
    return Reference(directory=keep_as, launch=launch)


@dataclass
class KillReport:
    """What :func:`kill_and_rerun` did for one tool: every launch, the kills that hit, and the
    finished re-runs that were compared with the uninterrupted run."""

    tool: str
    kills_wanted: int
    seed: str
    reference_seconds: float
    window_seconds: float  # the span kill delays are drawn from
    launches: list[Launch] = field(default_factory=list)
    compared: int = 0
    identical: int = 0
    failure: str | None = None

    @property
    def kills(self) -> list[Launch]:
        return [launch for launch in self.launches if launch.killed]

    def line(self) -> str:
        moments = "; ".join(f"+{k.kill_delay:.2f}s: {k.moment}" for k in self.kills)
        status = f"; FAILED: {self.failure.splitlines()[0]}" if self.failure else ""
        return (f"{self.tool}: {len(self.kills)} kills (seed {self.seed}; at {moments}); "
                f"{self.compared} re-runs finished, {self.identical} identical to the uninterrupted run{status}")

    def as_json(self) -> dict:
        record = asdict(self)
        record["kills"] = len(self.kills)
        record["summary"] = self.line()
        return record


def kill_and_rerun(tool: str, argv: Sequence[str], *, out: Path, reference: Reference, kills: int, seed: str,
                   logs: Path, describe: Callable[[Path], str], compare: Callable[[Path, Path], list[str]],
                   record: Callable[[KillReport], None] = lambda report: None,
                   launcher: ForkLauncher | None = None, max_launches: int | None = None) -> KillReport:
    """Kill ``tool`` at ``kills`` seeded random moments, each time re-run the same command to the
    end, and compare what it wrote with the reference.

    Every trial starts from an empty ``out``; its run is killed a delay drawn uniformly in
    ``[0, window)`` after its first write, ``window`` being the span from the first to the last
    write of an uninterrupted run, so the moments spread over the work. What the kill left is
    described (``describe(out)``, the kill's moment), then the same command runs to the end and
    ``compare(reference, out)`` must find no difference. A run that ends before its delay
    (runs vary in speed) is compared all the same and the trial drawn again.
    ``record(report)`` is called at the end, also when it fails (``report.failure``). ``launcher``:
    start the runs as its forks (see :func:`run_tool`); the reference was a new interpreter, so an
    uninterrupted fork is compared with it first, and its work is the window instead."""
    report = KillReport(tool=tool, kills_wanted=kills, seed=seed, reference_seconds=reference.launch.seconds,
                        window_seconds=round(reference.window, 3))
    try:
        _kill_trials(report, argv, out=out, reference=reference, logs=logs, describe=describe, compare=compare,
                     launcher=launcher, max_launches=max_launches or 3 * kills + 4)
    except AssertionError as e:
        report.failure = str(e)
        raise
    finally:
        record(report)
    return report


def _kill_trials(report: KillReport, argv: Sequence[str], *, out: Path, reference: Reference, logs: Path,
                 describe: Callable[[Path], str], compare: Callable[[Path, Path], list[str]],
                 launcher: ForkLauncher | None, max_launches: int) -> None:
    tool, kills = report.tool, report.kills_wanted
    rng = random.Random(report.seed)

    def launch(kill_after: float | None = None) -> Launch:
        run = run_tool(tool, argv, watch=out, log_path=logs / f"{tool}_{len(report.launches):02d}.log",
                       kill_after=kill_after, launcher=launcher)
        report.launches.append(run)
        return run

    def finished(run: Launch, killed: Launch | None) -> None:
        """A run that ended by itself: it must have succeeded and written what the reference did."""
        after = f"after the kill at +{killed.kill_delay:.2f}s ({killed.moment})" if killed else "without a kill"
        assert run.returncode == 0, f"{tool}: the run {after} failed:\n{run.log_tail}"
        differences = compare(reference.directory, out)
        report.compared += 1
        assert not differences, (f"{tool}: the run {after} differs from the uninterrupted run:\n  "
                                 + "\n  ".join(differences))
        report.identical += 1

    window = reference.window
    if launcher is not None:
        # A fork skips the imports the reference did after its first write (the models' libraries):
        # time the work of an uninterrupted fork, so that kills are drawn over the work itself.
        if out.exists():
            shutil.rmtree(out)
        uninterrupted = launch()
        finished(uninterrupted, None)
        window = work_window(uninterrupted)
    report.window_seconds = round(window, 3)
    while len(report.kills) < kills:
        assert len(report.launches) < max_launches, (
            f"{tool}: only {len(report.kills)} of {kills} kills hit in {max_launches} launches "
            f"(kill window {window:.2f} s after the first write)")
        if out.exists():
            shutil.rmtree(out)
        killed = launch(kill_after=rng.uniform(0.0, window))
        if killed.killed:
            killed.moment = describe(out)
            finished(launch(), killed)
        else:
            finished(killed, None)


# -------------------------------------------------------------------------------------- comparing


def compare_trees(reference: Path, out: Path, *, skip: Callable[[str], bool] = lambda rel: False,
                  json_ignore: Callable[[str], Sequence[str]] = lambda rel: ()) -> list[str]:
    """Differences between two output trees: files only in one of them, and files whose bytes
    differ. ``skip(rel)``: files left out (logs with wall-clock times); ``json_ignore(rel)``:
    top-level keys left out when comparing a JSON file (timestamps, durations), the rest of it
    must be equal."""
    a = {rel for rel in tree_state(reference) if not skip(rel)}
    b = {rel for rel in tree_state(out) if not skip(rel)}
    diffs = [f"only in the uninterrupted run: {rel}" for rel in sorted(a - b)]
    diffs += [f"only in the re-run: {rel}" for rel in sorted(b - a)]
    for rel in sorted(a & b):
        x, y = (reference / rel).read_bytes(), (out / rel).read_bytes()
        if x == y:
            continue
        ignore = tuple(json_ignore(rel))
        if ignore:
            jx, jy = (_without(json.loads(x), ignore), _without(json.loads(y), ignore))
            if jx == jy:
                continue
            keys = sorted(k for k in set(jx) | set(jy) if jx.get(k) != jy.get(k))
            diffs.append(f"{rel}: differs in {keys} (beside {list(ignore)})")
        else:
            diffs.append(f"{rel}: bytes differ")
    return diffs


def _without(obj: dict, keys: Sequence[str]) -> dict:
    return {k: v for k, v in obj.items() if k not in keys}


def temp_files(root: Path) -> list[str]:
    """Files a writer leaves while it works: atomic-write temps and the state swap's folders."""
    from core.storage import is_temp_file_name

    return sorted(rel for rel in tree_state(root)
                  if is_temp_file_name(Path(rel).name) or ".state.tmp" in rel or ".state.old" in rel)
