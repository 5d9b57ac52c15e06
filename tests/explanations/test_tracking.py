"""IoU tracking groups the faces of people who move across keyframes, one box per person per
keyframe, and finds a person again after a keyframe that missed them."""
from __future__ import annotations

from explanations.tracking import box_iou, crops_of, track_faces


def test_iou():
    assert box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert box_iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    assert abs(box_iou([0, 0, 10, 10], [5, 0, 15, 10]) - 1 / 3) < 1e-9


def test_people_who_move_are_grouped():
    # three people walking: A right, B down, C left and fast (no overlap between keyframes for C)
    frames = []
    for k in range(8):
        a = [10 + 3 * k, 10, 40 + 3 * k, 40]
        b = [100, 10 + 2 * k, 130, 40 + 2 * k]
        c = [300 - 25 * k, 100, 330 - 25 * k, 130]
        boxes = [c, a, b] if k % 2 else [a, b, c]  # the detector's order changes
        frames.append(boxes)
    tracks = track_faces(frames)
    assert len(tracks) == 3
    firsts = sorted(t.boxes[0][0] for t in tracks)
    assert firsts == [10, 100, 300]
    for t in tracks:
        assert [k for k, _ in t.detections] == list(range(8))
        xs = [b[0] for b in t.boxes]
        steps = {round(x1 - x0) for x0, x1 in zip(xs, xs[1:])}
        assert len(steps) == 1  # each track follows one person's constant motion


def test_a_missed_keyframe_does_not_split_a_person():
    frames = [[[0, 0, 20, 20], [50, 0, 70, 20]], [[2, 0, 22, 20]], [[4, 0, 24, 20], [52, 0, 72, 20]]]
    tracks = track_faces(frames)
    assert len(tracks) == 2
    assert [k for k, _ in tracks[1].detections] == [0, 2]


def test_crops_of_a_person():
    tracks = track_faces([[[0, 0, 20, 20], [50, 0, 70, 20]], [[51, 0, 71, 20], [1, 0, 21, 20]]])
    selected = [(0, 0), (0, 1), (1, 0), (1, 1), (0, 0)]
    assert crops_of(tracks[0], selected) == [0, 3, 4]
    assert crops_of(tracks[1], selected) == [1, 2]
