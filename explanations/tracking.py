"""Faces across keyframes grouped into people by position over time (IoU tracking).

The face stream records, per keyframe, the boxes MTCNN kept (``meta["faces"]["boxes"]``) and which
of them became the stream's crops (``meta["faces"]["selected"]``: ``(keyframe, detection)`` per
crop). :func:`track_faces` links each keyframe's boxes to the people seen so far: greedily, the
pair of largest overlap (IoU) first; a box overlapping no one is matched by centre distance (a
person who moved further than their own box between two keyframes), and a box still unmatched
starts a new person. A person missed in one keyframe keeps their last box, so they are found again.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

Box = Sequence[float]  # [x0, y0, x1, y1] in pixels


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two ``[x0, y0, x1, y1]`` boxes (0 when disjoint or empty)."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _centre_distance(a: Box, b: Box) -> float:
    """Distance of the two boxes' centres in units of ``a``'s larger side."""
    side = max(a[2] - a[0], a[3] - a[1], 1e-6)
    return float(np.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2) / side)


@dataclass
class Track:
    """One person: ``detections`` ``(keyframe, detection index)`` and their ``boxes``, in time order."""

    id: int
    detections: list[tuple[int, int]] = field(default_factory=list)
    boxes: list[list[float]] = field(default_factory=list)

    @property
    def last_box(self) -> list[float]:
        return self.boxes[-1]


def track_faces(boxes: Sequence[Sequence[Box]], *, min_iou: float = 0.2, max_jump: float = 1.0) -> list[Track]:
    """People from per-keyframe face boxes ``boxes[k]`` (each ``[x0, y0, x1, y1]``).

    A box joins the person whose last box overlaps it most (IoU >= ``min_iou``), else the nearest
    unmatched person whose last box's centre lies within ``max_jump`` of its larger side, else it
    starts a person. Each person takes at most one box per keyframe. Returns the people in the
    order they first appear (``id`` 0, 1, ...)."""
    tracks: list[Track] = []
    for k, frame in enumerate(boxes):
        frame = [list(map(float, b)) for b in frame]
        free_tracks = set(range(len(tracks)))
        free_boxes = set(range(len(frame)))
        for score, limit, better in ((box_iou, min_iou, True), (_centre_distance, max_jump, False)):
            pairs = [(score(tracks[t].last_box, frame[d]), t, d) for t in free_tracks for d in free_boxes]
            pairs = [p for p in pairs if (p[0] >= limit if better else p[0] <= limit)]
            pairs.sort(key=lambda p: -p[0] if better else p[0])
            for _, t, d in pairs:
                if t in free_tracks and d in free_boxes:
                    tracks[t].detections.append((k, d))
                    tracks[t].boxes.append(frame[d])
                    free_tracks.discard(t)
                    free_boxes.discard(d)
        for d in sorted(free_boxes):
            tracks.append(Track(id=len(tracks), detections=[(k, d)], boxes=[frame[d]]))
    return tracks


def crops_of(track: Track, selected: Sequence[Sequence[int]]) -> list[int]:
    """The indices of the face stream's crops (``selected``: ``(keyframe, detection)`` per crop)
    that are this person's."""
    mine = set(map(tuple, track.detections))
    return [j for j, (k, d) in enumerate(selected) if (int(k), int(d)) in mine]
