"""The live runner: reads a source frame by frame, keeps the last ``window`` seconds, and every
``stride`` seconds runs the whole trained pipeline on that window (a :class:`WindowReader` goes
through :meth:`streams.preprocessing.ClipPreprocessor.compute` exactly like a file, then
:meth:`fusion.prediction.Predictor.predict_inputs`), smooths the fused probabilities, annotates
the frames and logs one JSON line per window.

Timeline: times are seconds from the source's first frame. Window ``k`` covers
``[window + k * stride - window, window + k * stride)``; it is predicted once a frame at or past
its end (and, when the source has audio, the audio up to its end) has arrived. A window's audio is
the same length, starting at the multiple of the audio streams' frame step nearest to the window
start (at most half a step, 16 ms for the log-mel's 512 samples at 16 kHz, away), so overlapping
windows share their audio frames. Pacing and clocks: :mod:`live_mode.pacing`; the work done
once per frame and shared by the windows: :mod:`live_mode.incremental`.
"""
from __future__ import annotations

import json
import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import cv2
import numpy as np
import torch

from fusion.late import weighted_score
from live_mode.annotation import FaceHold, annotate, attention_overlay, even_size, shown_label
from live_mode.buffers import AudioRing, FrameRing, WindowReader
from live_mode.incremental import ArrivalWork
from live_mode.pacing import SimulatedClock, TemporalSmoother, WallClock, WindowPacer
from live_mode.settings import LiveSettings, LiveSummary, analysis_size_fn, audio_rate
from live_mode.warmup import warm_up_window
from media.capture import AudioChunk, AudioStopped, CameraSource, LiveFrame, PyAVSource, open_source
from media.encoding import VideoWriter
from media.reuse import ReuseStore
from streams.specs import STREAM_SPECS
from training import devices

if TYPE_CHECKING:
    from fusion.prediction import Predictor


