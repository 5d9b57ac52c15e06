"""Stream models, laid out like the model diagram: backbones -> attention (neck) -> heads,
assembled by ``recognizer``; one thin builder module per stream; ``pretrained`` for local
weight files.

``STREAM_BUILDERS`` maps a stream name to its builder (an explicit dict, no registry).
"""
from typing import Callable

from streams.models.audio import create_audio_stream
from streams.models.face import create_face_stream
from streams.models.flow import create_flow_stream
from streams.models.recognizer import StreamRecognizer, create_resnet3d_stream, create_stream_model
from streams.models.visual import create_visual_stream

STREAM_BUILDERS: dict[str, Callable[..., StreamRecognizer]] = {
    "visual": create_visual_stream,
    "audio": create_audio_stream,
    "flow": create_flow_stream,
    "face": create_face_stream,
}

__all__ = [
    "STREAM_BUILDERS",
    "StreamRecognizer",
    "create_audio_stream",
    "create_face_stream",
    "create_flow_stream",
    "create_resnet3d_stream",
    "create_stream_model",
    "create_visual_stream",
]
