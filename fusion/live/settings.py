"""A live run's settings and what it reports: window, stride, smoothing and pacing
(:class:`LiveSettings`), the default window length from the run's training clips, and the
:class:`LiveSummary` of a run."""
from __future__ import annotations

import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from media.decoding import target_size
from media.storage import read_json
from streams.cache import META_FILE
from streams.specs import STREAM_SPECS
from fusion.live.pacing import DEFAULT_SMOOTH_K, TemporalSmoother
from fusion.live.sources import SizeFor

DEFAULT_WINDOW_S = 3.0
DEFAULT_STRIDE_S = 1.0


@dataclass(frozen=True)
class LiveSettings:
    """``window``/``stride`` (s), smoothing over ``smooth_k`` windows (``smoothing`` "mean" or
    "ema" with ``ema_alpha``) and ``drop_late`` (skip windows that would start more than one
    stride late). ``audio_wait`` (s): how long past a window's end the video may run ahead
    while the window waits for its audio."""

    window: float = DEFAULT_WINDOW_S
    stride: float = DEFAULT_STRIDE_S
    smooth_k: int = DEFAULT_SMOOTH_K
    smoothing: str = "mean"
    ema_alpha: float = 0.5
    drop_late: bool = False
    audio_wait: float = 1.0

    def __post_init__(self) -> None:
        if not self.window > 0:
            raise ValueError(f"--window must be > 0 s, got {self.window}")
        if not self.stride > 0:
            raise ValueError(f"--stride must be > 0 s, got {self.stride}")
        TemporalSmoother(k=self.smooth_k, mode=self.smoothing, alpha=self.ema_alpha)  # validates them


@dataclass
class LiveSummary:
    """What a run did. ``latencies`` (s): the processing time of each predicted window;
    ``cpu_s``: this process's CPU time (all threads) during each; ``busy_s``: all work
    (decoding, prediction, annotation, encoding); ``source_s``: source seconds read."""

    source: str
    frames: int = 0
    windows: int = 0
    dropped: int = 0
    late: int = 0
    latencies: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    wall_s: float = 0.0
    source_s: float = 0.0
    busy_s: float = 0.0
    stop_reason: str = "end of stream"
    stride: float = DEFAULT_STRIDE_S
    drop_late: bool = False
    out: str | None = None
    log: str | None = None
    warning: str | None = None
    peak_ring_mb: float = 0.0

    @property
    def mean_latency(self) -> float | None:
        return float(np.mean(self.latencies)) if self.latencies else None

    @property
    def p95_latency(self) -> float | None:
        return float(np.percentile(self.latencies, 95)) if self.latencies else None

    @property
    def windows_per_s(self) -> float | None:
        """Predicted windows per second of wall time over the whole run (decoding and writing
        included)."""
        return self.windows / self.wall_s if self.wall_s > 0 else None

    @property
    def realtime_factor(self) -> float | None:
        """Seconds of work per second of source (decoding, prediction, annotation, encoding);
        above 1 the run cannot keep up on average."""
        return self.busy_s / self.source_s if self.source_s > 0 else None

    @property
    def keeps_up(self) -> bool:
        """No window was (or would have been) started more than one stride late."""
        return self.late == 0

    def as_dict(self) -> dict:
        def r(x):
            return None if x is None else round(x, 4)
        return {"source": self.source, "frames": self.frames, "windows": self.windows, "dropped": self.dropped,
                "late": self.late, "mean_latency_s": r(self.mean_latency), "p95_latency_s": r(self.p95_latency),
                "mean_cpu_s": r(float(np.mean(self.cpu_s)) if self.cpu_s else None),
                "windows_per_s": r(self.windows_per_s), "wall_s": r(self.wall_s), "source_s": r(self.source_s),
                "realtime_factor": r(self.realtime_factor),
                "keeps_up": self.keeps_up, "stride_s": self.stride, "drop_late": self.drop_late,
                "stop_reason": self.stop_reason, "out": self.out, "log": self.log, "warning": self.warning,
                "peak_ring_mb": r(self.peak_ring_mb)}

    def format(self) -> str:
        def s(x, unit=" s"):
            return "-" if x is None else f"{x:.2f}{unit}"
        mode = "late windows dropped" if self.drop_late else "every window predicted"
        lines = [
            f"{self.source}: stopped ({self.stop_reason}) after {self.frames} frames ({self.source_s:.1f} s of source)",
            f"  windows predicted {self.windows}, dropped {self.dropped} ({mode})",
            f"  latency per window: mean {s(self.mean_latency)}, p95 {s(self.p95_latency)}; "
            f"{s(self.windows_per_s, '')} windows/s over {self.wall_s:.1f} s of wall time; "
            f"{s(self.realtime_factor, '')} s of work per s of source",
            f"  keeps up with real time at stride {self.stride:g} s: {'yes' if self.keeps_up else 'no'}"
            + ("" if self.keeps_up else f" ({self.late} window(s) would start more than one stride late)"),
        ]
        if self.out:
            lines.append(f"  annotated video: {self.out}")
        if self.log:
            lines.append(f"  log: {self.log}")
        if self.warning:
            lines.append(f"  warning: {self.warning}")
        return "\n".join(lines)


