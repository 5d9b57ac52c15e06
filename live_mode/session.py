"""One run of a :class:`live_mode.runner.LiveRunner` over one source (:class:`Session`): the
buffers, the pacing, the outputs (annotated video, JSON-lines log, on-screen view, the listeners
such as the dashboard, :mod:`live_mode.dashboard`) and the bookkeeping of the windows, including
a network source's drops and reconnections (:mod:`media.reconnect`): windows that overlap a gap
are not predicted (logged with the reason), and smoothing starts afresh after a gap longer than
the window."""
from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING

import cv2
import numpy as np

from live_mode.annotation import FaceHold, annotate, attention_overlay, even_size, shown_label
from live_mode.buffers import AudioRing, FrameRing, convert_image
from live_mode.incremental import ArrivalWork
from live_mode.pacing import TemporalSmoother, WindowPacer
from live_mode.settings import DISPLAY_MAX_SIDE, LiveSummary
from media.capture_types import AudioChunk, AudioStopped, LiveFrame, SourceDropped, SourceReconnected
from media.encoding import VideoWriter
from media.reuse import ReuseStore

if TYPE_CHECKING:
    from live_mode.runner import LiveRunner


class Listener:
    """What a :class:`Session` tells its runner's listeners (see :class:`Session`); every call
    does nothing here, subclasses pick what they need."""

    def on_start(self, session: "Session") -> None:
        """Before the source's first event."""

    def wants_frames(self, time_s: float) -> bool:
        """Whether the annotated frame at source time ``time_s`` is wanted (checked before each
        frame is drawn)."""
        return False

    def on_frame(self, image: np.ndarray, time_s: float) -> None:
        """An annotated frame, uint8 RGB ``(H, W, 3)``, at source time ``time_s``."""

    def on_window(self, record: dict, keyframes: list[tuple[float, np.ndarray]]) -> None:
        """A window's log line and its keyframes ``[(source time s, uint8 RGB (H, W, 3))]``."""

    def on_event(self, record: dict) -> None:
        """An event's log line (audio missing, source dropped or reconnected)."""

    def on_stop(self, summary: LiveSummary) -> None:
        """The run ended; ``summary`` is final."""


