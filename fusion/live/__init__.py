"""Live mode: the emotion of a camera, a stream or a video file, window by window, smoothed.

A :class:`LiveRunner` (``runner``) reads a source (``sources``: a camera index through OpenCV, a
stream URL or a file through PyAV, which also gives the audio), keeps the last ``window`` seconds
of frames and audio (``buffers``), and every ``stride`` seconds runs the whole trained pipeline on
that window; the fused probabilities are smoothed over the last K windows (``pacing``, which also
holds the clocks and the pacer that drops late windows). Outputs: an annotated mp4
(``annotation``), a JSON-lines log (one object per window, :meth:`LiveRunner.window_record`) and
a :class:`LiveSummary` (``settings``).

Real time: a window is *due* at its end time; it is *late* when its processing would start more
than one stride after that. Live sources use the wall clock; a file is read as fast as possible
and a simulated clock tells what real time would have been. With ``drop_late`` (``--realtime``,
the default for cameras and URLs) late windows are skipped and counted instead of queued; without
it every window is predicted and late ones are counted. The run keeps up with real time when no
window was late.
"""
from fusion.live.buffers import AudioRing, FrameRing, WindowFrame, WindowReader
from fusion.live.pacing import DEFAULT_SMOOTH_K, SimulatedClock, TemporalSmoother, WallClock, WindowPacer
from fusion.live.runner import LiveRunner
from fusion.live.settings import (
    DEFAULT_STRIDE_S, DEFAULT_WINDOW_S, LiveSettings, LiveSummary, analysis_size_fn, default_window_seconds,
    training_clip_seconds,
)
from fusion.live.sources import (
    AudioChunk, CameraSource, LiveFrame, LiveSourceError, PyAVSource, open_source, source_kind,
)

__all__ = [
    "AudioChunk", "AudioRing", "CameraSource", "DEFAULT_SMOOTH_K", "DEFAULT_STRIDE_S", "DEFAULT_WINDOW_S",
    "FrameRing", "LiveFrame", "LiveRunner", "LiveSettings", "LiveSourceError", "LiveSummary", "PyAVSource",
    "SimulatedClock", "TemporalSmoother", "WallClock", "WindowFrame", "WindowPacer", "WindowReader",
    "analysis_size_fn", "default_window_seconds", "open_source", "source_kind", "training_clip_seconds",
]
