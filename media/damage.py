"""Real-world damage applied to media files: a damaged copy of a video, at a named severity.

Each damage is a small function on one decoded track, and :data:`DAMAGES` names them with their
severities (``"white_noise_10db"`` -> :class:`Damage`). :func:`damage_file` reads the source,
applies one damage to the track it concerns, re-encodes that track and copies the other one's
packets untouched (so an audio damage leaves every decoded video frame bit-identical, and a video
damage the audio samples), and writes the copy atomically. The copy then goes through the same
decoding and preprocessing as a clean clip (``experiments/robustness.py``).

Audio damages take an :class:`AudioTrack` (float32 ``(channels, N)`` in [-1, 1] at the track's own
rate) and return one, or ``None`` for no track; signal-to-noise ratios are in dB against the
clip's own audio power (mean square over every sample and channel of the decoded track). Video
damages take a :class:`VideoTrack` (upright ``(H, W, 3)`` uint8 RGB frames, frames/s) and return
one. Two damages need something this layer does not own, passed in by the caller: ``babble``
(speech-like voices, the synthetic generator's) and ``face_boxes`` (a face detector's boxes).
A source without an audio track stays without one under an audio damage.
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import av
import cv2
import numpy as np

from media.audio_track import read_audio_track
from media.decoding import NoVideoStreamError, VideoReader, open_container
from media.encoding import add_h264_stream, encode_audio

#: ``babble(n_samples, sample_rate) -> (n_samples,)`` float32: speech-like voices to mix in
BabbleSource = Callable[[int, int], np.ndarray]
#: ``face_boxes(frame) -> (K, 4)`` boxes ``[x0, y0, x1, y1]`` in pixels of ``frame`` ((H, W, 3) RGB)
FaceBoxes = Callable[[np.ndarray], np.ndarray]

_AUDIO_LAYOUTS = {1: "mono", 2: "stereo", 6: "5.1"}
_AUDIO_BIT_RATE = 128_000   # bits/s of a re-encoded audio track


@dataclass(frozen=True)
class AudioTrack:
    """A decoded audio track: ``samples`` float32 ``(channels, N)`` in [-1, 1] at ``sample_rate`` Hz."""

    samples: np.ndarray
    sample_rate: int


@dataclass(frozen=True)
class VideoTrack:
    """A decoded video track: ``frames``, an iterator of upright ``(H, W, 3)`` uint8 RGB frames of
    one size, at ``fps`` frames/s; ``bit_rate``: the re-encoding's average bit rate (bits/s), or
    ``None`` for the usual constant-quality encoding."""

    frames: Iterator[np.ndarray]
    fps: float
    bit_rate: int | None = None


def audio_power(samples: np.ndarray) -> float:
    """Mean square of ``samples`` (any shape): the power an SNR is measured against."""
    return float(np.mean(np.square(samples, dtype=np.float64))) if samples.size else 0.0


def _noise_at_snr(track: AudioTrack, noise: np.ndarray, snr_db: float) -> AudioTrack:
    """``track`` plus ``noise`` ((N,) added to every channel) scaled so that the track's power
    over the noise's is ``snr_db`` dB; a silent track gets no noise."""
    power = audio_power(noise)
    scale = np.sqrt(audio_power(track.samples) / 10.0 ** (snr_db / 10.0) / power) if power > 0 else 0.0
    return replace(track, samples=(track.samples + scale * noise[None, :]).astype(np.float32))


def add_white_noise(track: AudioTrack, snr_db: float, *, rng: np.random.Generator) -> AudioTrack:
    """Gaussian white noise (one draw from ``rng``, the same in every channel) added at
    ``snr_db`` dB SNR against the track's own power."""
    return _noise_at_snr(track, rng.standard_normal(track.samples.shape[1]), snr_db)


def add_babble(track: AudioTrack, snr_db: float, *, babble: BabbleSource) -> AudioTrack:
    """Babble (``babble(N, sample_rate)``, several speech-like voices talking at once) added at
    ``snr_db`` dB SNR against the track's own power."""
    n = track.samples.shape[1]
    voices = np.asarray(babble(n, track.sample_rate), dtype=np.float64)
    if voices.shape != (n,):
        raise ValueError(f"babble gave shape {voices.shape}, expected ({n},)")
    return _noise_at_snr(track, voices, snr_db)


def remove_audio(track: AudioTrack, _: object = None) -> None:
    """No audio track at all (the copy keeps only the video)."""
    return None


def _map_frames(track: VideoTrack, function: Callable[[np.ndarray], np.ndarray]) -> VideoTrack:
    return replace(track, frames=(function(f) for f in track.frames))


def gaussian_blur(track: VideoTrack, sigma: float) -> VideoTrack:
    """Every frame blurred by a Gaussian of standard deviation ``sigma`` pixels (of the source
    frame; the kernel spans about 3 sigma each way)."""
    return _map_frames(track, lambda f: cv2.GaussianBlur(f, (0, 0), sigmaX=sigma, sigmaY=sigma))


