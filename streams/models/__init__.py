"""The parts stream networks are assembled from, laid out like the model diagram: ``backbones``
(3D and 2D ResNets) -> ``attention`` (the neck) -> ``heads``, held by ``recognizer`` and put
together by ``builders``, which also applies the local weight files that ``pretrained`` reads.
Which stream uses which parts is said by its spec (:mod:`streams.specs`).
"""
from streams.models.builders import create_resnet3d_stream, create_stream_model
from streams.models.recognizer import StreamRecognizer

__all__ = ["StreamRecognizer", "create_resnet3d_stream", "create_stream_model"]
