"""Network sources that drop and come back: the reconnection logic on made-up connections (one
timeline, backoff, giving up) and on a real stream served by a local ffmpeg over HTTP and UDP,
killed mid-stream and started again."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from media.capture import open_source
from media.capture_types import AudioChunk, LiveFrame, LiveSourceError, SourceDropped, SourceReconnected
from media.reconnect import ReconnectingSource, backoff_delays
from tests.media.stream_server import StreamServer, free_port, make_stream_clip


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


class FakeConnection:
    """``n`` frames at 10 fps from time 0 with a chunk of audio each, then the stream ends."""

    fps, has_audio, audio_rate, frame_size, warning = 10.0, True, 16000, (4, 4), None

    def __init__(self, clock: FakeClock, n: int) -> None:
        self.clock, self.n = clock, n

    def events(self):
        for i in range(self.n):
            self.clock.t += 0.1
            yield AudioChunk(i / 10, np.zeros(1600, np.float32))
            yield LiveFrame(i, i / 10, np.zeros((4, 4, 3), np.uint8))

    def close(self) -> None:
        pass


def fake_source(outcomes: list, reconnect: int | None) -> tuple[ReconnectingSource, FakeClock]:
    """A source whose successive connections are ``outcomes``: a frame count, or ``None`` for a
    connection that fails."""
    clock = FakeClock()
    todo = list(outcomes)

    def connect():
        n = todo.pop(0) if todo else None
        if n is None:
            clock.t += 1.0
            raise LiveSourceError("refused")
        return FakeConnection(clock, n)

    return ReconnectingSource("fake://x", connect, reconnect=reconnect, clock=clock, sleep=clock.sleep), clock


def test_backoff_doubles_up_to_its_cap():
    gen = backoff_delays(0.5, 4.0)
    assert [next(gen) for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_a_drop_is_followed_by_a_reconnection_on_one_timeline():
    source, _ = fake_source([5, None, None, 5], reconnect=None)
    events = []
    for event in source.events():
        events.append(event)
        if sum(isinstance(e, SourceDropped) for e in events) == 2:
            break
    frames = [e for e in events if isinstance(e, LiveFrame)]
    drops = [e for e in events if isinstance(e, SourceDropped)]
    back = [e for e in events if isinstance(e, SourceReconnected)]
    assert [f.index for f in frames] == list(range(10))            # numbered on across connections
    times = [f.time for f in frames]
    assert all(b > a for a, b in zip(times, times[1:]))             # one timeline
    assert drops[0].time == pytest.approx(0.5) and drops[0].reason == "the stream ended"
    assert len(back) == 1 and back[0].attempts == 3                 # two refused, the third connects
    # the gap is the wall-clock time away: backoff 0.5 + 1 + 2 s and two refused attempts of 1 s
    assert back[0].gap_s == pytest.approx(5.5, abs=0.2)
    assert frames[5].time == pytest.approx(back[0].time)
    assert source.reconnects == 1 and source.gaps == [(pytest.approx(0.5), pytest.approx(back[0].time))]
    audio = [e for e in events if isinstance(e, AudioChunk)]
    assert audio[5].time == pytest.approx(frames[5].time)           # audio shifted with the video


def test_reconnect_attempts_run_out_and_the_source_ends():
    source, _ = fake_source([3], reconnect=2)
    events = list(source.events())
    assert isinstance(events[-1], SourceDropped)
    assert "gave up reconnecting" in source.warning and source.reconnects == 0


def test_no_reconnect_means_a_drop_ends_the_source():
    source, _ = fake_source([3, 3], reconnect=0)
    events = list(source.events())
    assert sum(isinstance(e, LiveFrame) for e in events) == 3 and isinstance(events[-1], SourceDropped)


def test_a_source_that_never_connects_is_an_error_after_the_timeout():
    url = f"http://127.0.0.1:{free_port()}/nothing.ts"   # nothing listens there
    with pytest.raises(LiveSourceError, match="cannot open"):
        open_source(url, size_for=lambda w, h: (w, h), audio_rate=16000, timeouts=(1.0, 1.0))


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["http", "udp"])
def test_a_served_stream_killed_and_restarted_is_read_again(tmp_path, protocol):
    server = StreamServer(make_stream_clip(tmp_path / "clip.mp4"), protocol).start()
    try:
        source = open_source(server.url, size_for=lambda w, h: (w, h), audio_rate=16000, timeouts=(5.0, 1.5))
        t0 = time.monotonic()
        events, killed = [], False
        for event in source.events():
            events.append(event)
            frames = [e for e in events if isinstance(e, LiveFrame)]
            if not killed and len(frames) >= 15:
                server.kill()
                killed = True
                threading.Timer(2.0, server.start).start()
            back = [i for i, e in enumerate(events) if isinstance(e, SourceReconnected)]
            if back and sum(isinstance(e, LiveFrame) for e in events[back[0]:]) >= 15 or time.monotonic() - t0 > 40:
                break
        source.close()
    finally:
        time.sleep(0.5)
        server.kill()
    kinds = [type(e).__name__ for e in events if not isinstance(e, (LiveFrame, AudioChunk))]
    assert kinds[:2] == ["SourceDropped", "SourceReconnected"]
    back = next(e for e in events if isinstance(e, SourceReconnected))
    assert back.gap_s > 1.0
    after = [e for e in events[events.index(back):] if isinstance(e, LiveFrame)]
    assert len(after) >= 10 and back.time - 1e-6 <= after[0].time <= back.time + 0.5


@pytest.mark.parametrize("rebase, gap", [(None, 3.6), (3.0, 0.6)])
def test_gaps_are_measured_from_the_streams_opening_on_live_modes_clock(rebase, gap):
    clock = FakeClock()
    todo = [5, 5]

    def connect():
        connection = FakeConnection(clock, todo.pop(0))
        connection.opened_at = clock.t
        return connection

    source = ReconnectingSource("fake://x", connect, reconnect=None, clock=clock, sleep=clock.sleep)
    assert source.opened_at == 100.0
    clock.t += 3.0      # live mode warms up before reading: the stream was coming meanwhile
    back = None
    for event in source.events():
        if isinstance(event, LiveFrame) and event.index == 0 and rebase is not None:
            source.rebase(rebase)    # live mode found the lag could not be won back
        if isinstance(event, SourceReconnected):
            back = event
            break
    # dropped at 0.5 s of timeline and clock 103.5; back (0.5 s backoff, a frame) at clock 104.1,
    # 4.1 s after the opening (or 1.1 s after the rebased origin)
    assert back.gap_s == pytest.approx(gap, abs=1e-6)
