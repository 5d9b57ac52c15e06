"""Network sources that drop and come back: :class:`ReconnectingSource` reads a stream URL
(HTTP(S), HLS, RTSP, UDP, TCP; anything PyAV opens) through :class:`media.capture.PyAVSource`
with connect and read timeouts, and when the stream breaks off, stalls past the read timeout or
ends, it connects again with exponential backoff.

One timeline across connections: a new connection's timestamps start again from its own first
frame, so its events are shifted to follow on from the last frame before the drop by the
wall-clock time the source was away. The events include :class:`SourceDropped` (at the drop)
and :class:`SourceReconnected` (just before the first event of the new connection, with the
gap's length) so that live mode can log them and leave the windows in the gap out.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from typing import Callable, Iterator

from media.capture_types import AudioChunk, LiveFrame, LiveSourceError, SourceDropped, SourceReconnected

#: seconds to wait for a connection (open timeout) and for data once connected (read timeout)
DEFAULT_TIMEOUTS = (10.0, 5.0)
#: first wait before reconnecting (s); it doubles after each failed attempt up to BACKOFF_MAX_S
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 8.0


def backoff_delays(start: float = BACKOFF_START_S, cap: float = BACKOFF_MAX_S) -> Iterator[float]:
    """The waits (s) before successive reconnection attempts: ``start``, doubling, at most ``cap``."""
    delay = float(start)
    while True:
        yield delay
        delay = min(cap, delay * 2.0)


class ReconnectingSource:
    """A stream URL that reconnects (see the module docstring). ``connect()``: opens one
    connection (a :class:`media.capture.PyAVSource` or anything with ``events()``, ``close()``,
    ``fps``, ``has_audio``, ``frame_size``, ``warning``), raising :class:`LiveSourceError` when it
    cannot. ``reconnect``: attempts allowed after each drop before giving up (``None``:
    unlimited; 0: a drop ends the source). The first connection is made here and is not retried:
    a source that never connects raises :class:`LiveSourceError` after the open timeout.

    ``should_stop``: polled between attempts (live mode sets it so that Ctrl-C stops a run that
    is waiting for its source). After :meth:`events`, ``reconnects`` counts the reconnections
    and ``gaps`` holds ``(start, end)`` (s) of each gap on the timeline."""

    live = True

    def __init__(self, name: str, connect: Callable[[], object], *, reconnect: int | None = None,
                 clock: Callable[[], float] = time.monotonic, backoff: Callable[[], Iterator[float]] = backoff_delays,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if reconnect is not None and reconnect < 0:
            raise ValueError(f"--reconnect must be >= 0 attempts, got {reconnect}")
        self.name = name
        self._connect = connect
        self.reconnect = reconnect
        self._clock, self._backoff, self._sleep = clock, backoff, sleep
        self.should_stop: Callable[[], bool] = lambda: False
        self._closing = threading.Event()
        self.reconnects = 0
        self.gaps: list[tuple[float, float]] = []
        self.warning: str | None = None
        self._current = connect()  # a source that never connects: LiveSourceError here
        self.fps = float(self._current.fps)
        self.has_audio = bool(self._current.has_audio)
        self.audio_rate = int(getattr(self._current, "audio_rate", 0))
        self.frame_size = getattr(self._current, "frame_size", None)
        self.opened_at = getattr(self._current, "opened_at", None)   # the first connection's
        # clock time of timeline time 0: the opening when the connection knows it (as live mode's
        # clock does), else the arrival of the first frame
        self._origin: float | None = self.opened_at

    def events(self) -> Iterator[LiveFrame | AudioChunk | SourceDropped | SourceReconnected]:
        index = 0
        offset = 0.0                        # added to the current connection's times
        last_time: float | None = None      # timeline time of the last frame handed out
        attempts: int | None = None         # after a reconnection, until its first frame
        held: list = []                     # that connection's events before its first frame
        while True:
            source = self._current
            try:
                for event in source.events():
                    if attempts is not None:
                        if not isinstance(event, LiveFrame):
                            held.append(event)
                            continue
                        # the first frame after the gap is on time: the gap is the wall-clock time away
                        before = last_time + 1.0 / self.fps
                        now_t = max(before, self._clock() - self._origin)
                        offset = now_t - event.time
                        self.gaps.append((before, now_t))
                        self.reconnects += 1
                        yield SourceReconnected(now_t, round(now_t - before, 4), attempts)
                        attempts = None
                        yield from (self._shift(e, offset) for e in held if e.time + offset >= now_t - 1e-6)
                        held = []
                    if isinstance(event, LiveFrame):
                        last_time = event.time + offset
                        if self._origin is None:
                            self._origin = self._clock() - last_time
                        yield LiveFrame(index, last_time, event.image)
                        index += 1
                    else:
                        yield self._shift(event, offset)
                reason = source.warning or "the stream ended"
            except LiveSourceError as e:
                reason = str(e)
            if self._closing.is_set():
                return
            at = last_time + 1.0 / self.fps if last_time is not None else 0.0
            yield SourceDropped(at, reason)
            self._close_current()
            if last_time is None:   # not one frame before the drop: nothing to join on to
                self.warning = reason
                return
            attempts = self._reconnect()
            if attempts is None:
                self.warning = f"{reason}; gave up reconnecting" if self.reconnect else reason
                return
            held = []

    def rebase(self, seconds: float) -> None:
        """Count the timeline from ``seconds`` later, as live mode's clock does when it rebases
        (:meth:`live_mode.pacing.WallClock.rebase`), so that a gap is measured on the same clock."""
        if self._origin is not None:
            self._origin += float(seconds)

    @staticmethod
    def _shift(event, offset: float):
        """``event`` (audio chunk, audio stopped) moved by ``offset`` s on the timeline."""
        if isinstance(event, AudioChunk):
            return AudioChunk(event.time + offset, event.samples)
        return dataclasses.replace(event, time=event.time + offset)

    def _reconnect(self) -> int | None:
        """Connect again with backoff; the number of attempts it took, ``None`` when the attempts
        ran out or a stop was requested."""
        attempts = 0
        for delay in self._backoff():
            if self.reconnect is not None and attempts >= self.reconnect:
                return None
            deadline = self._clock() + delay
            while self._clock() < deadline:
                if self.should_stop() or self._closing.is_set():
                    return None
                self._sleep(min(0.1, max(0.0, deadline - self._clock())))
            attempts += 1
            try:
                self._current = self._connect()
                return attempts
            except LiveSourceError:
                continue
        return None

    def _close_current(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None

    def close(self) -> None:
        self._closing.set()
        self._close_current()
