"""Face crops for the face stream: MTCNN detection, selection of 16 faces per clip, alignment.

:class:`FaceExtractor` turns the frames of a clip (e.g. its keyframes) into a fixed number of
aligned square face crops plus a record of what was detected and picked (:class:`FaceResult`).
Detection is facenet-pytorch's MTCNN (its weights ship inside the wheel), run on frames
downscaled to ``detect_max_side``; crops are cut from the original frames. Its three networks run
in channels-last memory layout (:class:`ChannelsLast`), which makes their convolutions and max
pools faster on CPU with the same detections (to 2e-4 px). The frames of a call are spread over
worker threads (one torch thread each), since MTCNN's many small operations use a second core
poorly from within one call. What this costs on a machine: ``python tools/benchmark.py preprocess``
(its ``face_s``; see docs/results/).
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Sequence

import cv2
import numpy as np
import torch
from facenet_pytorch import MTCNN

from core.config import check_settings, setting

__all__ = ["ChannelsLast", "Detections", "FaceExtractor", "FaceResult", "FaceSettings", "align_and_crop",
           "select_faces", "CROP_ORDERS"]


#: :func:`select_faces`'s orders: over the people in view, or most confident first
CROP_ORDERS = ("people", "confidence")


@dataclass(frozen=True)
class FaceSettings:
    """The ``faces:`` preprocessing section, and the one place the defaults and limits of the
    :class:`FaceExtractor` arguments of the same names are written: MTCNN runs on keyframes scaled
    to at most ``detect_max_side`` px, keeps boxes of at least ``min_confidence`` and ``min_size``
    px (shorter side, at source resolution), and crops ``num_faces`` faces of ``crop_size`` px
    with ``margin`` around the box from keyframes kept up to ``source_max_side`` px, chosen in
    ``crop_order`` (:func:`select_faces`)."""

    detect_max_side: int = setting(640, minimum=12, help=(
        "detection cap (longest side, px; MTCNN's cost grows with its square); crops come from full resolution"))
    min_confidence: float = setting(0.9, minimum=0, maximum=1, help="MTCNN probability a detection needs")
    min_size: float = setting(20.0, minimum=0, help="px on the shorter box side, at source resolution")
    num_faces: int = setting(16, minimum=1, help="face crops per clip")
    crop_size: int = setting(112, minimum=1, help="side of each square crop (px)")
    margin: float = setting(0.25, minimum=0, help="fraction of the box size added around it (half per side)")
    source_max_side: int = setting(1280, minimum=1, help="keyframes are kept up to this size for cropping faces")
    crop_order: str = setting("people", choices=CROP_ORDERS, help=(
        "which detections fill the crops: people (rotate over each keyframe's faces, left to right) "
        "or confidence (each keyframe's most confident first; caches made before 2026-12-07)"))

    def __post_init__(self) -> None:
        check_settings(self, "faces")


_FACES = FaceSettings()

Detections = tuple[np.ndarray, np.ndarray, np.ndarray]
"""One frame's MTCNN output: boxes ``(N, 4)`` [x0, y0, x1, y1], probabilities ``(N,)`` and the 5
landmarks ``(N, 5, 2)``, float64 in pixels of the frame."""

@dataclass
class FaceResult:
    """What :meth:`FaceExtractor.extract` found in one clip.

    Attributes:
        crops: ``(num_faces, crop_size, crop_size, 3)`` uint8 RGB aligned face crops in output
            order (see :meth:`FaceExtractor.extract`), or ``(0, crop_size, crop_size, 3)`` when
            no face was found.
        n_faces: number of distinct detections selected before any repetition (0 when none).
        boxes: per input frame, the kept detections as ``[x0, y0, x1, y1]`` in pixels of the
            original frame, sorted by confidence (highest first). MTCNN boxes may extend a few
            pixels beyond the frame border; they are not clipped.
        confidences: per input frame, the MTCNN probabilities of ``boxes`` (same order).
        landmarks: per input frame, the 5 landmarks ``[[x, y] * 5]`` of each kept detection
            (image-left eye, image-right eye, nose, mouth left, mouth right), original pixels.
        selected: ``(frame_idx, det_idx)`` for each output crop; ``det_idx`` indexes
            ``boxes[frame_idx]``. Has ``len(crops)`` entries, repeats included.
        repeated: True when fewer than ``num_faces`` faces were found and the selection was
            repeated cyclically to fill ``crops``.
        crop_times: the time (as passed to ``extract``) of each output crop, or None when no
            times were given.
    """

    crops: np.ndarray
    n_faces: int
    boxes: list[list[list[float]]]
    confidences: list[list[float]]
    selected: list[tuple[int, int]]
    repeated: bool
    landmarks: list[list[list[list[float]]]] = field(default_factory=list)
    crop_times: list[float] | None = None


def select_faces(
    confidences: Sequence[Sequence[float]],
    centers_x: Sequence[Sequence[float]],
    num_faces: int,
    order: Sequence[int] | None = None,
    *,
    by: str = "people",
) -> list[tuple[int, int]]:
    """Pick up to ``num_faces`` detections spread over time, then over the people in view.

    Each frame's detections are ordered left to right (box centre x; confidence breaks ties),
    a stand-in for "which person" that needs no tracking. Round ``r`` visits the frames in
    temporal order and takes, from the frame at temporal position ``p`` with ``n`` detections,
    its ``((p + r) mod n)``-th detection from the left (each frame gives each of its detections
    once), until ``num_faces`` are taken or every detection is used. So with ``n`` people in view
    in every frame each gets about ``num_faces / n`` crops; taking each frame's most confident
    detection instead can give one person every crop and another none, and then the face stream
    never sees the person who carries the group's expression. ``by="confidence"`` is that older
    rule (round ``r`` takes the ``r``-th most confident detection of every frame), kept so caches
    made with it can be reproduced. The picks are returned sorted by (temporal position, box
    centre x), i.e. in temporal order and left to right.

    Args:
        confidences: per frame, the confidences of its (already filtered) detections.
        centers_x: per frame, the box centre x of the same detections.
        num_faces: how many to pick at most.
        order: frame indices in temporal order (default ``0 .. F-1``).
        by: ``"people"`` or ``"confidence"`` (:data:`CROP_ORDERS`).

    Returns:
        ``(frame_idx, det_idx)`` pairs, ``det_idx`` indexing the frame's input lists; fewer than
        ``num_faces`` when fewer detections exist; empty when there are none.
    """
    order = list(range(len(confidences))) if order is None else list(order)
    rank_of_frame = {f: r for r, f in enumerate(order)}
    if by not in CROP_ORDERS:
        raise ValueError(f"select_faces: by must be one of {CROP_ORDERS}, got {by!r}")
    ranked: dict[int, list[int]] = {}
    for p, f in enumerate(order):
        if by == "confidence":
            ranked[f] = sorted(range(len(confidences[f])), key=lambda d: (-confidences[f][d], centers_x[f][d]))
            continue
        dets = sorted(range(len(confidences[f])), key=lambda d: (centers_x[f][d], -confidences[f][d]))
        k = p % len(dets) if dets else 0  # the frame at position p starts p places from the left
        ranked[f] = dets[k:] + dets[:k]
    picks: list[tuple[int, int]] = []
    r = 0
    while len(picks) < num_faces and any(len(ranked[f]) > r for f in order):
        for f in order:
            if len(picks) == num_faces:
                break
            if len(ranked[f]) > r:
                picks.append((f, ranked[f][r]))
        r += 1
    picks.sort(key=lambda p: (rank_of_frame[p[0]], centers_x[p[0]][p[1]]))
    return picks


def align_and_crop(
    frame: np.ndarray,
    box: Sequence[float],
    *,
    crop_size: int,
    margin: float,
    eyes: Sequence[Sequence[float]] | None = None,
) -> np.ndarray:
    """Cut a square, optionally eye-aligned face crop from ``frame``.

    The crop is the square centred on the box centre with side ``max(w, h) * (1 + margin)``
    (so ``margin / 2`` of the box size on each side). With ``eyes`` the frame is first rotated
    about the box centre by the angle of the eye line (``cv2.getRotationMatrix2D``), which makes
    the eyes level in the crop. Pixels outside the frame are black (``cv2.BORDER_CONSTANT``).
    The square is then resized to ``crop_size`` (``INTER_AREA`` when shrinking, ``INTER_LINEAR``
    when enlarging).

    Args:
        frame: ``(H, W, 3)`` uint8 image.
        box: ``[x0, y0, x1, y1]`` in pixels of ``frame``.
        crop_size: output side in pixels.
        margin: fraction of the box size added around it (>= 0).
        eyes: ``[[x_left, y_left], [x_right, y_right]]``, the image-left and image-right eye,
            or None for no rotation.

    Returns:
        ``(crop_size, crop_size, 3)`` uint8.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    side = max(x1 - x0, y1 - y0, 1.0) * (1.0 + margin)
    angle = 0.0
    if eyes is not None:
        (lx, ly), (rx, ry) = eyes[0], eyes[1]
        angle = math.degrees(math.atan2(float(ry) - float(ly), float(rx) - float(lx)))
    out_side = max(1, int(round(side)))
    # Rotation about the box centre (positive angle = counter-clockwise on screen, which undoes
    # an eye line sloping down to the right), scaled so the square of `side` fills `out_side`,
    # then shifted so the box centre lands in the middle of the output.
    matrix = cv2.getRotationMatrix2D((cx, cy), angle, out_side / side)
    matrix[0, 2] += out_side / 2.0 - cx
    matrix[1, 2] += out_side / 2.0 - cy
    square = cv2.warpAffine(
        frame, matrix, (out_side, out_side), flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0),
    )
    if out_side == crop_size:
        return square
    interp = cv2.INTER_AREA if out_side > crop_size else cv2.INTER_LINEAR
    return cv2.resize(square, (crop_size, crop_size), interpolation=interp)


