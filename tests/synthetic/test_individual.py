"""Tests for synthetic.individual: the RAVDESS and CREMA-D layouts it writes (read back by the
real readers, split by actor), that every modality carries the class it claims to show for all
eight emotions (measured on the decoded files), MTCNN finding the one actor, cue noise, bad
arguments and the command line."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from media.layouts import CREMAD_CLASSES, RAVDESS_CLASSES, read_cremad, read_ravdess
from synthetic.actors import make_actor
from synthetic.cues import MODALITIES
from synthetic.emotions import EMOTIONS, MOTIONS, VOICES, WALL_COLOURS, canonical_emotion
from synthetic.individual import generate_individual_dataset, split_actors
from tests.conftest import decode_media

pytestmark = pytest.mark.slow  # generates synthetic datasets and runs MTCNN on them

ROOT = Path(__file__).resolve().parents[2]


def wall_strips(frames: np.ndarray) -> np.ndarray:
    """The left and right 12 % of the frames: wall and specks, never the actor's hood."""
    m = int(0.12 * frames.shape[2])
    return np.concatenate([frames[:, :, :m], frames[:, :, -m:]], axis=2)


def nearest_wall(frames: np.ndarray, classes) -> str:
    """The class whose wall colour is nearest in chromaticity to the median colour of the strips."""
    median = np.median(wall_strips(frames).reshape(-1, 3), axis=0)

    def chroma(c) -> np.ndarray:
        c = np.asarray(c, float)
        return c / max(1.0, c.sum())
    return min(classes, key=lambda c: np.linalg.norm(chroma(median) - chroma(WALL_COLOURS[canonical_emotion(c)])))


def speck_motion(frames: np.ndarray) -> tuple[float, float]:
    """(mean vertical flow, mean absolute horizontal flow) in px/frame over the moving pixels of
    the wall strips (Farneback); (0, 0) when nothing moves."""
    vy, vx = [], []
    for i in range(1, len(frames) - 1, 2):
        a, b = (cv2.cvtColor(np.ascontiguousarray(wall_strips(frames[j:j + 1])[0]), cv2.COLOR_RGB2GRAY)
                for j in (i, i + 1))
        flow = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 9, 3, 5, 1.2, 0)
        moving = np.abs(a.astype(int) - b.astype(int)) > 20
        if moving.sum() > 10:
            vy.append(flow[..., 1][moving].mean())
            vx.append(np.abs(flow[..., 0][moving]).mean())
    return (float(np.mean(vy)), float(np.mean(vx))) if vy else (0.0, 0.0)


def pitch_track(audio: np.ndarray, rate: int, frame_s: float = 0.04) -> np.ndarray:
    """f0 (Hz) per 40 ms frame by autocorrelation (60-900 Hz); NaN in pauses."""
    n = int(frame_s * rate)
    out = []
    for start in range(0, len(audio) - n, n):
        x = audio[start:start + n] * np.hanning(n)
        if np.sqrt(np.mean(x ** 2)) < 0.02:
            out.append(np.nan)
            continue
        ac = np.correlate(x, x, "full")[n - 1:]
        lo, hi = int(rate / 900), int(rate / 60)
        out.append(rate / (lo + int(np.argmax(ac[lo:hi]))))
    return np.array(out)


@pytest.fixture(scope="module")
def clean_ravdess(tmp_path_factory):
    """One clip per emotion (train split, eight different actors), every modality showing the class."""
    root = tmp_path_factory.mktemp("ravdess_clean")
    generate_individual_dataset(root, layout="ravdess", n_train=8, n_val=0, seed=4, cue_noise=0.0, cue_jitter=0.0,
                                duration=1.6)
    meta = json.loads((root / "synthetic.json").read_text())
    return root, meta, {r["class"]: (r, *decode_media(root / f"{r['clip_id']}.mp4")) for r in meta["clips"]["train"]}


