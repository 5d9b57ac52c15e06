"""The visual stream: a 3D ResNet-101 with spatial and channel attention over the 16 keyframes.

Cache: ``keyframes.npy`` uint8 (N, H, W, 3), the keyframes in temporal order, RGB, short side
``visual.short_side`` (256). Input: (B, 3, 16, 224, 224) uint8 keyframes (random crop and flip
for training, centre crop for evaluation), ImageNet-normalised by the model's first module on its
device -> last-stage map (B, 2048, 16, 7, 7) -> attention -> pooled features (B, 2048) -> logits.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Mapping

import numpy as np
import torch

from core.config import check_settings, setting
from streams.models.builders import create_resnet3d_stream
from streams.specs.base import DecodedClip, Step, StreamOutput, StreamSpec
from streams.views import ViewSettings, rgb_clip

#: ``create_visual_stream(*, num_classes, depth, stem_dim_out, attention, dropout, pretrained)``;
#: every argument of :func:`create_resnet3d_stream` can be overridden by the recipe's ``model:``.
create_visual_stream = partial(create_resnet3d_stream, in_channels=3, depth=101, attention=True,
                               uint8_rgb_input=True)


@dataclass(frozen=True)
class VisualSettings:
    """The ``visual:`` preprocessing section: the keyframes are stored with this ``short_side`` (px)."""

    short_side: int = setting(256, minimum=1, help="px: stored keyframe size (the stream crops from it)")

    def __post_init__(self) -> None:
        check_settings(self, "visual")


class VisualStream(StreamSpec):
    name = "visual"
    array_file = "keyframes.npy"
    section = "visual"
    recipe = "visual"
    model_builder = staticmethod(create_visual_stream)
    settings_class = VisualSettings
    uses_keyframes = True
    stores_keyframes = True

    def short_side(self, cfg: Mapping[str, Any]) -> int:
        return self.checked_settings(cfg).short_side

    def keyframe_sizes(self, cfg):
        return ((self.name, self.short_side(cfg), None),)

    def source_sides(self, cfg):
        return self.short_side(cfg), 0

    def make_step(self, cfg, *, device="cpu") -> Step:
        def step(clip: DecodedClip) -> StreamOutput:
            return StreamOutput(np.stack(clip.keyframes.images[self.name]))
        return step

    def load_input(self, array: np.ndarray, meta, settings: ViewSettings, rng) -> torch.Tensor:
        return torch.from_numpy(rgb_clip(array, settings, rng))            # (3, T, S, S) uint8

    def input_shape(self, settings: ViewSettings) -> tuple[int, ...]:
        return 3, settings.num_frames, settings.crop, settings.crop

    def input_dtype(self) -> torch.dtype:
        return torch.uint8  # the model's ImageNetNormalize makes it float32 on its device



SPEC = VisualStream()