class LiveRunner:
    """Runs a :class:`fusion.prediction.Predictor` on a live source, window by window (see the
    module docstring). ``out``: annotated mp4 path; ``log``: JSON-lines path; ``show``: an
    on-screen window (``q`` stops); ``echo``: called with one line of text per window (and for
    events such as the microphone stopping)."""

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
        order = tuple(predictor.stream_order)
        self.late_weights = settings.late_weight_map() if settings.fusion == "late" else None
        if self.late_weights is not None:
            unknown = [s for s in self.late_weights if s not in order]
            if unknown:
                raise ValueError(f"--late-weights names {unknown}, but the run's streams are {list(order)}")
        #: the streams computed for each window: all of the run's, or those late fusion weighs
        self.streams = order if self.late_weights is None else tuple(
            s for s in order if self.late_weights.get(s, 0.0) > 0)
        self.size_for = analysis_size_fn(cfg, self.streams)
        self.audio_rate = audio_rate(cfg, order)
        steps = [st for s in self.streams if (st := STREAM_SPECS[s].audio_frame_step(cfg)) is not None
                 and STREAM_SPECS[s].audio_rate(cfg) == self.audio_rate]
        self.audio_step = math.lcm(*steps) if steps else 1
        #: the stream whose spatial attention --show-attention draws: the first that reads the
        #: keyframe images themselves and has a spatial attention module
        self.attention_stream = next((s for s in self.streams if STREAM_SPECS[s].stores_keyframes
                                      and spatial_attention(predictor.streams[s][0]) is not None), None)
        self.warmup_s: float | None = None
        self._stop: str | None = None

    def request_stop(self, reason: str = "stopped") -> None:
        """Stop after the current frame (safe from a signal handler or another thread)."""
        self._stop = reason

    def open(self, spec: str | int, *, audio_source: str | None = None,
             audio_format: str | None = None) -> PyAVSource | CameraSource:
        """The source ``spec`` (see :func:`media.capture.open_source`); with a camera,
        ``audio_source`` records a microphone alongside (``audio_format``: the capture format,
        default the platform's)."""
        return open_source(spec, size_for=self.size_for, audio_rate=self.audio_rate, audio_source=audio_source,
                           audio_format=audio_format)

    def window_record(self, k: int, start: float, end: float, *, result: dict | None, raw: np.ndarray | None,
                      smoothed: np.ndarray | None, latency: float | None, lag: float, dropped: int,
                      frames: int, partial: bool, keyframe_times: list[float]) -> dict:
        """One log line: window ``k`` [``start_s``, ``end_s``) on the source timeline, ``dropped``
        (bool), raw and smoothed ``probs`` (class -> p), the smoothed ``label``, the ``shown``
        label ("uncertain" when the smoothed top probability is below ``--min-confidence``) and
        the raw one, ``fusion`` ("head" or "late") and each computed stream's probabilities
        (``streams``; ``null`` when missing), ``missing`` modalities, ``n_faces``, ``latency_s``
        (processing time; ``cpu_s`` the CPU time of this process meanwhile, all threads;
        ``timings_s`` per stage), ``lag_s`` (how late processing started after the window's
        end), ``dropped_windows_so_far``, ``frames`` in the window and the ``keyframe_times``
        (source timeline). A window not predicted has ``dropped`` true and a ``reason`` ("late",
        or "no frames in the window" after a gap in a live stream) instead of the prediction
        fields; ``partial`` marks the single window of a source shorter than one window."""
        rec = {"window": k, "start_s": round(start, 4), "end_s": round(end, 4), "dropped": result is None,
               "frames": frames, "lag_s": round(lag, 4), "dropped_windows_so_far": dropped}
        if result is None:
            rec["reason"] = "no frames in the window" if frames == 0 else "late"
        if partial:
            rec["partial"] = True
        if result is not None:
            rec.update({
                "label": self.class_names[int(np.argmax(smoothed))],
                "shown": shown_label(smoothed, self.class_names, self.settings.min_confidence),
                "raw_label": result["label"],
                "probs": {c: round(float(p), 6) for c, p in zip(self.class_names, raw)},
                "smoothed": {c: round(float(p), 6) for c, p in zip(self.class_names, smoothed)},
                "fusion": self.settings.fusion,
                "streams": {s: (None if p is None else {c: round(float(v), 6) for c, v in p.items()})
                            for s, p in result["streams"].items() if s in self.streams},
                "missing": result["missing"],
                "n_faces": result["n_faces"],
                "latency_s": round(latency, 4),
                "cpu_s": round(result["cpu_s"], 4),
                "keyframe_times": keyframe_times,
                "timings_s": result["timings_s"],
            })
        return rec

    def predict_window(self, frames: Sequence[LiveFrame], audio: np.ndarray | None, *, start: float, end: float,
                       fps: float, name: str, store: ReuseStore | None = None, audio_start: int | None = None,
                       audio_origin: float = 0.0) -> tuple[dict, dict]:
        """Predict one window: ``(predictor result, preprocessing meta)``. ``store``: share
        per-frame work with the other windows (:mod:`media.reuse`); ``audio_start``: the source
        index of ``audio``'s first sample, whose sample 0 is at ``audio_origin`` (s). With
        ``--fusion late`` the result's ``probs`` and ``label`` are the weighted average of the
        weighted streams' probabilities (:func:`fusion.late.weighted_score`)."""
        with torch.inference_mode():
            reader = WindowReader(frames, start=start, end=end, fps=fps, audio=audio, audio_rate=self.audio_rate,
                                  name=name, store=store, audio_start=audio_start, audio_origin=audio_origin)
            inputs = self.predictor.preprocessor.compute(reader, self.streams)
            result = self.predictor.predict_inputs(inputs, str(reader.path), only=self.streams)
        if self.late_weights is not None:
            probs = late_fusion(result["streams"], self.late_weights, self.class_names)
            result["probs"] = {c: round(float(p), 6) for c, p in zip(self.class_names, probs)}
            result["label"] = self.class_names[int(np.argmax(probs))]
        meta = dict(inputs.meta)
        if self.settings.show_attention:
            meta["attention"] = self.attention_map(inputs.arrays)
        return result, meta

    def attention_map(self, arrays: dict) -> tuple[np.ndarray, tuple[float, float, float, float]] | None:
        """The spatial attention of :attr:`attention_stream` in the window just predicted (its
        input ``arrays``), averaged over time: ``(map (H', W') in [0, 1] relative to its maximum,
        box)``, ``box`` the part of the frame the stream saw (fractions of width and height, see
        :func:`streams.views.centre_view_box`); ``None`` when no stream has one or it did not run."""
        from streams.views import centre_view_box

        if self.attention_stream is None or self.attention_stream not in arrays:
            return None
        model, view = self.predictor.streams[self.attention_stream]
        weights = spatial_attention(model).last_weights
        if weights is None or weights.dim() != 5:
            return None
        w = devices.to_host(weights[0, 0].float().mean(dim=0))              # (H', W'), from the model's device
        w = w / w.max() if w.max() > 0 else w
        h, wd = np.asarray(arrays[self.attention_stream]).shape[1:3]      # stored keyframes (N, H, W, 3)
        return w, centre_view_box(h, wd, view.settings)

    def warm_up(self, width: int, height: int, fps: float) -> float:
        """Run the pipeline once on a window of frames live mode makes itself (faces drawn at the
        analysis size of a ``width`` x ``height`` source at ``fps``, and a tone), so that the first
        real window pays no first-call cost (:mod:`live_mode.warmup`). Returns the seconds it took."""
        self.warmup_s = warm_up_window(self, width, height, fps)
        return self.warmup_s

    def run(self, source, *, clock: SimulatedClock | WallClock | None = None,
            handle_sigint: bool = True) -> LiveSummary:
        """Run until the source ends, ``q`` is pressed in the on-screen window, :meth:`request_stop`
        is called or Ctrl-C (SIGINT) arrives; then the annotated video is closed so it plays and
        the log is flushed. ``source``: from :meth:`open` (or anything with ``name``, ``fps``,
        ``has_audio``, ``live``, ``events()``, ``close()``; ``frame_size`` (w, h) when known lets
        the warm-up run before the first frame is read). ``clock``: default wall clock for live
        sources, simulated for files."""
        self._stop = None
        size = getattr(source, "frame_size", None)
        if self.settings.warm_up and self.warmup_s is None and size:
            self.warm_up(*size, source.fps)
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


