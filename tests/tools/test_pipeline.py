"""The whole method on a small synthetic set, through the real tools (tools/demo.py), then what
each stage promises: outputs exist, the scorer and every stream learn, features are cached once,
fusion beats the best single stream, missing modalities are handled, evaluation numbers can be
recomputed, prediction on raw files behaves, the report scores every model on val and test and
the test split never reaches model selection."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import stats

from tests.conftest import load_helper, load_tool

pytestmark = pytest.mark.slow  # the whole pipeline through the real tools

ROOT = Path(__file__).resolve().parents[2]
split_spy = load_helper(ROOT / "tests" / "fusion" / "split_spy.py", "tests_fusion_split_spy")
STREAMS = ("visual", "audio", "flow", "face")
# the demo at test size: fewer, shorter clips; some without audio or people (missing modalities)
DEMO_ARGS = ("--train", "60", "--val", "60", "--test", "6", "--duration", "2.0", "--audio-fraction", "0.9",
             "--faceless-fraction", "0.1")


@pytest.fixture(scope="module")
def demo_recorded(tmp_path_factory):
    """The demo run, and the split spy's record of what its training and selection read."""
    out = tmp_path_factory.mktemp("demo")
    spy = split_spy.SplitSpy()
    with pytest.MonkeyPatch.context() as mp:
        spy.install(mp)
        rc = load_tool("demo").main(["--out", str(out), *DEMO_ARGS])
    assert rc == 0
    return out, spy


@pytest.fixture(scope="module")
def demo_run(demo_recorded):
    return demo_recorded[0]


def test_every_stage_writes_its_outputs(demo_run):
    out = demo_run
    assert (out / "data" / "Train_labels.txt").exists() and (out / "data" / "groupemow").is_dir()
    assert (out / "scorer" / "best" / "model.safetensors").exists()
    assert (out / "cache" / "pipeline.json").exists()
    metas = list((out / "cache").rglob("meta.json"))
    assert len(metas) == 60 + 60 + 6
    for s in STREAMS:
        assert (out / "streams" / s / "best" / "meta.json").exists()
        assert json.loads((out / "streams" / s / "metrics.json").read_text())["finished"]
        assert list((out / "streams" / s / "tb").iterdir())
    for split in ("train", "val"):
        index = json.loads((out / "features" / split / "index.json").read_text())
        assert set(index["streams"]) == set(STREAMS)
    assert (out / "fusion" / "eval_val" / "metrics.json").exists()
    assert list((out / "cache").rglob("contact_sheet.png"))
    # live mode on the held-out clip: the annotated video, its log and the frame the docs show
    frame = cv2.imread(str(out / "live" / "annotated_frame.png"))
    assert frame is not None and frame.ndim == 3 and frame.std() > 0
    windows = [json.loads(line) for line in (out / "live" / "annotated.jsonl").read_text().splitlines()]
    predicted = [w for w in windows if not w["dropped"]]
    assert predicted and all(set(w["probs"]) == {"Positive", "Neutral", "Negative"} for w in predicted)


def test_scorer_and_every_stream_learn(demo_run):
    """Every stream beats guessing on its val clips (binomial p < 0.05; chance is 1/3). The
    test-size face stream (60 two-second training clips, 40 px crops, from random init) sits
    just above it, so a fixed accuracy bar would flip with float rounding in the crops."""
    scorer = json.loads((demo_run / "scorer" / "metrics.json").read_text())
    assert scorer["best_val_acc"] >= 0.6  # chance is 1/3
    metrics = json.loads((demo_run / "fusion" / "eval_val" / "metrics.json").read_text())
    for s in STREAMS:
        m = metrics["streams"][s]
        correct = round(m["accuracy_when_available"] * m["available"])
        p = stats.binomtest(correct, m["available"], 1 / 3, alternative="greater").pvalue
        assert p < 0.05, (s, correct, m["available"], p)


def test_fusion_beats_the_best_single_stream(demo_run):
    metrics = json.loads((demo_run / "fusion" / "eval_val" / "metrics.json").read_text())
    best_stream = max(v["accuracy_when_available"] for v in metrics["streams"].values())
    assert metrics["accuracy"] > best_stream


