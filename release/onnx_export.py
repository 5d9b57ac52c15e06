"""torch -> ONNX: one function that exports a graph of :mod:`release.onnx_graphs` with a dynamic
batch axis at opset :data:`OPSET`, checks it with ``onnx.checker`` and returns the spec the
manifest records (input and output names, shapes with ``"batch"`` for the dynamic axis, dtypes).

The TorchScript-based exporter (``dynamo=False``) is used: it traces the eval-mode network once
and handles every model here (3D/2D ResNets, attention, the heads' float64 arithmetic).
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Sequence

import onnx
import torch
from torch import nn

OPSET = 17
BATCH_AXIS = "batch"

_ONNX_DTYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.DOUBLE: "float64",
                onnx.TensorProto.UINT8: "uint8", onnx.TensorProto.INT64: "int64"}


def value_specs(values) -> list[dict]:
    """``[{name, shape, dtype}]`` of ONNX graph inputs or outputs; a symbolic axis is its name."""
    out = []
    for v in values:
        t = v.type.tensor_type
        shape = [d.dim_param if d.dim_param else int(d.dim_value) for d in t.shape.dim]
        out.append({"name": v.name, "shape": shape, "dtype": _ONNX_DTYPES.get(t.elem_type, str(t.elem_type))})
    return out


def model_io(path: str | os.PathLike) -> dict[str, list[dict]]:
    """``{"inputs": [...], "outputs": [...]}`` (:func:`value_specs`) of the ONNX file ``path``."""
    model = onnx.load(os.fspath(path), load_external_data=False)
    return {"inputs": value_specs(model.graph.input), "outputs": value_specs(model.graph.output)}


def export_graph(graph: nn.Module, example: Sequence[torch.Tensor], path: str | os.PathLike, *,
                 input_names: Sequence[str], output_names: Sequence[str]) -> dict[str, list[dict]]:
    """Export ``graph`` (eval mode, CPU) traced on ``example`` (tensors with batch axis 0) to
    ``path`` with every input's and output's axis 0 named :data:`BATCH_AXIS` (dynamic); check it
    with ``onnx.checker``. Returns :func:`model_io` of the written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    axes = {name: {0: BATCH_AXIS} for name in (*input_names, *output_names)}
    fastpath = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)  # its fused kernel has no ONNX form; the plain ops do
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # tracer warnings on python-constant shapes (the heads' loops)
            torch.onnx.export(graph.eval().cpu(), tuple(example), os.fspath(path), input_names=list(input_names),
                              output_names=list(output_names), dynamic_axes=axes, opset_version=OPSET,
                              do_constant_folding=True, dynamo=False)
    finally:
        torch.backends.mha.set_fastpath_enabled(fastpath)
    onnx.checker.check_model(os.fspath(path), full_check=True)
    return model_io(path)
