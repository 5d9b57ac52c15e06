"""tools/benchmark.py at tiny sizes: each subcommand prints ONE JSON object with the documented
keys and finite, positive numbers (no timing assertions); the selection-overlap measure; a
missing video is reported by name."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from benchmarks.keyframes import selection_overlap
from benchmarks.training import Stepper
from tests.conftest import load_tool

ROOT = Path(__file__).resolve().parents[2]
DEMO = str(ROOT / "configs/preprocess/demo.yaml")
TINY_CLIP = ["--make-clip", "--size", "160x90", "--seconds", "1", "--fps", "10", "--config", DEMO,
             "--repeats", "1", "--warmup", "0", "--threads", "1", "--json"]


def run_json(argv, capsys) -> dict:
    assert load_tool("benchmark").main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1, lines  # one JSON object, nothing else on stdout
    return json.loads(lines[0])


def assert_positive(result: dict, keys) -> None:
    for key in keys:
        value = result[key]
        assert isinstance(value, (int, float)) and not isinstance(value, bool), (key, value)
        assert math.isfinite(value) and value > 0, (key, value)


def test_selection_overlap_exact_and_tolerant():
    ref = [0, 10, 20, 30]
    assert selection_overlap(ref, ref) == 1.0
    assert selection_overlap([1, 10, 22, 33], ref) == 0.25
    assert selection_overlap([1, 10, 22, 33], ref, tolerance=2) == 0.75
    # one-to-one: two chosen frames near the same reference frame count once
    assert selection_overlap([9, 10, 11, 50], ref, tolerance=2) == 0.25
    assert selection_overlap([], []) == 1.0


@pytest.mark.slow  # runs the benchmark subcommands on generated clips and models
def test_keyframes_subcommand_json(capsys, tiny_scorer_run):
    r = run_json(["keyframes", *TINY_CLIP, "--scorer", str(tiny_scorer_run)], capsys)
    assert_positive(r, ["decode_s", "scoring_s", "selection_s", "write_s", "total_s", "cpu_s",
                        "reference_total_s", "reference_scoring_s", "frames_scored", "speedup_vs_reference"])
    assert r["reference_frames_scored"] == 10  # every frame of the 1 s, 10 fps clip
    assert 0.0 <= r["selection_overlap"] <= r["selection_overlap_tolerant"] <= 1.0
    assert len(r["keyframe_indices"]) == len(r["reference_keyframe_indices"]) == 16
    # the reference scores at the size the scorer trained at (64 px), like the cheap setting
    assert r["reference_settings"]["candidate_fps"] == 10.0 and r["reference_settings"]["score_size"] == 64
    assert r["settings"]["score_size"] == r["scorer_trained_size"] == 64
    assert r["scorer"].startswith("trained scorer")
    assert r["clip"]["width"] == 160 and r["clip"]["frames"] == 10 and r["generated_clip"] is True


@pytest.mark.slow  # runs the benchmark subcommands on generated clips and models
def test_keyframes_in_bfloat16_are_compared_with_float32_in_the_same_run(capsys, tiny_scorer_run):
    r = run_json(["keyframes", *TINY_CLIP, "--scorer", str(tiny_scorer_run), "--no-reference",
                  "--set", "keyframes.precision=bfloat16"], capsys)
    assert r["settings"]["precision"] == "bfloat16" and r["overrides"] == ["keyframes.precision=bfloat16"]
    assert_positive(r, ["total_s", "float32_total_s", "float32_scoring_s", "speedup_vs_float32"])
    assert r["frames_scored"] == r["float32_frames_scored"]  # the same candidates, only the arithmetic differs
    assert 0.0 <= r["selection_overlap_float32"] <= r["selection_overlap_float32_tolerant"] <= 1.0
    assert r["speedup_vs_float32_spread"]["n"] == 1 and "speedup_vs_reference" not in r


@pytest.mark.slow  # runs the benchmark subcommands on generated clips and models
def test_preprocess_subcommand_json(capsys):
    r = run_json(["preprocess", *TINY_CLIP, "--scorer-depth", "18", "--long-seconds", "2", "--dataset-clips", "4"],
                 capsys)
    assert_positive(r, ["decode_s", "scoring_s", "face_s", "flow_s", "audio_s", "write_s", "total_s", "cpu_s",
                        "baseline_total_s", "baseline_scoring_s", "baseline_flow_s", "speedup",
                        "peak_rss_mb", "peak_rss_mb_1s", "peak_rss_mb_2s", "rss_before_mb_1s"])
    assert r["peak_rss_mb"] == r["peak_rss_mb_1s"] >= r["rss_before_mb_1s"]
    assert r["speedup_spread"]["min"] <= r["speedup"] <= r["speedup_spread"]["max"]
    assert r["has_audio"] is True
    assert r["memory_clip_2s"]["frames"] == 20
    assert "random-init ResNet-18" in r["scorer"]
    # the dataset measurement: 4 copies through run_batch, one process and 2 worker processes
    assert_positive(r, ["dataset_one_process_per_clip_s", "dataset_workers_2_per_clip_s", "dataset_workers_speedup"])
    data = r["dataset"]
    assert data["clips"] == 4 and data["one_process"]["per_clip_s"]["n"] == 1
    assert data["workers_2"]["per_clip_s"]["median"] == r["dataset_workers_2_per_clip_s"]
    assert data["workers_2"]["ready_s"]["median"] < data["workers_2"]["total_s"]["median"]


@pytest.mark.slow  # runs the benchmark subcommands on generated clips and models
def test_preprocess_in_bfloat16_is_compared_with_float32_in_the_same_run(capsys):
    r = run_json(["preprocess", *TINY_CLIP, "--scorer-depth", "18", "--no-memory", "--no-baseline",
                  "--set", "keyframes.precision=bfloat16"], capsys)
    assert_positive(r, ["total_s", "float32_total_s", "float32_cpu_s", "float32_scoring_s", "speedup_vs_float32"])
    assert 0.0 <= r["selection_overlap_float32"] <= r["selection_overlap_float32_tolerant"] <= 1.0
    assert r["overrides"] == ["keyframes.precision=bfloat16"] and "speedup" not in r


@pytest.mark.parametrize("stream, shape", [("visual", [2, 3, 8, 56, 56]), ("audio", [2, 1, 64, 64]),
                                           ("flow", [2, 2, 8, 56, 56]), ("face", [2, 3, 8, 40, 40])])
@pytest.mark.slow  # runs the benchmark subcommands on generated clips and models
def test_train_subcommand_json(capsys, stream, shape):
    r = run_json(["train", stream, "--tiny", "--steps", "2", "--warmup", "0", "--batch", "2", "--clips", "2",
                  "--loader-clips", "4", "--threads", "1", "--device", "cpu", "--json"], capsys)
    assert_positive(r, ["step_s", "bare_step_s", "ratio", "loader_clips_per_s", "step_clips_per_s",
                        "loader_vs_step", "step_cpu_s"])
    assert r["input_shape"] == shape  # what the stream's dataset feeds the model
    assert r["ratio_spread"]["min"] <= r["ratio"] <= r["ratio_spread"]["max"]
    assert r["ratio_spread"]["n"] == 2
    assert r["attention_in_recipe"] is (stream == "visual")
    assert r["device"] == "cpu" and "peak_memory_gib" not in r  # peak memory is read on CUDA only


class RecordsAutocast(torch.nn.Module):
    """A linear classifier that records, at each forward, its input's device and whether autocast
    was on for that device's type."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)
        self.seen: list[tuple[str, bool]] = []

    def forward(self, x):
        self.seen.append((x.device.type, torch.is_autocast_enabled(x.device.type)))
        return self.fc(x)