def test_missing_modalities_are_counted_in_the_availability_breakdown(demo_run):
    metrics = json.loads((demo_run / "fusion" / "eval_val" / "metrics.json").read_text())
    by = metrics["by_availability"]["streams"]
    assert by["audio"]["without"]["clips"] >= 1 and by["face"]["without"]["clips"] >= 1
    for s in ("audio", "face"):
        assert by[s]["with"]["clips"] + by[s]["without"]["clips"] == metrics["clips"]
        assert by[s]["without"]["accuracy"] is not None  # those clips got predictions
    subsets = metrics["by_availability"]["subsets"]
    assert sum(v["clips"] for v in subsets.values()) == metrics["clips"]
    assert "audio+face+flow+visual" in subsets and len(metrics["by_availability"]["given_only"]) == 15


def test_metrics_match_a_recomputation_from_saved_predictions(demo_run):
    ev = demo_run / "fusion" / "eval_val"
    metrics = json.loads((ev / "metrics.json").read_text())
    rows = [json.loads(line) for line in (ev / "predictions.jsonl").read_text().splitlines()]
    labels = np.array([r["label"] for r in rows])
    preds = np.array([r["pred"] for r in rows])
    assert metrics["clips"] == len(rows)
    assert metrics["accuracy"] == pytest.approx(float((labels == preds).mean()))
    cm = np.zeros((3, 3), int)
    np.add.at(cm, (labels, preds), 1)
    assert cm.tolist() == metrics["confusion_matrix"]
    assert all(abs(sum(r["probs"]) - 1) < 1e-4 and int(np.argmax(r["probs"])) == r["pred"] for r in rows)
    png = cv2.imread(str(ev / "confusion_matrix.png"))
    assert png is not None and png.ndim == 3 and png.shape[0] > 50


def test_the_fusion_family_is_trained_and_tabulated(demo_run):
    from fusion.heads import FUSION_HEADS

    table = json.loads((demo_run / "fusion_family.json").read_text())
    assert [r["head"] for r in table["heads"]] == list(FUSION_HEADS)
    for r in table["heads"]:
        assert json.loads((Path(r["run"]) / "metrics.json").read_text())["finished"], r["head"]
        assert r["val_acc"] >= 0.45 and r["val_macro_f1"] is not None, r  # chance: 1/3
        assert r["train_seconds"] is not None and r["train_seconds"] >= 0


def test_the_report_scores_every_stream_and_the_method_on_val_and_test(demo_run):
    out = demo_run / "report"
    for name in ("report.md", "report.json", "roc_curves.png", "pr_curves.png", "contributions.png",
                 "reliability.png", "confusion_concat_fc_the_method.png"):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text())
    rows = {(r["name"], r["split"]): r for r in report["rows"]}
    for split in ("val", "test"):
        for name in [f"{s} stream" for s in STREAMS] + ["Concat-FC (the method)"]:
            r = rows[(name, split)]
            assert r["ci95"][0] <= r["accuracy"] <= r["ci95"][1], (name, split)
            assert r["calibrated"]["temperature"] > 0 and r["nll_ci95"][0] <= r["nll_ci95"][1], (name, split)
        assert rows[("Concat-FC (the method)", split)]["p_vs_method"] is None
    assert rows[("Concat-FC (the method)", "test")]["clips"] == 6
    # the report's val number of the method is the evaluation's
    metrics = json.loads((demo_run / "fusion" / "eval_val" / "metrics.json").read_text())
    assert rows[("Concat-FC (the method)", "val")]["accuracy"] == pytest.approx(metrics["accuracy"])


def test_the_test_split_never_reaches_model_selection(demo_recorded):
    _, spy = demo_recorded
    kinds = {e.what for e in spy.selections()}
    assert {"stream fit", "fusion fit", "one-pass fit", "weight search"} <= kinds
    assert all(e.splits and e.splits <= {"train", "val"} for e in spy.selections())
    assert spy.test_reads(), "the report scores test"
    assert spy.leaks() == [] and spy.selections_after_the_first_test_read() == []


def test_features_are_cached_once_and_reused(demo_run):
    from fusion.features import extract_features

    runs = {s: str(demo_run / "streams" / s) for s in STREAMS}
    status = extract_features(runs, demo_run / "cache", demo_run / "features")
    assert all(v == "reused" for split in status.values() for v in split.values())


