"""tools/report.py on a small runs directory: stream runs (random-init tiny streams, as
tests/conftest.py's tiny_pipeline_run makes them), features with train, val and test splits that
record those runs, a Concat-FC run and a score-weighted run trained on them. The report finds
them by what they record, writes every file, and its numbers agree with the runs' own; the test
split never reaches model selection, in the report or in the training it relies on."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from tests.conftest import CLASSES, load_helper, load_tool

pytestmark = pytest.mark.slow  # trains stream runs and two fusion heads, then reports

toy = load_helper(Path(__file__).parent.parent / "fusion" / "toy_features.py", "tests_fusion_toy_features")
split_spy = load_helper(Path(__file__).parent.parent / "fusion" / "split_spy.py", "tests_fusion_split_spy")
ROOT = Path(__file__).resolve().parents[2]
STREAMS = ("visual", "audio", "flow", "face")
SPLITS = {"train": 60, "val": 45, "test": 48}  # distinct sizes: the spy tells splits apart by their labels
CONCAT_FC = ["train.epochs=3", "train.batch_size=16"]


def make_runs_root(base: Path) -> Path:
    """``base/runs``: streams/<s> (tiny random-init stream checkpoints), features/ (toy features
    of those streams' widths, recording those runs and checkpoint hashes; audio missing on some
    clips), fusion/ (Concat-FC, 3 epochs) and fusion_family/score_weighted (weights searched on val)."""
    from core.config import load_config
    from fusion.training import train_fusion
    from streams.training import build_stream_model
    from training.checkpoints import checkpoint_hash, save_checkpoint

    root = base / "runs"
    torch.manual_seed(0)
    dims, runs = {}, {}
    for s in STREAMS:
        recipe = {k: v for k, v in load_config(ROOT / f"configs/streams/{s}_tiny.yaml").items() if k != "train"}
        model = build_stream_model(recipe, len(CLASSES))
        runs[s] = root / "streams" / s
        save_checkpoint(runs[s] / "best", state_dict=model.state_dict(),
                        meta={"config": recipe, "class_names": list(CLASSES), "epoch": 1, "metrics": {}})
        dims[s] = int(model.feature_dim)
    feats = toy.write_feature_dir(root / "features", dims, splits=SPLITS, mode="all",
                                  separation={"visual": 1.0, "audio": 2.0, "flow": 0.6, "face": 1.5},
                                  missing={"audio": 0.2})
    for split in SPLITS:
        path = feats / split / "index.json"
        index = json.loads(path.read_text())
        for s in STREAMS:
            index["streams"][s].update(run=str(runs[s]), checkpoint_hash=checkpoint_hash(runs[s]))
        path.write_text(json.dumps(index))
    train_fusion(load_config(ROOT / "configs/fusion/concat_fc.yaml", CONCAT_FC), feats, root / "fusion")
    train_fusion(load_config(ROOT / "configs/fusion/score_weighted.yaml", ["model.search_on=val"]), feats,
                 root / "fusion_family" / "score_weighted")
    return root


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory) -> Path:
    return make_runs_root(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def reported(runs_root, tmp_path_factory):
    """tools/report.py run on ``runs_root`` (with the split spy installed): (out dir, report.json,
    printed text, spy)."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("report_out") / "report"
    spy = split_spy.SplitSpy()
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(printed):
        spy.install(mp)
        rc = load_tool("report").main(["--runs", str(runs_root), "--out", str(out)])
    assert rc == 0
    return out, json.loads((out / "report.json").read_text()), printed.getvalue(), spy


def test_the_report_writes_every_file(reported):
    out, report, printed, _ = reported
    for name in ("report.md", "report.json", "roc_curves.png", "pr_curves.png", "contributions.png",
                 "reliability.png"):
        assert (out / name).stat().st_size > 0, name
    test_rows = [r for r in report["rows"] if r["split"] == "test" and r["kind"] != "leave_one_out"]
    confusions = sorted(out.glob("confusion_*.png"))
    assert len(confusions) == len(test_rows) == 8 and (out / "confusion_concat_fc_the_method.png") in confusions
    for s in STREAMS:
        assert (out / "leave_one_out" / f"without_{s}" / "best" / "model.safetensors").exists()
    md = (out / "report.md").read_text()
    assert "## val (45 clips" in md and "## test (48 clips" in md and "## What each stream contributes" in md
    assert "Reading the intervals" in md and "Keyframe ablation" not in md
    assert "val acc [95% CI] (45 clips)" in printed and "test acc [95% CI] (48 clips)" in printed
    assert "contributions.png" in printed


