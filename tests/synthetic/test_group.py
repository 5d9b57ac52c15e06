"""Tests for synthetic.group (and the scenes and tone it renders): the VGAF/GroupEmoW layout it
writes, that every modality really carries the class it claims to show (measured on the decoded
files), cue noise, MTCNN finding the drawn faces, and byte-identical output for a seed."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from synthetic.cues import CLASSES, MODALITIES
from synthetic.group import generate_dataset, make_clip, render_clip
from tests.conftest import decode_media, load_helper

pytestmark = pytest.mark.slow  # generates synthetic datasets and runs MTCNN on them

ROOT = Path(__file__).resolve().parents[2]
POS, NEU, NEG = CLASSES
_measures = load_helper(Path(__file__).with_name("cue_measures.py"), "tests_synthetic_cue_measures")
warmth, dominant_hz, mean_y_flow, mouth_curvature = (
    _measures.warmth, _measures.dominant_hz, _measures.mean_y_flow, _measures.mouth_curvature)


# ---------------------------------------------------------------------------------------------
# helpers: the files of a generated set


def by_class(records: list[dict], modality: str, values: list[float]) -> dict[str, np.ndarray]:
    return {c: np.array([v for r, v in zip(records, values) if r["shown"][modality] == c]) for c in CLASSES}


def all_clips(root: Path) -> list[tuple[Path, dict]]:
    meta = json.loads((root / "synthetic.json").read_text())
    return [(root / split / f"{r['name']}.mp4", r) for split in ("Train", "Val", "Test") for r in meta["clips"][split]]


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------
# fixtures

@pytest.fixture(scope="module")
def clean_set(tmp_path_factory) -> Path:
    """12 train, 6 val, 3 test clips of 1 s with no cue noise and no peaks, 2 stills per class."""
    root = tmp_path_factory.mktemp("synthetic_clean")
    generate_dataset(root, n_train=12, n_val=6, n_test=3, seed=3, cue_noise=0.0, duration=1.0,
                     peak_fraction=0.0, n_stills_per_class=2)
    return root


@pytest.fixture(scope="module")
def clean_decoded(clean_set):
    return [(record, *decode_media(path)) for path, record in all_clips(clean_set)]


@pytest.fixture(scope="module")
def noisy_set(tmp_path_factory) -> Path:
    """30 short train clips with cue_noise=1: every modality shows a random class."""
    root = tmp_path_factory.mktemp("synthetic_noisy")
    generate_dataset(root, n_train=30, n_val=0, seed=5, cue_noise=1.0, duration=0.6, peak_fraction=0.0,
                     n_stills_per_class=0)
    return root


# ---------------------------------------------------------------------------------------------
# layout

def test_vgaf_layout_and_label_files(clean_set):
    names = {}
    for split, n in (("Train", 12), ("Val", 6), ("Test", 3)):
        files = sorted((clean_set / split).glob("*.mp4"))
        assert len(files) == n
        names[split] = {f.stem for f in files}
        for stem in names[split]:
            video, clip = stem.split("_")
            assert video.isdigit() and clip.isdigit() and " " not in stem
    assert not set.intersection(*names.values())          # names are unique across splits
    meta = json.loads((clean_set / "synthetic.json").read_text())
    for split in ("Train", "Val", "Test"):  # Test too: the synthetic set's held-out split is labelled
        lines = (clean_set / f"{split}_labels.txt").read_text().splitlines()
        assert lines[0] == "Vid_name Label"
        rows = [line.split(" ") for line in lines[1:]]
        assert all(len(r) == 2 for r in rows)
        assert {r[0] for r in rows} == names[split]
        labels = [int(r[1]) for r in rows]
        # balanced, 1-based: 1 Positive, 2 Neutral, 3 Negative
        assert sorted(labels) == sorted([1, 2, 3] * (len(rows) // 3))
        truth = {r["name"]: CLASSES.index(r["class"]) + 1 for r in meta["clips"][split]}
        assert {r[0]: int(r[1]) for r in rows} == truth
    assert {r["name"] for r in meta["clips"]["Test"]} == names["Test"]
    assert meta["params"]["cue_noise"] == 0.0 and meta["classes"] == list(CLASSES)


def test_the_vgaf_reader_reads_the_synthetic_test_labels(clean_set):
    from media.layouts import read_vgaf

    meta = json.loads((clean_set / "synthetic.json").read_text())
    truth = {f"Test/{r['name']}": CLASSES.index(r["class"]) for r in meta["clips"]["Test"]}
    assert {r.clip_id: r.label for r in read_vgaf(clean_set, "test")} == truth


def test_clips_are_h264_with_an_aac_track(clean_set):
    path, record = all_clips(clean_set)[0]
    with av.open(str(path)) as c:
        video, audio = c.streams.video[0], c.streams.audio[0]
        assert video.codec_context.name == "h264" and (video.width, video.height) == (320, 180)
        assert audio.codec_context.name == "aac" and audio.rate == 16000 and audio.channels == 1
    frames, samples, rate = decode_media(path)
    assert frames.shape == (15, 180, 320, 3) and record["frames"] == 15
    assert abs(len(samples) / rate - 1.0) < 0.15


def test_groupemow_stills_layout(clean_set):
    meta = json.loads((clean_set / "synthetic.json").read_text())
    for split in ("train", "val", "test"):
        for cls in CLASSES:
            files = sorted((clean_set / "groupemow" / split / cls.lower()).glob("*.jpg"))
            assert len(files) == 2
            image = cv2.imread(str(files[0]))
            assert image is not None and image.shape == (180, 320, 3)
        listed = {(s["path"], s["class"]) for s in meta["stills"][split]}
        on_disk = {(str(p.relative_to(clean_set)), p.parent.name.capitalize())
                   for p in (clean_set / "groupemow" / split).rglob("*.jpg")}
        assert listed == on_disk


# ---------------------------------------------------------------------------------------------
# cues, measured on decoded files

def test_without_cue_noise_every_modality_shows_the_label(clean_set):
    for _, record in all_clips(clean_set):
        assert record["shown"] == {m: record["class"] for m in MODALITIES}


def test_visual_cue_wall_colour(clean_decoded):
    records = [d[0] for d in clean_decoded]
    warm = by_class(records, "visual", [warmth(d[1]) for d in clean_decoded])
    light = by_class(records, "visual", [float(d[1].mean()) for d in clean_decoded])
    assert warm[POS].mean() > warm[NEU].mean() + 30 > warm[NEG].mean() + 60
    assert warm[POS].min() > warm[NEG].max()
    assert light[POS].mean() > light[NEU].mean() > light[NEG].mean()


def test_audio_cue_pitch(clean_decoded):
    records = [d[0] for d in clean_decoded]
    pitch = by_class(records, "audio", [dominant_hz(d[2], d[3]) for d in clean_decoded])
    assert pitch[POS].min() > pitch[NEU].max() and pitch[NEU].min() > pitch[NEG].max()


def test_flow_cue_is_vertical_and_survives_horizontal_flips(clean_decoded):
    records = [d[0] for d in clean_decoded]
    for frames_of in (lambda f: f, lambda f: np.ascontiguousarray(f[:, :, ::-1])):
        dy = by_class(records, "flow", [mean_y_flow(frames_of(d[1])) for d in clean_decoded])
        # positive rises (negative y-flow), negative sinks, neutral in between
        assert dy[POS].mean() < dy[NEU].mean() < dy[NEG].mean()
        assert dy[POS].max() < 0 < dy[NEG].min()


def test_face_cue_mouth_curvature(clean_decoded):
    records = [d[0] for d in clean_decoded if d[0]["n_faces"]]
    curvature = [np.mean([mouth_curvature(d[1][0], f["box"]) for f in d[0]["faces"]])
                 for d in clean_decoded if d[0]["n_faces"]]
    bend = by_class(records, "face", curvature)
    assert bend[POS].mean() > bend[NEU].mean() + 0.3 > bend[NEG].mean() + 0.6


def test_mtcnn_finds_every_drawn_face(clean_decoded):
    from facenet_pytorch import MTCNN

    mtcnn = MTCNN(keep_all=True, device="cpu")
    # a handful of scenes: one per class and the most crowded one
    chosen = {}
    for d in clean_decoded:
        chosen.setdefault(d[0]["class"], d)
    chosen["crowded"] = max(clean_decoded, key=lambda d: d[0]["n_faces"])
    for record, frames, _, _ in chosen.values():
        boxes, probs = mtcnn.detect(frames[0])
        found = [b for b, p in zip(boxes if boxes is not None else [], probs if probs is not None else []) if p > 0.9]
        assert len(found) == record["n_faces"], record["name"]
        for face in record["faces"]:
            assert max(_iou(face["box"], b) for b in found) > 0.3, (record["name"], face["box"])


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_full_cue_noise_randomises_what_each_modality_shows(noisy_set):
    clips = all_clips(noisy_set)
    records = [r for _, r in clips]
    agree = np.mean([r["shown"][m] == r["class"] for r in records for m in MODALITIES])
    assert agree < 0.6  # 1/3 expected; 1.0 without noise
    for m in MODALITIES:
        assert {r["shown"][m] for r in records} == set(CLASSES)
    # the content follows the shown class, not the label
    decoded = [decode_media(path) for path, _ in clips]
    warm = by_class(records, "visual", [warmth(f) for f, _, _ in decoded])
    assert warm[POS].mean() > warm[NEU].mean() > warm[NEG].mean()
    assert warm[POS].min() > warm[NEG].max()
    pitch = by_class(records, "audio", [dominant_hz(a, sr) for _, a, sr in decoded])
    assert pitch[POS].min() > pitch[NEU].max() and pitch[NEU].min() > pitch[NEG].max()


# ---------------------------------------------------------------------------------------------
# determinism, options, errors

def test_same_seed_gives_identical_files_and_another_seed_differs(tmp_path):
    kwargs = dict(n_train=3, n_val=3, n_test=1, duration=0.4, n_stills_per_class=1)
    generate_dataset(tmp_path / "a", seed=7, **kwargs)
    generate_dataset(tmp_path / "b", seed=7, workers=2, **kwargs)   # processes do not change bytes
    generate_dataset(tmp_path / "c", seed=8, **kwargs)
    a, b, c = (tree_bytes(tmp_path / x) for x in "abc")
    assert a == b
    media = [k for k in a if k.endswith((".mp4", ".jpg"))]
    assert len(media) == 7 + 9
    assert all(a[k] != c.get(k) for k in media)


def test_audio_and_faceless_fractions(tmp_path):
    generate_dataset(tmp_path, n_train=6, n_val=0, seed=1, duration=0.4, audio_fraction=0.5,
                     faceless_fraction=0.5, n_stills_per_class=0)
    clips = all_clips(tmp_path)
    assert sum(not r["has_audio"] for _, r in clips) == 3
    assert sum(r["n_faces"] == 0 for _, r in clips) == 3
    for path, record in clips:
        with av.open(str(path)) as c:
            assert bool(c.streams.audio) == record["has_audio"]
        assert (record["shown"]["audio"] is None) == (not record["has_audio"])
        assert (record["shown"]["face"] is None) == (record["n_faces"] == 0)


def test_make_clip_without_audio_or_faces(tmp_path):
    record = make_clip(tmp_path / "x.mp4", label=0, rng=np.random.default_rng(0), duration=0.4,
                       width=160, height=90, with_audio=False, with_faces=False)
    assert record["n_faces"] == 0 and record["faces"] == [] and not record["has_audio"]
    with av.open(str(tmp_path / "x.mp4")) as c:
        assert not c.streams.audio and c.streams.video[0].width == 160
    frames, audio, _ = render_clip(label=2, rng=np.random.default_rng(0), duration=0.4, n_faces=2,
                                   shown={"visual": 0})
    assert frames.shape == (6, 180, 320, 3) and audio.dtype == np.float32 and len(audio) == 6400
    assert len(record["shown"]) == 4


def test_existing_dataset_is_only_replaced_with_overwrite(tmp_path):
    kwargs = dict(n_val=0, duration=0.4, n_stills_per_class=0)
    generate_dataset(tmp_path, n_train=3, **kwargs)
    with pytest.raises(FileExistsError, match=str(tmp_path)):
        generate_dataset(tmp_path, n_train=3, **kwargs)
    generate_dataset(tmp_path, n_train=1, audio=False, overwrite=True, **kwargs)
    [(path, record)] = all_clips(tmp_path)
    assert sorted((tmp_path / "Train").iterdir()) == [path] and not record["has_audio"]


def test_bad_arguments_raise_clear_errors(tmp_path):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="0-based class index"):
        render_clip(label=3, rng=rng)
    with pytest.raises(ValueError, match="unknown modalities"):
        render_clip(label=0, rng=rng, shown={"smell": 1})
    with pytest.raises(ValueError, match="even"):
        render_clip(label=0, rng=rng, width=321)
    with pytest.raises(ValueError, match="cue_noise"):
        generate_dataset(tmp_path, n_train=1, n_val=0, cue_noise=1.5)


def test_cli_writes_a_dataset_and_prints_a_table(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("tool_make_synthetic", ROOT / "tools" / "make_synthetic.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    rc = tool.main(["--out", str(tmp_path / "d"), "--train", "3", "--val", "3", "--duration", "0.4",
                    "--stills", "1", "--workers", "1", "--audio-fraction", "0.7"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "Train clips" in out and "val stills" in out and str(tmp_path / "d") in out
    assert "(1 without audio)" in out
    assert len(list((tmp_path / "d" / "Val").glob("*.mp4"))) == 3


def test_face_crops_do_not_show_the_wall_grade():
    """The same scene with the visual cue Positive vs Negative: whole frames differ a lot (the
    wall), the face crops the preprocessing would cut (head box + 25 % margin) barely do, so the
    face stream cannot copy the visual stream's cue."""
    frames = {}
    for shown_visual in (POS, NEG):
        shown = {"visual": CLASSES.index(shown_visual), "face": 1, "flow": 1, "audio": 1}
        f, _, record = render_clip(label=1, rng=np.random.default_rng(11), duration=0.2, fps=5, n_faces=3,
                                   shown=shown, with_audio=False, cue_jitter=0.0)
        frames[shown_visual] = (f[0].astype(float), record)
    (pos, rec), (neg, _) = frames[POS], frames[NEG]
    whole = np.abs(pos - neg).mean()
    crop_diffs = []
    for face in rec["faces"]:
        x0, y0, x1, y1 = face["box"]
        side = 1.25 * max(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        ys = slice(max(0, int(cy - side / 2)), int(cy + side / 2))
        xs = slice(max(0, int(cx - side / 2)), int(cx + side / 2))
        crop_diffs.append(np.abs(pos[ys, xs] - neg[ys, xs]).mean())
    assert whole > 20
    assert max(crop_diffs) < 0.1 * whole, (whole, crop_diffs)


def test_one_person_carries_the_face_cue_and_the_people_masks_cover_them():
    """Ground truth for explanations (issue 28): with ``face_carrier`` only that person's mouth
    shows the class, every other draw is unchanged, and the people's masks cover their boxes."""
    import numpy as np

    from synthetic.group import render_clip, render_clip_plan
    from synthetic.scenes import people_masks

    kw = dict(label=0, n_faces=3, duration=1.0, width=160, height=90, fps=5)
    _, _, everyone = render_clip(rng=np.random.default_rng(3), **kw)
    _, _, one = render_clip(rng=np.random.default_rng(3), face_carrier=2, **kw)
    assert one["face_carrier"] == 2 and "face_carrier" not in everyone
    assert one["faces"][2]["mouth"] == everyone["faces"][2]["mouth"]
    assert all(abs(one["faces"][i]["mouth"]) <= 0.15 for i in (0, 1))   # neutral up to the looks' jitter
    frames, _, _, (plan, boxes) = render_clip_plan(
        rng=np.random.default_rng(3), sample_rate=16000, shown=None, with_audio=False, with_faces=True, peak=False,
        cue_jitter=0.2, face_carrier=None, **kw)
    masks = people_masks(plan, len(frames))
    for (x0, y0, x1, y1) in boxes[0]:
        assert masks[0, (y0 + y1) // 2, (x0 + x1) // 2]
    assert 0 < masks.mean() < 1