@pytest.mark.parametrize("bf16", [False, True])
def test_stepper_steps_on_its_device_under_its_autocast(bf16):
    model = RecordsAutocast()
    before = model.fc.weight.detach().clone()
    stepper = Stepper(model, torch.randn(2, 4), torch.tensor([0, 1]), {"name": "sgd", "lr": 0.1}, bf16=bf16,
                      device="cpu")
    stepper()
    assert model.seen == [("cpu", bf16)] and stepper.x.device.type == "cpu"
    assert not torch.equal(model.fc.weight.detach(), before)  # one optimizer step was taken


def test_missing_video_is_named(tmp_path):
    from media.decoding import MediaFileNotFoundError

    missing = tmp_path / "nope.mp4"
    with pytest.raises(MediaFileNotFoundError, match="nope.mp4"):
        load_tool("benchmark").main(["keyframes", str(missing), "--scorer-depth", "18", "--json"])


@pytest.mark.slow  # runs the benchmark subcommands on generated clips and models
def test_live_subcommand_json(capsys, tiny_pipeline_run):
    r = run_json(["live", "--run", str(tiny_pipeline_run), "--make-clip", "--size", "160x90", "--seconds", "3",
                  "--fps", "10", "--window", "2", "--stride", "1", "--threads", "1", "--json"], capsys)
    assert r["windows"] + r["dropped"] >= 2  # windows ending at 2 s and 3 s of the 3 s clip
    assert_positive(r, ["windows_per_s", "mean_latency_s", "needed_windows_per_s", "ratio_to_realtime", "warmup_s"])
    assert r["needed_windows_per_s"] == 1.0 and r["realtime_mode"] and r["incremental"]
    assert r["ratio_to_realtime"] == pytest.approx(r["windows_per_s"], rel=1e-3)
    assert r["keeps_up"] == (r["windows_per_s"] >= 1.0 and r["late_after_first"] == 0)
    assert r["goal_met"] == (r["keeps_up"] and r["p95_latency_s"] <= 0.5)
    assert r["clip"]["has_audio"] and r["clip"]["width"] == 160