def test_rows_cover_every_model_on_val_and_test_with_consistent_intervals(reported):
    _, report, _, _ = reported
    names = {(r["name"], r["split"]) for r in report["rows"]}
    expected = [f"{s} stream" for s in STREAMS] + ["Concat-FC (the method)", "Score-weighted",
                                                   "late: weighted average (weights from val)",
                                                   "late: 0.6 face + 0.4 audio"]
    expected += [f"Concat-FC without {s}" for s in STREAMS]
    for split in ("val", "test"):
        for name in expected:
            assert (name, split) in names, (name, split)
    assert len(report["rows"]) == 2 * len(expected)
    for r in report["rows"]:
        lo, hi = r["ci95"]
        assert 0.0 <= lo <= r["accuracy"] <= hi <= 1.0, r["name"]
        assert r["clips"] == SPLITS[r["split"]]
        assert 0.0 <= r["macro_f1"] <= 1.0 and 0.0 <= r["roc_auc"] <= 1.0
        assert set(r["per_class"]) == set(CLASSES)
        if r["name"] == "Concat-FC (the method)":
            assert r["p_vs_method"] is None
        else:
            # McNemar's discordant counts are the accuracy gap, clip for clip
            mc = r["mcnemar"]
            assert 0.0 <= r["p_vs_method"] <= 1.0
            method = next(m for m in report["rows"]
                          if m["name"] == "Concat-FC (the method)" and m["split"] == r["split"])
            gap = round((method["accuracy"] - r["accuracy"]) * r["clips"])
            assert mc["a_right_b_wrong"] - mc["a_wrong_b_right"] == gap
    assert report["settings"]["draws"] == 1000 and report["splits"]["test"]["scored"]


def test_every_row_carries_raw_and_calibrated_scores_with_the_temperature_fitted_on_val(reported):
    out, report, _, _ = reported
    temperatures = {}
    for r in report["rows"]:
        for d in (r, r["calibrated"]):
            for key in ("ece", "nll", "brier"):
                lo, hi = d[f"{key}_ci95"]
                assert 0.0 <= lo <= hi and d[key] >= 0.0, (r["name"], key)
            assert d["ece"] <= 1.0 and d["brier"] <= 2.0
        cal = r["calibrated"]
        assert cal["fitted_on"] == "val" and cal["temperature"] > 0
        temperatures.setdefault(r["name"], cal["temperature"])
        assert cal["temperature"] == temperatures[r["name"]]  # one temperature per model, on both splits
        if r["split"] == "val":  # where it was fitted: the NLL cannot have grown
            assert cal["nll"] <= r["nll"] + 1e-9, r["name"]
    # the method's temperature is the one its run stored (fitted on the same val features)
    from training.run_calibration import read_calibration
    stored = read_calibration(report["method"]["run"])
    assert stored["fitted_on"] == "val" and stored["n"] == report["splits"]["val"]["clips"]
    assert temperatures["Concat-FC (the method)"] == pytest.approx(stored["temperature"], rel=1e-3)
    assert set(report["reliability"]["models"]) == {r["name"] for r in report["rows"]
                                                    if r["split"] == "test" and r["kind"] != "leave_one_out"}
    md = (out / "report.md").read_text()
    assert "## Calibration" in md and "ECE calibrated" in md and "`reliability.png`" in md


