"""The live runner: reads a source frame by frame, keeps the last ``window`` seconds, and every
``stride`` seconds runs the whole trained pipeline on that window (a :class:`WindowReader` goes
through :meth:`streams.preprocessing.ClipPreprocessor.compute` exactly like a file, then
:meth:`fusion.prediction.Predictor.predict_inputs`), smooths the fused probabilities, annotates
the frames and logs one JSON line per window.

Timeline: times are seconds from the source's first frame. Window ``k`` covers
``[window + k * stride - window, window + k * stride)``; it is predicted once a frame at or past
its end (and, when the source has audio, the audio up to its end) has arrived. Pacing and clocks:
:mod:`fusion.live.pacing`.
"""
from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import cv2
import numpy as np
import torch

from media.encoding import VideoWriter
from fusion.live.annotation import annotate, even_size
from fusion.live.buffers import AudioRing, FrameRing, WindowReader
from fusion.live.pacing import SimulatedClock, TemporalSmoother, WallClock, WindowPacer
from fusion.live.settings import LiveSettings, LiveSummary, analysis_size_fn, audio_rate
from fusion.live.sources import AudioChunk, CameraSource, LiveFrame, PyAVSource, open_source

if TYPE_CHECKING:
    from fusion.prediction import Predictor


class LiveRunner:
    """Runs a :class:`fusion.prediction.Predictor` on a live source, window by window (see the
    module docstring). ``out``: annotated mp4 path; ``log``: JSON-lines path; ``show``: an
    on-screen window (``q`` stops); ``echo``: called with one line of text per window."""

    def __init__(self, predictor: "Predictor", settings: LiveSettings, *, out: str | os.PathLike | None = None,
                 log: str | os.PathLike | None = None, show: bool = False,
                 echo: Callable[[str], None] | None = None) -> None:
        self.predictor = predictor
        self.settings = settings
        self.out = Path(out) if out is not None else None
        self.log = Path(log) if log is not None else None
        self.show = show
        self.echo = echo
        self.class_names = list(predictor.class_names)
        cfg = predictor.preprocessor.cfg
        self.size_for = analysis_size_fn(cfg, predictor.stream_order)
        self.audio_rate = audio_rate(cfg, predictor.stream_order)
        self._stop: str | None = None

    def request_stop(self, reason: str = "stopped") -> None:
        """Stop after the current frame (safe from a signal handler or another thread)."""
        self._stop = reason

    def open(self, spec: str | int) -> PyAVSource | CameraSource:
        return open_source(spec, size_for=self.size_for, audio_rate=self.audio_rate)

    def window_record(self, k: int, start: float, end: float, *, result: dict | None, raw: np.ndarray | None,
                      smoothed: np.ndarray | None, latency: float | None, lag: float, dropped: int,
                      frames: int, partial: bool, keyframe_times: list[float]) -> dict:
        """One log line: window ``k`` [``start_s``, ``end_s``) on the source timeline, ``dropped``
        (bool), raw and smoothed ``probs`` (class -> p), the smoothed ``label`` and the raw one,
        ``missing`` modalities, ``n_faces``, ``latency_s`` (processing time; ``cpu_s`` the CPU
        time of this process meanwhile, all threads; ``timings_s`` per stage), ``lag_s`` (how late
        processing started after the window's end), ``dropped_windows_so_far``, ``frames`` in the
        window and the ``keyframe_times`` (source timeline). A window not predicted has
        ``dropped`` true and a ``reason`` ("late", or "no frames in the window" after a gap in a
        live stream) instead of the prediction fields; ``partial`` marks the single window of a
        source shorter than one window."""
        rec = {"window": k, "start_s": round(start, 4), "end_s": round(end, 4), "dropped": result is None,
               "frames": frames, "lag_s": round(lag, 4), "dropped_windows_so_far": dropped}
        if result is None:
            rec["reason"] = "no frames in the window" if frames == 0 else "late"
        if partial:
            rec["partial"] = True
        if result is not None:
            rec.update({
                "label": self.class_names[int(np.argmax(smoothed))],
                "raw_label": result["label"],
                "probs": {c: round(float(p), 6) for c, p in zip(self.class_names, raw)},
                "smoothed": {c: round(float(p), 6) for c, p in zip(self.class_names, smoothed)},
                "missing": result["missing"],
                "n_faces": result["n_faces"],
                "latency_s": round(latency, 4),
                "cpu_s": round(result["cpu_s"], 4),
                "keyframe_times": keyframe_times,
                "timings_s": result["timings_s"],
            })
        return rec

    def predict_window(self, frames: Sequence[LiveFrame], audio: np.ndarray | None, *, start: float, end: float,
                       fps: float, name: str) -> tuple[dict, dict]:
        """Predict one window: ``(predictor result, preprocessing meta)``."""
        with torch.inference_mode():
            reader = WindowReader(frames, start=start, end=end, fps=fps, audio=audio, audio_rate=self.audio_rate,
                                  name=name)
            inputs = self.predictor.preprocessor.compute(reader, self.predictor.stream_order)
            return self.predictor.predict_inputs(inputs, str(reader.path)), inputs.meta

    def run(self, source, *, clock: SimulatedClock | WallClock | None = None,
            handle_sigint: bool = True) -> LiveSummary:
        """Run until the source ends, ``q`` is pressed in the on-screen window, :meth:`request_stop`
        is called or Ctrl-C (SIGINT) arrives; then the annotated video is closed so it plays and
        the log is flushed. ``source``: from :meth:`open` (or anything with ``name``, ``fps``,
        ``has_audio``, ``live``, ``events()``, ``close()``). ``clock``: default wall clock for
        live sources, simulated for files."""
        self._stop = None
        session = _Session(self, source, clock or (WallClock() if source.live else SimulatedClock()))
        old_handler = None
        if handle_sigint and threading.current_thread() is threading.main_thread():
            old_handler = signal.signal(signal.SIGINT, self._on_sigint)
        try:
            session.play()
            session.summary.stop_reason = self._stop or "end of stream"
        except KeyboardInterrupt:
            session.summary.stop_reason = "interrupted"
        finally:
            if old_handler is not None:
                signal.signal(signal.SIGINT, old_handler)
            session.close()
        return session.summary

    def _on_sigint(self, signum, frame) -> None:
        if self._stop == "interrupted":
            raise KeyboardInterrupt  # second Ctrl-C: stop at once
        self._stop = "interrupted"

    def _say(self, text: str) -> None:
        if self.echo is not None:
            self.echo(text)