class Session:
    """One run of a :class:`LiveRunner` over one source: the buffers, the pacing, the outputs and
    the bookkeeping of the windows. ``play()`` consumes the source's events; ``close()`` finishes
    the outputs whatever happened.

    The runner's listeners are called on this thread: ``on_start(session)`` before the first
    event; ``wants_frames(time)`` (cheap) before each frame is drawn, and when true
    ``on_frame(image, time)`` with the annotated frame (uint8 RGB ``(H, W, 3)``, source time s);
    ``on_window(record, keyframes)`` with each log line and the window's keyframe images
    (``[(time s, image)]``, empty for a window not predicted); ``on_event(record)`` with each
    event line (audio missing, source dropped, reconnected); ``on_stop(summary)`` at the end."""

    def __init__(self, runner: "LiveRunner", source, clock) -> None:
        st = runner.settings
        self.runner, self.source, self.clock, self.st = runner, source, clock, st
        self.pacer = WindowPacer(st.stride, drop_late=st.drop_late)
        self.smoother = TemporalSmoother(k=st.smooth_k, mode=st.smoothing, alpha=st.ema_alpha)
        self.summary = LiveSummary(source=source.name, stride=st.stride, drop_late=st.drop_late,
                                   out=str(runner.out) if runner.out else None,
                                   log=str(runner.log) if runner.log else None, warmup_s=runner.warmup_s)
        self.ring = FrameRing()
        self.audio_ring = AudioRing(runner.audio_rate) if source.has_audio else None
        self.audio_done = not source.has_audio
        self.audio_lost_at: float | None = None   # source time the audio stopped (microphone gone)
        self.store = ReuseStore() if st.incremental else None
        self.arrival = (ArrivalWork(runner.predictor.preprocessor, runner.streams, st, fps=source.fps, store=self.store)
                        if self.store is not None else None)
        self.display = runner.show and bool(os.environ.get("DISPLAY"))
        if runner.show and not self.display:
            runner._say("no display ($DISPLAY is not set): --show ignored")
        self.drawing = runner.out is not None or self.display
        self.writer: VideoWriter | None = None
        self.log_file = None
        if runner.log is not None:
            runner.log.parent.mkdir(parents=True, exist_ok=True)
            self.log_file = open(runner.log, "w", encoding="utf-8")
        self.k = 0                    # next window
        self.next_end = st.window_bounds(0)[1]     # its end (s)
        self.faces = FaceHold(st.face_hold)
        self.view = {"probs": None, "label": None, "attention": None,
                     "status": f"first prediction at {st.window:g} s"}
        self.last_frame: LiveFrame | None = None
        self.t_wall0 = self.mark = time.perf_counter()
        self.gaps: list[tuple[float, float]] = []     # (start, end) s of the source's gaps
        self.gap_open: float | None = None             # the source dropped at this time, not back yet
        self.skipping: dict | None = None              # frames being skipped to catch up (see skip)
        if hasattr(source, "should_stop"):
            source.should_stop = lambda: runner._stop is not None
        self.drawing = self.drawing or bool(runner.listeners)
        for listener in runner.listeners:
            listener.on_start(self)

    # -- the event loop --------------------------------------------------------------------------

    def play(self) -> None:
        events = self.source.events()
        try:
            for event in events:
                if isinstance(event, AudioChunk):
                    self.on_audio(event)
                elif isinstance(event, AudioStopped):
                    self.on_audio_stopped(event)
                elif isinstance(event, SourceDropped):
                    self.on_source_dropped(event)
                elif isinstance(event, SourceReconnected):
                    self.on_source_reconnected(event)
                else:
                    self.on_frame(event)
                if self.runner._stop is not None:
                    break
            else:
                self.on_end_of_source()
        finally:
            events.close()

    def on_audio(self, chunk: AudioChunk) -> None:
        if self.audio_ring is not None and self.audio_lost_at is None:
            end = self.audio_ring.end_time
            if self.gaps and end is not None and chunk.time > end:
                # after a reconnection: silence over the gap keeps one sample timeline (the
                # windows that overlap the gap are not predicted, so it is never heard)
                n = int(round((chunk.time - end) * self.audio_ring.sample_rate))
                self.audio_ring.push(AudioChunk(end, np.zeros(n, np.float32)))
            self.audio_ring.push(chunk)
        if self.last_frame is not None and self.ready(self.last_frame.time):
            self.predict_pending()

    def on_audio_stopped(self, event: AudioStopped) -> None:
        """The audio source stopped (or never started): windows reaching past ``event.time`` have
        audio missing; the log gets a line saying when and why."""
        if self.audio_lost_at is not None:
            return
        self.audio_lost_at = float(event.time)
        self.audio_done = True
        self.summary.audio_lost_at = self.audio_lost_at
        rec = {"event": "audio_missing", "time_s": round(self.audio_lost_at, 4), "reason": event.reason}
        self.log_event(rec)
        self.runner._say(f"[{self.audio_lost_at:7.2f} s] audio missing from here on: {event.reason}")
        if self.last_frame is not None:
            while self.ready(self.last_frame.time) and self.runner._stop is None:
                self.predict_pending()

    def log_event(self, rec: dict) -> None:
        """Write an event line to the log and tell the listeners."""
        if self.log_file is not None:
            self.log_file.write(json.dumps(rec) + "\n")
            self.log_file.flush()
        for listener in self.runner.listeners:
            listener.on_event(rec)

    def on_source_dropped(self, event: SourceDropped) -> None:
        """A network source stopped delivering: logged with the time (source and wall clock)."""
        self.gap_open = float(event.time)
        self.summary.drops += 1
        self.log_event({"event": "source_dropped", "time_s": round(event.time, 4), "wall_time": round(time.time(), 3),
                        "reason": event.reason})
        self.runner._say(f"[{event.time:7.2f} s] source dropped ({event.reason}); reconnecting")

    def on_source_reconnected(self, event: SourceReconnected) -> None:
        """The source is back: the gap is remembered (its windows are not predicted) and, when it
        was longer than a window, smoothing starts afresh."""
        start = self.gap_open if self.gap_open is not None else event.time - event.gap_s
        self.gaps.append((start, float(event.time)))
        self.gap_open = None
        self.summary.reconnects += 1
        self.summary.gaps_s.append(round(event.gap_s, 4))
        restart = event.gap_s > self.st.window
        if restart:
            self.smoother.reset()
        self.log_event({"event": "source_reconnected", "time_s": round(event.time, 4),
                        "wall_time": round(time.time(), 3), "gap_s": round(event.gap_s, 4),
                        "attempts": event.attempts, "smoothing_restarted": restart})
        self.runner._say(f"[{event.time:7.2f} s] source reconnected after a {event.gap_s:.2f} s gap "
                         f"({event.attempts} attempt(s))")

    def in_gap(self, start: float, end: float) -> bool:
        """Whether ``[start, end)`` overlaps a gap of the source."""
        return any(start < b and end > a for a, b in self.gaps)

    def on_frame(self, frame: LiveFrame) -> None:
        decode_cost = time.perf_counter() - self.mark
        self.mark = time.perf_counter()
        self.clock.arrive(frame.time)
        self.clock.spend(decode_cost)
        self.summary.busy_s += decode_cost
        # windows that ended before this frame come first (this frame is not in them)
        while self.ready(frame.time) and self.runner._stop is None:
            self.predict_pending()
        if self.skip(frame):
            self.last_frame = frame
            self.summary.frames += 1
            self.summary.frames_skipped += 1
            self.summary.source_s = frame.time + 1.0 / self.source.fps
            self.charge()
            return
        self.ring.push(frame)
        if self.arrival is not None:
            self.arrival.add(frame)
        self.summary.peak_ring_mb = max(self.summary.peak_ring_mb, self.ring.nbytes / 2**20)
        self.last_frame = frame
        self.summary.frames += 1
        self.summary.source_s = frame.time + 1.0 / self.source.fps
        self.show_frame(frame)
        self.charge()

    def skip(self, frame: LiveFrame) -> bool:
        """Whether ``frame`` is left out to catch up with real time. With late windows dropped
        (a live source), once a frame arrives more than one stride behind the clock, frames are
        skipped (not kept, converted, scored or drawn) until one arrives within a frame period
        of it: otherwise per-frame work slower than real time, or a stream that buffered while
        live mode warmed up, would leave every later window late. Skipping a buffered backlog
        shrinks the lag quickly; when a second of source skipped has not shrunk it, the frames
        are coming at the source's pace and the lag is latency skipping cannot win back, so the
        clock is rebased (:meth:`live_mode.pacing.WallClock.rebase`) and skipping ends. Each
        catch-up is logged (``frames_skipped``: the first skipped frame's time, the count, the
        lag it started at, and ``rebased_s`` when the clock was rebased)."""
        if not self.st.drop_late:
            return False
        lag = self.clock.now() - frame.time
        burst = self.skipping
        if burst is None:
            if lag <= self.st.stride:
                return False
            self.skipping = {"time_s": round(frame.time, 4), "count": 1, "lag_s": round(lag, 4),
                             "_check": (frame.time, lag)}
            return True
        if lag > 1.0 / self.source.fps:
            burst["count"] += 1
            since, lag_then = burst["_check"]
            if frame.time - since < 1.0:
                return True
            if lag < lag_then - 0.1 or not hasattr(self.clock, "rebase"):
                burst["_check"] = (frame.time, lag)   # catching up: go on skipping
                return True
            self.clock.rebase(lag)
            if hasattr(self.source, "rebase"):   # a reconnecting stream measures its gaps on the same clock
                self.source.rebase(lag)
            burst["rebased_s"] = round(lag, 4)
        self.end_skipping()
        return False

    def end_skipping(self) -> None:
        """Log the catch-up under way (see :meth:`skip`) as ended."""
        burst, self.skipping = self.skipping, None
        if burst is None:
            return
        burst.pop("_check", None)
        self.log_event({"event": "frames_skipped", **burst})
        self.runner._say(f"[{burst['time_s']:7.2f} s] {burst['count']} frame(s) skipped to catch up "
                         f"({burst['lag_s']:.2f} s behind" + (f"; clock rebased by {burst['rebased_s']:.2f} s)"
                                                               if "rebased_s" in burst else ")"))

    def on_end_of_source(self) -> None:
        self.audio_done = True
        if self.last_frame is None or self.runner._stop is not None:
            return
        while self.ready(self.last_frame.time):  # windows that were waiting for audio
            self.predict_pending()
        end_of_source = self.last_frame.time + 1.0 / self.source.fps
        if self.k == 0 and end_of_source < self.next_end - 0.5 / self.source.fps:
            # a source shorter than one window: one prediction over all of it
            self.do_window(end_of_source, 0.0, partial=True)
        elif end_of_source >= self.next_end - 0.5 / self.source.fps:
            self.predict_pending()

    # -- windows ---------------------------------------------------------------------------------

    def audio_bounds(self, start: float, end: float) -> tuple[int, int] | None:
        """Source sample range of the window's audio (see the module docstring), ``None`` before
        any audio arrived."""
        ring = self.audio_ring
        if ring is None or ring.origin is None:
            return None
        return ring.window_bounds(start, end, step=self.runner.audio_step)

    def ready(self, newest: float) -> bool:
        """The pending window has its frames (one at/after its end arrived) and its audio."""
        if newest < self.next_end - 1e-9:
            return False
        if self.audio_done or self.audio_ring is None:
            return True
        bounds = self.audio_bounds(self.next_end - self.st.window, self.next_end)
        return (bounds is not None and self.audio_ring.end_sample >= bounds[1]) or \
            newest >= self.next_end + self.st.audio_wait

    def predict_pending(self) -> None:
        start, end = self.st.window_bounds(self.k)
        self.do_window(end, start)

    def charge(self) -> None:
        """Count the work since the last mark on the clock and in the summary."""
        now_pc = time.perf_counter()
        self.clock.spend(now_pc - self.mark)
        self.summary.busy_s += now_pc - self.mark
        self.mark = now_pc

    def do_window(self, end: float, start: float, *, partial: bool = False) -> None:
        self.charge()
        frames = self.ring.between(start, end)
        gap = self.in_gap(start, end)
        run_it, lag = (False, 0.0) if gap else self.pacer.admit(end, self.clock.now())
        result = raw = smoothed = latency = None
        kf_times: list[float] = []
        if run_it and frames:
            result, raw, smoothed, latency, kf_times = self.predict(frames, start, end)
        if gap:
            self.summary.gap_windows += 1
        self.summary.dropped, self.summary.late = self.pacer.dropped, self.pacer.late
        if self.k == 0:
            self.summary.late_first = self.pacer.late
        rec = self.runner.window_record(self.k, start, end, result=result, raw=raw, smoothed=smoothed,
                                        latency=latency, lag=lag, dropped=self.pacer.dropped, frames=len(frames),
                                        partial=partial, keyframe_times=kf_times,
                                        reason="gap in the source" if gap else None)
        if self.log_file is not None:
            self.log_file.write(json.dumps(rec) + "\n")
            self.log_file.flush()
        if self.runner.listeners:
            keyframes = [(t, min(frames, key=lambda f: abs(f.time - t)).image) for t in kf_times] if frames else []
            for listener in self.runner.listeners:
                listener.on_window(rec, keyframes)
        self.echo(rec, result, smoothed, latency, lag, start, end)
        self.k += 1
        next_start, self.next_end = self.st.window_bounds(self.k)
        self.ring.drop_before(next_start)
        if self.audio_ring is not None:
            self.audio_ring.drop_before(next_start - self.runner.audio_step / self.runner.audio_rate)
        if self.store is not None:
            self.store.forget_before(next_start)
        self.charge()

    def window_audio(self, start: float, end: float) -> tuple[np.ndarray | None, int | None]:
        """``(samples, source index of the first)`` of the window, ``(None, None)`` when the
        source has no audio or it stopped before the window's end."""
        bounds = self.audio_bounds(start, end)
        if bounds is None or (self.audio_lost_at is not None and end > self.audio_lost_at):
            return None, None
        return self.audio_ring.samples(*bounds)

    def predict(self, frames: list[LiveFrame], start: float, end: float):
        audio, audio_start = self.window_audio(start, end)
        t0, c0 = time.perf_counter(), time.process_time()
        if self.arrival is not None:
            self.arrival.flush()
        result, meta = self.runner.predict_window(
            frames, audio, start=start, end=end, fps=self.source.fps, name=self.source.name, store=self.store,
            audio_start=audio_start, audio_origin=self.audio_ring.origin if self.audio_ring is not None else 0.0)
        latency = time.perf_counter() - t0
        result["cpu_s"] = time.process_time() - c0
        borrowed = (meta.get("faces") or {}).get("borrowed")
        result["face_boxes_borrowed"] = None if borrowed is None else int(sum(borrowed))
        self.summary.cpu_s.append(result["cpu_s"])
        raw = np.array([result["probs"][c] for c in self.runner.class_names])
        smoothed = self.smoother.update(raw)
        kf_times = [round(start + t, 4) for t in result["keyframe_times"]]
        self.summary.windows += 1
        self.summary.latencies.append(latency)
        boxes, position = latest_face_boxes(meta, frames[0].image.shape)
        self.faces.update(boxes, frames[position].index if position is not None else None)
        self.view.update(probs=smoothed,
                         label=shown_label(smoothed, self.runner.class_names, self.st.min_confidence),
                         attention=meta.get("attention"),
                         status=f"{start:.1f}-{end:.1f} s  latency {latency:.2f} s  dropped {self.pacer.dropped}")
        return result, raw, smoothed, latency, kf_times

    def echo(self, rec: dict, result, smoothed, latency, lag: float, start: float, end: float) -> None:
        if self.runner.echo is None:
            return
        if result is None and rec["reason"] == "gap in the source":
            self.runner._say(f"[{start:7.2f}-{end:7.2f} s] not predicted: gap in the source")
        elif result is None:
            self.runner._say(f"[{start:7.2f}-{end:7.2f} s] dropped ({rec['reason']}: processing {lag:.2f} s behind)")
        else:
            missing = f"  missing: {','.join(result['missing'])}" if result["missing"] else ""
            self.runner._say(f"[{start:7.2f}-{end:7.2f} s] {rec['shown']} {max(smoothed):.2f} "
                             f"(raw {result['label']})  latency {latency:.2f} s{missing}")

    # -- outputs ---------------------------------------------------------------------------------

    def show_frame(self, frame: LiveFrame) -> None:
        """Annotate the frame with the latest prediction; write it and show it (nothing is drawn
        when there is neither an output file nor a display)."""
        if not self.drawing:
            return
        watchers = [li for li in self.runner.listeners if li.wants_frames(frame.time)]
        if self.runner.out is None and not self.display and not watchers:
            return
        image, boxes = even_size(frame.image), self.faces.boxes(frame.index)
        if self.runner.out is None and not self.display:
            # only the dashboard watches: draw at the size it shows, not at the analysis size
            image, boxes = display_view(image, boxes)
        if self.view["attention"] is not None:
            image = attention_overlay(image, *self.view["attention"])
        view = annotate(image, boxes=boxes, class_names=self.runner.class_names,
                        probs=self.view["probs"], label=self.view["label"], status=self.view["status"])
        if self.runner.out is not None:
            if self.writer is None:
                self.writer = VideoWriter(self.runner.out, fps=self.source.fps, size=(view.shape[1], view.shape[0]))
            self.writer.write(view)
        for listener in watchers:
            listener.on_frame(view, frame.time)
        if self.display:
            cv2.imshow("live emotion (q quits)", cv2.cvtColor(view, cv2.COLOR_RGB2BGR))
            if cv2.waitKey(1) & 0xFF == ord("q"):
                self.runner.request_stop("q pressed")

    def close(self) -> None:
        self.end_skipping()   # a catch-up the end of the source cut short
        self.summary.wall_s = time.perf_counter() - self.t_wall0
        self.summary.warning = getattr(self.source, "warning", None)
        try:
            if self.writer is not None:
                self.writer.close()  # also on Ctrl-C: what was written plays
        finally:
            if self.log_file is not None:
                self.log_file.close()
            self.source.close()
            for listener in self.runner.listeners:
                listener.on_stop(self.summary)
            if self.display:
                cv2.destroyAllWindows()