def test_numbers_agree_with_the_runs_own_evaluation(reported, runs_root):
    from fusion.evaluation import evaluate_run

    _, report, _, _ = reported
    rows = {(r["name"], r["split"]): r for r in report["rows"]}
    for split in ("val", "test"):
        metrics = evaluate_run(runs_root / "fusion", split)
        assert rows[("Concat-FC (the method)", split)]["accuracy"] == pytest.approx(metrics["accuracy"])
        assert rows[("Concat-FC (the method)", split)]["macro_f1"] == pytest.approx(metrics["macro_f1"])
        # visual is on every clip: the stream alone is its own probabilities' argmax
        assert rows[("visual stream", split)]["accuracy"] == pytest.approx(
            metrics["streams"]["visual"]["accuracy_when_available"])
        assert rows[("late: weighted average (weights from val)", split)]["accuracy"] == pytest.approx(
            metrics["late_fusion"]["weighted_average"]["accuracy"])
        # a contribution is the method's accuracy minus its leave-one-out head's, on the same clips
        for s in STREAMS:
            c = report["contributions"][split][s]
            assert c["difference"] == pytest.approx(rows[("Concat-FC (the method)", split)]["accuracy"]
                                                    - rows[(f"Concat-FC without {s}", split)]["accuracy"])
            assert c["interval"][0] <= c["difference"] <= c["interval"][1]
    assert report["selection"]["late_fusion_weights"]["weighted_average"] == \
        evaluate_run(runs_root / "fusion", "test")["late_fusion"]["weighted_average"]["weights"]


def test_provenance_names_the_stream_runs_and_their_checkpoints(reported, runs_root):
    _, report, _, _ = reported
    prov = report["provenance"]
    assert prov["warnings"] == []
    for s in STREAMS:
        v = prov["streams"][s]
        assert Path(v["run"]) == runs_root / "streams" / s
        assert v["features_checkpoint_hash"] == v["checkpoint_hash_now"] == v["method_trained_on"]
    assert sorted(Path(p).name for p in prov["fusion_runs"]) == ["fusion", "score_weighted"]
    assert report["selection"]["best_stream"] in [f"{s} stream" for s in STREAMS]


def test_the_test_split_never_reaches_selection_in_the_report(reported):
    _, _, _, spy = reported
    selections = spy.selections()
    # the four leave-one-out heads (the loop's fit: train and val only) and the weight search (val)
    assert [e.what for e in selections].count("fusion fit") == len(STREAMS)
    assert all(e.splits == {"train", "val"} for e in selections if e.what == "fusion fit")
    assert [e.splits for e in selections if e.what == "weight search"] == [{"val"}]
    assert spy.test_reads(), "the report scored test"
    assert spy.leaks() == [] and spy.selections_after_the_first_test_read() == []


def report_cli(argv: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    """``python tools/report.py argv...`` as its command line runs it (its ``__main__`` block, in
    this process): ``(exit status, stdout, stderr)``."""
    import runpy
    import sys

    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", [str(ROOT / "tools/report.py"), *argv])
    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(ROOT / "tools/report.py"), run_name="__main__")
    out, err = capsys.readouterr()
    return info.value.code, out, err


def test_a_rerun_reuses_the_heads_and_adds_the_keyframe_ablation_table(reported, runs_root, monkeypatch, capsys):
    out, report, _, _ = reported
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("leave_one_out/*/best/model.safetensors")}
    table = {"rows": [{"family": "peak", "selection": "default", "intensity": "non_neutral",
                       "salient_recall": {"mean": 0.49}, "val_accuracy": {"mean": 0.70, "ci95": [0.6, 0.8]},
                       "diff_vs_uniform": {"mean": 0.05, "ci95": [0.01, 0.09]}},
                      {"family": "peak", "selection": "uniform", "intensity": None, "salient_recall": {"mean": 0.2},
                       "val_accuracy": {"mean": 0.65, "ci95": [0.55, 0.75]},
                       "diff_vs_uniform": {"mean": 0.0, "ci95": [0.0, 0.0]}}]}
    (runs_root / "ablation").mkdir()
    try:
        (runs_root / "ablation" / "ablation.json").write_text(json.dumps(table))  # where tools/ablate.py writes it
        rc, printed, _ = report_cli(["--runs", str(runs_root), "--out", str(out)], monkeypatch, capsys)
    finally:
        shutil.rmtree(runs_root / "ablation")
    assert rc == 0 and "test acc [95% CI]" in printed
    assert {p: p.stat().st_mtime_ns for p in out.glob("leave_one_out/*/best/model.safetensors")} == stamps
    again = json.loads((out / "report.json").read_text())
    assert again["rows"] == report["rows"]
    assert again["keyframe_ablation"]["rows"] == table["rows"]
    md = (out / "report.md").read_text()
    assert "## Keyframe ablation" in md
    assert "| peak | default (non_neutral) | 0.49 | 0.700 [0.600, 0.800] | +5.0 [+1.0, +9.0] |" in md
    assert "| peak | uniform | 0.20 | 0.650 [0.550, 0.750] | +0.0 [+0.0, +0.0] |" in md


