"""The speech stream (optional): a wav2vec 2.0 encoder on the raw 16 kHz waveform, mean-pooled over
time into a classifier, as in the speech branch of several reference systems.

Cache: ``speech.npy`` float16 (N,), the mono waveform at ``speech.sample_rate`` (16 kHz), written
only when the preprocessing recipe enables the stream (``speech: {enabled: true}``, see
``configs/preprocess/speech.yaml``); absent when the clip has no audio track (the modality is
missing). Input: (B, L) a window of ``data.seconds`` (random for training, central for evaluation,
zero-padded when the clip is shorter), normalised to zero mean and unit variance per clip as the
wav2vec 2.0 feature extractor does -> encoder hidden states (B, T', D) -> mean over T' (B, D) ->
logits.

The encoder comes from a LOCAL directory as ``save_pretrained`` writes it (``config.json`` +
weights; nothing is downloaded), e.g. ``weights/wav2vec2-base`` made once on a machine with
internet access by ``Wav2Vec2Model.from_pretrained("facebook/wav2vec2-base").save_pretrained(...)``;
or, for tests and from-scratch training, a config mapping (random initialisation).

LayerDrop is off (``model.layerdrop``, default 0) whatever the encoder's config says (transformers
turns it on by default): in training, wav2vec 2.0 skips each transformer layer at random with that
probability, and a process that skipped a layer has no gradient for its weights. DDP as the training
loop sets it up (Accelerate's default, ``find_unused_parameters=False``) waits for those gradients
and fails at the next step ("Expected to have finished reduction in the prior iteration").
``find_unused_parameters=True`` would cope, at the price of a search of the autograd graph after
every forward and a loop that sets DDP up per model; LayerDrop is a regulariser the fine-tuning can
do without, so the stream leaves it off, and a value above 0 is refused when several processes
train (tests/training/test_ddp_recipes.py trains every recipe on two processes).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from core.config import ConfigError, check_settings, setting, settings_from_section
from streams.models.builders import create_stream_model
from streams.models.recognizer import StreamRecognizer
from streams.specs.base import DecodedClip, Step, StreamOutput, StreamSpec
from training.processes import launched_processes
from training.weights import WeightsError


class Wav2Vec2Backbone(nn.Module):
    """A ``transformers`` wav2vec 2.0 model as a stream backbone: waveform (B, L) -> hidden states
    as a sequence map (B, D, T'). ``freeze`` keeps the encoder's weights fixed and the encoder in
    eval mode (no dropout); ``freeze_feature_encoder`` fixes only the convolutional front end
    (the usual fine-tuning recipe)."""

    def __init__(self, encoder: nn.Module, *, freeze: bool = False, freeze_feature_encoder: bool = False) -> None:
        super().__init__()
        self.encoder = encoder
        self.out_channels = int(encoder.config.hidden_size)
        self.frozen = bool(freeze)
        if freeze:
            for p in self.encoder.parameters():
                p.requires_grad_(False)
        elif freeze_feature_encoder:
            self.encoder.freeze_feature_encoder()

    def train(self, mode: bool = True) -> "Wav2Vec2Backbone":
        super().train(mode)
        if self.frozen:
            self.encoder.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2:
            raise ValueError(f"the speech backbone expects waveforms of shape (B, L), got {tuple(x.shape)}")
        hidden = self.encoder(input_values=x).last_hidden_state       # (B, T', D)
        return hidden.transpose(1, 2)                                   # (B, D, T')


def load_encoder(encoder: str | os.PathLike | Mapping[str, Any], *, weights: bool = True) -> nn.Module:
    """A wav2vec 2.0 encoder: from a local ``save_pretrained`` directory (its weights unless
    ``weights`` is false: then only ``config.json``, for a network whose trained weights load
    next), or random-init from a ``Wav2Vec2Config`` mapping."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    if isinstance(encoder, Mapping):
        return Wav2Vec2Model(Wav2Vec2Config(**dict(encoder)))
    path = Path(encoder)
    if not (path / "config.json").is_file():
        raise WeightsError(f"{path}: not a wav2vec 2.0 directory (no config.json; make one with "
                           "Wav2Vec2Model.from_pretrained(NAME).save_pretrained(DIR) where the hub is reachable)")
    if not weights:
        return Wav2Vec2Model(Wav2Vec2Config.from_pretrained(str(path), local_files_only=True))
    try:
        return Wav2Vec2Model.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as e:
        raise WeightsError(f"{path}: cannot load the wav2vec 2.0 weights ({e})") from None


def create_speech_stream(
    *,
    num_classes: int,
    encoder: str | Mapping[str, Any],
    encoder_weights: bool = True,
    freeze: bool = False,
    freeze_feature_encoder: bool = True,
    dropout: float = 0.5,
    layerdrop: float = 0.0,
) -> StreamRecognizer:
    """Build the speech stream.

    Args:
        num_classes: number of emotion classes.
        encoder: a local directory written by ``save_pretrained`` (config.json + weights), or a
            ``Wav2Vec2Config`` mapping for a randomly initialised encoder.
        encoder_weights: load the directory's weights (false: only its architecture).
        freeze: keep the whole encoder fixed (a linear probe on its pooled features).
        freeze_feature_encoder: keep the convolutional front end fixed (ignored with ``freeze``).
        dropout: dropout before the classifier.
        layerdrop: probability that training skips each transformer layer (wav2vec 2.0's
            LayerDrop; replaces the encoder config's value). Only 0 trains on several processes:
            DDP fails on the skipped layers' missing gradients.

    Returns:
        A StreamRecognizer: (B, L) waveform -> logits (B, num_classes); ``features`` (B, D) with
        D the encoder's hidden size (768 for wav2vec2-base).
    """
    if not 0.0 <= layerdrop < 1.0:
        raise ConfigError(f"model.layerdrop must be in [0, 1), got {layerdrop!r}")
    if layerdrop > 0 and launched_processes() > 1:
        raise ConfigError(f"model.layerdrop={layerdrop} skips encoder layers at random, which DDP cannot train on "
                          f"{launched_processes()} processes (a skipped layer has no gradient); set model.layerdrop=0")
    loaded = load_encoder(encoder, weights=encoder_weights)
    loaded.config.layerdrop = float(layerdrop)  # the encoder reads it at every training forward
    backbone = Wav2Vec2Backbone(loaded, freeze=freeze, freeze_feature_encoder=freeze_feature_encoder)
    return create_stream_model(backbone=backbone, num_classes=num_classes, dropout=dropout)


@dataclass(frozen=True)
class SpeechViewSettings:
    """The speech recipe's ``data:`` section: ``seconds`` of waveform the network sees per clip and
    the ``sample_rate`` they were stored at (Hz)."""

    seconds: float = setting(5.0, above=0, help="seconds of waveform the network sees per clip")
    sample_rate: int = setting(16000, minimum=1, help="Hz the waveform was stored at")

    def __post_init__(self) -> None:
        check_settings(self, "data")

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> "SpeechViewSettings":
        return settings_from_section(cls, section, "data")

    @property
    def samples(self) -> int:
        return max(1, int(round(self.seconds * self.sample_rate)))


@dataclass(frozen=True)
class SpeechSettings:
    """The ``speech:`` preprocessing section (beside ``enabled``): the waveform is stored at
    ``sample_rate`` Hz."""

    sample_rate: int = setting(16000, minimum=1, help="Hz the waveform is stored at")

    def __post_init__(self) -> None:
        check_settings(self, "speech")


class SpeechStream(StreamSpec):
    name = "speech"
    array_file = "speech.npy"
    section = "speech"
    recipe = "speech"
    optional = True
    model_builder = staticmethod(create_speech_stream)
    settings_class = SpeechSettings

    def audio_rate(self, cfg) -> int:
        return self.checked_settings(cfg).sample_rate

    def make_step(self, cfg, *, device="cpu") -> Step:
        sr = self.audio_rate(cfg)

        def step(clip: DecodedClip) -> StreamOutput:
            audio = clip.waveform(sr)
            if audio is None:
                return StreamOutput(None, {"has_audio": False, "speech": {"sample_rate": sr, "samples": 0}})
            return StreamOutput(audio.astype(np.float16), {"has_audio": True,
                                                           "speech": {"sample_rate": sr, "samples": int(audio.size)}})
        return step

    def available(self, meta) -> bool:
        return bool(meta.get("has_audio", False))

    def stores_array(self, meta) -> bool:
        return bool(meta.get("has_audio", False))

    def data_settings(self, section) -> SpeechViewSettings:
        return SpeechViewSettings.from_config(section or {})

    def load_input(self, array: np.ndarray, meta, settings: SpeechViewSettings, rng) -> torch.Tensor:
        wave = np.asarray(array, dtype=np.float32)
        n = settings.samples
        if len(wave) > n:
            start = int(rng.integers(0, len(wave) - n + 1)) if rng is not None else (len(wave) - n) // 2
            wave = wave[start:start + n]
        wave = (wave - wave.mean()) / np.sqrt(wave.var() + 1e-7)
        if len(wave) < n:
            wave = np.pad(wave, (0, n - len(wave)))
        return torch.from_numpy(np.ascontiguousarray(wave))                # (L,)

    def input_shape(self, settings: SpeechViewSettings) -> tuple[int, ...]:
        return (settings.samples,)

    def trained_model_config(self, model_cfg: Mapping[str, Any]) -> dict:
        # the encoder directory gives the architecture; the checkpoint gives the weights
        return {**dict(model_cfg), "encoder_weights": False}


SPEC = SpeechStream()
