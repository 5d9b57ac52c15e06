"""The optional speech stream (wav2vec 2.0): a local save_pretrained directory loads with the same
weights, freezing works, its waveform is cached only when the preprocessing recipe enables it,
and it trains, extracts features, joins fusion and predicts raw clips like any other stream."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.config import load_config
from media.layouts import ClipRecord
from streams.preprocessing import build_preprocess_job, write_pipeline_record
from streams.specs import STREAM_SPECS
from streams.specs.speech import create_speech_stream

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ("Positive", "Neutral", "Negative")
TINY = load_config(ROOT / "configs/streams/speech_tiny.yaml")


def speech_cfg(enabled: bool = True) -> dict:
    cfg = load_config(ROOT / "configs/preprocess/demo.yaml")
    if enabled:
        cfg["speech"] = {"enabled": True, "sample_rate": 16000}
    return cfg


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory) -> Path:
    """A tiny random wav2vec 2.0 saved as save_pretrained writes it (config.json + weights)."""
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    model = Wav2Vec2Model(Wav2Vec2Config(**TINY["model"]["encoder"]))
    path = tmp_path_factory.mktemp("wav2vec2_tiny")
    model.save_pretrained(path)
    return path


@pytest.mark.slow  # the encoder_dir fixture builds a wav2vec 2.0 encoder
def test_a_local_save_pretrained_directory_loads_with_its_weights(encoder_dir):
    from transformers import Wav2Vec2Model

    reference = Wav2Vec2Model.from_pretrained(str(encoder_dir)).eval()
    stream = create_speech_stream(num_classes=3, encoder=str(encoder_dir)).eval()
    wave = torch.randn(2, 8000)
    with torch.no_grad():
        expected = reference(input_values=wave).last_hidden_state.mean(1)
        np.testing.assert_allclose(stream.features(wave).numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)
        assert stream(wave).shape == (2, 3)
    assert stream.feature_dim == TINY["model"]["encoder"]["hidden_size"]


def test_a_directory_without_config_is_refused_by_name(tmp_path):
    from training.weights import WeightsError

    with pytest.raises(WeightsError, match="no config.json"):
        create_speech_stream(num_classes=3, encoder=str(tmp_path))


@pytest.mark.slow  # the encoder_dir fixture builds a wav2vec 2.0 encoder
def test_freeze_keeps_the_encoder_fixed_and_in_eval_mode(encoder_dir):
    frozen = create_speech_stream(num_classes=3, encoder=str(encoder_dir), freeze=True).train()
    assert not any(p.requires_grad for p in frozen.backbone.encoder.parameters())
    assert all(p.requires_grad for p in frozen.head.parameters())
    assert not frozen.backbone.encoder.training  # no dropout inside a frozen encoder
    front = create_speech_stream(num_classes=3, encoder=str(encoder_dir), freeze_feature_encoder=True)
    conv = front.backbone.encoder.feature_extractor
    assert not any(p.requires_grad for p in conv.parameters())
    assert any(p.requires_grad for p in front.backbone.encoder.encoder.parameters())


@pytest.mark.slow  # builds and trains a wav2vec 2.0 encoder
def test_layerdrop_is_off_unless_the_recipe_asks_and_refused_on_several_processes(monkeypatch):
    from core.config import ConfigError

    # an encoder config that skips its one layer half the time in training
    encoder = {**TINY["model"]["encoder"], "layerdrop": 0.5}
    torch.manual_seed(0)
    stream = create_speech_stream(num_classes=3, encoder=encoder).train()
    assert stream.backbone.encoder.config.layerdrop == 0.0
    wave = torch.randn(2, 8000)
    for _ in range(10):  # every trained weight takes part in every step, as DDP needs on each process
        stream.zero_grad(set_to_none=True)
        stream(wave).sum().backward()
        assert [n for n, p in stream.named_parameters() if p.requires_grad and p.grad is None] == []
    asked = create_speech_stream(num_classes=3, encoder=encoder, layerdrop=0.2)
    assert asked.backbone.encoder.config.layerdrop == 0.2
    monkeypatch.setenv("WORLD_SIZE", "2")  # as accelerate launch / torchrun set it for two processes
    with pytest.raises(ConfigError, match=r"model.layerdrop=0.2 .* DDP cannot train on 2 processes"):
        create_speech_stream(num_classes=3, encoder=encoder, layerdrop=0.2)
    with pytest.raises(ConfigError, match=r"model.layerdrop must be in \[0, 1\)"):
        create_speech_stream(num_classes=3, encoder=encoder, layerdrop=1.0)


def test_the_view_crops_pads_and_normalises(tmp_path):
    spec = STREAM_SPECS["speech"]
    settings = spec.data_settings({"seconds": 1.0, "sample_rate": 100})
    long = np.sin(np.arange(300) / 5.0).astype(np.float16) * 3
    centre = spec.load_input(long, {}, settings, None)
    assert centre.shape == (100,)
    assert abs(float(centre.mean())) < 1e-4 and abs(float(centre.std()) - 1.0) < 1e-2
    random_view = spec.load_input(long, {}, settings, np.random.default_rng(1))
    assert random_view.shape == (100,) and not torch.equal(random_view, centre)
    short = spec.load_input(np.ones(40, np.float16), {}, settings, None)
    assert short.shape == (100,) and torch.all(short[40:] == 0)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from tests.conftest import make_scene_clip

    d = tmp_path_factory.mktemp("speech_clips")
    out = {}
    for i in range(6):
        out[f"c{i}"] = make_scene_clip(d / f"c{i}.mp4", n_frames=15, size=(96, 64), faces=1, audio=True, seed=i)
    out["silent"] = make_scene_clip(d / "silent.mp4", n_frames=15, size=(96, 64), faces=1, audio=False, seed=9)
    return out


def _records(clips):
    recs = []
    for i in range(6):
        split = "train" if i < 4 else "val"
        recs.append(ClipRecord(clip_id=f"{split}/c{i}", path=clips[f"c{i}"], label=i % 3, class_names=CLASSES,
                               split=split))
    return recs


def test_the_waveform_is_cached_only_when_the_recipe_enables_it(tmp_path, clips):
    from streams.specs import parse_streams

    assert "speech" not in parse_streams(None, speech_cfg(enabled=False))  # the method's streams only
    assert "speech" in parse_streams(None, speech_cfg())
    job = build_preprocess_job(speech_cfg(), None, str(tmp_path / "cache"), streams=("audio", "speech"))
    rec = ClipRecord(clip_id="c0", path=clips["c0"], label=0, class_names=CLASSES, split="train")
    assert job(rec) == "done"
    wave = np.load(tmp_path / "cache" / "c0" / "speech.npy")
    assert wave.dtype == np.float16 and abs(len(wave) - 16000) < 400  # 15 frames at 15 fps: 1 s
    meta = json.loads((tmp_path / "cache" / "c0" / "meta.json").read_text())
    assert meta["speech"]["sample_rate"] == 16000 and meta["arrays"]["speech"]
    silent = ClipRecord(clip_id="silent", path=clips["silent"], label=0, class_names=CLASSES, split="train")
    job(silent)
    assert not (tmp_path / "cache" / "silent" / "speech.npy").exists()
    from streams.cache import load_entries

    entries = {e.clip_id: e for e in load_entries(tmp_path / "cache")}
    assert entries["c0"].available("speech") and not entries["silent"].available("speech")


@pytest.mark.slow  # trains the speech stream and fusion through the tools
def test_speech_trains_joins_fusion_and_predicts_like_any_stream(tmp_path, clips):
    from fusion.features import FeatureSet, extract_features
    from fusion.prediction import Predictor
    from fusion.training import train_fusion
    from streams.training import load_trained_stream, train_stream

    cfg = speech_cfg()
    cache = tmp_path / "cache"
    job = build_preprocess_job(cfg, None, str(cache), streams=("audio", "speech"))
    for rec in _records(clips):
        job(rec)
    write_pipeline_record(cache, cfg, None)

    runs = {}
    for stream in ("speech", "audio"):
        recipe = load_config(ROOT / f"configs/streams/{stream}_tiny.yaml",
                             ["train.epochs=1", "train.batch_size=2"])
        metrics = train_stream(recipe, cache, tmp_path / stream)
        assert metrics["finished"] and metrics["class_names"] == list(CLASSES)
        runs[stream] = str(tmp_path / stream)

    model, recipe, names, _ = load_trained_stream(runs["speech"])
    assert recipe["stream"] == "speech" and names == list(CLASSES)

    extract_features(runs, cache, tmp_path / "feats", splits=("train", "val"))
    fs = FeatureSet(tmp_path / "feats", "train")
    assert set(fs.streams) == {"audio", "speech"}
    assert fs.features["speech"].shape == (4, TINY["model"]["encoder"]["hidden_size"])

    fusion_cfg = load_config(ROOT / "configs/fusion/concat_fc.yaml", ["train.epochs=2", "train.batch_size=2"])
    fusion_cfg["streams"] = ["audio", "speech"]
    train_fusion(fusion_cfg, tmp_path / "feats", tmp_path / "fusion")
    result = Predictor.from_run(tmp_path / "fusion").predict(clips["c5"])
    assert set(result["streams"]) == {"audio", "speech"} and result["missing"] == []
    assert abs(sum(result["probs"].values()) - 1.0) < 1e-4
    silent = Predictor.from_run(tmp_path / "fusion").predict(clips["silent"])
    assert silent["missing"] == ["audio", "speech"]
