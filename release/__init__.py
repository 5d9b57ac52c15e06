"""Release bundles: a trained system (keyframe scorer, stream networks, fusion head) as one
verifiable, portable directory of ONNX models, a ``manifest.json`` with the sha256 of every file,
and a generated ``model_card.md``; and running such a bundle under ONNX Runtime or PyTorch.

    onnx_graphs.py    the networks as exportable graphs (scorer, stream, every fusion head)
    onnx_export.py    torch -> ONNX (opset 17, dynamic batch axis, onnx.checker), input/output specs
    manifest.py       manifest.json: writing it, and refusing a tampered or incomplete bundle
    onnx_engine.py    ONNX Runtime sessions with the interfaces the pipeline calls
    bundle_writer.py  a fusion run -> a bundle directory (and .tar.gz)
    bundle_predictor.py  a Predictor built from a bundle, under ONNX Runtime or PyTorch
    model_card.py     model_card.md from the runs and their report

Layering: live_mode -> release -> fusion (this package builds :class:`fusion.prediction.Predictor`s).
"""