def latest_face_boxes(meta: dict, frame_shape: tuple[int, ...]) -> tuple[list[list[float]], int | None]:
    """The face boxes of the latest keyframe with any (``meta["faces"]``, in the pixels of the frames
    faces were detected in), scaled to a frame of ``frame_shape`` (the analysis size), and that
    keyframe's position in the window (``None`` when no keyframe has a face)."""
    faces = meta.get("faces") or {}
    h, w = frame_shape[:2]
    source_w = (faces.get("source_size") or [w, h])[0]
    indices = (meta.get("keyframes") or {}).get("indices") or []
    boxes = faces.get("boxes") or []
    for j in range(len(boxes) - 1, -1, -1):
        if boxes[j]:
            s = w / source_w
            return [[v * s for v in b] for b in boxes[j]], (indices[j] if j < len(indices) else None)
    return [], None


def display_view(image: np.ndarray, boxes: list, max_side: int = DISPLAY_MAX_SIDE) -> tuple[np.ndarray, list]:
    """``image`` (uint8 RGB ``(H, W, 3)``) at most ``max_side`` px on its longer side, even-sized,
    and the face ``boxes`` (``[x0, y0, x1, y1]`` px of ``image``) scaled to match."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image, boxes
    small = even_size(convert_image(image, max_side=max_side))
    s = small.shape[1] / w
    return small, [[v * s for v in b] for b in boxes]