def test_rerun_reuses_finished_steps(demo_run, capsys):
    from core.config import load_config
    from fusion.training import train_fusion

    metrics = train_fusion(load_config(ROOT / "configs/fusion/concat_fc.yaml"), demo_run / "features",
                           demo_run / "fusion")
    assert metrics["finished"]
    log = (demo_run / "fusion" / "train.log").read_text()
    assert "reusing" in log


def test_demo_rerun_reuses_every_step_and_says_so(demo_run, capsys):
    def stamps():
        files = [demo_run / "scorer" / "best" / "model.safetensors", demo_run / "fusion" / "best" / "model.safetensors",
                 *sorted((demo_run / "cache").rglob("meta.json")), *sorted((demo_run / "features").rglob("*.npy"))]
        files += [demo_run / "streams" / s / "best" / "model.safetensors" for s in STREAMS]
        files += sorted((demo_run / "fusion_family").glob("*/best/model.safetensors"))
        files += sorted((demo_run / "report" / "leave_one_out").glob("*/best/model.safetensors"))
        return {f: f.stat().st_mtime_ns for f in files}

    before = stamps()
    capsys.readouterr()
    rc = load_tool("demo").main(["--out", str(demo_run), *DEMO_ARGS])
    assert rc == 0
    out = capsys.readouterr().out
    assert "reusing the synthetic dataset" in out and "Concat-FC fusion (the method)" in out
    assert "The fusion family on the same features" in out and "(reused)" in out
    assert "test acc [95% CI] (6 clips)" in out
    assert stamps() == before  # nothing was recomputed or rewritten


def test_predict_on_good_corrupt_and_silent_files_in_one_call(demo_run, tmp_path, capsys):
    from synthetic.group import make_clip

    good = sorted((demo_run / "data" / "Test").glob("*.mp4"))[0]
    silent = tmp_path / "silent.mp4"
    make_clip(silent, label=0, rng=np.random.default_rng(5), duration=2.0, with_audio=False)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(good.read_bytes()[:2000])
    rc = load_tool("predict").main([str(good), str(corrupt), str(silent), "--run", str(demo_run / "fusion"),
                                    "--json"])
    assert rc == 0
    results = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert [Path(r["video"]).name for r in results] == [good.name, "corrupt.mp4", "silent.mp4"]
    ok, bad, quiet = results
    assert ok["label"] in ("Positive", "Neutral", "Negative")
    assert abs(sum(ok["probs"].values()) - 1) < 1e-4
    assert set(ok["streams"]) == set(STREAMS) and len(ok["keyframe_times"]) == 16
    assert "total" in ok["timings_s"]
    assert "error" in bad and "corrupt.mp4" in bad["error"]
    assert quiet["missing"] == ["audio"] and quiet["streams"]["audio"] is None
    assert abs(sum(quiet["probs"].values()) - 1) < 1e-4


def test_predict_refuses_when_a_stream_checkpoint_changed(demo_run, tmp_path):
    import shutil

    from fusion.prediction import PipelineError, Predictor

    copy = tmp_path / "demo"
    shutil.copytree(demo_run / "streams", copy / "streams")
    shutil.copytree(demo_run / "fusion", copy / "fusion")
    recipe_path = copy / "fusion" / "best" / "meta.json"
    meta = json.loads(recipe_path.read_text())
    meta["config"]["pipeline"]["streams"]["flow"]["run"] = str(copy / "streams" / "flow")
    recipe_path.write_text(json.dumps(meta))
    # the flow checkpoint is not the one fusion was trained on any more
    flow_meta = copy / "streams" / "flow" / "best" / "meta.json"
    fm = json.loads(flow_meta.read_text())
    fm["sha256"] = "0" * 64
    flow_meta.write_text(json.dumps(fm))
    with pytest.raises(PipelineError, match="changed"):
        Predictor.from_run(copy / "fusion")


def test_the_demo_ends_with_a_release_bundle_and_its_model_card(demo_run):
    from release.bundle_writer import bundle_is_current
    from release.manifest import read_manifest

    bundle = demo_run / "bundle"
    manifest = read_manifest(bundle)  # every file's sha256 checked
    assert bundle_is_current(bundle, demo_run / "fusion")
    assert {"scorer", "fusion", *(f"stream:{s}" for s in STREAMS)} == set(manifest["models"])
    card = (bundle / "model_card.md").read_text()
    assert "| test |" in card and "| val |" in card and "Out-of-scope" in card
