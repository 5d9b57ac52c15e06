"""Incremental live work: what preprocessing will ask of a frame is done when the frame arrives,
once, and kept for every window that contains it.

A live window is preprocessed by :meth:`streams.preprocessing.ClipPreprocessor.compute` like a
file (through :class:`live_mode.buffers.WindowReader`); with a :class:`media.reuse.ReuseStore`
its frames bring what earlier windows or the arrival step already made of them: the small grey
copy for inter-frame differences, the conversions of keyframe candidates to the scorer's and the
streams' sizes, the candidates' scores, the keyframes' face detections, and the log-mel columns
of the audio (see :func:`streams.inputs.spectrogram.shared_log_mel_spectrogram`). The windows'
results are the same as window-by-window computation (to float rounding: a batch of other size
may round a score differently), because every shared value is keyed by what determines it.

**Which frames are candidates.** Window ``k`` covers ``[start_k, end_k)`` (see
:meth:`live_mode.settings.LiveSettings.window_bounds`); its candidates are, as for a file, the
frames nearest to :func:`keyframes.extraction.candidate_times` of the window's duration, counted
from its start (:func:`media.sampling.sample_video`: the first frame at or after ``t`` minus
half a frame period). When a frame arrives, :class:`ArrivalWork` checks, for every window that
will contain it, whether it is the first frame past one of those times; if so it is converted
and queued for scoring (scored in batches, and before any window is predicted). With the default
window and candidates (3 s, 48: one every 62.5 ms) and a stride that is a multiple of that
spacing (1 s is), the windows' candidates lie on one grid of the source timeline and each is
scored once for all the windows that contain it; with other strides the windows' grids differ and
fewer candidates are shared (the results stay those of window-by-window computation). A frame
this check misses (a target past a window's last frame) is scored when its window is predicted.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from keyframes.extraction import candidate_times, score_candidates
from live_mode.buffers import WindowFrame
from live_mode.settings import LiveSettings
from media.capture import LiveFrame
from media.reuse import ClipReuse, ReuseStore


class ArrivalWork:
    """Per-frame work done on arrival for the windows of ``settings`` (see the module docstring).

    ``preprocessor``: the :class:`~streams.preprocessing.ClipPreprocessor` that will compute the
    windows, for ``streams``; ``fps``: the source's frame rate (the readers' ``info.fps``);
    ``store``: shared with the windows' readers. ``add(frame)`` for each frame in source order,
    ``flush()`` before a window is computed."""

    def __init__(self, preprocessor, streams: Sequence[str], settings: LiveSettings, *, fps: float,
                 store: ReuseStore, batch_size: int = 8) -> None:
        from streams.specs import STREAM_SPECS

        self.settings = settings
        self.store = store
        self.kf = preprocessor.settings
        self.scorer = preprocessor.scorer
        self.uses_keyframes = self.scorer is not None and any(STREAM_SPECS[s].uses_keyframes for s in streams)
        # the conversion sample_video makes of every candidate (the streams' sizes are made lazily,
        # for the keyframes only, when a window is computed)
        self.sizes = ((self.kf.score_size, None),)
        self.half = 0.5 / fps if fps > 0 else 0.0
        self.batch_size = int(batch_size)
        self._targets: dict[float, tuple[float, ...]] = {}
        self._pending: list[tuple[int, float, np.ndarray]] = []
        self._prev: LiveFrame | None = None
        self.candidates = 0

    def _window_targets(self, duration: float) -> tuple[float, ...]:
        """A window's candidate times relative to its start, each less half a frame period (the
        time from which ``sample_video`` takes a frame for it), as floats computed like there."""
        if duration not in self._targets:
            self._targets[duration] = tuple(t - self.half for t in candidate_times(duration, self.kf))
        return self._targets[duration]

    def is_candidate(self, frame: LiveFrame, prev: LiveFrame | None) -> bool:
        """Whether ``frame`` (after ``prev``) is a keyframe candidate of any full window that
        contains it."""
        st = self.settings
        k = max(0, int(math.floor((frame.time - st.window) / st.stride)))
        while True:
            start, end = st.window_bounds(k)
            if start > frame.time + 1e-9:
                return False
            if start - 1e-9 <= frame.time < end - 1e-9:
                rel = frame.time - start
                prev_rel = prev.time - start if prev is not None and prev.time >= start - 1e-9 else -math.inf
                if any(prev_rel < r <= rel for r in self._window_targets(end - start)):
                    return True
            k += 1

    def add(self, frame: LiveFrame) -> None:
        """Do the arrival work of ``frame`` (the next frame of the source)."""
        if not self.uses_keyframes:
            return
        prev, self._prev = self._prev, frame
        handle = WindowFrame(0, 0.0, frame.image, frame_id=frame.index, source_time=frame.time, store=self.store)
        if self.kf.motion_width:
            handle.to_image(width=self.kf.motion_width, gray=True)
        if not self.is_candidate(frame, prev):
            return
        self.candidates += 1
        images = [handle.to_image(short_side=short, max_side=longest) for short, longest in self.sizes]
        self._pending.append((frame.index, frame.time, images[0]))
        if len(self._pending) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Score the queued candidates (one batch)."""
        if not self._pending:
            return
        ids, times, images = zip(*self._pending)
        self._pending = []
        reuse = ClipReuse(store=self.store, frame_ids=list(ids), start=0.0)
        score_candidates(list(images), self.scorer, indices=list(range(len(ids))), times=list(times), reuse=reuse)
