"""Live mode: the emotion of a camera, a stream or a video file, window by window, smoothed.

A :class:`LiveRunner` (``runner``) reads a source (:mod:`media.capture`: a camera index through OpenCV,
with a microphone through PyAV's capture formats on the same clock, or a stream URL or a file
through PyAV, which also gives the audio), keeps the last ``window`` seconds of frames and audio
(``buffers``), and every ``stride`` seconds runs the whole trained pipeline on that window; the
work on each frame (conversions, keyframe scores, face detections) and on each stretch of audio
(log-mel columns) is done once and shared by the windows that contain it (``incremental``). The
fused probabilities (the run's fusion head, or a score-level 0.6 face + 0.4 audio fusion) are
smoothed over the last K windows (``pacing``, which also holds the clocks and the pacer that
drops late windows). Outputs: an annotated mp4 (``annotation``: face boxes held through short
gaps, an "uncertain" label below a confidence, the visual stream's attention as a heat map), a
JSON-lines log (one object per window, :meth:`LiveRunner.window_record`) and a
:class:`LiveSummary` (``settings``). Before the first frame the pipeline runs once on a window
of faces and a tone it draws itself (``warmup``), so no first-call cost lands on a real window.

Real time: a window is *due* at its end time; it is *late* when its processing would start more
than one stride after that. Live sources use the wall clock; a file is read as fast as possible
and a simulated clock tells what real time would have been. With ``drop_late`` (``--realtime``,
the default for cameras and URLs) late windows are skipped and counted instead of queued; without
it every window is predicted and late ones are counted. The run keeps up with real time when no
window was late.
"""
from live_mode.annotation import UNCERTAIN, FaceHold, shown_label
from live_mode.buffers import AudioRing, FrameRing, WindowFrame, WindowReader
from live_mode.incremental import ArrivalWork
from live_mode.pacing import DEFAULT_SMOOTH_K, SimulatedClock, TemporalSmoother, WallClock, WindowPacer
from live_mode.runner import LiveRunner, late_fusion
from live_mode.settings import (
    DEFAULT_FACE_RATE,
    DEFAULT_STRIDE_S,
    DEFAULT_WINDOW_S,
    FUSION_MODES,
    LiveSettings,
    LiveSummary,
    analysis_size_fn,
    default_window_seconds,
    parse_late_weights,
    training_clip_seconds,
)
from media.capture import (
    DEFAULT_AUDIO_FORMATS,
    AudioCapture,
    AudioChunk,
    AudioStopped,
    CameraSource,
    CaptureSource,
    LiveFrame,
    LiveSourceError,
    PyAVSource,
    default_audio_format,
    open_microphone,
    open_source,
    source_kind,
)

__all__ = [
    "ArrivalWork", "AudioCapture", "AudioChunk", "AudioRing", "AudioStopped", "CameraSource", "CaptureSource",
    "DEFAULT_AUDIO_FORMATS", "DEFAULT_FACE_RATE", "DEFAULT_SMOOTH_K", "DEFAULT_STRIDE_S", "DEFAULT_WINDOW_S",
    "FUSION_MODES", "FaceHold",
    "FrameRing", "LiveFrame", "LiveRunner", "LiveSettings", "LiveSourceError", "LiveSummary", "PyAVSource",
    "SimulatedClock", "TemporalSmoother", "UNCERTAIN", "WallClock", "WindowFrame", "WindowPacer", "WindowReader",
    "analysis_size_fn", "default_audio_format", "default_window_seconds", "late_fusion", "open_microphone",
    "open_source", "parse_late_weights", "shown_label", "source_kind", "training_clip_seconds",
]
