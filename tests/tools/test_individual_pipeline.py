"""The pipeline on individual-level layouts, through the real tools: synthetic RAVDESS-format
(8 emotions) and CREMA-D-format (6 emotions) sets -> preprocess -> one stream -> features ->
fusion -> evaluation -> prediction -> live mode, with the class count taken from the data at every
stage; and
a ``labels:`` mapping in the preprocessing recipe relabelling the clips of a cache.

The audio stream is the one trained here: it needs neither the keyframe scorer nor MTCNN, which
keeps each layout's run to well under a minute (tests/tools/test_pipeline.py runs all four
streams on the VGAF layout; ``tools/demo.py --layout ravdess|cremad`` runs them here)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from media.layouts import CREMAD_CLASSES, RAVDESS_CLASSES
from synthetic.individual import generate_individual_dataset
from tests.conftest import load_tool

pytestmark = pytest.mark.slow  # the whole pipeline through the real tools

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs"


def run(tool: str, *argv: str) -> None:
    assert load_tool(tool).main([str(a) for a in argv]) == 0, tool


@pytest.mark.parametrize("layout, classes, n_train, n_val", [
    ("ravdess", RAVDESS_CLASSES, 16, 8),
    ("cremad", CREMAD_CLASSES, 12, 12),
])
def test_individual_layout_through_preprocess_stream_features_fusion_predict_and_live(tmp_path, capsys, layout, classes,
                                                                                  n_train, n_val):
    data = tmp_path / "data"
    generate_individual_dataset(data, layout=layout, n_train=n_train, n_val=n_val, n_test=1, seed=0, duration=1.0,
                                width=160, height=90, audio_fraction=0.95)
    meta = json.loads((data / "synthetic.json").read_text())
    run("preprocess", "--config", CONFIGS / "preprocess/demo.yaml", "--videos", data, "--out", tmp_path / "cache",
        "--streams", "audio")
    run("train_stream", "--config", CONFIGS / "streams/audio_tiny.yaml", "--cache", tmp_path / "cache",
        "--out", tmp_path / "audio", "--set", "train.epochs=2")
    run("extract_features", "--streams", f"audio={tmp_path / 'audio'}", "--cache", tmp_path / "cache",
        "--out", tmp_path / "features")
    run("train_fusion", "--config", CONFIGS / "fusion/concat_fc.yaml", "--features", tmp_path / "features",
        "--out", tmp_path / "fusion", "--set", "streams=[audio]", "train.epochs=2")
    run("evaluate", "--run", tmp_path / "fusion", "--split", "val")

    stream = json.loads((tmp_path / "audio" / "metrics.json").read_text())
    assert stream["class_names"] == list(classes) and stream["finished"]
    metrics = json.loads((tmp_path / "fusion" / "eval_val" / "metrics.json").read_text())
    assert metrics["class_names"] == list(classes)
    assert metrics["clips"] == n_val
    val = meta["clips"]["val"]
    assert {c: v["support"] for c, v in metrics["per_class"].items()} == {
        c: sum(r["class"] == c for r in val) for c in classes}
    assert np.asarray(metrics["confusion_matrix"]).shape == (len(classes), len(classes))
    silent = sum(not r["has_audio"] for r in val)
    assert metrics["streams"]["audio"]["available"] == n_val - silent
    assert metrics["by_availability"]["streams"]["audio"]["without"]["clips"] == silent

    test_clip = data / f"{meta['clips']['test'][0]['clip_id']}.mp4"
    capsys.readouterr()
    run("predict", test_clip, "--run", tmp_path / "fusion", "--json")
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["label"] in classes and list(result["probs"]) == list(classes)
    assert abs(sum(result["probs"].values()) - 1) < 1e-4

    # live mode on the same clip: one window, the data's classes in every log record
    log = tmp_path / "live.jsonl"
    run("live", "--run", tmp_path / "fusion", "--source", test_clip, "--log", log, "--window", "1.0",
        "--stride", "1.0", "--quiet", "--json")
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert summary["windows"] == len(records) == 1 and summary["frames"] > 0
    assert list(records[0]["probs"]) == list(classes) and records[0]["label"] in classes


def test_a_labels_mapping_in_the_preprocessing_recipe_relabels_the_cache(tmp_path, capsys):
    """RAVDESS's eight emotions onto three valence classes (calm dropped); a changed mapping
    relabels the cached clips without recomputing their arrays."""
    data = tmp_path / "data"
    generate_individual_dataset(data, layout="ravdess", n_train=8, n_val=8, seed=1, duration=0.6, width=96,
                                height=64, fps=10)
    valence = {"happy": "Positive", "surprised": "Positive", "neutral": "Neutral", "sad": "Negative",
               "angry": "Negative", "fearful": "Negative", "disgust": "Negative"}
    recipe = tmp_path / "valence.yaml"
    recipe.write_text(f"base: {CONFIGS / 'preprocess/default.yaml'}\n"
                      f"labels: {{map: {json.dumps(valence)}, drop: [calm], classes: [Positive, Neutral, Negative]}}\n")
    cache = tmp_path / "cache"
    run("preprocess", "--config", recipe, "--videos", data, "--out", cache, "--streams", "audio")
    metas = {p.parent.relative_to(cache).as_posix(): json.loads(p.read_text()) for p in cache.rglob("meta.json")}
    assert len(metas) == 16 - 2                                   # the two calm clips are dropped
    truth = {r["clip_id"]: r["class"] for s in ("train", "val") for r in json.loads(
        (data / "synthetic.json").read_text())["clips"][s]}
    for clip_id, meta in metas.items():
        assert meta["class_names"] == ["Positive", "Neutral", "Negative"]
        assert meta["class_names"][meta["label"]] == valence[truth[clip_id]]
    mel_times = {p: p.stat().st_mtime_ns for p in cache.rglob("mel.npy")}

    # the same cache with another mapping: labels change, arrays stay
    recipe.write_text(f"base: {CONFIGS / 'preprocess/default.yaml'}\n"
                      "labels: {map: {happy: pleasant, surprised: pleasant, calm: pleasant, neutral: other, sad: other,"
                      " angry: other, fearful: other, disgust: other}}\n")
    capsys.readouterr()
    run("preprocess", "--config", recipe, "--videos", data, "--out", cache, "--streams", "audio")
    assert "done 16 " in capsys.readouterr().out                     # 14 relabelled, 2 calm clips computed
    for clip_id, meta in ((p.parent.relative_to(cache).as_posix(), json.loads(p.read_text()))
                          for p in cache.rglob("meta.json")):
        assert meta["class_names"] == ["pleasant", "other"]
        assert meta["class_names"][meta["label"]] == ("pleasant" if truth[clip_id] in ("happy", "surprised", "calm")
                                                      else "other")
    assert all(p.stat().st_mtime_ns == t for p, t in mel_times.items())

    bad = tmp_path / "bad.yaml"
    bad.write_text(f"base: {CONFIGS / 'preprocess/default.yaml'}\nlabels: {{map: {{happy: Positive}}}}\n")
    tool = load_tool("preprocess")
    from core.command_line import run_main

    assert run_main(tool.main, ["--config", str(bad), "--videos", str(data), "--out", str(tmp_path / "c2"),
                                "--streams", "audio"]) == 2
    err = capsys.readouterr().err
    assert "'neutral', 'calm', 'sad'" in err and "neither mapped nor dropped" in err and str(bad) in err
