"""Inference follows the networks' device: prediction, evaluation and feature extraction with the
networks on the ``meta`` device (the stand-in for a GPU, ``stand_in_host`` in tests/conftest.py),
so that a tensor left on the CPU fails here as it would on a GPU, and the results reach the
host once, at the end."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from core.config import load_config
from fusion.heads import create_fusion_head
from streams.cache import load_entries
from streams.folds import ExcludeSettings, TrainClips, excluded_clips, labelled_ids, record_train_clips
from tests.conftest import CLASSES, ROOT, load_helper, load_tool, make_scene_clip
from training.checkpoints import save_checkpoint

pytestmark = pytest.mark.slow  # runs the tiny pipeline's networks (and its preprocessing, on the CPU)

toy = load_helper(Path(__file__).with_name("toy_features.py"), "tests_fusion_toy_features")
features_tests = load_helper(Path(__file__).with_name("test_features.py"), "tests_fusion_features_cache")
META = torch.device("meta")


def all_on(module: torch.nn.Module, device: torch.device) -> bool:
    return all(t.device == device for t in (*module.parameters(), *module.buffers()))


@pytest.fixture(scope="module")
def clip_inputs(tiny_pipeline_run, tmp_path_factory):
    """A clip with faces and audio, its stream inputs computed once by the pipeline's (CPU) preprocessor."""
    from fusion.prediction import Predictor

    clip = make_scene_clip(tmp_path_factory.mktemp("clip") / "scene.mp4", n_frames=30, fps=10.0, size=(160, 90),
                           faces=2, audio=True)
    predictor = Predictor.from_run(tiny_pipeline_run)
    return clip, predictor.preprocessor.compute(clip, predictor.stream_order)


def predictor_on_meta(run: Path):
    """The run's predictor with its stream networks and fusion head moved to ``meta``."""
    from fusion.prediction import Predictor

    predictor = Predictor.from_run(run)
    for model, _ in predictor.streams.values():
        model.to(META)
    predictor.head.to(META)
    return predictor


def test_prediction_runs_on_the_networks_device_and_moves_results_once(tiny_pipeline_run, clip_inputs,
                                                                       stand_in_host):
    clip, inputs = clip_inputs
    predictor = predictor_on_meta(tiny_pipeline_run)
    streams = predictor.stream_order
    result = predictor.predict_inputs(inputs, str(clip))
    assert result["missing"] == [] and all(result["streams"][s] is not None for s in streams)
    assert stand_in_host == [(1 + len(streams), len(CLASSES))]  # fused and per-stream probabilities, one move
    # streams not run: their zeros and the mask are made on the head's device too
    stand_in_host.clear()
    result = predictor.predict_inputs(inputs, str(clip), only=("audio",))
    assert result["missing"] == [s for s in streams if s != "audio"]
    assert result["streams"]["visual"] is None and result["streams"]["audio"] is not None
    assert stand_in_host == [(1 + len(streams), len(CLASSES))]


def test_from_run_puts_every_network_on_the_device(tiny_pipeline_run):
    from fusion.prediction import Predictor

    predictor = Predictor.from_run(tiny_pipeline_run, device="meta")
    assert all(all_on(model, META) for model, _ in predictor.streams.values()) and all_on(predictor.head, META)
    assert predictor.preprocessor.scorer.device == META and all_on(predictor.preprocessor.scorer._net, META)
    assert predictor.preprocessor.device == META   # where its face detector is built


def test_the_predict_and_live_tools_pass_their_device_on(tiny_pipeline_run, monkeypatch):
    from fusion.prediction import Predictor

    asked = []

    class Stop(Exception):
        pass

    def from_run(run, *, device="cpu", calibrated=True):
        asked.append((device, calibrated))
        raise Stop

    monkeypatch.setattr(Predictor, "from_run", from_run)
    with pytest.raises(Stop):
        load_tool("predict").main(["clip.mp4", "--run", str(tiny_pipeline_run), "--device", "meta"])
    with pytest.raises(Stop):
        load_tool("live").main(["--run", str(tiny_pipeline_run), "--source", "clip.mp4", "--device", "meta",
                                "--no-calibration"])
    assert asked == [("meta", True), ("meta", False)]  # calibrated unless --no-calibration