class _Session:
    """One run of a :class:`LiveRunner` over one source: the buffers, the pacing, the outputs and
    the bookkeeping of the windows. ``play()`` consumes the source's events; ``close()`` finishes
    the outputs whatever happened."""

    def __init__(self, runner: LiveRunner, source, clock) -> None:
        st = runner.settings
        self.runner, self.source, self.clock, self.st = runner, source, clock, st
        self.pacer = WindowPacer(st.stride, drop_late=st.drop_late)
        self.smoother = TemporalSmoother(k=st.smooth_k, mode=st.smoothing, alpha=st.ema_alpha)
        self.summary = LiveSummary(source=source.name, stride=st.stride, drop_late=st.drop_late,
                                   out=str(runner.out) if runner.out else None,
                                   log=str(runner.log) if runner.log else None)
        self.ring = FrameRing()
        self.audio_ring = AudioRing(runner.audio_rate) if source.has_audio else None
        self.audio_done = not source.has_audio
        self.display = runner.show and bool(os.environ.get("DISPLAY"))
        if runner.show and not self.display:
            runner._say("no display ($DISPLAY is not set): --show ignored")
        self.writer: VideoWriter | None = None
        self.log_file = None
        if runner.log is not None:
            runner.log.parent.mkdir(parents=True, exist_ok=True)
            self.log_file = open(runner.log, "w", encoding="utf-8")
        self.k = 0                    # next window
        self.next_end = st.window     # its end (s)
        self.view = {"probs": None, "label": None, "boxes": [], "status": f"first prediction at {st.window:g} s"}
        self.last_frame: LiveFrame | None = None
        self.t_wall0 = self.mark = time.perf_counter()

    # -- the event loop --------------------------------------------------------------------------

    def play(self) -> None:
        events = self.source.events()
        try:
            for event in events:
                if isinstance(event, AudioChunk):
                    self.on_audio(event)
                else:
                    self.on_frame(event)
                if self.runner._stop is not None:
                    break
            else:
                self.on_end_of_source()
        finally:
            events.close()

    def on_audio(self, chunk: AudioChunk) -> None:
        if self.audio_ring is not None:
            self.audio_ring.push(chunk)
        if self.last_frame is not None and self.ready(self.last_frame.time):
            self.predict_pending()

    def on_frame(self, frame: LiveFrame) -> None:
        decode_cost = time.perf_counter() - self.mark
        self.mark = time.perf_counter()
        self.clock.arrive(frame.time)
        self.clock.spend(decode_cost)
        self.summary.busy_s += decode_cost
        # windows that ended before this frame come first (this frame is not in them)
        while self.ready(frame.time) and self.runner._stop is None:
            self.predict_pending()
        self.ring.push(frame)
        self.summary.peak_ring_mb = max(self.summary.peak_ring_mb, self.ring.nbytes / 2**20)
        self.last_frame = frame
        self.summary.frames += 1
        self.summary.source_s = frame.time + 1.0 / self.source.fps
        self.show_frame(frame)
        self.charge()

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

    def ready(self, newest: float) -> bool:
        """The pending window has its frames (one at/after its end arrived) and its audio."""
        if newest < self.next_end - 1e-9:
            return False
        if self.audio_done or self.audio_ring is None:
            return True
        end_audio = self.audio_ring.end_time
        return (end_audio is not None and end_audio >= self.next_end - 1e-3) or newest >= self.next_end + self.st.audio_wait

    def predict_pending(self) -> None:
        self.do_window(self.next_end, self.next_end - self.st.window)

    def charge(self) -> None:
        """Count the work since the last mark on the clock and in the summary."""
        now_pc = time.perf_counter()
        self.clock.spend(now_pc - self.mark)
        self.summary.busy_s += now_pc - self.mark
        self.mark = now_pc

    def do_window(self, end: float, start: float, *, partial: bool = False) -> None:
        self.charge()
        frames = self.ring.between(start, end)
        run_it, lag = self.pacer.admit(end, self.clock.now())
        result = raw = smoothed = latency = None
        kf_times: list[float] = []
        if run_it and frames:
            result, raw, smoothed, latency, kf_times = self.predict(frames, start, end)
        self.summary.dropped, self.summary.late = self.pacer.dropped, self.pacer.late
        rec = self.runner.window_record(self.k, start, end, result=result, raw=raw, smoothed=smoothed,
                                        latency=latency, lag=lag, dropped=self.pacer.dropped, frames=len(frames),
                                        partial=partial, keyframe_times=kf_times)
        if self.log_file is not None:
            self.log_file.write(json.dumps(rec) + "\n")
            self.log_file.flush()
        self.echo(rec, result, smoothed, latency, lag, start, end)
        self.k += 1
        self.next_end = self.st.window + self.k * self.st.stride
        self.ring.drop_before(self.next_end - self.st.window)
        if self.audio_ring is not None:
            self.audio_ring.drop_before(self.next_end - self.st.window)
        self.charge()

    def predict(self, frames: list[LiveFrame], start: float, end: float):
        audio = self.audio_ring.between(start, end) if self.audio_ring is not None else None
        t0, c0 = time.perf_counter(), time.process_time()
        result, meta = self.runner.predict_window(frames, audio, start=start, end=end, fps=self.source.fps,
                                                  name=self.source.name)
        latency = time.perf_counter() - t0
        result["cpu_s"] = time.process_time() - c0
        self.summary.cpu_s.append(result["cpu_s"])
        raw = np.array([result["probs"][c] for c in self.runner.class_names])
        smoothed = self.smoother.update(raw)
        kf_times = [round(start + t, 4) for t in result["keyframe_times"]]
        self.summary.windows += 1
        self.summary.latencies.append(latency)
        self.view.update(probs=smoothed, label=self.runner.class_names[int(np.argmax(smoothed))],
                         boxes=latest_face_boxes(meta, frames[0].image.shape),
                         status=f"{start:.1f}-{end:.1f} s  latency {latency:.2f} s  dropped {self.pacer.dropped}")
        return result, raw, smoothed, latency, kf_times

    def echo(self, rec: dict, result, smoothed, latency, lag: float, start: float, end: float) -> None:
        if self.runner.echo is None:
            return
        if result is None:
            self.runner._say(f"[{start:7.2f}-{end:7.2f} s] dropped ({rec['reason']}: processing {lag:.2f} s behind)")
        else:
            missing = f"  missing: {','.join(result['missing'])}" if result["missing"] else ""
            self.runner._say(f"[{start:7.2f}-{end:7.2f} s] {rec['label']} {max(smoothed):.2f} "
                             f"(raw {result['label']})  latency {latency:.2f} s{missing}")

    # -- outputs ---------------------------------------------------------------------------------

    def show_frame(self, frame: LiveFrame) -> None:
        """Annotate the frame with the latest prediction; write it and show it."""
        view = annotate(even_size(frame.image), boxes=self.view["boxes"], class_names=self.runner.class_names,
                        probs=self.view["probs"], label=self.view["label"], status=self.view["status"])
        if self.runner.out is not None:
            if self.writer is None:
                self.writer = VideoWriter(self.runner.out, fps=self.source.fps, size=(view.shape[1], view.shape[0]))
            self.writer.write(view)
        if self.display:
            cv2.imshow("live emotion (q quits)", cv2.cvtColor(view, cv2.COLOR_RGB2BGR))
            if cv2.waitKey(1) & 0xFF == ord("q"):
                self.runner.request_stop("q pressed")

    def close(self) -> None:
        self.summary.wall_s = time.perf_counter() - self.t_wall0
        self.summary.warning = getattr(self.source, "warning", None)
        try:
            if self.writer is not None:
                self.writer.close()  # also on Ctrl-C: what was written plays
        finally:
            if self.log_file is not None:
                self.log_file.close()
            self.source.close()
            if self.display:
                cv2.destroyAllWindows()


def latest_face_boxes(meta: dict, frame_shape: tuple[int, ...]) -> list[list[float]]:
    """The face boxes of the latest keyframe with any (``meta["faces"]``, in the pixels of the frames
    faces were detected in), scaled to a frame of ``frame_shape`` (the analysis size)."""
    faces = meta.get("faces") or {}
    h, w = frame_shape[:2]
    source_w = (faces.get("source_size") or [w, h])[0]
    for frame_boxes in reversed(faces.get("boxes") or []):
        if frame_boxes:
            s = w / source_w
            return [[v * s for v in b] for b in frame_boxes]
    return []
