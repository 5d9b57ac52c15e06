"""media/damage.py: each damage changes the media file as its docstring says, measured on the
decoded copy (SNR against the clip's own decoded audio, brightness, frame count and size, bit
rate, high-frequency energy, filled boxes), and leaves the other track as it was."""
from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from media.damage import DAMAGES, audio_power, damage_file
from media.decoding import probe
from synthetic.audio import synthesize_babble
from tests.conftest import decode_media, make_scene_clip

N_FRAMES = 30
FPS = 15.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_scene_clip(tmp_path_factory.mktemp("damage") / "clip.mp4", n_frames=N_FRAMES, fps=FPS)


@pytest.fixture(scope="module")
def clean(clip):
    return decode_media(clip)


def damaged(clip: Path, key: str, tmp_path: Path, **kwargs) -> tuple[Path, tuple]:
    out = damage_file(clip, tmp_path / f"{key}.mp4", DAMAGES[key], seed=3, **kwargs)
    return out, decode_media(out)


def measured_snr(clean_audio: np.ndarray, damaged_audio: np.ndarray) -> float:
    assert damaged_audio.shape == clean_audio.shape
    return 10 * np.log10(audio_power(clean_audio) / audio_power(damaged_audio - clean_audio))


def babble(n: int, rate: int) -> np.ndarray:
    return synthesize_babble(n, rate, voices=4, seed=1)


@pytest.mark.parametrize("key", ["white_noise_20db", "white_noise_10db", "white_noise_0db",
                                 "babble_20db", "babble_10db", "babble_0db"])
def test_added_noise_has_the_named_snr_and_the_video_is_untouched(clip, clean, tmp_path, key):
    _, (frames, audio, rate) = damaged(clip, key, tmp_path, babble=babble)
    target = DAMAGES[key].value
    assert abs(measured_snr(clean[1], audio) - target) < 0.5
    assert rate == clean[2]
    assert np.array_equal(frames, clean[0])   # the video packets are copied, not re-encoded


def test_white_noise_is_white_and_babble_is_speech_band(clip, clean, tmp_path):
    _, (_, white, rate) = damaged(clip, "white_noise_0db", tmp_path)
    _, (_, crowd, _) = damaged(clip, "babble_0db", tmp_path, babble=babble)

    def high_share(noise: np.ndarray) -> float:  # power above 4 kHz over all power
        spectrum = np.abs(np.fft.rfft(noise)) ** 2
        return spectrum[np.fft.rfftfreq(len(noise), 1 / rate) > 4000].sum() / spectrum.sum()

    assert high_share(white - clean[1]) > 0.3 > 0.1 > high_share(crowd - clean[1])


def test_audio_removed_leaves_no_audio_stream_and_the_same_frames(clip, clean, tmp_path):
    out, (frames, audio, _) = damaged(clip, "audio_removed", tmp_path)
    with av.open(str(out)) as container:
        assert not container.streams.audio
    assert audio is None and np.array_equal(frames, clean[0])


def test_an_audio_damage_of_a_clip_without_audio_keeps_it_silent(tmp_path):
    silent = make_scene_clip(tmp_path / "silent.mp4", n_frames=8, audio=False)
    _, (frames, audio, _) = damaged(silent, "white_noise_10db", tmp_path)
    assert audio is None and np.array_equal(frames, decode_media(silent)[0])


def test_darkening_keeps_30_percent_of_the_brightness_and_the_audio(clip, clean, tmp_path):
    _, (frames, audio, _) = damaged(clip, "dark_30pct", tmp_path)
    assert frames.shape == clean[0].shape
    assert abs(frames.mean() / clean[0].mean() - 0.3) < 0.03
    assert np.array_equal(audio, clean[1])   # the audio packets are copied


def high_frequency_energy(frames: np.ndarray) -> float:
    gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]).astype(np.float64)
    return float(np.mean([cv2.Laplacian(g, cv2.CV_64F).var() for g in gray]))


def test_blur_removes_high_frequencies_more_at_the_larger_sigma(clip, clean, tmp_path):
    _, (light, _, _) = damaged(clip, "blur_sigma2", tmp_path)
    _, (heavy, _, _) = damaged(clip, "blur_sigma5", tmp_path)
    assert light.shape == heavy.shape == clean[0].shape
    original = high_frequency_energy(clean[0])
    assert high_frequency_energy(heavy) < high_frequency_energy(light) < 0.5 * original


def test_downscaling_halves_each_side_so_a_quarter_of_the_pixels_remain(clip, clean, tmp_path):
    out, (frames, _, _) = damaged(clip, "quarter_size", tmp_path)
    t, h, w, _ = clean[0].shape
    assert frames.shape == (t, h // 2, w // 2, 3)
    assert frames.shape[1] * frames.shape[2] * 4 == h * w
    assert probe(out).duration == pytest.approx(probe(clip).duration, abs=0.05)


def test_dropping_frames_halves_them_and_the_rate_but_keeps_the_duration(clip, clean, tmp_path):
    out, (frames, audio, _) = damaged(clip, "half_frames", tmp_path)
    assert len(frames) == N_FRAMES // 2
    assert np.abs(frames.astype(int) - clean[0][::2].astype(int)).mean() < 3   # the even frames, re-encoded
    info = probe(out)
    assert info.fps == pytest.approx(FPS / 2)
    assert info.duration == pytest.approx(probe(clip).duration, abs=0.05)
    assert np.array_equal(audio, clean[1])


def video_kbit_per_s(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        size = sum(p.size for p in container.demux(stream))
    return size * 8 / 1000 / probe(path).duration


def test_the_low_bit_rate_copy_is_encoded_near_its_rate_and_loses_detail(clip, clean, tmp_path):
    out, (frames, _, _) = damaged(clip, "low_bitrate_50kbps", tmp_path)
    assert frames.shape == clean[0].shape
    assert video_kbit_per_s(out) < 1.5 * DAMAGES["low_bitrate_50kbps"].value < video_kbit_per_s(clip)
    assert high_frequency_energy(frames) < high_frequency_energy(clean[0])


def test_hidden_faces_are_filled_boxes_and_the_rest_of_the_frame_stays(clip, clean, tmp_path):
    box = np.array([[40.4, 30.0, 120.0, 110.6]])
    calls = []

    def face_boxes(frame):
        calls.append(frame.shape)
        return box

    _, (frames, _, _) = damaged(clip, "faces_hidden", tmp_path, face_boxes=face_boxes)
    assert len(calls) == N_FRAMES and calls[0] == clean[0].shape[1:]
    inside = frames[:, 32:108, 42:118].astype(float)   # away from the box edge (chroma is subsampled)
    assert abs(inside.mean() - 128) < 3 and inside.std() < 3
    assert clean[0][:, 32:108, 42:118].std() > 20
    outside = np.abs(frames[:, 120:, 130:].astype(int) - clean[0][:, 120:, 130:].astype(int)).mean()
    assert outside < 3


def test_a_damage_refuses_without_what_it_needs(clip, tmp_path):
    for key in ("babble_10db", "faces_hidden"):
        with pytest.raises(ValueError, match="needs"):
            damage_file(clip, tmp_path / "x.mp4", DAMAGES[key])
    assert not list(tmp_path.iterdir())


def test_every_registered_damage_names_its_modality_and_severity():
    assert len(DAMAGES) >= 12
    for key, damage in DAMAGES.items():
        assert damage.modality in ("audio", "video") and damage.severity and damage.function.__doc__, key