def reencode_at_bit_rate(track: VideoTrack, kbit_per_s: float) -> VideoTrack:
    """The same frames re-encoded at an average bit rate of ``kbit_per_s`` kbit/s (H.264), the
    blocking and smearing of a heavily compressed upload."""
    return replace(track, bit_rate=int(kbit_per_s * 1000))


def darken(track: VideoTrack, brightness: float) -> VideoTrack:
    """Every pixel value (R, G and B, 0-255) multiplied by ``brightness`` (0.3: 30 % of the
    original brightness), as an underexposed phone video."""
    return _map_frames(track, lambda f: np.clip(np.rint(f.astype(np.float32) * brightness), 0, 255).astype(np.uint8))


def downscale(track: VideoTrack, side_scale: float) -> VideoTrack:
    """Every frame resized (area averaging) to ``side_scale`` of its width and of its height
    (0.5: a quarter of the pixels), each side rounded down to an even number (H.264 needs it)."""
    def resize(frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        size = (max(2, int(w * side_scale) // 2 * 2), max(2, int(h * side_scale) // 2 * 2))
        return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
    return _map_frames(track, resize)


def drop_frames(track: VideoTrack, keep_every: int) -> VideoTrack:
    """Only every ``keep_every``-th frame kept (frames 0, k, 2k, ...) and the frame rate divided
    by ``keep_every``, so the clip lasts as long: 2 drops half the frames."""
    keep = int(keep_every)
    return VideoTrack(frames=(f for i, f in enumerate(track.frames) if i % keep == 0), fps=track.fps / keep,
                      bit_rate=track.bit_rate)


def hide_faces(track: VideoTrack, fill: int, *, face_boxes: FaceBoxes) -> VideoTrack:
    """Every face box ``face_boxes(frame)`` finds in a frame filled with grey level ``fill``
    (0-255), as faces turned away or covered; boxes are clipped to the frame."""
    def fill_boxes(frame: np.ndarray) -> np.ndarray:
        out = frame.copy()
        h, w = frame.shape[:2]
        for x0, y0, x1, y1 in np.asarray(face_boxes(frame), dtype=np.float64).reshape(-1, 4):
            c0, r0 = max(0, int(np.floor(x0))), max(0, int(np.floor(y0)))
            c1, r1 = min(w, int(np.ceil(x1))), min(h, int(np.ceil(y1)))
            out[r0:r1, c0:c1] = fill
        return out
    return _map_frames(track, fill_boxes)


@dataclass(frozen=True)
class Damage:
    """One damage at one severity: ``name`` (the kind, e.g. ``"white_noise"``), ``severity`` (its
    level in words and units, e.g. ``"10 dB SNR"``), the ``modality`` it damages (``"audio"`` or
    ``"video"``), the ``function`` applied to that track with ``value`` and the keyword arguments
    named in ``needs`` (``"rng"``, ``"babble"``, ``"face_boxes"``)."""

    name: str
    severity: str
    modality: str
    function: Callable
    value: float | None
    needs: tuple[str, ...] = ()


#: every damage by its key (``tools/robustness.py --damages``); plain data, nothing runs on import
DAMAGES: dict[str, Damage] = {
    "white_noise_20db": Damage("white_noise", "20 dB SNR", "audio", add_white_noise, 20.0, ("rng",)),
    "white_noise_10db": Damage("white_noise", "10 dB SNR", "audio", add_white_noise, 10.0, ("rng",)),
    "white_noise_0db": Damage("white_noise", "0 dB SNR", "audio", add_white_noise, 0.0, ("rng",)),
    "babble_20db": Damage("babble", "20 dB SNR", "audio", add_babble, 20.0, ("babble",)),
    "babble_10db": Damage("babble", "10 dB SNR", "audio", add_babble, 10.0, ("babble",)),
    "babble_0db": Damage("babble", "0 dB SNR", "audio", add_babble, 0.0, ("babble",)),
    "audio_removed": Damage("audio_removed", "no track", "audio", remove_audio, None),
    "blur_sigma2": Damage("blur", "sigma 2 px", "video", gaussian_blur, 2.0),
    "blur_sigma5": Damage("blur", "sigma 5 px", "video", gaussian_blur, 5.0),
    "low_bitrate_50kbps": Damage("low_bitrate", "50 kbit/s", "video", reencode_at_bit_rate, 50.0),
    "dark_30pct": Damage("dark", "30 % brightness", "video", darken, 0.3),
    "quarter_size": Damage("downscale", "half each side (quarter area)", "video", downscale, 0.5),
    "half_frames": Damage("frame_drop", "every other frame (fps halved)", "video", drop_frames, 2),
    "faces_hidden": Damage("faces_hidden", "boxes filled grey", "video", hide_faces, 128, ("face_boxes",)),
}


def damage_file(src: str | os.PathLike, dst: str | os.PathLike, damage: Damage, *, seed: int = 0,
                babble: BabbleSource | None = None, face_boxes: FaceBoxes | None = None) -> Path:
    """Write ``dst`` (mp4), ``src`` with ``damage`` applied (see the module docstring); ``seed``
    seeds the ``rng`` a damage draws from. Returns ``dst``. Raises
    :class:`media.decoding.MediaError` for a source that cannot be read, :class:`ValueError` when
    a damage's ``needs`` is not given."""
    available = {"rng": np.random.default_rng(seed), "babble": babble, "face_boxes": face_boxes}
    missing = [n for n in damage.needs if available[n] is None]
    if missing:
        raise ValueError(f"damage {damage.name} ({damage.severity}) needs {', '.join(missing)}")
    kwargs = {n: available[n] for n in damage.needs}
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp.mp4")
    try:
        if damage.modality == "audio":
            _write_audio_damaged(Path(src), tmp, lambda t: damage.function(t, damage.value, **kwargs))
        else:
            _write_video_damaged(Path(src), tmp, lambda t: damage.function(t, damage.value, **kwargs))
        os.replace(tmp, dst)
    finally:
        if tmp.exists():
            tmp.unlink()
    return dst


def _copy_stream(output: av.container.OutputContainer, src: Path, kind: str) -> Callable[[], None] | None:
    """Add a copy of ``src``'s first ``kind`` (``"audio"``/``"video"``) stream to ``output``;
    returns the function that muxes its packets (``None`` when ``src`` has no such stream)."""
    source = open_container(src)
    streams = getattr(source.streams, kind)
    if not streams:
        source.close()
        return None
    out_stream = output.add_stream_from_template(streams[0])

    def copy() -> None:
        try:
            for packet in source.demux(streams[0]):
                if packet.dts is None:   # the demuxer's end-of-stream marker
                    continue
                packet.stream = out_stream
                output.mux(packet)
        finally:
            source.close()
    return copy


def _open_output(path: Path) -> av.container.OutputContainer:
    return av.open(str(path), mode="w", format="mp4", options={"fflags": "+bitexact"})


def _write_audio_damaged(src: Path, tmp: Path, damage: Callable[[AudioTrack], AudioTrack | None]) -> None:
    """``src``'s video packets copied, its audio track damaged and re-encoded (AAC)."""
    probe = open_container(src)
    try:
        rate = int(probe.streams.audio[0].codec_context.sample_rate) if probe.streams.audio else None
        has_video = bool(probe.streams.video)
    finally:
        probe.close()
    if not has_video:
        raise NoVideoStreamError(f"{src}: no video stream to keep beside the damaged audio")
    samples = read_audio_track(src, rate, mono=False)[0] if rate else None
    track = damage(AudioTrack(samples, rate)) if samples is not None else None
    output = _open_output(tmp)
    try:
        copy_video = _copy_stream(output, src, "video")
        audio_stream = None
        if track is not None:
            samples = track.samples
            if samples.shape[0] not in _AUDIO_LAYOUTS:   # a layout AAC is not written with here: mixed down
                samples = samples.mean(0, keepdims=True)
            audio_stream = output.add_stream("aac", rate=track.sample_rate, layout=_AUDIO_LAYOUTS[samples.shape[0]])
            audio_stream.bit_rate = _AUDIO_BIT_RATE
        copy_video()
        if audio_stream is not None:
            encode_audio(output, audio_stream, samples)
            for packet in audio_stream.encode():
                output.mux(packet)
    finally:
        output.close()


def _write_video_damaged(src: Path, tmp: Path, damage: Callable[[VideoTrack], VideoTrack]) -> None:
    """``src``'s frames damaged and re-encoded (H.264), its audio packets copied."""
    with VideoReader(src) as reader:
        track = damage(VideoTrack(frames=(f.image for f in reader.iter_frames()), fps=reader.info.fps))
        first = next(track.frames, None)
        if first is None:
            raise ValueError(f"{src}: the damage left no frame")
        output = _open_output(tmp)
        try:
            copy_audio = _copy_stream(output, src, "audio")
            video = add_h264_stream(output, fps=track.fps, size=(first.shape[1] // 2 * 2, first.shape[0] // 2 * 2),
                                    bit_rate=track.bit_rate)
            for image in itertools.chain([first], track.frames):
                h, w = image.shape[:2]   # H.264 needs even sides: an odd last row or column is cut
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h // 2 * 2, :w // 2 * 2]),
                                                   format="rgb24")
                for packet in video.encode(frame):
                    output.mux(packet)
            for packet in video.encode():
                output.mux(packet)
            if copy_audio is not None:
                copy_audio()
        finally:
            output.close()
