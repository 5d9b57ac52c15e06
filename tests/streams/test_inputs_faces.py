"""Face inputs: MTCNN detection on drawn faces, the 16-face selection rule, alignment."""

import math

import cv2
import numpy as np
import pytest
import torch

from streams.inputs.faces import FaceExtractor, align_and_crop, select_faces
from synthetic.faces import draw_cartoon_face

MOUTHS = (0.8, -0.6, 0.1, 0.5, -0.2)


def _scene(n_faces: int, *, h: int = 160, w: int = 300, size: int = 56, seed: int = 0):
    """A frame with ``n_faces`` cartoon faces in a row; returns (frame, drawn boxes)."""
    rng = np.random.default_rng(seed)
    frame = np.full((h, w, 3), 120, np.uint8)
    boxes = [
        draw_cartoon_face(frame, (int(w * (i + 0.5) / n_faces), h // 2 - 10), size,
                          MOUTHS[i % len(MOUTHS)], rng=rng)
        for i in range(n_faces)
    ]
    return frame, boxes


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union


@pytest.fixture(scope="module", autouse=True)
def _two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(min(previous, 2))
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def extractor() -> FaceExtractor:
    return FaceExtractor()  # the defaults: 16 faces, 112 px, min_confidence 0.9


@pytest.fixture(scope="module")
def clip():
    """4 frames with 3, 2, 0 and 3 faces (8 in all)."""
    return [_scene(n, seed=i)[0] if n else np.full((160, 300, 3), 120, np.uint8)
            for i, n in enumerate((3, 2, 0, 3))]


def test_counts_repeats_and_temporal_order(extractor, clip):
    result = extractor.extract(clip)
    assert [len(b) for b in result.boxes] == [3, 2, 0, 3]
    assert result.n_faces == 8
    assert result.repeated
    assert result.crops.shape == (16, 112, 112, 3) and result.crops.dtype == np.uint8
    assert len(result.selected) == 16
    distinct = result.selected[:8]
    assert len(set(distinct)) == 8
    # Temporal order, then left to right within a frame.
    keys = [(f, (result.boxes[f][d][0] + result.boxes[f][d][2]) / 2) for f, d in distinct]
    assert keys == sorted(keys)
    # The short selection is repeated cyclically, crops included.
    assert result.selected[8:] == distinct
    np.testing.assert_array_equal(result.crops[8:], result.crops[:8])
    # Each crop is the aligned crop of the detection it names.
    f, d = result.selected[4]
    expected = align_and_crop(clip[f], result.boxes[f][d], crop_size=112, margin=0.25,
                              eyes=result.landmarks[f][d][:2])
    np.testing.assert_array_equal(result.crops[4], expected)
    assert all(c >= 0.9 for conf in result.confidences for c in conf)
    assert result.crop_times is None


def test_times_define_the_temporal_order(extractor, clip):
    result = extractor.extract(clip, times=[3.0, 2.0, 1.0, 0.0])
    frames = [f for f, _ in result.selected[:result.n_faces]]
    assert frames == sorted(frames, reverse=True)
    assert result.crop_times[:result.n_faces] == sorted(result.crop_times[:result.n_faces])
    with pytest.raises(ValueError, match="2 times for 4 frames"):
        extractor.extract(clip, times=[0.0, 1.0])


def test_round_robin_spreads_over_frames():
    frames = [_scene(5, w=360, seed=10 + i)[0] for i in range(4)]
    result = FaceExtractor(num_faces=8, crop_size=32).extract(frames)
    assert [len(b) for b in result.boxes] == [5, 5, 5, 5]
    assert result.n_faces == 8 and not result.repeated
    assert result.crops.shape == (8, 32, 32, 3)
    per_frame = [sum(1 for f, _ in result.selected if f == i) for i in range(4)]
    assert per_frame == [2, 2, 2, 2]
    for f in range(4):  # frame p gives its p-th and (p+1)-th face from the left: every person gets crops
        left_to_right = sorted(range(5), key=lambda d: result.boxes[f][d][0] + result.boxes[f][d][2])
        picked = {d for g, d in result.selected if g == f}
        assert picked == {left_to_right[f], left_to_right[(f + 1) % 5]}


def test_select_faces_rule():
    conf = [[0.91, 0.99], [], [0.95], [0.97, 0.92, 0.93]]
    xs = [[10.0, 50.0], [], [30.0], [70.0, 20.0, 40.0]]
    # people: frame p starts p places from the left (frame 3: 3 mod 3 = 0, the face at x=20)
    assert select_faces(conf, xs, 5) == [(0, 0), (0, 1), (2, 0), (3, 1), (3, 2)]
    assert select_faces(conf, xs, 3) == [(0, 0), (2, 0), (3, 1)]
    # confidence: round r takes each frame's r-th most confident face
    assert select_faces(conf, xs, 5, by="confidence") == [(0, 0), (0, 1), (2, 0), (3, 2), (3, 0)]
    assert select_faces(conf, xs, 3, by="confidence") == [(0, 1), (2, 0), (3, 0)]
    assert len(select_faces(conf, xs, 16)) == 6
    assert select_faces([[], []], [[], []], 4) == []
    with pytest.raises(ValueError, match="by must be one of"):
        select_faces(conf, xs, 3, by="largest")


def test_every_person_in_view_gets_crops():
    """Four people in each of 16 keyframes, the leftmost always the least confident detection:
    ordered by people each gets 4 of the 16 crops; most-confident-first gives the leftmost none
    (the face stream would never see them, whatever they express)."""
    xs = [[100.0, 300.0, 500.0, 700.0]] * 16
    conf = [[0.91, 0.99, 0.98, 0.97]] * 16
    people = select_faces(conf, xs, 16)
    assert sorted(sum(1 for _, d in people if d == person) for person in range(4)) == [4, 4, 4, 4]
    confident = select_faces(conf, xs, 16, by="confidence")
    assert not any(d == 0 for _, d in confident)


def test_boxes_map_back_to_original_resolution():
    frame, drawn = _scene(2, h=720, w=1280, size=240, seed=3)
    result = FaceExtractor(detect_max_side=320, num_faces=2).extract([frame])
    assert result.n_faces == 2
    for box in drawn:
        assert max(_iou(box, det) for det in result.boxes[0]) > 0.5
    # Crops come from the full-resolution frame and show the face, not the background.
    assert result.crops.shape == (2, 112, 112, 3)
    assert np.abs(result.crops.astype(int) - 120).mean() > 20


def test_no_faces_gives_empty_result(extractor):
    blank = np.full((120, 160, 3), 120, np.uint8)
    tiny = np.zeros((8, 8, 3), np.uint8)
    for frames in ([blank, blank], [tiny]):
        result = extractor.extract(frames)
        assert result.n_faces == 0
        assert result.crops.shape == (0, 112, 112, 3) and result.crops.dtype == np.uint8
        assert result.selected == [] and not result.repeated
        assert all(b == [] for b in result.boxes)


def test_min_size_filters_small_faces():
    frame, _ = _scene(2, seed=5)
    assert FaceExtractor(min_size=20).extract([frame]).n_faces == 2
    assert FaceExtractor(min_size=100).extract([frame]).n_faces == 0


def test_mixed_frame_sizes_are_detected_per_size(monkeypatch):
    extractor = FaceExtractor(num_faces=4, detect_batch_size=8)
    calls = []
    detect = extractor._mtcnn.detect

    def counting_detect(images, landmarks=False):
        calls.append(len(images))
        return detect(images, landmarks=landmarks)

    monkeypatch.setattr(extractor._mtcnn, "detect", counting_detect)
    a, _ = _scene(1, h=140, w=180, seed=7)
    b, _ = _scene(1, h=160, w=240, seed=8)
    result = extractor.extract([a, b, a])
    assert sorted(calls) == [1, 2]  # the two 140x180 frames went through in one batch
    assert [len(x) for x in result.boxes] == [1, 1, 1]
    assert result.n_faces == 3


def _eye_angle(landmarks) -> float:
    (lx, ly), (rx, ry) = landmarks[0], landmarks[1]
    return math.degrees(math.atan2(ry - ly, rx - lx))


def test_alignment_makes_tilted_face_upright():
    frame = np.full((240, 240, 3), 150, np.uint8)
    draw_cartoon_face(frame, (120, 110), 90, 0.5, rng=np.random.default_rng(1))
    tilted = cv2.warpAffine(frame, cv2.getRotationMatrix2D((120, 120), 25, 1.0), (240, 240),
                            borderValue=(150, 150, 150))
    aligner = FaceExtractor(num_faces=1, min_confidence=0.8)
    result = aligner.extract([tilted])
    assert result.n_faces == 1
    assert abs(_eye_angle(result.landmarks[0][0])) > 15
    redetected = aligner.extract([np.ascontiguousarray(result.crops[0])])
    assert redetected.n_faces == 1
    assert abs(_eye_angle(redetected.landmarks[0][0])) < 8


def _blob_centres(crop: np.ndarray) -> list[tuple[float, float]]:
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
    n, _, _, centroids = cv2.connectedComponentsWithStats((gray > 128).astype(np.uint8))
    return sorted((float(x), float(y)) for x, y in centroids[1:n])


def test_align_and_crop_levels_the_eye_line():
    frame = np.zeros((200, 200, 3), np.uint8)
    left, right = (70, 90), (130, 120)  # eye line sloping down to the right (~26.6 deg)
    for centre in (left, right):
        cv2.circle(frame, centre, 5, (255, 255, 255), -1)
    box = (60, 60, 140, 140)
    aligned = _blob_centres(align_and_crop(frame, box, crop_size=64, margin=0.25,
                                           eyes=[left, right]))
    plain = _blob_centres(align_and_crop(frame, box, crop_size=64, margin=0.25))
    assert len(aligned) == 2 and len(plain) == 2
    assert abs(aligned[0][1] - aligned[1][1]) < 1.5
    assert abs(plain[0][1] - plain[1][1]) > 10
    # Rotation about the box centre keeps the eyes' midpoint where it was relative to the box.
    mid_aligned = np.mean(aligned, axis=0)
    assert abs(mid_aligned[0] - 32) < 2


def test_crop_beyond_the_border_is_zero_padded():
    frame = np.full((100, 100, 3), 200, np.uint8)
    crop = align_and_crop(frame, (-40, -40, 40, 40), crop_size=50, margin=0.0)
    assert crop.shape == (50, 50, 3) and crop.dtype == np.uint8
    assert crop[:20, :20].max() == 0  # outside the frame
    assert crop[-10:, -10:].min() == 200  # inside the frame
    tilted = align_and_crop(frame, (80, 80, 130, 120), crop_size=50, margin=0.5,
                            eyes=[(90, 90), (110, 100)])
    assert tilted.shape == (50, 50, 3)


def test_bad_frames_raise_naming_the_source(extractor):
    with pytest.raises(ValueError, match="clip7.mp4.*no frames"):
        extractor.extract([], source="clip7.mp4")
    with pytest.raises(ValueError, match=r"clip7.mp4: frame 1 must be \(H, W, 3\) uint8"):
        extractor.extract([np.zeros((20, 20, 3), np.uint8), np.zeros((20, 20), np.uint8)],
                          source="clip7.mp4")
    with pytest.raises(ValueError, match="num_faces"):
        FaceExtractor(num_faces=0)


def test_a_frames_faces_do_not_depend_on_the_frames_detected_with_it():
    """Live mode reuses a keyframe's detections across windows: a frame detected alone and in
    company gives the same boxes, bit for bit (the default: one frame per MTCNN call)."""
    extractor = FaceExtractor(num_faces=4)
    frames = [_scene(2, h=180, w=320, seed=s)[0] for s in range(6)]
    together = extractor._detect(frames)[0]
    for i, frame in enumerate(frames):
        np.testing.assert_array_equal(extractor._detect([frame])[0][0], together[i])
    assert sum(len(b) for b in together) > 0


@pytest.mark.slow  # runs facenet-pytorch's MTCNN beside ours
def test_channels_last_detection_matches_facenet_mtcnn():
    """The nets run in channels-last layout on worker threads for speed; the detections are
    facenet-pytorch's own (NCHW, one call) to float rounding."""
    from facenet_pytorch import MTCNN

    extractor = FaceExtractor(detect_max_side=320, workers=2)
    reference = MTCNN(keep_all=True, select_largest=False, post_process=False, min_face_size=20)
    frames = [_scene(n, h=180, w=320, seed=s)[0] for s, n in enumerate((3, 1, 2, 3))]
    ours = extractor.detect(frames)
    for frame, (boxes, probs, points) in zip(frames, ours):
        ref = [np.asarray(r[0], np.float64) for r in reference.detect(frame[None], landmarks=True)]
        assert len(boxes) == len(ref[0]) > 0
        np.testing.assert_allclose(boxes, ref[0], atol=1e-3)
        np.testing.assert_allclose(probs, ref[1], atol=1e-5)
        np.testing.assert_allclose(points, ref[2], atol=1e-3)


@pytest.mark.slow  # decodes a clip, scores it and runs MTCNN
def test_the_face_stream_builds_mtcnn_on_the_preprocessing_device(monkeypatch, tiny_scorer_run, tmp_path):
    """--device reaches MTCNN: a preprocessor on a device builds its face step's extractor there
    (``meta`` stands in for a GPU: MTCNN's three networks land on it)."""
    import streams.specs.face as face_spec
    from core.config import load_config
    from keyframes.scorer import SentimentScorer
    from streams.preprocessing import ClipPreprocessor
    from tests.conftest import ROOT, make_scene_clip

    settings = face_spec.FaceSettings(detect_max_side=320, crop_size=48, min_size=12)
    mtcnn = face_spec.create_face_extractor(settings, device="meta")._mtcnn
    assert {p.device.type for p in mtcnn.parameters()} == {"meta"}
    asked = []
    real = face_spec.create_face_extractor

    def create(settings, *, device="cpu"):
        asked.append(str(device))
        return real(settings)          # detect on the CPU: meta holds no numbers

    monkeypatch.setattr(face_spec, "create_face_extractor", create)
    cfg = load_config(ROOT / "configs/preprocess/demo.yaml")
    scorer = SentimentScorer.from_checkpoint(tiny_scorer_run, input_size=64)
    pre = ClipPreprocessor(cfg, cache_root=tmp_path, scorer=scorer, scorer_hash="test", streams=("face",),
                           device="meta")
    clip = make_scene_clip(tmp_path / "scene.mp4", n_frames=20, fps=10.0, size=(160, 90), faces=2, audio=False)
    assert pre.compute(clip, ("face",)).meta["n_faces"] > 0
    assert asked == ["meta"]


def test_a_cache_made_before_crops_went_round_the_people_is_recomputed():
    """The face array's hash includes crop_order even where the recipe leaves it out, so an array
    made under the older most-confident-first default (its section hashed without the key) is
    stale, and the two orders never share an array."""
    from core.storage import config_hash
    from streams.specs import get_spec

    face = get_spec("face")
    written = {"faces": {"detect_max_side": 320}}
    old_hash = config_hash({"faces": written["faces"], "keyframes": "kf"})   # how it was hashed before
    assert face.config_hash(written, "kf") != old_hash
    assert face.config_hash(written, "kf") == face.config_hash(
        {"faces": {"detect_max_side": 320, "crop_order": "people"}}, "kf")
    assert face.config_hash(written, "kf") != face.config_hash(
        {"faces": {"detect_max_side": 320, "crop_order": "confidence"}}, "kf")
    assert get_spec("visual").config_hash({"visual": {}}, "kf") == config_hash({"visual": {}, "keyframes": "kf"})
