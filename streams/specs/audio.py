"""The audio stream: a 2D ResNet-101 on the 128-band log-mel spectrogram seen as an image.

Cache: ``mel.npy`` float16 (n_mels, T), log-mel in dB (n_fft 1024, hop 512 at 16 kHz); absent
when the clip has no audio track (``meta.json`` ``has_audio: false``: the modality is missing).
Input: (B, 1, F, W) the mel standardised per clip, resized to ``resize`` and cropped (random along
time and frequency for training) -> repeated to 3 channels (ImageNet stems fit) -> (B, 2048,
F/32, W/32) -> pooled (B, 2048) -> logits.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import torch
from torch import nn

from core.config import check_settings, setting
from streams.inputs.spectrogram import log_mel_spectrogram, shared_log_mel_spectrogram
from streams.models.backbones import create_resnet2d_backbone
from streams.models.builders import create_stream_model
from streams.models.pretrained import apply_pretrained
from streams.models.recognizer import RepeatChannels, StreamRecognizer
from streams.specs.base import DecodedClip, Step, StreamOutput, StreamSpec
from streams.views import ViewSettings, crop_frames, resize_frames


def create_audio_stream(
    *,
    num_classes: int,
    depth: int = 101,
    stem_dim_out: int = 64,
    zero_init_residual: bool = False,
    attention: bool | Callable[[int], nn.Module] = False,
    dropout: float = 0.5,
    pretrained: Mapping[str, str] | None = None,
) -> StreamRecognizer:
    """Build the log-mel stream.

    Args:
        num_classes: number of emotion classes.
        depth: torchvision ResNet depth (18, 34, 50, 101, 152).
        stem_dim_out: stem width (64: torchvision's, so ImageNet weights fit; 8: a tiny
            network of the same depth); features have 8x (18/34) or 32x (50+) this many dims,
            512 / 2048 at 64.
        zero_init_residual: every block starts as its shortcut (for training from random init;
            see :func:`streams.models.backbones.create_resnet`).
        attention: as in ``create_stream_model`` (off by default).
        dropout: dropout before the classifier.
        pretrained: optional ``{"path", "format"}`` (formats ``torchvision2d``, ``stream``;
            without ``format`` it is read from the file); the report lands in ``model.load_report``.

    Returns:
        A StreamRecognizer: (B, 1, n_mels, T) -> logits (B, num_classes).
    """
    backbone = create_resnet2d_backbone(depth=depth, in_channels=3, stem_dim_out=stem_dim_out,
                                        zero_init_residual=zero_init_residual)
    model = create_stream_model(backbone=backbone, num_classes=num_classes, attention=attention,
                                dropout=dropout, input_adapter=RepeatChannels(3))
    return apply_pretrained(model, pretrained)


@dataclass(frozen=True)
class AudioSettings:
    """The ``audio:`` preprocessing section: the track resampled to ``sample_rate`` Hz, a log-mel
    spectrogram of ``n_mels`` bands from ``n_fft``-sample windows every ``hop_length`` samples."""

    sample_rate: int = setting(16000, minimum=1, help="Hz the track is resampled to")
    n_mels: int = setting(128, minimum=1, help="mel bands")
    n_fft: int = setting(1024, minimum=1, help="samples per analysis window")
    hop_length: int = setting(512, minimum=1, help="samples between analysis windows")

    def __post_init__(self) -> None:
        check_settings(self, "audio")


class AudioStream(StreamSpec):
    name = "audio"
    array_file = "mel.npy"
    section = "audio"
    recipe = "audio"
    model_builder = staticmethod(create_audio_stream)
    settings_class = AudioSettings

    def audio_rate(self, cfg) -> int:
        return self.checked_settings(cfg).sample_rate

    def audio_frame_step(self, cfg) -> int:
        return self.checked_settings(cfg).hop_length

    def make_step(self, cfg, *, device="cpu") -> Step:
        s = self.checked_settings(cfg)
        sr = s.sample_rate
        mel_settings = {"n_mels": s.n_mels, "n_fft": s.n_fft, "hop_length": s.hop_length}

        def step(clip: DecodedClip) -> StreamOutput:
            audio = clip.waveform(sr)
            if audio is None:  # no track, or an empty one: store nothing fake
                return StreamOutput(None, {"has_audio": False,
                                           "audio": {"sample_rate": sr, "source_sample_rate": None}})
            if clip.reuse is not None:  # overlapping live windows: each column computed once
                mel = shared_log_mel_spectrogram(audio, sr, clip.reuse, **mel_settings)
            else:
                mel = log_mel_spectrogram(audio, sr, **mel_settings)
            return StreamOutput(mel.astype(np.float16), {
                "has_audio": True,
                "audio": {"sample_rate": sr, "source_sample_rate": clip.info.audio_sample_rate,
                          "n_mels": int(mel.shape[0]), "frames": int(mel.shape[1]), "unit": "dB"}})
        return step

    def available(self, meta) -> bool:
        return bool(meta.get("has_audio", False))

    def stores_array(self, meta) -> bool:
        return bool(meta.get("has_audio", False))

    def load_input(self, array: np.ndarray, meta, settings: ViewSettings, rng) -> torch.Tensor:
        mel = np.asarray(array, dtype=np.float32)                                       # (F, T) dB
        mel = (mel - mel.mean()) / (mel.std() + 1e-5)
        img = crop_frames(resize_frames(mel[None, :, :, None], settings.resize), settings.crop, rng)  # (1, S, S, 1)
        return torch.from_numpy(np.ascontiguousarray(img[..., 0], dtype=np.float32))    # (1, S, S)

    def input_shape(self, settings: ViewSettings) -> tuple[int, ...]:
        return 1, settings.crop, settings.crop  # a smaller image is padded to the crop



SPEC = AudioStream()