def test_a_malformed_or_missing_ablation_table_is_one_error_line(runs_root, tmp_path, monkeypatch, capsys):
    path = tmp_path / "ablation.json"
    path.write_text(json.dumps({"rows": [{"selection": "uniform"}]}))
    old = tmp_path / "old_ablation.json"  # a table of the ablation before it had families and intervals
    old.write_text(json.dumps({"rows": [{"family": "peak", "selection": "uniform", "salient_recall": 0.2,
                                         "val_accuracy": 0.9, "diff_vs_uniform": 0.0}]}))
    for bad, expected in ((path, "salient_recall"), (old, "salient_recall must be"),
                          (tmp_path / "none.json", "no keyframe ablation table")):
        rc, _, err = report_cli(["--runs", str(runs_root), "--out", str(tmp_path / "r"), "--ablation", str(bad)],
                                monkeypatch, capsys)
        assert rc == 2 and err.startswith("error:") and len(err.splitlines()) == 1, err
        assert str(bad) in err and expected in err
    assert not (tmp_path / "r").exists()  # refused before anything was trained or written


def test_two_concat_fc_runs_need_the_method_named(runs_root, reported, tmp_path, monkeypatch, capsys):
    from experiments.report import build_report

    out, _, _, _ = reported
    root = tmp_path / "runs"
    shutil.copytree(runs_root, root, ignore=shutil.ignore_patterns("tb", "state"))
    shutil.copytree(root / "fusion", root / "fusion_again")
    shutil.copytree(out / "leave_one_out", root / "report" / "leave_one_out")  # an earlier report's heads: not runs
    rc, _, err = report_cli(["--runs", str(root), "--out", str(tmp_path / "r")], monkeypatch, capsys)
    assert rc == 2 and "several Concat-FC runs" in err and "--method" in err
    assert str(root / "fusion") in err and str(root / "fusion_again") in err and "leave_one_out" not in err
    report_dir = tmp_path / "named"
    shutil.copytree(out / "leave_one_out", report_dir / "leave_one_out")  # the same heads: reused
    stamps = {p: p.stat().st_mtime_ns for p in report_dir.glob("leave_one_out/*/best/model.safetensors")}
    rows = build_report(root, report_dir, method=root / "fusion", draws=200).data["rows"]
    assert {p: p.stat().st_mtime_ns for p in report_dir.glob("leave_one_out/*/best/model.safetensors")} == stamps
    other = [r for r in rows if r["name"] == "Concat-FC [fusion_again]"]
    assert len(other) == 2 and all(r["p_vs_method"] == 1.0 for r in other)  # the same head as the method


def test_an_unlabelled_test_split_is_reported_as_such(runs_root, reported, tmp_path):
    """VGAF's test labels are withheld: the report scores val and says why test is missing."""
    from experiments.report import build_report, format_table

    out, _, _, _ = reported
    index_path = runs_root / "features" / "test" / "index.json"
    labelled = index_path.read_text()
    index = json.loads(labelled)
    index["labels"] = [None] * len(index["labels"])
    shutil.copytree(out / "leave_one_out", tmp_path / "out" / "leave_one_out")  # train and val unchanged: reused
    try:
        index_path.write_text(json.dumps(index))
        report = build_report(runs_root, tmp_path / "out", draws=200)
    finally:
        index_path.write_text(labelled)
    assert report.data["splits"]["test"] == {"scored": False, "why": "the test clips are unlabelled"}
    assert {r["split"] for r in report.data["rows"]} == {"val"} and report.data["figure_split"] == "val"
    assert "(test: not scored, the test clips are unlabelled)" in format_table(report.data)


