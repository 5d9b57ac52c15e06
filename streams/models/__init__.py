"""The parts stream networks are assembled from, laid out like the model diagram: ``backbones``
(3D and 2D ResNets) -> ``attention`` (the neck) -> ``heads``, put together by ``recognizer``;
``pretrained`` loads local weight files into them. Which stream uses which parts is said by its
spec (:mod:`streams.specs`).
"""
from streams.models.recognizer import StreamRecognizer, create_resnet3d_stream, create_stream_model

__all__ = ["StreamRecognizer", "create_resnet3d_stream", "create_stream_model"]