@pytest.fixture(scope="module")
def concat_fc_run(tmp_path_factory):
    """A random-init Concat-FC run over toy features (train and val), as the evaluate tool reads it."""
    base = tmp_path_factory.mktemp("eval_meta")
    feats = toy.write_feature_dir(base / "feats", toy.TOY_DIMS, mode="one", missing={"audio": 0.3},
                                  splits={"train": 12, "val": 12})
    model = dict(load_config(ROOT / "configs/fusion/concat_fc.yaml")["model"])
    torch.manual_seed(0)
    head = create_fusion_head(model, stream_dims=toy.TOY_DIMS, num_classes=len(CLASSES))
    recipe = {"streams": list(toy.TOY_DIMS), "model": model, "stream_dims": dict(toy.TOY_DIMS),
              "features": str(feats)}
    save_checkpoint(base / "run" / "best", state_dict=head.state_dict(),
                    meta={"config": recipe, "class_names": list(CLASSES), "epoch": 1, "metrics": {}})
    return base / "run"


def test_evaluation_runs_the_head_on_its_device(concat_fc_run, tmp_path, stand_in_host, capsys):
    run = tmp_path / "run"
    shutil.copytree(concat_fc_run, run)
    assert load_tool("evaluate").main(["--run", str(run), "--split", "val", "--device", "meta"]) == 0
    streams = len(toy.TOY_DIMS)
    # the head on every clip, then once per non-empty subset of the streams given alone
    assert stand_in_host == [(12, len(CLASSES))] * (1 + 2 ** streams - 1)
    metrics = json.loads((run / "eval_val" / "metrics.json").read_text())
    assert metrics["clips"] == 12 and len(metrics["by_availability"]["given_only"]) == 2 ** streams - 1


def fold_run(whole: Path, out: Path, entries, exclude: dict) -> Path:
    """A copy of the random-init run ``whole`` recorded as trained with ``exclude`` (the clips it
    would have held back): what matters here is which network features which clip, not weights."""
    shutil.copytree(whole, out)
    (out / "config.yaml").write_text("stream: audio\n", encoding="utf-8")
    labels = labelled_ids(entries)
    held = excluded_clips(labels, ExcludeSettings.from_config(exclude))
    record_train_clips(out, TrainClips(split="train", trained_on=sorted(set(labels) - held), held_out=sorted(held),
                                       exclude=exclude), fresh=True)
    return out


def test_feature_extraction_with_cross_fit_folds_runs_on_the_device(tiny_pipeline_run, tmp_path, stand_in_host,
                                                                    capsys):
    cache_root = features_tests.write_audio_cache(tmp_path / "cache")
    whole = tiny_pipeline_run.parent / "audio_run"
    entries = load_entries(cache_root, split="train")
    folds = [fold_run(whole, tmp_path / f"fold{k}", entries, {"folds": 3, "fold": k, "seed": 0}) for k in range(3)]
    out = tmp_path / "feats"
    rc = load_tool("extract_features").main([
        "--streams", f"audio={whole}", "--cache", str(cache_root), "--out", str(out), "--batch-size", "2",
        "--fold-runs", ",".join(f"audio={f}" for f in folds), "--device", "meta"])
    assert rc == 0
    index = json.loads((out / "train" / "index.json").read_text())
    assert index["features"]["mode"] == "cross_fit" and len(index["clip_ids"]) == features_tests.N_TRAIN
    sizes = sorted(index["streams"]["audio"]["clip_run"].count(k) for k in range(3))
    dim = index["streams"]["audio"]["dim"]
    # one move per network and split, of every clip it features (batches of 2 stay on the device)
    train_moves = sorted(n for n, _ in stand_in_host[:3])
    assert train_moves == sizes and stand_in_host[3:] == [(features_tests.N_VAL, dim + len(CLASSES))]
    assert all(width == dim + len(CLASSES) for _, width in stand_in_host)
    assert np.load(out / "val" / "audio.npy").shape == (features_tests.N_VAL, dim)
