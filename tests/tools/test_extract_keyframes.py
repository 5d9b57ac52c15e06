"""tools/extract_keyframes.py: outputs, resume after an interrupted run, a corrupt file among
good ones, shards, exit codes; scorer checkpoint round trip."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import load_tool

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "configs/preprocess/demo.yaml")




@pytest.fixture(scope="module")
def video_dir(tmp_path_factory):
    from tests.conftest import make_scene_clip

    d = tmp_path_factory.mktemp("videos")
    for i in range(4):
        make_scene_clip(d / f"clip{i}.mp4", n_frames=12, size=(160, 90), faces=1, audio=False, seed=i)
    return d


def run(argv):
    return load_tool("extract_keyframes").main(argv)


@pytest.mark.slow  # extracts keyframes of a dataset twice
def test_outputs_and_resume_skips_done_clips(tmp_path, video_dir, tiny_scorer_run, monkeypatch):
    from streams.preprocessing import ClipPreprocessor

    out = tmp_path / "cache"
    real_call = ClipPreprocessor.__call__
    seen = []

    def interrupted(self, record):
        seen.append(record.clip_id)
        if len(seen) == 3:
            raise KeyboardInterrupt  # a kill in the middle of the run
        return real_call(self, record)

    monkeypatch.setattr(ClipPreprocessor, "__call__", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(["--config", CONFIG, "--videos", str(video_dir), "--scorer", str(tiny_scorer_run), "--out", str(out)])
    done_first = sorted(p.parent.name for p in out.glob("*/keyframes.json"))
    assert len(done_first) == 2
    assert not list(out.rglob("*.tmp"))
    monkeypatch.setattr(ClipPreprocessor, "__call__", real_call)

    statuses = []
    monkeypatch.setattr(ClipPreprocessor, "__call__",
                        lambda self, r: statuses.append(real_call(self, r)) or statuses[-1])
    assert run(["--config", CONFIG, "--videos", str(video_dir), "--scorer", str(tiny_scorer_run),
                "--out", str(out), "--contact-sheet"]) == 0
    assert sorted(statuses) == ["done", "done", "skipped", "skipped"]
    for d in out.iterdir():
        if not d.is_dir():
            continue
        kf = np.load(d / "keyframes.npy")
        meta = json.loads((d / "keyframes.json").read_text())
        assert kf.shape[0] == 16 and kf.dtype == np.uint8 and min(kf.shape[1:3]) == 64
        assert meta["duplicated"] is True  # 12-frame clips: fewer frames than keyframes
        assert len(meta["keyframes"]) == 16 and "Positive" in meta["keyframes"][0]["probs"]
        assert meta["source"]["fps"] == pytest.approx(15.0)


def test_contact_sheet_is_a_png(tmp_path, video_dir, tiny_scorer_run):
    import cv2

    out = tmp_path / "cache"
    run(["--config", CONFIG, "--videos", str(video_dir), "--scorer", str(tiny_scorer_run), "--out", str(out),
         "--contact-sheet", "--shard", "0/4"])
    sheets = list(out.rglob("contact_sheet.png"))
    assert sheets and cv2.imread(str(sheets[0])) is not None


def test_corrupt_file_is_logged_and_the_run_goes_on(tmp_path, video_dir, tiny_scorer_run, capsys):
    videos = tmp_path / "videos"
    videos.mkdir()
    for p in sorted(video_dir.glob("*.mp4"))[:2]:
        (videos / p.name).write_bytes(p.read_bytes())
    good = (videos / "clip0.mp4").read_bytes()
    (videos / "broken.mp4").write_bytes(good[: len(good) // 2])  # truncated
    out = tmp_path / "cache"
    rc = run(["--config", CONFIG, "--videos", str(videos), "--scorer", str(tiny_scorer_run), "--out", str(out)])
    assert rc == 0
    errors = [json.loads(line) for line in (out / "errors.jsonl").read_text().splitlines()]
    assert [e["item"] for e in errors] == ["broken"]
    assert "broken.mp4" in errors[0]["error"]
    assert "done 2" in capsys.readouterr().out


def test_exit_code_nonzero_only_when_every_clip_failed(tmp_path, tiny_scorer_run):
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "a.mp4").write_bytes(b"not a video")
    assert run(["--config", CONFIG, "--videos", str(videos), "--scorer", str(tiny_scorer_run),
                "--out", str(tmp_path / "c")]) == 1


def test_shards_partition_the_dataset(tmp_path, video_dir, tiny_scorer_run):
    from media.selection import select_records

    all_ids = {r.clip_id for r in select_records(str(video_dir), split=None, shard=None)}
    shards = [{r.clip_id for r in select_records(str(video_dir), split=None, shard=f"{i}/3")} for i in range(3)]
    assert set().union(*shards) == all_ids
    assert sum(len(s) for s in shards) == len(all_ids)  # no overlap
    # and the tool writes exactly its shard
    out = tmp_path / "cache"
    run(["--config", CONFIG, "--videos", str(video_dir), "--scorer", str(tiny_scorer_run), "--out", str(out),
         "--shard", "1/3"])
    assert {p.parent.name for p in out.glob("*/keyframes.json")} == shards[1]


def test_bad_shard_is_a_usage_error(tmp_path, video_dir, tiny_scorer_run, capsys):
    with pytest.raises(SystemExit) as info:
        run(["--config", CONFIG, "--videos", str(video_dir), "--scorer", str(tiny_scorer_run),
             "--out", str(tmp_path), "--shard", "3/3"])
    assert info.value.code == 2 and "--shard '3/3'" in capsys.readouterr().err


def test_scorer_checkpoint_round_trip_gives_same_outputs(tmp_path):
    from keyframes.scorer import SentimentScorer, create_scorer
    from training.checkpoints import save_checkpoint

    torch.manual_seed(1)
    model = create_scorer(num_classes=3, depth=18).eval()
    save_checkpoint(tmp_path / "best", state_dict=model.state_dict(),
                    meta={"config": {"model": {"depth": 18}, "data": {"input_size": 32}},
                          "class_names": ["Positive", "Neutral", "Negative"], "epoch": 3, "metrics": {}})
    frames = [np.random.default_rng(i).integers(0, 255, (36, 64, 3)).astype(np.uint8) for i in range(3)]
    original = SentimentScorer(model, ["Positive", "Neutral", "Negative"], input_size=32).score(frames)
    loaded = SentimentScorer.from_checkpoint(tmp_path)
    assert loaded.class_names == ("Positive", "Neutral", "Negative") and loaded.input_size == 32
    np.testing.assert_allclose(loaded.score(frames), original, rtol=1e-5, atol=1e-6)
    assert np.allclose(original.sum(1), 1.0)