# ------------------------------------------------------------------------- selection never sees test

def test_fusion_training_reads_only_train_and_val(runs_root, tmp_path):
    """A head the loop trains (Concat-FC) and one fitted in one pass (score weighting, its weights
    searched on val) open only the train and val features and hand selection only those."""
    from core.config import load_config
    from fusion.training import train_fusion

    spy = split_spy.SplitSpy()
    with pytest.MonkeyPatch.context() as mp:
        spy.install(mp)
        feats = runs_root / "features"
        train_fusion(load_config(ROOT / "configs/fusion/concat_fc.yaml", CONCAT_FC), feats, tmp_path / "concat_fc")
        train_fusion(load_config(ROOT / "configs/fusion/score_weighted.yaml", ["model.search_on=val"]), feats,
                     tmp_path / "score_weighted")
    reads = {split for e in spy.events if e.kind == "read" for split in e.splits}
    assert reads == {"train", "val"}
    assert [e.what for e in spy.selections()] == ["fusion fit", "one-pass fit", "weight search"]
    assert [e.splits for e in spy.selections()] == [{"train", "val"}, {"train", "val"}, {"val"}]


def test_evaluation_searches_late_fusion_weights_on_val_before_reading_test(runs_root):
    from core.config import ConfigError
    from fusion.evaluation import evaluate_run

    spy = split_spy.SplitSpy()
    with pytest.MonkeyPatch.context() as mp:
        spy.install(mp)
        evaluate_run(runs_root / "fusion", "test")
    assert [e.splits for e in spy.selections()] == [{"val"}]
    assert spy.selections_after_the_first_test_read() == [] and spy.leaks() == []
    with pytest.raises(ConfigError, match="test split"):
        evaluate_run(runs_root / "fusion", "val", weights_split="test")


@pytest.fixture(scope="module")
def audio_cache(tmp_path_factory):
    """An audio-only preprocessing cache of 8 tiny clips: 4 train, 2 val, 2 test."""
    from core.config import load_config
    from media.layouts import ClipRecord
    from streams.preprocessing import build_preprocess_job, write_pipeline_record
    from tests.conftest import make_scene_clip

    base = tmp_path_factory.mktemp("audio_cache")
    cfg = load_config(ROOT / "configs/preprocess/demo.yaml")
    cache = base / "cache"
    job = build_preprocess_job(cfg, None, str(cache), streams=("audio",))
    for i, split in enumerate(["train"] * 4 + ["val"] * 2 + ["test"] * 2):
        clip = make_scene_clip(base / f"c{i}.mp4", n_frames=15, size=(96, 64), faces=1, audio=True, seed=i)
        assert job(ClipRecord(clip_id=f"{split}/c{i}", path=clip, label=i % 3, class_names=CLASSES,
                              split=split)) == "done"
    write_pipeline_record(cache, cfg, None)
    return cache


def test_stream_training_reads_only_train_and_val(audio_cache, tmp_path):
    from core.config import load_config
    from streams.training import train_stream

    spy = split_spy.SplitSpy()
    with pytest.MonkeyPatch.context() as mp:
        spy.install(mp)
        recipe = load_config(ROOT / "configs/streams/audio_tiny.yaml", ["train.epochs=1", "train.batch_size=2"])
        assert train_stream(recipe, audio_cache, tmp_path / "audio")["finished"]
    # the temperature is fitted on the val clips at the end of training, never on test
    calibration = json.loads((tmp_path / "audio" / "best" / "calibration.json").read_text())
    assert calibration["fitted_on"] == "val" and calibration["n"] == 2 and calibration["temperature"] > 0
    assert calibration["nll_after"] <= calibration["nll_before"]
    # train (the clips held back for fusion, the train set), val (the val set, then the temperature fit)
    assert [(e.what, e.splits) for e in spy.events if e.kind == "read"] == \
        [("cache", {"train"}), ("cache", {"train"}), ("cache", {"val"}), ("cache", {"val"})]
    assert [(e.what, e.splits) for e in spy.selections()] == [("stream fit", {"train", "val"})]
