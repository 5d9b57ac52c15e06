"""One-pass preprocessing into the cache: shapes, missing modalities, resume, kill safety."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.config import load_config
from media.decoding import MediaError
from media.layouts import ClipRecord
from streams.cache import load_entries
from streams.preprocessing import build_preprocess_job, verify_cache

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ("Positive", "Neutral", "Negative")


def cfg(**over):
    c = load_config(ROOT / "configs/preprocess/demo.yaml")
    for k, v in over.items():
        section, key = k.split("__")
        c[section][key] = v
    return c


def record(path: Path, clip_id: str, label: int = 0, split: str = "train") -> ClipRecord:
    return ClipRecord(clip_id=clip_id, path=path, label=label, class_names=CLASSES, split=split)


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    from tests.conftest import make_scene_clip

    d = tmp_path_factory.mktemp("clips")
    return {
        "good": make_scene_clip(d / "good.mp4", faces=3, audio=True),
        "silent": make_scene_clip(d / "silent.mp4", faces=2, audio=False, seed=1),
        "nofaces": make_scene_clip(d / "nofaces.mp4", faces=0, audio=True, seed=2),
        "short": make_scene_clip(d / "short.mp4", n_frames=10, faces=1, audio=True, seed=3),
    }


@pytest.mark.slow  # preprocesses real clips with the tiny scorer
def test_clip_with_faces_and_audio_gives_all_files(tmp_path, clips, tiny_scorer_run):
    job = build_preprocess_job(cfg(), str(tiny_scorer_run), str(tmp_path))
    assert job(record(clips["good"], "Train/good")) == "done"
    d = tmp_path / "Train" / "good"
    kf, flow, faces, mel = (np.load(d / f) for f in ("keyframes.npy", "flow.npy", "faces.npy", "mel.npy"))
    assert kf.dtype == np.uint8 and kf.shape[0] == 16 and kf.shape[3] == 3 and min(kf.shape[1:3]) == 64
    assert flow.dtype == np.uint8 and flow.shape[:2] == (8, 2) and min(flow.shape[2:]) == 64
    assert faces.dtype == np.uint8 and faces.shape == (16, 48, 48, 3)
    assert mel.dtype == np.float16 and mel.shape[0] == 128 and mel.shape[1] > 10
    meta = json.loads((d / "meta.json").read_text())
    assert meta["has_audio"] is True
    assert meta["n_faces"] >= 3  # three people, several keyframes
    assert meta["flow"]["bound"] == 20.0 and meta["flow"]["algorithm"] == "dis"
    assert len(meta["keyframes"]["times"]) == 16
    assert set(meta["arrays"]) == {"visual", "flow", "face", "audio"}
    assert "torch" in meta["package_versions"]
    kf_json = json.loads((d / "keyframes.json").read_text())
    assert [k["time"] for k in kf_json["keyframes"]] == sorted(k["time"] for k in kf_json["keyframes"])
    # memory-mappable for training
    assert isinstance(np.load(d / "flow.npy", mmap_mode="r"), np.memmap)


@pytest.mark.slow  # preprocesses real clips with the tiny scorer
def test_faces_found_match_people_drawn(tmp_path, clips, tiny_scorer_run):
    job = build_preprocess_job(cfg(), str(tiny_scorer_run), str(tmp_path), streams=("face",))
    job(record(clips["silent"], "silent"))
    meta = json.loads((tmp_path / "silent" / "meta.json").read_text())
    per_frame = [len(b) for b in meta["faces"]["boxes"]]
    assert max(per_frame) == 2 and np.median(per_frame) == 2


@pytest.mark.slow  # preprocesses real clips with the tiny scorer
def test_missing_audio_and_missing_faces_are_recorded_not_faked(tmp_path, clips, tiny_scorer_run):
    job = build_preprocess_job(cfg(), str(tiny_scorer_run), str(tmp_path))
    job(record(clips["silent"], "silent"))
    job(record(clips["nofaces"], "nofaces"))
    silent = json.loads((tmp_path / "silent" / "meta.json").read_text())
    assert silent["has_audio"] is False and not (tmp_path / "silent" / "mel.npy").exists()
    nof = json.loads((tmp_path / "nofaces" / "meta.json").read_text())
    assert nof["n_faces"] == 0
    assert np.load(tmp_path / "nofaces" / "faces.npy").shape[0] == 0
    entries = {e.clip_id: e for e in load_entries(tmp_path)}
    assert not entries["silent"].available("audio") and entries["silent"].available("face")
    assert not entries["nofaces"].available("face") and entries["nofaces"].available("audio")


@pytest.mark.slow  # preprocesses real clips with the tiny scorer
def test_ten_frame_clip_repeats_keyframes_and_says_so(tmp_path, clips, tiny_scorer_run):
    job = build_preprocess_job(cfg(), str(tiny_scorer_run), str(tmp_path))
    assert job(record(clips["short"], "short")) == "done"
    meta = json.loads((tmp_path / "short" / "meta.json").read_text())
    assert meta["keyframes"]["duplicated"] is True
    assert np.load(tmp_path / "short" / "keyframes.npy").shape[0] == 16
    assert np.load(tmp_path / "short" / "flow.npy").shape[0] == 8


@pytest.mark.slow  # preprocesses real clips with the tiny scorer
def test_corrupt_file_raises_media_error_naming_it(tmp_path, tiny_scorer_run):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video at all" * 50)
    job = build_preprocess_job(cfg(), str(tiny_scorer_run), str(tmp_path / "cache"))
    with pytest.raises(MediaError, match="bad.mp4"):
        job(record(bad, "bad"))
    assert not (tmp_path / "cache" / "bad").exists()  # no empty directory left behind


@pytest.mark.slow  # preprocesses real clips with the tiny scorer
def test_changed_flow_setting_recomputes_only_flow(tmp_path, clips, tiny_scorer_run):
    job = build_preprocess_job(cfg(), str(tiny_scorer_run), str(tmp_path))
    rec = record(clips["good"], "good")
    job(rec)
    d = tmp_path / "good"
    before = {f: (d / f).stat().st_mtime_ns for f in ("keyframes.npy", "faces.npy", "mel.npy", "flow.npy")}
    assert job(rec) == "skipped"
    job2 = build_preprocess_job(cfg(flow__algorithm="farneback"), str(tiny_scorer_run), str(tmp_path))
    assert job2.todo(d, json.loads((d / "meta.json").read_text())) == ["flow"]
    assert job2(rec) == "done"
    after = {f: (d / f).stat().st_mtime_ns for f in before}
    assert after["flow.npy"] != before["flow.npy"]
    assert all(after[f] == before[f] for f in ("keyframes.npy", "faces.npy", "mel.npy"))
    assert json.loads((d / "meta.json").read_text())["flow"]["algorithm"] == "farneback"


@pytest.mark.slow  # preprocesses real clips with the tiny scorer
def test_a_bfloat16_scorer_recomputes_only_what_reads_keyframes(tmp_path, clips, tiny_scorer_run):
    """keyframes.precision: bfloat16 reaches the scorer, and an entry made in float32 is redone
    for the streams that read keyframes (their selection may differ), not for flow or audio."""
    job = build_preprocess_job(cfg(), str(tiny_scorer_run), str(tmp_path))
    rec = record(clips["good"], "good")
    assert job(rec) == "done" and job.scorer.precision == "float32"
    d = tmp_path / "good"
    fast = build_preprocess_job(cfg(keyframes__precision="bfloat16"), str(tiny_scorer_run), str(tmp_path))
    assert fast.scorer.precision == "bfloat16"
    assert sorted(fast.todo(d, json.loads((d / "meta.json").read_text()))) == ["face", "visual"]
    assert fast(rec) == "done" and fast(rec) == "skipped"
    assert job.todo(d, json.loads((d / "meta.json").read_text())) == ["visual", "face"]


@pytest.mark.slow  # preprocesses real clips with the tiny scorer
def test_kill_mid_write_leaves_no_entry_that_looks_complete(tmp_path, clips, tiny_scorer_run, monkeypatch):
    import streams.cache as pp

    job = build_preprocess_job(cfg(), str(tiny_scorer_run), str(tmp_path))
    rec = record(clips["good"], "good")
    real_save = pp.atomic_save_npy
    calls = {"n": 0}

    def dying_save(path, array):
        calls["n"] += 1
        if calls["n"] == 2:  # after keyframes, while writing the second array
            raise KeyboardInterrupt
        real_save(path, array)

    monkeypatch.setattr(pp, "atomic_save_npy", dying_save)
    with pytest.raises(KeyboardInterrupt):
        job(rec)
    monkeypatch.setattr(pp, "atomic_save_npy", real_save)
    d = tmp_path / "good"
    assert not (d / "meta.json").exists()  # nothing claims to be complete
    assert not list(d.glob("*.tmp"))      # no half-written files
    assert verify_cache([rec], job).missing == ["good"]
    stale = d / ".faces.npy.k1ll3d.tmp"  # what a SIGKILL mid-write leaves (no cleanup runs)
    stale.write_bytes(b"partial")
    assert job(rec) == "done"             # the re-run finishes the entry
    assert verify_cache([rec], job).ok
    assert not stale.exists()


@pytest.mark.slow  # preprocesses real clips with the tiny scorer
def test_rerun_after_a_kill_writes_what_an_uninterrupted_run_writes(tmp_path, clips, tiny_scorer_run, monkeypatch):
    """Killed after keyframes.json, before the contact sheet and meta.json: the entry is incomplete,
    so its keyframe selection is not trusted; the re-run scores the clip again and draws the sheet,
    as a run that was never killed does (it used to reuse the selection: no sheet, and meta.json
    said the keyframes were reused)."""
    import streams.preprocessing as pp

    rec = record(clips["good"], "good")
    build_preprocess_job(cfg(), str(tiny_scorer_run), str(tmp_path / "straight"), contact_sheet=True)(rec)
    job = build_preprocess_job(cfg(), str(tiny_scorer_run), str(tmp_path / "killed"), contact_sheet=True)

    def killed(*args):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(pp, "write_contact_sheet", killed)
        with pytest.raises(KeyboardInterrupt):
            job(rec)
    assert job(rec) == "done"
    straight, rerun = tmp_path / "straight" / "good", tmp_path / "killed" / "good"
    assert sorted(p.name for p in rerun.iterdir()) == sorted(p.name for p in straight.iterdir())
    for path in straight.iterdir():
        if path.name == "meta.json":
            a, b = (json.loads(p.read_text()) for p in (path, rerun / path.name))
            assert {**a, "timings_s": None} == {**b, "timings_s": None}
        else:
            assert path.read_bytes() == (rerun / path.name).read_bytes(), path.name


@pytest.mark.slow  # preprocesses real clips with the tiny scorer
def test_face_only_rerun_reuses_the_stored_keyframes_without_scoring(tmp_path, clips, tiny_scorer_run, monkeypatch):
    job = build_preprocess_job(cfg(), str(tiny_scorer_run), str(tmp_path))
    rec = record(clips["good"], "good")
    job(rec)
    d = tmp_path / "good"
    kf_json = (d / "keyframes.json").read_bytes()
    kf_before = (d / "keyframes.npy").stat().st_mtime_ns
    faces_before = np.load(d / "faces.npy")
    job2 = build_preprocess_job(cfg(faces__crop_size=40), str(tiny_scorer_run), str(tmp_path))
    assert job2.todo(d, json.loads((d / "meta.json").read_text())) == ["face"]

    def no_scoring(frames):
        raise AssertionError("the keyframes were scored again")

    monkeypatch.setattr(job2.scorer, "score", no_scoring)
    assert job2(rec) == "done"
    meta = json.loads((d / "meta.json").read_text())
    assert meta["keyframes"]["reused"] is True
    assert (d / "keyframes.json").read_bytes() == kf_json and (d / "keyframes.npy").stat().st_mtime_ns == kf_before
    faces = np.load(d / "faces.npy")
    assert faces.shape[1:3] == (40, 40) and faces.shape[0] == faces_before.shape[0]
    assert meta["n_faces"] >= 3


def test_flow_positions_follow_the_decoded_frame_count_not_the_header(tmp_path, clips, tiny_scorer_run):
    """A container whose header lists another frame count (variable frame rate, truncation) must
    not shift the flow positions: they are spread over the frames really decoded."""
    from dataclasses import replace

    from media.decoding import VideoReader
    from streams.inputs.optical_flow import flow_positions

    class WrongHeader:
        def __init__(self, path):
            self.reader = VideoReader(path)
            self.info = replace(self.reader.info, frame_count=self.reader.info.frame_count * 3)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.reader.close()

        def iter_handles(self):
            return self.reader.iter_handles()

        def read_audio(self, **kw):
            return self.reader.read_audio(**kw)

    job = build_preprocess_job(cfg(), str(tiny_scorer_run), str(tmp_path), streams=("flow",))
    honest = job.compute(clips["good"], ["flow"])
    lying = job.compute(WrongHeader(clips["good"]), ["flow"])
    decoded = honest.meta["frame_count"]
    assert lying.meta["frame_count"] == decoded
    expected = flow_positions(decoded, 8, 1)
    assert [g[0] for g in lying.meta["flow"]["frame_indices"]] == expected
    np.testing.assert_array_equal(lying.arrays["flow"], honest.arrays["flow"])


@pytest.mark.slow  # preprocesses real clips with the tiny scorer
def test_truncated_array_is_reported_by_verify_and_recomputed(tmp_path, clips, tiny_scorer_run):
    from streams.cache import CacheError

    job = build_preprocess_job(cfg(), str(tiny_scorer_run), str(tmp_path))
    rec = record(clips["good"], "good")
    job(rec)
    path = tmp_path / "good" / "flow.npy"
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    report = verify_cache([rec], job)
    assert report.stale == {"good": ["flow"]} and not report.ok
    entry = load_entries(tmp_path)[0]
    with pytest.raises(CacheError, match="flow.npy"):
        entry.load("flow")
    assert job(rec) == "done"
    assert path.read_bytes() == good
    assert verify_cache([rec], job).ok


# a value each stream's section refuses, and the key the refusal must name
_BAD_VALUES = {"visual": ("short_side", 0), "flow": ("algorithm", "raft"), "face": ("num_faces", 0),
               "audio": ("hop_length", 0), "speech": ("sample_rate", -1)}


@pytest.mark.parametrize("stream", sorted(_BAD_VALUES))
@pytest.mark.slow  # preprocesses real clips with the tiny scorer
def test_a_recipe_mistake_stops_the_run_before_the_first_clip(stream, tmp_path, tiny_scorer_run):
    """A misspelt key or an unusable value in any stream's section is one ConfigError naming
    ``section.key`` when the job is built, not a failure logged for every clip."""
    from core.config import ConfigError
    from streams.specs import STREAM_SPECS

    section = STREAM_SPECS[stream].section
    key, value = _BAD_VALUES[stream]
    for bad, named in (({key: value}, f"{section}.{key}"), ({f"{key}_": 1}, f"{section}: unknown key(s) ['{key}_']")):
        c = cfg()
        c[section] = {**c.get(section, {}), **bad}
        with pytest.raises(ConfigError) as info:
            build_preprocess_job(c, tiny_scorer_run, str(tmp_path / "cache"), [stream])
        assert named in str(info.value)
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("recipe", sorted((ROOT / "configs/preprocess").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_preprocessing_recipe_reads_without_a_mistake(recipe):
    from keyframes.extraction import KeyframeSettings
    from streams.specs import STREAM_SPECS

    c = load_config(recipe)
    KeyframeSettings.from_config(c.get("keyframes"))
    for spec in STREAM_SPECS.values():
        spec.checked_settings(c)
        spec.make_step(c)
