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

import math
import os
import signal
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
import torch

from fusion.late import weighted_score
from live_mode.annotation import shown_label
from live_mode.buffers import WindowReader
from live_mode.pacing import SimulatedClock, WallClock
from live_mode.session import Session
from live_mode.settings import LiveSettings, LiveSummary, analysis_size_fn, audio_rate
from live_mode.warmup import warm_up_window
from media.capture import CameraSource, LiveFrame, PyAVSource, open_source
from media.reconnect import DEFAULT_TIMEOUTS, ReconnectingSource
from media.reuse import ReuseStore
from streams.specs import STREAM_SPECS
from training import devices

if TYPE_CHECKING:
    from fusion.prediction import Predictor


class LiveRunner:
    """Runs a :class:`fusion.prediction.Predictor` on a live source, window by window (see the
    module docstring). ``out``: annotated mp4 path; ``log``: JSON-lines path; ``show``: an
    on-screen window (``q`` stops); ``echo``: called with one line of text per window (and for
    events such as the microphone stopping). ``listeners``: objects told about the run as it goes
    (:class:`live_mode.session.Session` says what they are called with; the dashboard is one)."""

    def __init__(self, predictor: "Predictor", settings: LiveSettings, *, out: str | os.PathLike | None = None,
                 log: str | os.PathLike | None = None, show: bool = False,
                 echo: Callable[[str], None] | None = None, listeners: Sequence = ()) -> None:
        self.listeners = list(listeners)
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

    def open(self, spec: str | int, *, audio_source: str | None = None, audio_format: str | None = None,
             reconnect: int | None = None,
             timeouts: tuple[float, float] = DEFAULT_TIMEOUTS) -> PyAVSource | CameraSource | ReconnectingSource:
        """The source ``spec`` (see :func:`media.capture.open_source`); with a camera,
        ``audio_source`` records a microphone alongside (``audio_format``: the capture format,
        default the platform's). A stream URL reconnects after a drop (``reconnect`` attempts per
        drop, ``None`` unlimited; ``timeouts`` ``(open, read)`` s, :mod:`media.reconnect`)."""
        return open_source(spec, size_for=self.size_for, audio_rate=self.audio_rate, audio_source=audio_source,
                           audio_format=audio_format, reconnect=reconnect, timeouts=timeouts)

    def window_record(self, k: int, start: float, end: float, *, result: dict | None, raw: np.ndarray | None,
                      smoothed: np.ndarray | None, latency: float | None, lag: float, dropped: int,
                      frames: int, partial: bool, keyframe_times: list[float], reason: str | None = None) -> dict:
        """One log line: window ``k`` [``start_s``, ``end_s``) on the source timeline, ``dropped``
        (bool), raw and smoothed ``probs`` (class -> p), the smoothed ``label``, the ``shown``
        label ("uncertain" when the smoothed top probability is below ``--min-confidence``) and
        the raw one, ``fusion`` ("head" or "late") and each computed stream's probabilities
        (``streams``; ``null`` when missing), ``missing`` modalities, ``n_faces``, ``latency_s``
        (processing time; ``face_boxes_borrowed``: keyframes that took a nearby frame's face boxes
        under ``--face-rate``, ``null`` without a budget; ``cpu_s`` the CPU time of this process meanwhile, all threads;
        ``timings_s`` per stage), ``lag_s`` (how late processing started after the window's
        end), ``dropped_windows_so_far``, ``frames`` in the window and the ``keyframe_times``
        (source timeline). A window not predicted has ``dropped`` true and a ``reason`` ("late",
        or "no frames in the window" after a gap in a live stream) instead of the prediction
        fields (``reason`` given: "gap in the source" for a window that overlaps a network
        source's drop); ``partial`` marks the single window of a source shorter than one window."""
        rec = {"window": k, "start_s": round(start, 4), "end_s": round(end, 4), "dropped": result is None,
               "frames": frames, "lag_s": round(lag, 4), "dropped_windows_so_far": dropped}
        if result is None:
            rec["reason"] = reason or ("no frames in the window" if frames == 0 else "late")
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
                "face_boxes_borrowed": result.get("face_boxes_borrowed"),
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
                                  name=name, store=store, audio_start=audio_start, audio_origin=audio_origin,
                                  face_budget=self.settings.face_budget())
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
        if clock is None:
            clock = WallClock(origin=getattr(source, "opened_at", None)) if source.live else SimulatedClock()
        session = Session(self, source, clock)
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
