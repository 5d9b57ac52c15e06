"""Every tool answers a user mistake (a missing file, a bad config key or ``--set`` override, a
checkpoint that is missing, corrupted or of the wrong kind, a folder that is not a run, dataset,
cache or feature directory) with ONE stderr line ``error: ...`` naming the file, and exit status
2, no traceback; ``--debug`` adds the traceback; a bug keeps its traceback. The tools run as
their command line does: their ``__main__`` block, in this process, and in a real subprocess for
the two cases that need one. Also: files of a dataset folder that are not clips are listed with
the reason, and errors.jsonl records the exception's class."""
from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import make_scene_clip

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / "tools"
CONFIGS = ROOT / "configs"
DEMO_PRE = CONFIGS / "preprocess/demo.yaml"


def run_cli(tool: str, argv: list[str], monkeypatch, capsys) -> tuple[int, str, str]:
    """``python tools/<tool>.py argv...`` in this process: ``(exit status, stdout, stderr)``."""
    monkeypatch.setattr(sys, "argv", [str(TOOLS / f"{tool}.py"), *argv])
    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(TOOLS / f"{tool}.py"), run_name="__main__")
    out, err = capsys.readouterr()
    return info.value.code, out, err


def assert_one_error_line(rc: int, err: str, *names: str) -> str:
    lines = err.splitlines()
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


@pytest.fixture(scope="module")
def bad(tmp_path_factory, tiny_scorer_run, tiny_pipeline_run) -> dict[str, str]:
    """Bad inputs, built once: ``{placeholder: path}`` for the cases below."""
    from benchmarks.training import fabricate_cache
    from core.config import load_config

    base = tmp_path_factory.mktemp("bad_inputs")
    corrupt = base / "corrupt_run"
    shutil.copytree(tiny_scorer_run, corrupt)
    weights = corrupt / "best" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of the tensor data
    weights.write_bytes(bytes(data))
    broken_meta = base / "broken_meta_run"
    shutil.copytree(tiny_scorer_run, broken_meta)
    meta = broken_meta / "best" / "meta.json"
    meta.write_text(meta.read_text()[:40])
    (base / "not_a_run").mkdir()
    (base / "not_a_run" / "notes.txt").write_text("not a checkpoint")
    (base / "empty").mkdir()
    (base / "a_file").write_text("a file where a folder is expected")
    no_videos = base / "no_videos"
    no_videos.mkdir()
    (no_videos / "notes.txt").write_text("no videos here")
    videos = base / "videos"
    videos.mkdir()
    make_scene_clip(videos / "clip.mp4", n_frames=4, size=(64, 48), faces=1, audio=False)
    cache = fabricate_cache(base / "audio_cache", stream="audio", n_clips=3, clip_size=(64, 36), clip_seconds=0.5,
                            preprocess_cfg=load_config(DEMO_PRE))
    configs = {
        "pre_unknown": f"base: {CONFIGS}/preprocess/default.yaml\nkeyframes: {{num_keyframez: 8}}\n",
        "stream_unknown_model": f"base: {CONFIGS}/streams/audio.yaml\nmodel: {{dropuot: 0.1}}\n",
        "stream_unknown_top": f"base: {CONFIGS}/streams/audio.yaml\ntrian: {{epochs: 1}}\n",
        "scorer_unknown_model": f"base: {CONFIGS}/keyframes/scorer_r50.yaml\nmodel: {{dept: 18}}\n",
        "fusion_unknown_model": f"base: {CONFIGS}/fusion/concat_fc.yaml\nmodel: {{drop: 0.1}}\n",
        "not_yaml": "model: [1, 2\n",
        "empty_recipe": "",
    }
    paths = {name: base / f"{name}.yaml" for name in configs}
    for name, text in configs.items():
        paths[name].write_text(text)
    # a fusion run whose visual stream run was moved away after training
    moved = base / "moved_fusion_run"
    shutil.copytree(tiny_pipeline_run, moved)
    moved_meta = json.loads((moved / "best" / "meta.json").read_text(encoding="utf-8"))
    moved_meta["config"]["pipeline"]["streams"]["visual"]["run"] = str(base / "moved_visual_run")
    (moved / "best" / "meta.json").write_text(json.dumps(moved_meta), encoding="utf-8")
    return {"moved_fusion_run": str(moved), "moved_visual_run": str(base / "moved_visual_run"),
            "corrupt_run": str(corrupt), "corrupt_weights": str(weights), "broken_meta": str(meta),
            "broken_meta_run": str(broken_meta), "not_a_run": str(base / "not_a_run"), "empty": str(base / "empty"),
            "a_file": str(base / "a_file"), "missing": str(base / "missing"), "no_videos": str(no_videos),
            "videos": str(videos),
            "audio_cache": str(cache), "scorer_run": str(tiny_scorer_run), "demo_pre": str(DEMO_PRE),
            "configs": str(CONFIGS), "visual_run": str(tiny_pipeline_run.parent / "visual_run"),
            "audio_run": str(tiny_pipeline_run.parent / "audio_run"),
            **{name: str(p) for name, p in paths.items()}}


