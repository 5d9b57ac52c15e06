"""The face stream: MTCNN face crops of the keyframes, 16 per clip, into a 3D ResNet-50.

Cache: ``faces.npy`` uint8 (F, S, S, 3), aligned crops in temporal order, ``(0, S, S, 3)`` when no
face was found (then the modality is missing for the clip). ``meta.json`` gets ``n_faces`` and
``faces`` (boxes and confidences per keyframe, which were selected, the crop size and the size of
the frames the boxes refer to). Selection rule: see :class:`streams.inputs.faces.FaceExtractor`.
Input: (B, 3, 16, 112, 112) uint8 crops, ImageNet-normalised by the model's first module on its
device -> (B, 2048, 16, 4, 4) -> pooled (B, 2048) -> logits.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Mapping

import numpy as np
import torch

from streams.inputs.faces import FaceExtractor, FaceSettings
from streams.models.builders import create_resnet3d_stream
from streams.specs.base import DecodedClip, Step, StreamOutput, StreamSpec
from streams.views import ViewSettings, rgb_clip

#: ``create_face_stream(*, num_classes, depth, stem_dim_out, attention, dropout, pretrained)``.
create_face_stream = partial(create_resnet3d_stream, in_channels=3, depth=50, attention=False,
                             uint8_rgb_input=True)


def create_face_extractor(settings: FaceSettings, *, device: str | torch.device = "cpu") -> FaceExtractor:
    """The MTCNN face extractor of the ``faces:`` preprocessing section, MTCNN on ``device``."""
    return FaceExtractor(detect_max_side=settings.detect_max_side, min_confidence=settings.min_confidence,
                         min_size=settings.min_size, num_faces=settings.num_faces, crop_size=settings.crop_size,
                         margin=settings.margin, crop_order=settings.crop_order,
                         device=device)


class FaceStream(StreamSpec):
    name = "face"
    array_file = "faces.npy"
    section = "faces"
    recipe = "face"
    model_builder = staticmethod(create_face_stream)
    settings_class = FaceSettings
    naive_settings = {"detect_max_side": 1 << 16}   # MTCNN at full resolution
    uses_keyframes = True
    # crops go round the people in view since 2026-12-07 (most confident first before): caches
    # made before then, whose sections do not name crop_order, are recomputed
    hashed_defaults = ("crop_order",)

    def source_max_side(self, cfg: Mapping[str, Any]) -> int:
        return self.checked_settings(cfg).source_max_side

    def keyframe_sizes(self, cfg):
        return ((self.name, None, self.source_max_side(cfg)),)

    def source_sides(self, cfg):
        return 0, self.source_max_side(cfg)

    def make_step(self, cfg, *, device="cpu") -> Step:
        settings = self.checked_settings(cfg)
        extractor: list[FaceExtractor] = []   # built on first use: MTCNN costs a second to load

        def step(clip: DecodedClip) -> StreamOutput:
            if not extractor:
                extractor.append(create_face_extractor(settings, device=device))
            images = clip.keyframes.images[self.name]
            keyframes = clip.keyframes.selection.keyframes
            detections = borrowed = None
            if clip.reuse is not None:
                # overlapping live windows: each frame searched once; within a live budget, a
                # keyframe near one already searched takes its boxes (ClipReuse.per_frame_nearest)
                detections, borrowed = clip.reuse.per_frame_nearest(
                    ("face_detections", settings), [k.index for k in keyframes],
                    [k.time for k in keyframes], lambda todo: extractor[0].detect([images[j] for j in todo]))
            faces = extractor[0].extract(images, [k.time for k in keyframes], detections=detections)
            h, w = images[0].shape[:2]
            record = {
                "repeated": bool(faces.repeated),
                "boxes": [[[round(float(v), 1) for v in b] for b in frame] for frame in faces.boxes],
                "confidences": [[round(float(c), 4) for c in frame] for frame in faces.confidences],
                "selected": [list(map(int, s)) for s in faces.selected],
                "crop_size": settings.crop_size,
                "source_size": [int(w), int(h)],
            }
            if clip.reuse is not None and clip.reuse.budget is not None:
                record["borrowed"] = [bool(b) for b in borrowed]   # per keyframe: boxes of a nearby frame
            return StreamOutput(faces.crops, {"n_faces": int(faces.n_faces), "faces": record})
        return step

    def available(self, meta) -> bool:
        return int(meta.get("n_faces", 0)) > 0

    def load_input(self, array: np.ndarray, meta, settings: ViewSettings, rng) -> torch.Tensor:
        return torch.from_numpy(rgb_clip(array, settings, rng))            # (3, T, S, S) uint8

    def input_shape(self, settings: ViewSettings) -> tuple[int, ...]:
        return 3, settings.num_frames, settings.crop, settings.crop

    def input_dtype(self) -> torch.dtype:
        return torch.uint8  # the model's ImageNetNormalize makes it float32 on its device



SPEC = FaceStream()