def default_window_seconds(run: str | os.PathLike) -> tuple[float, str]:
    """``(seconds, where from)``: the median training clip length recorded for fusion run ``run``
    (see :func:`training_clip_seconds`), else :data:`DEFAULT_WINDOW_S`."""
    from training.checkpoints import read_meta

    recipe = dict(read_meta(run).get("config", {}))
    seconds = training_clip_seconds(recipe)
    if seconds is None:
        return DEFAULT_WINDOW_S, "default; the run records no readable training cache"
    return seconds, f"median clip length of the training cache {recipe['pipeline']['cache']}"


def training_clip_seconds(recipe: dict, *, limit: int = 500) -> float | None:
    """The median clip duration (s) of the preprocessing cache the fusion run's pipeline records
    (``recipe["pipeline"]["cache"]``, from up to ``limit`` ``meta.json`` files), or ``None``
    when no cache is recorded or readable."""
    cache = ((recipe.get("pipeline") or {}).get("cache"))
    if not cache or not Path(cache).is_dir():
        return None
    durations = []
    for meta_path in sorted(Path(cache).rglob(META_FILE))[:limit]:
        meta = read_json(meta_path) or {}
        d = meta.get("duration")
        if isinstance(d, (int, float)) and d > 0:
            durations.append(float(d))
    return statistics.median(durations) if durations else None


def analysis_size_fn(cfg: dict, streams: Sequence[str]) -> SizeFor:
    """``(width, height) -> (w, h)`` at which window frames are kept: the smallest size from
    which preprocessing recipe ``cfg`` gets every image its ``streams`` read (each spec's
    :meth:`~streams.specs.base.StreamSpec.source_sides`, and the scorer's when keyframes are
    selected), never larger than the source; the source size when no stream reads images."""
    specs = [STREAM_SPECS[s] for s in streams]
    sides = [spec.source_sides(cfg) for spec in specs]
    short = max([s for s, _ in sides] + [0])
    if any(spec.uses_keyframes for spec in specs):
        short = max(short, int(cfg.get("keyframes", {}).get("score_size", 112)))
    max_side = max([m for _, m in sides] + [0])

    def size_for(width: int, height: int) -> tuple[int, int]:
        if short == 0 and max_side == 0:   # no stream reads images (audio only): the source size, for --out
            return width, height
        long_needed = math.ceil(short * max(width, height) / min(width, height))
        cap = max(max_side, long_needed)
        return target_size(width, height, max_side=cap) if max(width, height) > cap else (width, height)

    return size_for


def audio_rate(cfg: dict, streams: Sequence[str]) -> int:
    """The sample rate (Hz) live audio is kept at: the highest any of ``streams`` reads (16 kHz
    when none reads audio)."""
    rates = [r for s in streams if (r := STREAM_SPECS[s].audio_rate(cfg)) is not None]
    return max(rates) if rates else 16000