# (tool, argv, what the line must name); {placeholders} are paths from the `bad` fixture
CASES = [
    ("predict", "clip.mp4 --run {missing}", ["{missing}"]),
    ("predict", "clip.mp4 --run {not_a_run}", ["{not_a_run}"]),
    ("predict", "clip.mp4 --run {corrupt_run}", ["{corrupt_weights}", "corrupted"]),
    ("predict", "clip.mp4 --run {scorer_run}", ["{scorer_run}", "not a fusion run"]),
    ("evaluate", "--run {broken_meta_run}", ["{broken_meta}", "not valid JSON"]),
    ("evaluate", "--run {corrupt_run}", ["{corrupt_weights}"]),
    ("live", "--run {corrupt_run} --source clip.mp4", ["{corrupt_weights}"]),
    ("extract_keyframes", "--config {missing}.yaml --videos {no_videos} --scorer {scorer_run} --out {missing}",
     ["{missing}.yaml", "not found"]),
    ("extract_keyframes", "--config {pre_unknown} --videos {videos} --scorer {scorer_run} --out {missing}",
     ["{pre_unknown}", "num_keyframez"]),
    ("extract_keyframes", "--config {demo_pre} --set keyframes --videos {no_videos} --scorer {scorer_run} "
                          "--out {missing}", ["{demo_pre}", "keyframes"]),
    ("extract_keyframes", "--config {demo_pre} --videos {empty} --scorer {scorer_run} --out {missing}",
     ["{empty}", "no video files"]),
    ("preprocess", "--config {demo_pre} --videos {missing} --streams audio --out {missing}", ["{missing}"]),
    ("preprocess", "--config {not_yaml} --videos {no_videos} --streams audio --out {missing}",
     ["{not_yaml}", "not valid YAML"]),
    ("preprocess", "--config {demo_pre} --set faces.num_faces=0 --videos {videos} --scorer {scorer_run} "
                   "--out {missing}", ["{demo_pre}", "faces.num_faces must be >= 1"]),
    ("preprocess", "--config {demo_pre} --set flow.algoritm=dis --videos {videos} --streams flow --out {missing}",
     ["{demo_pre}", "flow: unknown key(s) ['algoritm']"]),
    ("preprocess", "--config {demo_pre} --set labelz.map=5 --videos {videos} --streams audio --out {missing}",
     ["{demo_pre}", "the preprocessing recipe: unknown key(s) ['labelz']"]),
    ("extract_keyframes", "--config {demo_pre} --videos {videos} --scorer {visual_run} --out {missing}",
     ["{visual_run}", "a run of the visual stream, not a keyframe scorer"]),
    ("preprocess", "--config {demo_pre} --set keyframes.score_size=99 --videos {videos} --scorer {scorer_run} "
                   "--out {missing}", ["{scorer_run}", "keyframes.score_size"]),
    ("train_stream", "--config {stream_unknown_model} --cache {audio_cache} --out {missing}",
     ["{stream_unknown_model}", "dropuot"]),
    ("train_stream", "--config {stream_unknown_top} --cache {audio_cache} --out {missing}",
     ["{stream_unknown_top}", "trian"]),
    ("train_stream", "--config {configs}/streams/audio_tiny.yaml --set train.epochs=x --cache {audio_cache} "
                     "--out {missing}", ["audio_tiny.yaml", "train.epochs"]),
    ("train_stream", "--config {configs}/streams/audio_tiny.yaml --cache {empty} --out {missing}", ["{empty}"]),
    # a value a builder refuses, of the model, the view, train: or pretrained:, before any training
    ("train_stream", "--config {configs}/streams/audio_tiny.yaml --set model.depth=7 --cache {audio_cache} "
                     "--out {missing}", ["audio_tiny.yaml", "model: ResNet depth must be one of"]),
    ("train_stream", "--config {configs}/streams/audio_tiny.yaml --set model.stem_dim_out=0 --cache {audio_cache} "
                     "--out {missing}", ["audio_tiny.yaml", "model: stem_dim_out must be an integer >= 1"]),
    ("train_stream", "--config {configs}/streams/audio_tiny.yaml --set data.resize=-5 --cache {audio_cache} "
                     "--out {missing}", ["audio_tiny.yaml", "data.resize must be"]),
    ("train_stream", "--config {configs}/streams/audio_tiny.yaml --set train.seed=abc --cache {audio_cache} "
                     "--out {missing}", ["audio_tiny.yaml", "train.seed"]),
    ("train_stream", "--config {configs}/streams/audio_tiny.yaml --set model.pretrained=x.pth --cache {audio_cache} "
                     "--out {missing}", ["audio_tiny.yaml", "model: pretrained must be a mapping"]),
    ("train_stream", "--config {empty_recipe} --cache {audio_cache} --out {missing}",
     ["{empty_recipe}", "'stream' must be one of"]),
    ("train_stream", "--config {configs}/streams/audio_tiny.yaml --set exclude.fraction=2 --cache {audio_cache} "
                     "--out {missing}", ["audio_tiny.yaml", "exclude.fraction"]),
    ("train_stream", "--config {configs}/streams/audio_tiny.yaml --cache {missing} --out {missing}_run",
     ["{missing}", "not found"]),
    ("train_keyframe_scorer", "--config {scorer_unknown_model} --data {empty} --out {missing}",
     ["{scorer_unknown_model}", "dept"]),
    ("train_keyframe_scorer", "--config {configs}/keyframes/scorer_demo.yaml --data {empty} --out {missing}",
     ["{empty}"]),
    ("train_keyframe_scorer", "--config {configs}/keyframes/scorer_demo.yaml --set data.input_size=0 --data {empty} "
                              "--out {missing}", ["scorer_demo.yaml", "data.input_size"]),
    ("train_fusion", "--config {fusion_unknown_model} --features {empty} --out {missing}",
     ["{fusion_unknown_model}", "drop"]),
    ("train_fusion", "--config {configs}/fusion/concat_fc.yaml --features {empty} --out {missing}", ["{empty}"]),
    ("train_fusion", "--config {configs}/fusion/concat_fc.yaml --set streams=[visual,visual] --features {empty} "
                     "--out {missing}", ["concat_fc.yaml", "streams must be a list of distinct"]),
    ("train_fusion", "--config {configs}/fusion/attention.yaml --set streams=[visual,audio] model.hidden_dim=0 "
                     "--features {empty} --out {missing}", ["attention.yaml", "model: hidden_dim must be"]),
    ("extract_features", "--streams audio={corrupt_run} --cache {audio_cache} --out {missing}",
     ["{corrupt_weights}"]),
    ("extract_features", "--streams audio={scorer_run} --cache {audio_cache} --out {missing}",
     ["{scorer_run}", "not a stream run"]),
    ("extract_features", "--streams audio={audio_run} --cache {missing} --out {missing}_feats", ["{missing}"]),
    ("extract_features", "--streams visual={audio_run} --cache {audio_cache} --out {missing}",
     ["{audio_run}", "a run of the audio stream, given for the visual stream"]),
    ("extract_features", "--streams audio={audio_run},visual={audio_run} --cache {audio_cache} --out {missing}",
     ["{audio_run}", "a run of the audio stream, given for the visual stream"]),
    ("report", "--runs {missing} --out {missing}_report", ["{missing}", "no such runs directory"]),
    ("report", "--runs {empty} --out {missing}", ["{empty}", "no Concat-FC run"]),
    ("robustness", "--runs {missing} --out {missing}_robustness", ["{missing}", "no such runs directory"]),
    ("robustness", "--runs {empty} --out {missing}", ["{empty}", "no Concat-FC run"]),
    ("check_weights", "--config {configs}/streams/flow_tiny.yaml --weights {missing}.pth", ["{missing}.pth"]),
    ("check_weights", "--config {configs}/streams/flow_tiny.yaml --weights {corrupt_weights}",
     ["{corrupt_weights}"]),
    ("make_synthetic", "--out {a_file} --train 1 --val 1", ["{a_file}"]),
    ("make_synthetic", "--layout ravdess --out {a_file} --train 1 --val 1", ["{a_file}"]),
    ("train_face_pretrain", "--config {configs}/faces/fer2013_tiny.yaml --data {empty} --out {missing}",
     ["{empty}", "fer2013.csv"]),
    ("train_face_pretrain", "--config {configs}/faces/fer2013_tiny.yaml --set data.size=3 --data {empty} "
                            "--out {missing}", ["fer2013_tiny.yaml", "size"]),
    ("demo", "--out {a_file}", ["{a_file}"]),
    ("ablate", "keyframes --scorer {missing}/scorer --out {missing}", ["{missing}/scorer"]),
    ("ablate", "keyframes --train-scorer --out {a_file}", ["{a_file}"]),
    ("ablate", "keyframes --scorer {scorer_run} --set keyframes.precision=half --out {missing}",
     ["keyframes.precision", "half"]),
    ("ablate", "keyframes --scorer {scorer_run} --config {configs}/fusion/concat_fc.yaml --out {missing}",
     ["concat_fc.yaml", "the preprocessing recipe: unknown key(s)"]),
    ("benchmark", "keyframes {missing}.mp4 --json", ["{missing}.mp4"]),
    ("benchmark", "live --run {not_a_run} --json", ["{not_a_run}"]),
    ("benchmark", "live --run {moved_fusion_run} --json", ["{moved_fusion_run}", "{moved_visual_run}", "moved"]),
    ("predict", "clip.mp4 --run {moved_fusion_run}", ["{moved_fusion_run}", "{moved_visual_run}", "moved"]),
    ("live", "--run {moved_fusion_run} --source clip.mp4", ["{moved_fusion_run}", "{moved_visual_run}", "moved"]),
    ("evaluate", "--run {moved_fusion_run}", ["features/val/index.json", "no features for split"]),
    ("export", "--run {moved_fusion_run} --out {missing}", ["{moved_fusion_run}", "{moved_visual_run}", "moved"]),
    ("export", "--run {empty} --out {missing}", ["{empty}"]),
    ("explain", "{missing}.mp4 --run {not_a_run} --out {missing}", ["{missing}.mp4"]),
    ("predict", "clip.mp4 --bundle {empty}", ["{empty}/manifest.json", "not a release bundle"]),
    ("evaluate", "--bundle {missing} --out {missing}_eval", ["{missing}", "not a release bundle"]),
    ("benchmark", "preprocess --dataset-clips 3 --json", ["--dataset-clips must be >= --dataset-workers + 2 = 4"]),
    ("config_reference", "--out {a_file}/config.md", ["{a_file}"]),
    ("benchmark", "memory --config {missing}.yaml --json", ["{missing}.yaml"]),
    ("gpu_check", "--device cpu --markdown {missing}", ["--allow-cpu"]),
]