class ChannelsLast(torch.nn.Module):
    """Runs ``module`` (a CNN taking ``(N, C, H, W)``) with its weights and input in channels-last
    memory layout: the same function, computed by oneDNN's NHWC kernels. For MTCNN's nets on a
    CPU these are faster than the NCHW ones (whose max pool with ``ceil_mode`` has no vectorised
    path); outputs agree to float rounding."""

    def __init__(self, module: torch.nn.Module) -> None:
        super().__init__()
        self.module = module.to(memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor):
        return self.module(x.contiguous(memory_format=torch.channels_last))


class FaceExtractor:
    """Detects, selects and crops faces from the frames of a clip.

    Args (keyword-only):
        detect_max_side, min_confidence, min_size, num_faces, crop_size, margin, crop_order: as in
            :class:`FaceSettings` (the ``faces:`` section), which gives their defaults and limits.
            Frames are downscaled (never upscaled) so their longest side is at most
            ``detect_max_side`` px for detection; boxes and landmarks are mapped back to the
            original resolution and crops are cut from the original frames. ``min_size`` is in
            original pixels of the shorter box side; ``margin / 2`` of the box size is added on
            each side.
        detect_min_face: smallest face MTCNN searches for, in pixels of the downscaled
            detection image (MTCNN's ``min_face_size``; 20 is its default). The search size is
            ``max(detect_min_face, min_size * scale)`` with ``scale`` the detection downscale
            factor, so in original pixels nothing smaller than ``detect_min_face / scale`` is
            found (40 px for 1280-wide video at ``detect_max_side=640``). Lowering it to 12 finds
            smaller faces but makes detection several times slower.
        align: rotate each face so the eyes are level (from MTCNN's eye landmarks).
        device: torch device MTCNN's three networks run on (frames are moved there by MTCNN).
        detect_batch_size: at most this many frames go through MTCNN in one call; frames of
            equal size are batched, frames of other sizes are run apart. Default 1: MTCNN runs
            its refinement nets over the candidates of the whole batch, so a frame's boxes
            change in the last float bits (and its aligned crop by a pixel here and there) with
            the frames it shares a call with; one frame per call makes a frame's faces the same
            wherever it is detected (live mode reuses a keyframe's detections across windows and
            is tested equal to computing each window alone). On CPU batching gains little;
            raise it on a GPU.
        workers: threads that detect the frames of one call in parallel, each running MTCNN
            with one torch thread; ``None`` (default): as many as the calling thread's torch
            threads (so a process limited to one thread stays on one). Each frame's detections
            are those it gets alone (see ``detect_batch_size``) with one thread, so the split
            changes nothing but the time (``python tools/benchmark.py preprocess`` measures it).

    The MTCNN is built once here; an extractor is not thread-safe (use one per worker).
    """

    def __init__(
        self,
        *,
        detect_max_side: int = _FACES.detect_max_side,
        min_confidence: float = _FACES.min_confidence,
        min_size: float = _FACES.min_size,
        num_faces: int = _FACES.num_faces,
        crop_size: int = _FACES.crop_size,
        margin: float = _FACES.margin,
        crop_order: str = _FACES.crop_order,
        align: bool = True,
        device: str | torch.device = "cpu",
        detect_min_face: float = 20.0,
        detect_batch_size: int = 1,
        workers: int | None = None,
    ) -> None:
        # the settings the faces: section shares are checked there (a ConfigError is a ValueError)
        FaceSettings(detect_max_side=detect_max_side, min_confidence=min_confidence, min_size=min_size,
                     num_faces=num_faces, crop_size=crop_size, margin=margin, crop_order=crop_order)
        if detect_min_face <= 0:
            raise ValueError(f"FaceExtractor: detect_min_face must be > 0, got {detect_min_face}")
        if detect_batch_size < 1:
            raise ValueError(
                f"FaceExtractor: detect_batch_size must be >= 1, got {detect_batch_size}"
            )
        self.detect_max_side = int(detect_max_side)
        self.min_confidence = float(min_confidence)
        self.min_size = float(min_size)
        self.num_faces = int(num_faces)
        self.crop_size = int(crop_size)
        self.margin = float(margin)
        self.crop_order = str(crop_order)
        self.align = bool(align)
        self.device = torch.device(device)
        self.detect_min_face = float(detect_min_face)
        if workers is not None and workers < 1:
            raise ValueError(f"FaceExtractor: workers must be >= 1, got {workers}")
        self.detect_batch_size = int(detect_batch_size)
        self.workers = None if workers is None else int(workers)
        # select_largest=False: detections come sorted by probability.
        self._mtcnn = MTCNN(
            keep_all=True, device=self.device, select_largest=False, post_process=False,
            min_face_size=self.detect_min_face,
        )
        if self.device.type == "cpu":
            for name in ("pnet", "rnet", "onet"):
                setattr(self._mtcnn, name, ChannelsLast(getattr(self._mtcnn, name)))
        self._pool: ThreadPoolExecutor | None = None
        self._pool_size = 0
        self._pool_owner: int | None = None   # the process that made the pool (a fork's child makes its own)

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """MTCNN on each frame (``(H, W, 3)`` uint8 RGB): per frame ``(boxes (N, 4), probs (N,),
        landmarks (N, 5, 2))``, float64 in pixels of that frame, unfiltered. A frame's
        detections do not depend on the other frames, so they can be computed once per frame
        and passed to :meth:`extract` for every clip that contains it."""
        frames = list(frames)
        if not frames:
            return []
        boxes, probs, points = self._detect(frames)
        return list(zip(boxes, probs, points))

    def extract(
        self,
        frames: Sequence[np.ndarray],
        times: Sequence[float] | None = None,
        *,
        source: str = "<frames>",
        detections: Sequence[Detections] | None = None,
    ) -> FaceResult:
        """Detect faces in ``frames`` and return ``num_faces`` aligned crops.

        Selection rule: keep detections with probability >= ``min_confidence`` and shorter box
        side >= ``min_size`` (original pixels); then take them round-robin over the frames in
        temporal order, each frame starting at a different place in its left-to-right order
        (:func:`select_faces`; ``crop_order="confidence"``: most confident first), until
        ``num_faces`` are taken: picks spread over time first, then over the people in view.
        The output is sorted by (frame temporal position, box centre x). If fewer than
        ``num_faces`` faces are found, the selected sequence is repeated cyclically up to
        ``num_faces`` (``repeated=True``, ``n_faces`` is the real count); if none are found,
        ``n_faces`` is 0 and ``crops`` is empty. Faces are never invented.

        Args:
            frames: F frames, each ``(H, W, 3)`` uint8 RGB (sizes may differ).
            times: optional F timestamps (e.g. seconds); they define the temporal order
                (stable sort) and are reported per crop in ``crop_times``. Default: the order of
                ``frames``.
            source: name of the clip, used in error messages.
            detections: :meth:`detect`'s result for ``frames``, when already computed (e.g.
                for an overlapping live window); ``None`` runs MTCNN here.

        Returns:
            A :class:`FaceResult`.

        Raises:
            ValueError: no frames, a frame that is not ``(H, W, 3)`` uint8, or ``times`` of the
                wrong length / non-finite; the message names ``source``.
        """
        frames = list(frames)
        if not frames:
            raise ValueError(f"{source}: no frames to detect faces in")
        for idx, frame in enumerate(frames):
            if (
                not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3
                or frame.dtype != np.uint8
            ):
                desc = (
                    f"shape {frame.shape} dtype {frame.dtype}"
                    if isinstance(frame, np.ndarray) else type(frame).__name__
                )
                raise ValueError(f"{source}: frame {idx} must be (H, W, 3) uint8 RGB, got {desc}")
        if times is not None:
            times = [float(t) for t in times]
            if len(times) != len(frames):
                raise ValueError(
                    f"{source}: got {len(times)} times for {len(frames)} frames"
                )
            if not all(math.isfinite(t) for t in times):
                raise ValueError(f"{source}: times contain NaN or infinite values")
            order = sorted(range(len(frames)), key=lambda i: times[i])
        else:
            order = list(range(len(frames)))

        if detections is None:
            boxes, probs, points = self._detect(frames)
        else:
            if len(detections) != len(frames):
                raise ValueError(f"{source}: got detections for {len(detections)} of {len(frames)} frames")
            boxes, probs, points = ([d[i] for d in detections] for i in range(3))

        kept_boxes: list[list[list[float]]] = []
        kept_probs: list[list[float]] = []
        kept_points: list[list[list[list[float]]]] = []
        for fb, fp, fl in zip(boxes, probs, points):
            short = np.minimum(fb[:, 2] - fb[:, 0], fb[:, 3] - fb[:, 1])
            keep = (fp >= self.min_confidence) & (short >= self.min_size)
            idx = np.flatnonzero(keep)
            idx = idx[np.argsort(-fp[idx], kind="stable")]
            kept_boxes.append(fb[idx].tolist())
            kept_probs.append(fp[idx].tolist())
            kept_points.append(fl[idx].tolist())

        centers = [[(b[0] + b[2]) / 2.0 for b in fb] for fb in kept_boxes]
        picks = select_faces(kept_probs, centers, self.num_faces, order, by=self.crop_order)
        n_faces = len(picks)
        if n_faces == 0:
            empty = np.zeros((0, self.crop_size, self.crop_size, 3), dtype=np.uint8)
            return FaceResult(
                crops=empty, n_faces=0, boxes=kept_boxes, confidences=kept_probs,
                selected=[], repeated=False, landmarks=kept_points,
                crop_times=[] if times is not None else None,
            )

        distinct = [
            align_and_crop(
                frames[f], kept_boxes[f][d], crop_size=self.crop_size, margin=self.margin,
                eyes=kept_points[f][d][:2] if self.align else None,
            )
            for f, d in picks
        ]
        selected = [picks[i % n_faces] for i in range(self.num_faces)]
        crops = np.stack([distinct[i % n_faces] for i in range(self.num_faces)], axis=0)
        return FaceResult(
            crops=crops,
            n_faces=n_faces,
            boxes=kept_boxes,
            confidences=kept_probs,
            selected=selected,
            repeated=n_faces < self.num_faces,
            landmarks=kept_points,
            crop_times=[times[f] for f, _ in selected] if times is not None else None,
        )

    def _detect(
        self, frames: list[np.ndarray]
    ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """Run MTCNN; per frame return boxes ``(N, 4)``, probs ``(N,)``, landmarks ``(N, 5, 2)``
        as float64 in original-frame pixels (N may be 0)."""
        n = len(frames)
        boxes: list[np.ndarray] = [np.zeros((0, 4))] * n
        probs: list[np.ndarray] = [np.zeros((0,))] * n
        points: list[np.ndarray] = [np.zeros((0, 5, 2))] * n

        groups: dict[tuple[int, int], list[int]] = {}
        for idx, frame in enumerate(frames):
            groups.setdefault(frame.shape[:2], []).append(idx)

        for (h, w), members in groups.items():
            scale = min(1.0, self.detect_max_side / max(h, w))
            dw, dh = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
            sx, sy = w / dw, h / dh
            min_face = max(self.detect_min_face, self.min_size / max(sx, sy))
            if min(dw, dh) < min_face:
                continue  # too small to hold a face MTCNN can find (its pyramid would be empty)
            self._mtcnn.min_face_size = min_face  # read, not written, by the workers below

            def run(chunk: list[int], dw: int = dw, dh: int = dh, w: int = w, h: int = h) -> tuple:
                torch.set_num_threads(1)  # this worker's own setting (OpenMP keeps one per thread)
                batch = np.stack([
                    frames[i] if (dw, dh) == (w, h)
                    else cv2.resize(frames[i], (dw, dh), interpolation=cv2.INTER_AREA)
                    for i in chunk
                ])
                # (N, H, W, 3) as MTCNN takes it, stored planar: its permute to (N, 3, H, W)
                # then gives a contiguous tensor, whose pyramid resampling and crops are faster
                planar = torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous().permute(0, 2, 3, 1)
                return self._mtcnn.detect(planar, landmarks=True)

            chunks = [members[s:s + self.detect_batch_size]
                      for s in range(0, len(members), self.detect_batch_size)]
            # Always on the workers, one torch thread each: oneDNN's NHWC kernels round
            # differently with another thread count, and a frame must get the same boxes
            # whichever call it is in (and the caller's thread setting stays untouched).
            pool = self._worker_pool(self.workers or torch.get_num_threads())
            results = list(pool.map(run, chunks))
            for chunk, (b_boxes, b_probs, b_points) in zip(chunks, results):
                for i, fb, fp, fl in zip(chunk, b_boxes, b_probs, b_points):
                    if fb is None:
                        continue
                    fb = np.asarray(fb, dtype=np.float64).reshape(-1, 4)
                    fp = np.asarray(fp, dtype=np.float64).reshape(-1)
                    fl = np.asarray(fl, dtype=np.float64).reshape(-1, 5, 2)
                    boxes[i] = fb * np.array([sx, sy, sx, sy])
                    probs[i] = fp
                    points[i] = fl * np.array([sx, sy])
        return boxes, probs, points

    def _worker_pool(self, size: int) -> ThreadPoolExecutor:
        """The detection threads (made on first use, again after a fork or for another count)."""
        if self._pool is None or self._pool_owner != os.getpid() or self._pool_size != size:
            if self._pool is not None and self._pool_owner == os.getpid():
                self._pool.shutdown(wait=False)
            self._pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="mtcnn")
            self._pool_size, self._pool_owner = size, os.getpid()
        return self._pool
