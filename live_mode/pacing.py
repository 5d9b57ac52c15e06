"""Real time: the clocks a live run measures itself against, the pacer that decides whether a
due window is predicted or dropped, and the smoother of the per-window probabilities.

A window is *due* at its end time; it is *late* when its processing would start more than one
stride after that. Live sources use the wall clock (:class:`WallClock`). A file is read as fast as
possible, and a :class:`SimulatedClock` tells what real time would have been: the clock moves to
each frame's time when it is idle and advances by every second of work.
"""
from __future__ import annotations

import time
from collections import deque
from typing import Callable, Sequence

import numpy as np

DEFAULT_SMOOTH_K = 5


class TemporalSmoother:
    """Smooths per-window class probabilities.

    ``mode="mean"``: the mean of the last ``k`` windows' probabilities (fewer at the start).
    ``mode="ema"``: ``s_t = alpha * p_t + (1 - alpha) * s_{t-1}``, ``s_0 = p_0``.
    Both give probability vectors (non-negative, summing to 1) when the inputs are."""

    def __init__(self, *, k: int = DEFAULT_SMOOTH_K, mode: str = "mean", alpha: float = 0.5) -> None:
        if mode not in ("mean", "ema"):
            raise ValueError(f"smoothing must be 'mean' or 'ema', got {mode!r}")
        if k < 1:
            raise ValueError(f"smoothing window K must be >= 1, got {k}")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"EMA alpha must be in (0, 1], got {alpha}")
        self.k, self.mode, self.alpha = int(k), mode, float(alpha)
        self._recent: deque[np.ndarray] = deque(maxlen=self.k)
        self._state: np.ndarray | None = None

    def update(self, probs: Sequence[float]) -> np.ndarray:
        """Add one window's probabilities ``(C,)``; returns the smoothed ``(C,)``."""
        p = np.asarray(probs, dtype=np.float64)
        if self.mode == "mean":
            self._recent.append(p)
            self._state = np.mean(np.stack(self._recent), axis=0)
        else:
            self._state = p.copy() if self._state is None else self.alpha * p + (1 - self.alpha) * self._state
        return self._state.copy()

    def reset(self) -> None:
        self._recent.clear()
        self._state = None


class SimulatedClock:
    """Real time for a file read as fast as possible: seconds on the source timeline at which
    the work done so far would have finished had the frames arrived in real time. Idle until a
    frame arrives (:meth:`arrive` moves the clock to its time), busy for every second of work
    (:meth:`spend`)."""

    def __init__(self) -> None:
        self._now = 0.0

    def now(self) -> float:
        return self._now

    def arrive(self, t: float) -> None:
        self._now = max(self._now, float(t))

    def spend(self, seconds: float) -> None:
        self._now += max(0.0, float(seconds))


class WallClock:
    """Live sources: seconds since the source's first frame, measured (``timer``: monotonic s).
    ``origin``: the ``timer`` time of that frame when known beforehand (a stream's opening: it
    keeps coming while live mode warms up, and the frames it buffered meanwhile then arrive late);
    otherwise the arrival of the first frame. :meth:`rebase` moves it later."""

    def __init__(self, timer: Callable[[], float] = time.monotonic, *, origin: float | None = None) -> None:
        self._timer = timer
        self._origin: float | None = origin

    def now(self) -> float:
        return 0.0 if self._origin is None else self._timer() - self._origin

    def arrive(self, t: float) -> None:
        if self._origin is None:
            self._origin = self._timer() - float(t)

    def spend(self, seconds: float) -> None:
        return None  # the wall clock advances by itself

    def rebase(self, seconds: float) -> None:
        """Count the timeline from ``seconds`` later: a lag that cannot be won back (frames that
        come at the source's pace however many are skipped) stops counting as lateness."""
        if self._origin is not None:
            self._origin += float(seconds)


class WindowPacer:
    """Decides whether a due window is predicted. ``admit(due, now)``: the window became due at
    ``due`` (its end, s) and processing could start at ``now``; it is late when
    ``now - due > stride``. Late windows are dropped when ``drop_late``, else predicted and
    counted in ``late``."""

    def __init__(self, stride: float, *, drop_late: bool) -> None:
        self.stride = float(stride)
        self.drop_late = bool(drop_late)
        self.late = 0
        self.dropped = 0
        self.max_lag = 0.0

    def admit(self, due: float, now: float) -> tuple[bool, float]:
        """``(run it, lag in s)``."""
        lag = max(0.0, float(now) - float(due))
        self.max_lag = max(self.max_lag, lag)
        if lag > self.stride + 1e-9:
            self.late += 1
            if self.drop_late:
                self.dropped += 1
                return False, lag
        return True, lag
