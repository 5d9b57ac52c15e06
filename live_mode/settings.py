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

from core.storage import read_json
from live_mode.pacing import DEFAULT_SMOOTH_K, TemporalSmoother
from media.capture import SizeFor
from media.frame_conversion import target_size
from streams.cache import META_FILE
from streams.specs import STREAM_SPECS

DEFAULT_WINDOW_S = 3.0
DEFAULT_STRIDE_S = 1.0
FUSION_MODES = ("head", "late")
DISPLAY_MAX_SIDE = 640
#: keyframes newly searched for faces per second of source in live mode (LiveSettings.face_rate)
DEFAULT_FACE_RATE = 4.0


def parse_late_weights(text: str) -> tuple[tuple[str, float], ...]:
    """``"face=0.6,audio=0.4"`` -> ``(("face", 0.6), ("audio", 0.4))``; ``ValueError`` says what is wrong."""
    out = []
    for part in (p.strip() for p in str(text).split(",")):
        name, sep, value = part.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            out.append((name.strip(), float(value)))
        except ValueError:
            raise ValueError(f"--late-weights: expected STREAM=WEIGHT[,STREAM=WEIGHT...], got {text!r}") from None
    return tuple(out)


@dataclass(frozen=True)
class LiveSettings:
    """``window``/``stride`` (s), smoothing over ``smooth_k`` windows (``smoothing`` "mean" or
    "ema" with ``ema_alpha``) and ``drop_late`` (skip windows that would start more than one
    stride late). ``audio_wait`` (s): how long past a window's end the video may run ahead
    while the window waits for its audio. ``incremental``: per-frame work done once on arrival
    and shared by the windows (:mod:`live_mode.incremental`); off, every window is computed
    from its frames alone (the reference it equals). ``warm_up``: run the pipeline once on a
    window of frames and audio live mode makes itself (:mod:`live_mode.warmup`) before the source is
    read, so no library's first-call cost lands on the first window.

    What is shown: ``face_hold`` (frames): a face box stays on screen that many frames after the
    frame it was detected in (see :class:`live_mode.annotation.FaceHold`); ``min_confidence``: below
    this smoothed top probability the label reads "uncertain" (0: always the top class);
    ``show_attention``: the visual stream's spatial attention drawn as a heat map.

    ``fusion``: ``"head"`` (the run's fusion head) or ``"late"`` (score-level: the weighted
    average of the streams' probabilities, :func:`fusion.late.weighted_score`, with
    ``late_weights`` as ``((stream, weight), ...)``; empty: :data:`fusion.late.FACE_AUDIO_WEIGHTS`,
    the real-time design's 0.6 face + 0.4 audio). Streams with no weight are not computed.

    ``face_rate``: face detection (MTCNN, the costliest per-window step on a CPU) is budgeted to
    about this many newly searched keyframes per second of source, ``ceil(face_rate * stride)``
    per window (:meth:`face_budget`); a keyframe of the window not searched takes the boxes of the
    nearest searched frame of the window, and one farther than 0.5 s from any is searched
    regardless (:meth:`media.reuse.ClipReuse.per_frame_nearest`). Crops are always cut from the
    keyframe itself. ``None``: every keyframe is searched, as for a file. Needs ``incremental``."""

    window: float = DEFAULT_WINDOW_S
    stride: float = DEFAULT_STRIDE_S
    smooth_k: int = DEFAULT_SMOOTH_K
    smoothing: str = "mean"
    ema_alpha: float = 0.5
    drop_late: bool = False
    audio_wait: float = 1.0
    incremental: bool = True
    warm_up: bool = True
    face_hold: int = 50
    min_confidence: float = 0.0
    show_attention: bool = False
    fusion: str = "head"
    late_weights: tuple[tuple[str, float], ...] = ()
    face_rate: float | None = DEFAULT_FACE_RATE

    def __post_init__(self) -> None:
        if not self.window > 0:
            raise ValueError(f"--window must be > 0 s, got {self.window}")
        if not self.stride > 0:
            raise ValueError(f"--stride must be > 0 s, got {self.stride}")
        if self.face_hold < 0:
            raise ValueError(f"--face-hold must be >= 0 frames, got {self.face_hold}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"--min-confidence is a probability in [0, 1], got {self.min_confidence}")
        if self.fusion not in FUSION_MODES:
            raise ValueError(f"--fusion must be one of {FUSION_MODES}, got {self.fusion!r}")
        if self.late_weights and self.fusion != "late":
            raise ValueError("--late-weights needs --fusion late")
        weights = self.late_weight_map()
        if any(w < 0 for w in weights.values()) or not sum(weights.values()) > 0:
            raise ValueError(f"--late-weights must be >= 0 and not all 0, got {weights}")
        if self.face_rate is not None and not self.face_rate > 0:
            raise ValueError(f"--face-rate must be > 0 keyframes per second (or 'all'), got {self.face_rate}")
        TemporalSmoother(k=self.smooth_k, mode=self.smoothing, alpha=self.ema_alpha)  # validates them

    def face_budget(self) -> int | None:
        """Keyframes newly searched for faces per window (``None``: all; see ``face_rate``)."""
        if self.face_rate is None or not self.incremental:
            return None
        return max(1, math.ceil(self.face_rate * self.stride - 1e-9))

    def late_weight_map(self) -> dict[str, float]:
        """Stream -> weight of ``--fusion late`` (the default 0.6 face + 0.4 audio when none given)."""
        from fusion.late import FACE_AUDIO_WEIGHTS

        return {s: float(w) for s, w in self.late_weights} if self.late_weights else dict(FACE_AUDIO_WEIGHTS)

    def window_bounds(self, k: int) -> tuple[float, float]:
        """``(start, end)`` (s, source timeline) of window ``k`` (0-based): it ends at
        ``window + k * stride``."""
        end = self.window + k * self.stride
        return end - self.window, end


@dataclass
class LiveSummary:
    """What a run did. ``latencies`` (s): the processing time of each predicted window;
    ``cpu_s``: this process's CPU time (all threads) during each; ``busy_s``: all work
    (decoding, prediction, annotation, encoding); ``source_s``: source seconds read. A network
    source's ``drops``, ``reconnects``, the ``gaps_s`` (s) and the ``gap_windows`` not predicted
    because they overlap a gap. ``frames_skipped``: frames read but left out of the windows (and
    of ``--out``) to catch up with real time (see :class:`live_mode.session.Session`)."""

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
    warmup_s: float | None = None
    late_first: int = 0
    audio_lost_at: float | None = None
    drops: int = 0
    reconnects: int = 0
    gaps_s: list[float] = field(default_factory=list)
    gap_windows: int = 0
    frames_skipped: int = 0

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

    @property
    def late_after_first(self) -> int:
        """Late windows after the first (the first can be late while the pipeline starts up)."""
        return self.late - self.late_first

    @property
    def per_frame_load(self) -> float | None:
        """Seconds of work per second of source outside the windows' predictions: decoding, the
        per-frame work done on arrival, annotation and encoding."""
        if self.source_s <= 0:
            return None
        return max(0.0, self.busy_s - sum(self.latencies)) / self.source_s

    @property
    def sustainable_stride(self) -> float | None:
        """The shortest stride (s) this run's costs keep up with: the per-frame work takes
        ``per_frame_load`` of every second and each window its p95 latency, so a stride ``S``
        keeps up when ``p95 / S + per_frame_load <= 1``; ``None`` when the per-frame work alone
        does not keep up (or nothing was measured)."""
        load, p95 = self.per_frame_load, self.p95_latency
        if load is None or p95 is None or load >= 1.0:
            return None
        return p95 / (1.0 - load)

    def as_dict(self) -> dict:
        def r(x):
            return None if x is None else round(x, 4)
        return {"source": self.source, "frames": self.frames, "windows": self.windows, "dropped": self.dropped,
                "late": self.late, "mean_latency_s": r(self.mean_latency), "p95_latency_s": r(self.p95_latency),
                "mean_cpu_s": r(float(np.mean(self.cpu_s)) if self.cpu_s else None),
                "windows_per_s": r(self.windows_per_s), "wall_s": r(self.wall_s), "source_s": r(self.source_s),
                "realtime_factor": r(self.realtime_factor),
                "keeps_up": self.keeps_up, "late_after_first": self.late_after_first,
                "per_frame_load": r(self.per_frame_load), "sustainable_stride_s": r(self.sustainable_stride),
                "warmup_s": r(self.warmup_s), "audio_lost_at_s": r(self.audio_lost_at),
                "stride_s": self.stride, "drop_late": self.drop_late,
                "stop_reason": self.stop_reason, "out": self.out, "log": self.log, "warning": self.warning,
                "peak_ring_mb": r(self.peak_ring_mb), "drops": self.drops, "reconnects": self.reconnects,
                "gaps_s": list(self.gaps_s), "gap_windows": self.gap_windows,
                "frames_skipped": self.frames_skipped}

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
        if not self.keeps_up or (self.p95_latency or 0.0) > self.stride / 2:
            sustain = self.sustainable_stride
            lines.append("  sustainable stride on this machine: " + (
                f"{sustain:.2f} s (p95 latency {self.p95_latency:.2f} s, per-frame work "
                f"{self.per_frame_load:.2f} s per s of source)" if sustain is not None else
                "none: decoding and the per-frame work alone take longer than real time"))
        if self.frames_skipped:
            lines.append(f"  {self.frames_skipped} frame(s) skipped to catch up with real time")
        if self.warmup_s is not None:
            lines.append(f"  warm-up before the first frame: {self.warmup_s:.2f} s")
        if self.audio_lost_at is not None:
            lines.append(f"  audio missing from {self.audio_lost_at:.2f} s on")
        if self.drops:
            lines.append(f"  source dropped {self.drops} time(s), reconnected {self.reconnects} time(s) "
                         f"(gaps {', '.join(f'{g:.1f}' for g in self.gaps_s) or '-'} s); "
                         f"{self.gap_windows} window(s) in the gaps not predicted")
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
    selected), never larger than the source. When no stream reads images (e.g. late fusion of
    the audio alone) frames are only shown: at most :data:`DISPLAY_MAX_SIDE` px."""
    specs = [STREAM_SPECS[s] for s in streams]
    sides = [spec.source_sides(cfg) for spec in specs]
    short = max([s for s, _ in sides] + [0])
    if any(spec.uses_keyframes for spec in specs):
        short = max(short, int(cfg.get("keyframes", {}).get("score_size", 112)))
    max_side = max([m for _, m in sides] + [0])

    def size_for(width: int, height: int) -> tuple[int, int]:
        long_needed = math.ceil(short * max(width, height) / min(width, height))
        cap = max(max_side, long_needed) or DISPLAY_MAX_SIDE
        return target_size(width, height, max_side=cap) if max(width, height) > cap else (width, height)

    return size_for


def audio_rate(cfg: dict, streams: Sequence[str]) -> int:
    """The sample rate (Hz) live audio is kept at: the highest any of ``streams`` reads (16 kHz
    when none reads audio)."""
    rates = [r for s in streams if (r := STREAM_SPECS[s].audio_rate(cfg)) is not None]
    return max(rates) if rates else 16000
