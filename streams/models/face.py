"""Face stream: 3D ResNet-50 over the 16 face crops of a clip.

Input (B, 3, 16, 112, 112) MTCNN crops -> last-stage map (B, 2048, 16, 4, 4) -> pooled features
(B, 2048) -> logits. Built by the shared
:func:`~streams.models.recognizer.create_resnet3d_stream`; this module holds the stream's defaults.
"""
from __future__ import annotations

from functools import partial

from streams.models.recognizer import create_resnet3d_stream

#: ``create_face_stream(*, num_classes, depth, stem_dim_out, attention, dropout, pretrained)``;
#: every argument of :func:`create_resnet3d_stream` can still be overridden (the config's ``model:``).
create_face_stream = partial(create_resnet3d_stream, in_channels=3, depth=50, attention=False)