def test_ravdess_layout_reads_back_with_the_classes_splits_and_actors_of_the_reader(tmp_path):
    summary = generate_individual_dataset(tmp_path, layout="ravdess", n_train=24, n_val=16, n_test=8, seed=1,
                                          duration=0.4, width=96, height=64, fps=5, audio_fraction=0.75)
    meta = json.loads((tmp_path / "synthetic.json").read_text())
    assert meta["classes"] == list(RAVDESS_CLASSES) and summary["classes"] == list(RAVDESS_CLASSES)
    actors = split_actors("ravdess")
    assert actors["val"] == (19, 20, 21) and actors["test"] == (22, 23, 24) and actors["train"] == tuple(range(1, 19))
    for split, n in (("train", 24), ("val", 16), ("test", 8)):
        records = read_ravdess(tmp_path, split)
        assert len(records) == n
        by_id = {r["clip_id"]: r for r in meta["clips"][split]}
        assert sorted(by_id) == [r.clip_id for r in records]
        for rec in records:
            clip = by_id[rec.clip_id]
            assert rec.label_name == clip["class"] and rec.class_names == RAVDESS_CLASSES
            fields = [int(f) for f in Path(rec.clip_id).name.split("-")]
            assert fields[6] == clip["actor"] in actors[split] and rec.clip_id.startswith(f"Actor_{clip['actor']:02d}/")
            assert fields[0] == (1 if clip["has_audio"] else 2)      # 02: video only
            if clip["class"] == "neutral":
                assert fields[3] == 1                                  # RAVDESS has no strong neutral
        # balanced: every class equally often (n is a multiple of 8)
        counts = {c: sum(r.label_name == c for r in records) for c in RAVDESS_CLASSES}
        assert counts == {c: n // 8 for c in RAVDESS_CLASSES}
    silent = [r for s in meta["clips"].values() for r in s if not r["has_audio"]]
    assert len(silent) == 6 + 4 + 2
    _, audio, _ = decode_media(tmp_path / f"{silent[0]['clip_id']}.mp4")
    assert audio is None


def test_cremad_layout_reads_back_split_by_actor(tmp_path):
    generate_individual_dataset(tmp_path, layout="cremad", n_train=12, n_val=6, n_test=6, seed=2, duration=0.4,
                                width=96, height=64, fps=5)
    meta = json.loads((tmp_path / "synthetic.json").read_text())
    assert meta["classes"] == list(CREMAD_CLASSES)
    actors = split_actors("cremad")
    for split, n in (("train", 12), ("val", 6), ("test", 6)):
        records = read_cremad(tmp_path, split)
        assert len(records) == n and {r.label_name for r in records} == set(CREMAD_CLASSES)
        for rec in records:
            actor, sentence, emotion, level = Path(rec.clip_id).name.split("_")
            assert int(actor) in actors[split] and rec.clip_id.startswith("VideoMP4/")
            assert (sentence == "IEO") == (level in ("LO", "MD", "HI"))


def test_every_modality_shows_the_class_for_all_eight_emotions(clean_ravdess):
    _, meta, clips = clean_ravdess
    assert sorted(clips) == sorted(EMOTIONS)
    pitch = {}
    for emotion, (record, frames, audio, rate) in clips.items():
        assert all(record["shown"][m] == emotion for m in MODALITIES)
        # visual: the wall colour is the emotion's
        assert nearest_wall(frames, EMOTIONS) == emotion
        # flow: the specks' vertical velocity and horizontal speed (px/frame at 180 px)
        vy, vx = speck_motion(frames)
        want_vy, want_vx = MOTIONS[emotion]
        assert vy == pytest.approx(want_vy, abs=0.6) and vx == pytest.approx(want_vx, abs=0.6), (emotion, vy, vx)
        # audio: pitch level relative to the actor's voice, and the contour
        track = np.log2(pitch_track(audio, rate) / make_actor(record["actor"], 4).voice_hz)
        voiced = ~np.isnan(track)
        t = np.linspace(0, 1, len(track))[voiced]
        curve, slope, _ = np.polyfit(t, track[voiced], 2)
        level, contour, _ = VOICES[emotion]
        pitch[emotion] = float(np.median(track[voiced]))
        assert pitch[emotion] == pytest.approx(level + (0.35 if contour == "arch" else 0.0), abs=0.3), emotion
        linear = np.polyfit(t, track[voiced], 1)[0]
        assert {"rise": linear > 0.6, "fall": linear < -0.6, "flat": abs(linear) < 0.25,
                "arch": curve < -2.0}[contour], (emotion, linear, curve)
    assert pitch["calm"] < pitch["neutral"] < pitch["surprised"]


def test_mtcnn_finds_the_one_actor_in_every_clip(clean_ravdess):
    from facenet_pytorch import MTCNN

    mtcnn = MTCNN(keep_all=True, device="cpu")
    for emotion, (record, frames, _, _) in clean_ravdess[2].items():
        boxes, probs = mtcnn.detect(frames[0])
        found = [b for b, p in zip(boxes if boxes is not None else [], probs if probs is not None else []) if p > 0.9]
        assert len(found) == 1, emotion
        x0, y0, x1, y1 = record["faces"][0]["box"]
        fx0, fy0, fx1, fy1 = found[0]
        assert abs((fx0 + fx1) / 2 - (x0 + x1) / 2) < 0.25 * (x1 - x0), emotion


def test_full_cue_noise_randomises_what_each_modality_shows(tmp_path):
    generate_individual_dataset(tmp_path, layout="cremad", n_train=30, n_val=0, seed=3, cue_noise=1.0, duration=0.2,
                                width=64, height=48, fps=5, audio_fraction=0.0)
    clips = json.loads((tmp_path / "synthetic.json").read_text())["clips"]["train"]
    agree = np.mean([c["shown"][m] == c["class"] for c in clips for m in ("visual", "face", "flow")])
    assert agree < 0.45   # 1/6 expected; 1.0 without noise
    assert all(c["shown"]["audio"] is None for c in clips)


def test_bad_arguments_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="layout"):
        generate_individual_dataset(tmp_path, layout="vgaf", n_train=1, n_val=0)
    with pytest.raises(ValueError, match="more than the naming allows"):
        # RAVDESS has 3 val actors and 4 neutral recordings per actor: 13 neutral val clips cannot be named
        generate_individual_dataset(tmp_path / "x", layout="ravdess", n_train=0, n_val=8 * 13, duration=0.2,
                                    width=64, height=48, fps=5)
    generate_individual_dataset(tmp_path / "d", layout="cremad", n_train=1, n_val=0, duration=0.2, width=64,
                                height=48, fps=5)
    with pytest.raises(FileExistsError, match="overwrite"):
        generate_individual_dataset(tmp_path / "d", layout="cremad", n_train=1, n_val=0)


def test_cli_writes_each_layout_and_refuses_options_of_another(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("tool_make_synthetic", ROOT / "tools" / "make_synthetic.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    rc = tool.main(["--layout", "ravdess", "--out", str(tmp_path / "r"), "--train", "8", "--val", "8",
                    "--duration", "0.2", "--width", "64", "--height", "48", "--fps", "5", "--workers", "1"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "RAVDESS-format" in out and "surprised" in out and "val: 3 actors" in out
    assert len(read_ravdess(tmp_path / "r", "val")) == 8
    rc = tool.main(["--layout", "fer2013", "--form", "folder", "--out", str(tmp_path / "f"), "--train", "7",
                    "--val", "7"])
    assert rc == 0 and len(list((tmp_path / "f" / "train").rglob("*.png"))) == 7
    with pytest.raises(SystemExit) as exit_info:
        tool.main(["--layout", "cremad", "--out", str(tmp_path / "c"), "--train", "1", "--val", "1", "--stills", "3"])
    assert exit_info.value.code == 2
    assert "--stills applies to --layout vgaf or groupemow" in capsys.readouterr().err