def late_fusion(streams: dict, weights: dict[str, float], class_names: Sequence[str]) -> np.ndarray:
    """Score-level fusion of one window: :func:`fusion.late.weighted_score` of the streams'
    probabilities (``streams``: name -> {class: p} or ``None`` when missing) with ``weights``;
    a missing stream's weight goes to the others, none present gives uniform probabilities."""
    probs = {s: np.array([[0.0 if streams.get(s) is None else streams[s][c] for c in class_names]])
             for s in weights}
    available = {s: np.array([streams.get(s) is not None]) for s in weights}
    return weighted_score(probs, available, weights)[0]


def spatial_attention(model: torch.nn.Module):
    """The model's :class:`streams.models.attention.SpatialAttention` module (the first), or ``None``."""
    from streams.models.attention import SpatialAttention

    return next((m for m in model.modules() if isinstance(m, SpatialAttention)), None)


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

    # -- the event loop --------------------------------------------------------------------------

    def play(self) -> None:
        events = self.source.events()
        try:
            for event in events:
                if isinstance(event, AudioChunk):
                    self.on_audio(event)
                elif isinstance(event, AudioStopped):
                    self.on_audio_stopped(event)
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
        if self.log_file is not None:
            self.log_file.write(json.dumps(rec) + "\n")
            self.log_file.flush()
        self.runner._say(f"[{self.audio_lost_at:7.2f} s] audio missing from here on: {event.reason}")
        if self.last_frame is not None:
            while self.ready(self.last_frame.time) and self.runner._stop is None:
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
        if self.arrival is not None:
            self.arrival.add(frame)
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
        run_it, lag = self.pacer.admit(end, self.clock.now())
        result = raw = smoothed = latency = None
        kf_times: list[float] = []
        if run_it and frames:
            result, raw, smoothed, latency, kf_times = self.predict(frames, start, end)
        self.summary.dropped, self.summary.late = self.pacer.dropped, self.pacer.late
        if self.k == 0:
            self.summary.late_first = self.pacer.late
        rec = self.runner.window_record(self.k, start, end, result=result, raw=raw, smoothed=smoothed,
                                        latency=latency, lag=lag, dropped=self.pacer.dropped, frames=len(frames),
                                        partial=partial, keyframe_times=kf_times)
        if self.log_file is not None:
            self.log_file.write(json.dumps(rec) + "\n")
            self.log_file.flush()
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
        if result is None:
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
        image = even_size(frame.image)
        if self.view["attention"] is not None:
            image = attention_overlay(image, *self.view["attention"])
        view = annotate(image, boxes=self.faces.boxes(frame.index), class_names=self.runner.class_names,
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
