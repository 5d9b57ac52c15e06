"""Optical-flow stream: 3D ResNet-50 with a 2-channel stem over x/y flow fields.

Input (B, 2, 8, 224, 224) flow at 8 time points -> last-stage map (B, 2048, 8, 7, 7) -> pooled
features (B, 2048) -> logits. Built by the shared
:func:`~streams.models.recognizer.create_resnet3d_stream`; this module holds the stream's defaults.
"""
from __future__ import annotations

from functools import partial

from streams.models.recognizer import create_resnet3d_stream

#: ``create_flow_stream(*, num_classes, depth, stem_dim_out, attention, dropout, pretrained)``;
#: every argument of :func:`create_resnet3d_stream` can still be overridden (the config's ``model:``).
create_flow_stream = partial(create_resnet3d_stream, in_channels=2, depth=50, attention=False)
