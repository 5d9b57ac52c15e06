"""tools/robustness.py on a small runs directory made like a real one: tiny scene clips preprocessed
with the demo recipe and the tiny scorer (a cache with pipeline.json), random-init tiny stream runs,
their real val/test features and a random-init Concat-FC run over them. The damaged clips go
through the real damage, decoding and preprocessing; a re-run recomputes nothing; a clip whose
damage fails is logged and the others are scored."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.conftest import CLASSES, load_tool, make_scene_clip

pytestmark = pytest.mark.slow  # preprocesses clips (keyframes, flow, MTCNN) several times

ROOT = Path(__file__).resolve().parents[2]
STREAMS = ("visual", "audio", "flow", "face")
DAMAGES = "white_noise_10db,dark_30pct"
ROW_KEYS = {"model", "damage", "severity", "accuracy", "ci95", "clean_accuracy"}


def make_runs_root(base: Path, scorer: Path) -> Path:
    """``base/runs``: cache/ (2 val + 2 test scene clips, demo recipe), streams/<s>, features/ (val
    and test, extracted from the cache) and fusion/ (Concat-FC, random init, recording it all)."""
    from core.config import load_config
    from fusion.features import extract_features
    from fusion.heads import create_fusion_head
    from media.layouts import ClipRecord
    from streams.preprocessing import build_preprocess_job, write_pipeline_record
    from streams.training import build_stream_model
    from training.checkpoints import checkpoint_hash, save_checkpoint

    root = base / "runs"
    cfg = load_config(ROOT / "configs/preprocess/demo.yaml")
    job = build_preprocess_job(cfg, str(scorer), str(root / "cache"))
    write_pipeline_record(root / "cache", cfg, str(scorer))
    for i, split in enumerate(("val", "val", "test", "test")):
        clip = make_scene_clip(base / "data" / f"clip{i}.mp4", n_frames=24, seed=i)
        assert job(ClipRecord(clip_id=f"clip{i}", path=clip, label=i % 2, class_names=CLASSES, split=split)) == "done"
    torch.manual_seed(0)
    runs, dims = {}, {}
    for s in STREAMS:
        recipe = {k: v for k, v in load_config(ROOT / f"configs/streams/{s}_tiny.yaml").items() if k != "train"}
        model = build_stream_model(recipe, len(CLASSES))
        runs[s] = str(root / "streams" / s)
        save_checkpoint(Path(runs[s]) / "best", state_dict=model.state_dict(),
                        meta={"config": recipe, "class_names": list(CLASSES), "epoch": 1, "metrics": {}})
        dims[s] = int(model.feature_dim)
    extract_features(runs, root / "cache", root / "features", splits=("val", "test"))
    fusion_cfg = load_config(ROOT / "configs/fusion/concat_fc.yaml")
    head = create_fusion_head(fusion_cfg["model"], stream_dims=dims, num_classes=len(CLASSES))
    recipe = {"streams": list(STREAMS), "model": dict(fusion_cfg["model"]), "stream_dims": dims,
              "features": str(root / "features"),
              "pipeline": {"streams": {s: {"run": r, "checkpoint_hash": checkpoint_hash(r)} for s, r in runs.items()}}}
    save_checkpoint(root / "fusion" / "best", state_dict=head.state_dict(),
                    meta={"config": recipe, "class_names": list(CLASSES), "epoch": 1, "metrics": {}})
    return root


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory, tiny_scorer_run) -> Path:
    return make_runs_root(tmp_path_factory.mktemp("robustness"), tiny_scorer_run)


@pytest.fixture(scope="module")
def first_run(runs_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("robust_out") / "robustness"
    rc = load_tool("robustness").main(["--runs", str(runs_root), "--out", str(out), "--damages", DAMAGES,
                                       "--max-clips", "2", "--draws", "50", "--markdown", str(out / "page.md")])
    assert rc == 0
    return out, json.loads((out / "robustness.json").read_text())


def test_rows_cover_every_model_under_every_damage_and_missing_set(first_run):
    out, data = first_run
    models = {f"{s} stream" for s in STREAMS} | {"Concat-FC (the method)", "late: weighted average (weights from val)",
                                                 "late: 0.6 face + 0.4 audio"}
    damages = {("white_noise", "10 dB SNR"), ("dark", "30 % brightness")}
    damages |= {("missing", m) for m in ("audio", "face+flow+visual", "audio+face+flow+visual")}
    seen = {(r["damage"], r["severity"]) for r in data["rows"]}
    assert damages <= seen and len(seen) == 2 + 15   # two damages, every non-empty set of the 4 streams missing
    for damage in seen:
        assert {r["model"] for r in data["rows"] if (r["damage"], r["severity"]) == damage} == models
    for r in data["rows"]:
        assert ROW_KEYS <= set(r)
        lo, hi = r["ci95"]
        assert 0.0 <= lo <= r["accuracy"] <= hi <= 1.0 and r["clips"] == 2 and r["failed_clips"] == 0
    assert data["commit"] and "tools/robustness.py" in data["command"]
    assert data["damages"]["white_noise_10db"]["streams_changed"] == ["audio"]
    assert set(data["damages"]["dark_30pct"]["streams_changed"]) == {"visual", "flow", "face"}
    for name in ("robustness.md", "robustness_heatmap.png"):
        assert (out / name).stat().st_size > 0
    assert "## white_noise: 10 dB SNR" in (out / "robustness.md").read_text()
    page = (out / "page.md").read_text()   # the results page: generated mark, command, the tables, the cost
    assert "tools/robustness.py" in page and "### white_noise: 10 dB SNR" in page and "min wall clock" in page
    assert "](robustness_heatmap.png)" not in page and data["wall_s"] > 0 and data["workers"] == 0
    heads = {r["model"] for r in data["rows"] if r["kind"] == "fusion_head"}
    assert {(d["model"], d["missing"]) for d in data["degradation"]} == {
        (h, r["severity"]) for h in heads for r in data["rows"]
        if r["damage"] == "missing" and r["severity"] != "audio+face+flow+visual"}   # nothing left: no stream to beat
    assert "Losing a modality" in page


def test_a_stream_the_damage_leaves_alone_keeps_its_clean_accuracy(first_run):
    _, data = first_run
    for r in data["rows"]:
        untouched = (r["damage"] == "white_noise" and r["model"] != "audio stream") or (
            r["damage"] == "missing" and r["kind"] == "stream" and r["model"].split()[0] not in r["severity"])
        if untouched:
            assert r["accuracy"] == r["clean_accuracy"], r


def test_the_damaged_clips_went_through_the_real_preprocessing(first_run):
    out, data = first_run
    cache_root = Path(data["damages"]["dark_30pct"]["errors_log"]).parent
    meta = json.loads((cache_root / "clip2" / "meta.json").read_text())
    assert set(meta["arrays"]) == {"visual", "flow", "face"} and meta["keyframes"]["indices"]
    assert not list((out / "damaged_media").rglob("*.mp4"))   # the damaged copies are not kept


def test_a_rerun_recomputes_nothing(first_run, runs_root, monkeypatch):
    import experiments.robustness as robustness
    from streams.preprocessing import ClipPreprocessor

    out, data = first_run

    def refuse(*args, **kwargs):
        raise AssertionError("recomputed on a re-run")

    monkeypatch.setattr(ClipPreprocessor, "compute", refuse)
    monkeypatch.setattr(robustness, "damage_file", refuse)
    monkeypatch.setattr("fusion.features.stream_outputs", refuse)
    rc = load_tool("robustness").main(["--runs", str(runs_root), "--out", str(out), "--damages", DAMAGES,
                                       "--max-clips", "2", "--draws", "50"])
    assert rc == 0
    again = json.loads((out / "robustness.json").read_text())
    assert [r["accuracy"] for r in again["rows"]] == [r["accuracy"] for r in data["rows"]]
    assert all(v["clips"]["done"] == 0 and v["clips"]["skipped"] == 2 for v in again["damages"].values())


def test_a_clip_whose_damage_fails_is_logged_and_the_rest_is_scored(runs_root, tmp_path, monkeypatch, capsys):
    import experiments.robustness as robustness

    real = robustness.damage_file

    def fail_on_clip2(src, dst, damage, **kwargs):
        if Path(src).stem == "clip2":
            raise ValueError("cannot damage this one")
        return real(src, dst, damage, **kwargs)

    monkeypatch.setattr(robustness, "damage_file", fail_on_clip2)
    out = tmp_path / "robustness"
    rc = load_tool("robustness").main(["--runs", str(runs_root), "--out", str(out), "--damages", "audio_removed",
                                       "--no-missing", "--draws", "50"])
    assert rc == 0
    data = json.loads((out / "robustness.json").read_text())
    assert data["damages"]["audio_removed"]["clips"] == {"done": 1, "skipped": 0, "failed": 1}
    log = Path(data["damages"]["audio_removed"]["errors_log"])
    errors = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["item"] for e in errors] == ["clip2"] and "cannot damage this one" in errors[0]["error"]
    assert data["rows"] and all(r["clips"] == 1 and r["failed_clips"] == 1 for r in data["rows"])
    assert "audio_removed: 1 clips failed" in capsys.readouterr().out


def test_user_mistakes_are_one_error_line(tmp_path, runs_root, monkeypatch, capsys):
    """As its command line runs: the ``__main__`` block, an ``error:`` line and status 2."""
    import runpy
    import sys

    def cli(*argv: str) -> tuple[int, str]:
        monkeypatch.setattr(sys, "argv", [str(ROOT / "tools/robustness.py"), *argv])
        with pytest.raises(SystemExit) as info:
            runpy.run_path(str(ROOT / "tools/robustness.py"), run_name="__main__")
        return info.value.code, capsys.readouterr().err

    rc, err = cli("--runs", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o"))
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("error:") and "nowhere" in lines[0]
    rc, err = cli("--runs", str(runs_root), "--out", str(tmp_path / "o"), "--damages", "rain")
    assert rc == 2 and "--damages" in err and "rain" in err


def test_hidden_faces_are_the_ones_the_face_stream_finds(tmp_path):
    """faces_hidden with the face stream's own MTCNN: the faces it finds on the clean clip are
    filled, and it finds none on the damaged copy."""
    from core.config import load_config
    from experiments.robustness import face_box_finder
    from media.damage import DAMAGES, damage_file
    from tests.conftest import decode_media

    find = face_box_finder(load_config(ROOT / "configs/preprocess/demo.yaml"))
    clip = make_scene_clip(tmp_path / "faces.mp4", n_frames=4, faces=3)
    out = damage_file(clip, tmp_path / "hidden.mp4", DAMAGES["faces_hidden"], face_boxes=find)
    clean, hidden = decode_media(clip)[0], decode_media(out)[0]
    assert all(len(find(frame)) == 3 for frame in clean)
    assert all(len(find(frame)) == 0 for frame in hidden)


def test_worker_processes_write_the_same_damaged_cache(runs_root, first_run, tmp_path):
    """--workers 2: each process builds its own networks; the rows equal those of one process."""
    _, data = first_run
    out = tmp_path / "robustness"
    rc = load_tool("robustness").main(["--runs", str(runs_root), "--out", str(out), "--damages", "white_noise_10db",
                                       "--no-missing", "--max-clips", "2", "--draws", "50", "--workers", "2"])
    assert rc == 0
    again = json.loads((out / "robustness.json").read_text())
    assert again["damages"]["white_noise_10db"]["clips"] == {"done": 2, "skipped": 0, "failed": 0}
    one = [(r["model"], r["accuracy"]) for r in data["rows"] if r["damage"] == "white_noise"]
    assert [(r["model"], r["accuracy"]) for r in again["rows"]] == one


def test_a_changed_scorer_is_refused(runs_root, tmp_path, monkeypatch):
    import experiments.robustness as robustness
    from experiments.report_runs import ReportError

    monkeypatch.setattr(robustness, "checkpoint_hash", lambda path: "another")
    with pytest.raises(ReportError, match="scorer"):
        robustness.build_robustness(runs_root, tmp_path / "o", damages=["audio_removed"])


def test_degradation_sets_each_head_against_the_best_remaining_stream():
    from experiments.robustness import degradation

    def row(model, kind, severity, accuracy):
        return {"model": model, "kind": kind, "damage": "missing", "severity": severity, "accuracy": accuracy}

    rows = [row("audio stream", "stream", "visual", 0.70), row("visual stream", "stream", "visual", 0.50),
            row("face stream", "stream", "visual", 0.60), row("Concat-FC", "fusion_head", "visual", 0.69),
            row("Gated", "fusion_head", "visual", 0.60),
            row("audio stream", "stream", "audio+visual", 0.50), row("visual stream", "stream", "audio+visual", 0.50),
            row("face stream", "stream", "audio+visual", 0.60), row("Concat-FC", "fusion_head", "audio+visual", 0.58)]
    got = {(d["model"], d["missing"]): d for d in degradation(rows, ["visual", "audio", "face"])}
    assert got[("Concat-FC", "visual")]["best_remaining_stream"] == "audio"      # not the lost visual stream
    assert got[("Concat-FC", "visual")]["margin"] == pytest.approx(-0.01) and got[("Concat-FC", "visual")]["graceful"]
    assert not got[("Gated", "visual")]["graceful"]                             # 10 points below audio alone
    assert got[("Concat-FC", "audio+visual")]["best_remaining_stream"] == "face"
    assert got[("Concat-FC", "audio+visual")]["graceful"]                        # exactly 2 points below
