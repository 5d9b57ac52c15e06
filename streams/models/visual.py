"""Visual stream: 3D ResNet-101 with spatial + channel attention over the 16 keyframes.

Input (B, 3, 16, 224, 224) RGB keyframes -> last-stage map (B, 2048, 16, 7, 7) -> DualAttention
-> pooled features (B, 2048) -> logits (B, num_classes). Built by the shared
:func:`~streams.models.recognizer.create_resnet3d_stream`; this module holds the stream's defaults.
"""
from __future__ import annotations

from functools import partial

from streams.models.recognizer import create_resnet3d_stream

#: ``create_visual_stream(*, num_classes, depth, stem_dim_out, attention, dropout, pretrained)``;
#: every argument of :func:`create_resnet3d_stream` can still be overridden (the config's ``model:``).
create_visual_stream = partial(create_resnet3d_stream, in_channels=3, depth=101, attention=True)
