"""A fusion run exported as a release bundle: what the manifest holds, that predict from the
bundle (ONNX Runtime or PyTorch) gives the run's class, probabilities and keyframes, and that a
bundle with a changed or missing file, an unknown format version or ONNX inputs other than the
manifest's is refused with one error line and exit status 2, before any work."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from core.command_line import run_main
from release.manifest import FORMAT_VERSION, MANIFEST, BundleError, read_manifest, sha256_file
from tests.conftest import load_tool, make_frameless_clip, make_scene_clip

pytestmark = pytest.mark.slow  # exports the tiny pipeline and predicts real clips through it
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def bundle(tiny_pipeline_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "B"
    assert run_main(load_tool("export").main, ["--run", str(tiny_pipeline_run), "--out", str(out), "--archive"]) == 0
    return out


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("clips")
    return [make_scene_clip(d / "four_faces.mp4", n_frames=30, fps=10.0, size=(192, 108), faces=4),
            make_frameless_clip(d / "audio_only.mkv")]


def _predict(argv: list[str], capsys) -> tuple[int, list[dict], str]:
    code = run_main(load_tool("predict").main, [*argv, "--json", "--device", "cpu"])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines() if line.startswith("{")], err


def test_manifest_lists_every_file_with_its_sha256_and_the_models(bundle):
    manifest = json.loads((bundle / MANIFEST).read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    files = {f["path"]: f for f in manifest["files"]}
    on_disk = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()} - {MANIFEST}
    assert set(files) == on_disk and "model_card.md" in files
    for path, rec in files.items():
        assert rec["sha256"] == sha256_file(bundle / path) and rec["bytes"] == (bundle / path).stat().st_size
    streams = ("visual", "audio", "flow", "face")
    assert set(manifest["models"]) == {"scorer", "fusion", *(f"stream:{s}" for s in streams)}
    for model in manifest["models"].values():
        assert model["inputs"][0]["shape"][0] == "batch" and model["normalisation"]
    visual = [o["name"] for o in manifest["models"]["stream:visual"]["outputs"]]
    assert visual[:2] == ["features", "logits"]
    assert manifest["class_names"] == ["Positive", "Neutral", "Negative"]
    assert manifest["recipe"]["keyframes"] and len(manifest["recipe_hash"]) == 16
    assert set(manifest["temperatures"]["streams"]) == set(manifest["streams"])
    assert manifest["exported_by"] and set(manifest["runs"]) >= {"fusion", "scorer", "visual"}
    assert "training_clip_seconds" in manifest and "report" in manifest
    assert bundle.with_name("B.tar.gz").is_file()


def test_bundle_predicts_what_the_run_predicts(bundle, tiny_pipeline_run, clips, capsys):
    code, from_run, _ = _predict([*map(str, clips), "--run", str(tiny_pipeline_run)], capsys)
    assert code == 0
    for engine in ("onnxruntime", "torch"):
        code, from_bundle, _ = _predict([*map(str, clips), "--bundle", str(bundle), "--engine", engine], capsys)
        assert code == 0
        for a, b in zip(from_run, from_bundle):
            assert set(b) == set(a) | {"engine"} and b["engine"] == engine
            assert b["label"] == a["label"] and b["missing"] == a["missing"]
            assert b["keyframe_times"] == a["keyframe_times"] and b["n_faces"] == a["n_faces"]
            for c, p in a["probs"].items():
                assert b["probs"][c] == pytest.approx(p, abs=TOLERANCE)
            for s, probs in a["streams"].items():
                assert (probs is None) == (b["streams"][s] is None)
                for c, p in (probs or {}).items():
                    assert b["streams"][s][c] == pytest.approx(p, abs=TOLERANCE)
    assert from_run[1]["missing"] and "audio" not in from_run[1]["missing"]  # the audio-only file


def _refused(bundle: Path, clip: Path, capsys, needle: str) -> None:
    code, results, err = _predict([str(clip), "--bundle", str(bundle)], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and results == []
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], err


def test_one_changed_byte_is_refused(bundle, clips, tmp_path, capsys):
    copy = shutil.copytree(bundle, tmp_path / "B")
    path = copy / "streams" / "face.onnx"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    _refused(copy, clips[0], capsys, "streams/face.onnx")


def test_a_missing_file_is_refused(bundle, clips, tmp_path, capsys):
    copy = shutil.copytree(bundle, tmp_path / "B")
    (copy / "fusion.onnx").unlink()
    _refused(copy, clips[0], capsys, "fusion.onnx")


def test_an_unknown_format_version_is_refused(bundle, clips, tmp_path, capsys):
    copy = shutil.copytree(bundle, tmp_path / "B")
    manifest = json.loads((copy / MANIFEST).read_text())
    (copy / MANIFEST).write_text(json.dumps({**manifest, "format_version": FORMAT_VERSION + 1}))
    _refused(copy, clips[0], capsys, "format_version")


def test_onnx_inputs_other_than_the_manifest_are_refused(bundle, tmp_path):
    copy = shutil.copytree(bundle, tmp_path / "B")
    manifest = json.loads((copy / MANIFEST).read_text())
    manifest["models"]["fusion"]["inputs"][0]["shape"][1] += 1
    (copy / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="fusion.onnx"):
        read_manifest(copy)


def test_export_refuses_a_directory_with_files(tiny_pipeline_run, bundle, capsys):
    code = run_main(load_tool("export").main, ["--run", str(tiny_pipeline_run), "--out", str(bundle)])
    assert code == 2 and "not empty" in capsys.readouterr().err


def test_evaluate_a_bundle_gives_the_runs_metrics(bundle, tiny_pipeline_run, tmp_path, capsys):
    from fusion.evaluation import evaluate_head
    from fusion.training import load_fusion_head
    from tests.conftest import load_helper

    toy = load_helper(Path(__file__).resolve().parents[1] / "fusion" / "toy_features.py", "tests_release_toy")
    head, recipe, classes = load_fusion_head(tiny_pipeline_run)
    feats = toy.write_feature_dir(tmp_path / "feats", head.stream_dims, mode="all", missing={"audio": 0.3})
    ref = evaluate_head(head, recipe, classes, features=feats, split="val", weights_split="val",
                        out=tmp_path / "ref", name="run", temperature=None)
    code = run_main(load_tool("evaluate").main, ["--bundle", str(bundle), "--features", str(feats), "--split", "val",
                                                 "--out", str(tmp_path / "eval"), "--device", "cpu",
                                                 "--no-calibration"])
    assert code == 0 and "wrote" in capsys.readouterr().out
    got = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert got["accuracy"] == ref["accuracy"] and got["by_availability"]["subsets"] == ref["by_availability"]["subsets"]
    assert got["calibration"]["nll"] == pytest.approx(ref["calibration"]["nll"], abs=TOLERANCE)
    assert not (bundle / "eval_val").exists()  # nothing written into the bundle


def test_export_update_keeps_a_current_bundle(tiny_pipeline_run, bundle, capsys):
    code = run_main(load_tool("export").main, ["--run", str(tiny_pipeline_run), "--out", str(bundle), "--update"])
    assert code == 0 and "reusing" in capsys.readouterr().out
