"""How the benchmarks time things: interleaved repeated runs with medians and spreads, stage clocks,
peak memory, and the machine's state."""
from __future__ import annotations

import json
import math
import os
import resource
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch


class BenchmarkError(ValueError):
    """A benchmark that cannot run as asked (the message says what is wrong)."""


def machine_info() -> dict:
    """CPU count, torch threads and the load average (1 min) at the time of the call."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(), "load_avg_1min": round(load, 2)}


def summarise(values: Sequence[float]) -> dict:
    """``{"median", "min", "max", "iqr": [q1, q3], "n"}`` of repeated measurements."""
    vals = sorted(float(v) for v in values)
    if not vals:
        raise BenchmarkError("no measurements to summarise")
    q = statistics.quantiles(vals, n=4, method="inclusive") if len(vals) > 1 else [vals[0]] * 3
    return {"median": statistics.median(vals), "min": vals[0], "max": vals[-1], "iqr": [q[0], q[2]], "n": len(vals)}


def interleaved(runs: Mapping[str, Callable[[], Mapping[str, Any] | None]], *, repeats: int, warmup: int = 1
                ) -> dict[str, dict]:
    """Time every callable of ``runs`` ``repeats`` times, interleaved (A B A B ...) so that a change
    of machine load hits all of them alike, after ``warmup`` unmeasured rounds.

    A callable may return a dict of stage seconds (``<stage>_s``) and a payload under ``"_result"``.
    Returns name -> ``{"wall": summarise(...), "cpu": summarise(...), "stages": {stage: median},
    "rounds_wall": [s per round], "result": last payload}``."""
    if repeats < 1:
        raise BenchmarkError(f"repeats must be >= 1, got {repeats}")
    for _ in range(max(0, warmup)):
        for run in runs.values():
            run()
    walls: dict[str, list[float]] = {n: [] for n in runs}
    cpus: dict[str, list[float]] = {n: [] for n in runs}
    stages: dict[str, list[dict]] = {n: [] for n in runs}
    results: dict[str, Any] = {}
    for _ in range(repeats):
        for name, run in runs.items():
            w0, c0 = time.perf_counter(), time.process_time()
            got = dict(run() or {})
            walls[name].append(time.perf_counter() - w0)
            cpus[name].append(time.process_time() - c0)
            results[name] = got.pop("_result", None)
            stages[name].append(got)
    out = {}
    for name in runs:
        keys = sorted({k for s in stages[name] for k in s})
        out[name] = {"wall": summarise(walls[name]), "cpu": summarise(cpus[name]),
                     "stages": {k: statistics.median(s[k] for s in stages[name] if k in s) for k in keys},
                     "rounds_wall": walls[name], "result": results[name]}
    return out


def paired_ratio(timed: Mapping[str, dict], numerator: str, denominator: str) -> dict:
    """The ratio of two interleaved measurements, round by round: ``summarise`` of
    ``numerator_i / denominator_i`` (rounds ran back to back, so each ratio saw the same load)."""
    a, b = timed[numerator]["rounds_wall"], timed[denominator]["rounds_wall"]
    n = min(len(a), len(b))
    return summarise([a[i] / b[i] for i in range(n)])


class StageClock:
    """``with clock("name"): ...`` adds ``name_s`` (wall) and ``name_cpu_s`` (process CPU) to a dict."""

    def __init__(self, into: dict) -> None:
        self.into = into

    def __call__(self, name: str) -> "StageClock":
        self.name = name
        return self

    def __enter__(self) -> None:
        self.w0, self.c0 = time.perf_counter(), time.process_time()

    def __exit__(self, *exc) -> None:
        self.into[f"{self.name}_s"] = time.perf_counter() - self.w0
        self.into[f"{self.name}_cpu_s"] = time.process_time() - self.c0


def rss_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MiB, from /proc/self/status (VmRSS, VmHWM).

    Not ``getrusage(RUSAGE_SELF).ru_maxrss``: Linux carries the parent's resident size at fork
    time into a child's ru_maxrss across exec, so a child of a big benchmark process would report
    the parent's memory. VmHWM is the high-water mark of this process's own address space.
    Falls back to ru_maxrss where /proc is missing."""
    fields: dict[str, float] = {}
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(rest.split()[0]) / 1024.0  # kB
    peak = fields.get("VmHWM", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0)
    return fields.get("VmRSS", float("nan")), peak


def format_report(result: Mapping[str, Any]) -> str:
    """A plain-text table of a benchmark result: one ``name  value`` row per number, then the
    descriptive fields."""
    rows, notes = [], []
    for key, value in result.items():
        if isinstance(value, bool):
            rows.append((key, "yes" if value else "no"))
        elif isinstance(value, (int, float)):
            if isinstance(value, float) and not math.isfinite(value):
                rows.append((key, str(value)))
            elif key.endswith("_s") or key.endswith("_mb") or isinstance(value, float):
                rows.append((key, f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"))
            else:
                rows.append((key, str(value)))
        else:
            notes.append((key, json.dumps(value) if not isinstance(value, str) else value))
    width = max((len(k) for k, _ in rows + notes), default=10)
    lines = [f"{k:<{width}}  {v}" for k, v in rows]
    lines.append("")
    lines += [f"{k:<{width}}  {v}" for k, v in notes]
    return "\n".join(lines)