def test_live_compare_says_how_the_predictions_agree_with_window_by_window(capsys, tiny_pipeline_run):
    r = run_json(["live", "--run", str(tiny_pipeline_run), "--make-clip", "--size", "160x90", "--seconds", "3",
                  "--fps", "10", "--window", "2", "--stride", "1", "--threads", "1", "--no-realtime",
                  "--face-rate", "all", "--compare", "--json"], capsys)
    ref = r["window_by_window"]
    # every keyframe searched: shared work gives the reference's predictions
    assert r["face_rate"] is None and ref["windows_compared"] == r["windows"] == 2
    assert ref["same_label"] == 1.0 and ref["max_abs_prob_diff"] <= 1e-4


@pytest.mark.slow  # exports the tiny pipeline and predicts a generated clip with both engines
def test_predict_subcommand_json(capsys, tiny_pipeline_run, tmp_path):
    page = tmp_path / "predict.md"
    r = run_json(["predict", "--run", str(tiny_pipeline_run), "--make-clip", "--size", "160x90", "--seconds", "1",
                  "--fps", "10", "--repeats", "1", "--warmup", "0", "--threads", "1", "--json",
                  "--markdown", str(page)], capsys)
    for stage in ("scorer", "streams", "fusion", "networks", "whole"):
        assert_positive(r, [f"{stage}_torch_s", f"{stage}_onnxruntime_s"])
    for stage in ("scorer", "networks", "whole"):
        assert r[f"{stage}_ratio"]["n"] >= 1 and r[f"{stage}_ratio"]["median"] > 0
    assert r["same_label"] and r["max_prob_difference"] <= 1e-4
    assert r["goal_networks_met"] == (r["networks_ratio"]["median"] >= r["goal_networks_speedup"])
    text = page.read_text()
    assert "tools/benchmark.py predict" in text and "whole predict" in text and "Goal:" in text



@pytest.mark.slow  # runs live mode four times on a generated clip
def test_live_serve_compares_without_and_with_the_dashboard(capsys, tiny_pipeline_run):
    r = run_json(["live", "--run", str(tiny_pipeline_run), "--make-clip", "--size", "160x90", "--seconds", "3",
                  "--fps", "10", "--window", "2", "--stride", "1", "--threads", "1", "--serve", "--repeats", "2",
                  "--json"], capsys)
    assert r["benchmark"] == "live --serve"
    assert r["without_dashboard"]["runs"] == r["with_dashboard"]["runs"] == 2
    assert set(r["ratio_with_to_without"]) >= {"windows_per_s", "p95_latency_s"}
    assert r["last_run"]["serve"] and r["last_run"]["client_video_bytes"] > 0   # the client got the video



@pytest.mark.slow  # predicts and explains a generated clip through the tiny pipeline
def test_explain_subcommand_json(capsys, tiny_pipeline_run):
    r = run_json(["explain", "--run", str(tiny_pipeline_run), "--make-clip", "--size", "160x90", "--seconds", "2",
                  "--fps", "10", "--repeats", "1", "--warmup", "0", "--threads", "1", "--gradcam", "--json"], capsys)
    assert_positive(r, ["predict_median_s", "explain_median_s", "explain_gradcam_median_s", "ratio_median"])
    assert r["ratio_explain_to_predict"]["n"] == 1 and r["goal_ratio"] == 2.0
    assert r["goal_met"] == (r["ratio_median"] <= 2.0)
    assert "ratio_gradcam_to_predict" in r