@pytest.mark.parametrize("tool,argv,names", CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_a_user_mistake_is_one_line_naming_the_file(tool, argv, names, bad, monkeypatch, capsys):
    rc, _, err = run_cli(tool, argv.format(**bad).split(), monkeypatch, capsys)
    assert_one_error_line(rc, err, *(n.format(**bad) for n in names))
    assert not Path(bad["missing"]).exists()  # nothing was written for a refused command


def test_every_tool_has_a_case():
    assert {p.stem for p in TOOLS.glob("*.py")} == {c[0] for c in CASES}


@pytest.mark.parametrize("argv", [[t.stem, "--help"] for t in sorted(TOOLS.glob("*.py"))
                                  if t.stem not in ("benchmark", "ablate")]
                         + [["benchmark", sub, "--help"]
                            for sub in ("keyframes", "preprocess", "train", "live", "memory", "predict")]
                         + [["ablate", "keyframes", "--help"]],
                         ids=lambda argv: "-".join(argv[:-1]))
def test_every_tool_offers_debug(argv, monkeypatch, capsys):
    rc, out, _ = run_cli(argv[0], argv[1:], monkeypatch, capsys)
    assert rc == 0 and "--debug" in out


def test_debug_prints_the_traceback_then_the_line(bad, monkeypatch, capsys):
    rc, _, err = run_cli("predict", ["clip.mp4", "--run", bad["corrupt_run"], "--debug"], monkeypatch, capsys)
    assert rc == 2
    assert err.startswith("Traceback (most recent call last):") and "CheckpointError" in err
    assert err.splitlines()[-1].startswith(f"error: {bad['corrupt_weights']}")


def test_a_bug_keeps_its_traceback():
    from core.command_line import run_main

    def buggy(argv):
        return {}["missing key"]

    with pytest.raises(KeyError):
        run_main(buggy, [])


def test_a_full_disk_is_one_line_saying_what_is_intact(tmp_path, capsys):
    import errno

    from core.command_line import run_main
    from core.storage import WriteError

    target = tmp_path / "metrics.json"
    target.write_text("previous")

    def full(argv):
        raise WriteError(errno.ENOSPC, f"no space left writing {target}; the previous file is intact")

    assert run_main(full, []) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and str(target) in err and "Traceback" not in err
    assert target.read_text() == "previous"


def test_argparse_usage_errors_still_exit_2(bad, monkeypatch, capsys):
    rc, _, err = run_cli("preprocess", ["--config", bad["demo_pre"], "--videos", bad["no_videos"], "--out",
                                        bad["missing"], "--shard", "3/3"], monkeypatch, capsys)
    assert rc == 2 and "usage:" in err and "--shard" in err


# numeric and device options out of range: argparse's usage error (exit 2) before any work
USAGE_CASES = [
    ("report", "--runs {empty} --out {missing} --draws 0", "--draws"),
    ("robustness", "--runs {empty} --out {missing} --damages rain", "--damages"),
    ("robustness", "--runs {empty} --out {missing} --device no_such_device", "--device"),
    ("extract_features", "--streams audio={audio_run} --cache {audio_cache} --out {missing} --batch-size -2",
     "--batch-size"),
    ("extract_features", "--streams audio={audio_run} --cache {audio_cache} --out {missing} --splits train,vall",
     "--splits"),
    ("make_synthetic", "--out {missing} --train 2 --val 2 --width 7", "--width"),
    ("make_synthetic", "--out {missing} --train 2 --val 2 --cue-noise 2", "--cue-noise"),
    ("make_synthetic", "--out {missing} --train 2 --val 2 --sample-rate 0", "--sample-rate"),
    ("demo", "--out {missing} --faceless-fraction 1.5", "--faceless-fraction"),
    ("ablate", "keyframes --scorer {scorer_run} --out {missing} --fps 0", "--fps"),
    ("ablate", "keyframes --scorer {scorer_run} --out {missing} --families peak,burst", "--families"),
    ("ablate", "keyframes --scorer {scorer_run} --out {missing} --selections no_rule6", "--selections"),
    ("ablate", "keyframes --scorer {scorer_run} --out {missing} --off-peak 0.5", "--off-peak"),
    ("ablate", "keyframes --scorer {scorer_run} --out {missing} --seeds 0", "--seeds"),
    ("benchmark", "live --run {missing} --stride 0", "--stride"),
    ("benchmark", "train visual --tiny --batch 0", "--batch"),
    ("benchmark", "preprocess --dataset-clips 4 --dataset-workers 0", "--dataset-workers"),
    ("check_weights", "--config {configs}/streams/flow_tiny.yaml --weights {missing}.pth --num-classes 0",
     "--num-classes"),
    ("live", "--run {missing} --source clip.mp4 --device no_such_device", "--device"),
    ("live", "--run {missing} --source clip.mp4 --face-rate 0", "--face-rate"),
    ("live", "--run {missing} --source clip.mp4 --face-rate some", "--face-rate"),
    ("predict", "clip.mp4 --run {missing} --device no_such_device", "--device"),
    ("evaluate", "--run {missing} --device no_such_device", "--device"),
    ("extract_features", "--streams audio={audio_run} --cache {audio_cache} --out {missing} --device no_such_device",
     "--device"),
    ("preprocess", "--config {demo_pre} --videos {no_videos} --out {missing} --device no_such_device", "--device"),
]


@pytest.mark.parametrize("tool,argv,option", USAGE_CASES, ids=[f"{c[0]}-{c[2]}" for c in USAGE_CASES])
def test_an_option_out_of_range_is_a_usage_error(tool, argv, option, bad, monkeypatch, capsys):
    rc, _, err = run_cli(tool, argv.format(**bad).split(), monkeypatch, capsys)
    assert rc == 2 and "usage:" in err and f"argument {option}: " in err and "Traceback" not in err, err
    assert not Path(bad["missing"]).exists()


def _cli_subprocess(tool: str, *argv: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return subprocess.run([sys.executable, str(TOOLS / f"{tool}.py"), *argv], env=env, capture_output=True,
                          text=True, timeout=240)


@pytest.mark.slow  # runs the real command line with worker processes
def test_command_line_prints_only_the_error_even_from_worker_processes(bad, tmp_path):
    """The real command line, with 2 worker processes and a corrupt scorer: the workers' setup
    error ends the run with the one line (a Pool respawns a worker whose setup raises, so this
    used to loop forever); no library warning is printed before it."""
    out = tmp_path / "cache"
    videos = tmp_path / "videos"
    videos.mkdir()
    make_scene_clip(videos / "clip.mp4", n_frames=4, size=(64, 48), faces=1, audio=False)
    proc = _cli_subprocess("extract_keyframes", "--config", bad["demo_pre"], "--videos", str(videos),
                           "--scorer", bad["corrupt_run"], "--out", str(out), "--workers", "2")
    assert_one_error_line(proc.returncode, proc.stderr, bad["corrupt_weights"])
    assert proc.stdout.splitlines()[0] == f"1 clips from {videos} -> {out}"


@pytest.mark.slow  # runs the real command line with worker processes
def test_a_refused_recipe_leaves_the_caches_record_as_it_was(bad, tmp_path):
    """Worker processes build the job; a recipe they refuse ends the run with the one line before
    pipeline.json (how the cache was made) is rewritten, and nothing is logged per clip."""
    from core.config import load_config
    from streams.preprocessing import write_pipeline_record

    cache = tmp_path / "cache"
    write_pipeline_record(cache, load_config(DEMO_PRE), bad["scorer_run"])
    before = (cache / "pipeline.json").read_bytes()
    proc = _cli_subprocess("preprocess", "--config", bad["demo_pre"], "--set", "audio.n_mels=0", "--videos",
                           bad["videos"], "--scorer", bad["scorer_run"], "--out", str(cache), "--workers", "2")
    assert_one_error_line(proc.returncode, proc.stderr, bad["demo_pre"], "audio.n_mels")
    assert (cache / "pipeline.json").read_bytes() == before
    assert sorted(p.name for p in cache.iterdir()) == ["pipeline.json"]


def test_skipped_files_are_listed_and_errors_jsonl_names_the_class(tmp_path, monkeypatch, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    make_scene_clip(videos / "good.mp4", n_frames=8, size=(64, 48), faces=1, audio=True)
    (videos / "broken.mp4").write_bytes(b"not a video at all")
    (videos / "song.m4a").write_bytes(b"\0" * 64)
    (videos / "notes.txt").write_text("shot on the 3rd")
    (videos / ".DS_Store").write_bytes(b"\0")  # hidden: neither a clip nor worth a line
    out = tmp_path / "cache"
    rc, stdout, _ = run_cli("preprocess", ["--config", str(DEMO_PRE), "--videos", str(videos), "--streams", "audio",
                                           "--out", str(out)], monkeypatch, capsys)
    assert rc == 0
    lines = stdout.splitlines()
    assert lines[0].startswith(f"2 clips from {videos}")
    assert lines[1] == f"skipped 2 file(s) in {videos} that are not clips:"
    assert lines[2].startswith("  notes.txt: not a video file (.txt;")
    assert lines[3].startswith("  song.m4a: not a video file (.m4a;")
    assert "DS_Store" not in stdout
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert [(e["item"], e["error_type"]) for e in errors] == [("broken", "NotMediaError")]
