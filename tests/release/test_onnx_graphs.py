"""Each model type exported to ONNX and run by ONNX Runtime gives the PyTorch model's outputs:
the stream networks (3D ResNet with and without attention, 2D audio ResNet, flow, faces, the
wav2vec 2.0 speech stream) and every fusion head, the one-pass ones (score weighting, stacking)
included, on clips with missing streams."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from core.config import load_config
from fusion.heads import FUSION_HEADS, create_fusion_head
from fusion.heads.inputs import MASK_KEY, PROBS_KEY
from release.onnx_engine import OnnxHead, OnnxStream, open_session
from release.onnx_export import BATCH_AXIS, OPSET, export_graph
from release.onnx_graphs import ATTENTION_OUTPUT, STREAM_OUTPUTS, StreamGraph, head_graph
from streams.data import StreamDataset
from streams.training import build_stream_model
from tests.conftest import load_helper

pytestmark = pytest.mark.slow  # exports and traces a dozen networks
ROOT = Path(__file__).resolve().parents[2]
toy = load_helper(ROOT / "tests" / "fusion" / "toy_features.py", "tests_release_toy_features")
SMALL = {"stacking": {"folds": 3, "forest_trees": 5, "boosting_stages": 3}}
TOLERANCE = 1e-4


def _stream(stream: str, **model):
    recipe = {k: v for k, v in load_config(ROOT / f"configs/streams/{stream}_tiny.yaml").items() if k != "train"}
    recipe["model"] = {**recipe.get("model", {}), **model}
    torch.manual_seed(0)
    net = build_stream_model(recipe, 3).eval()
    view = StreamDataset([], stream, recipe.get("data", {}), train=False)
    shape, dtype = tuple(view.spec.input_shape(view.settings)), view.spec.input_dtype()
    gen = torch.Generator().manual_seed(1)
    if dtype == torch.uint8:
        x = torch.randint(0, 256, (3, *shape), generator=gen).to(torch.uint8)
    else:
        x = torch.randn((3, *shape), generator=gen)
    return net, x


@pytest.mark.parametrize("stream, model, attention", [
    ("visual", {"attention": True}, True), ("visual", {"attention": False}, False), ("audio", {}, False),
    ("flow", {}, None), ("face", {}, None), ("speech", {}, None)])
def test_stream_export_gives_the_torch_outputs(tmp_path, stream, model, attention):
    net, x = _stream(stream, **model)
    graph = StreamGraph(net)
    if attention is not None:
        assert (graph.attention is not None) == attention
    outputs = [*STREAM_OUTPUTS, *([ATTENTION_OUTPUT] if graph.attention is not None else [])]
    spec = export_graph(graph, (x[:2],), tmp_path / "s.onnx", input_names=["input"], output_names=outputs)
    proto = onnx.load(str(tmp_path / "s.onnx"))
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) >= OPSET
    assert spec["inputs"][0]["shape"][0] == BATCH_AXIS and [o["name"] for o in spec["outputs"]] == outputs
    engine = OnnxStream(open_session(tmp_path / "s.onnx", ["CPUExecutionProvider"]), feature_dim=net.feature_dim,
                        num_classes=3)
    f, logits = engine.features_and_logits(x)  # batch 3: another size than the export's 2
    with torch.no_grad():
        ref = graph(x)
    assert torch.allclose(f, ref[0], atol=TOLERANCE, rtol=TOLERANCE)
    assert torch.allclose(logits, ref[1], atol=TOLERANCE, rtol=TOLERANCE)
    if graph.attention is not None:
        assert torch.allclose(engine.last_attention, ref[2], atol=TOLERANCE)
        assert engine.spatial.last_weights is engine.last_attention


def _inputs(dims: dict[str, int], n: int = 12) -> dict[str, torch.Tensor]:
    x, _, _ = toy.toy_batch(n, dims, mode="all")
    mask = x[MASK_KEY].clone()
    mask[0, 0] = 0.0                       # one clip without its first stream
    mask[1] = 0.0                          # one clip without any
    mask[2, 1:] = 0.0                      # one clip with the first stream only
    feats = {s: x[s] * mask[:, i:i + 1] for i, s in enumerate(dims)}
    probs = x[PROBS_KEY] * mask[:, :, None]
    return {**feats, MASK_KEY: mask, PROBS_KEY: probs}


@pytest.mark.parametrize("name", list(FUSION_HEADS))
def test_every_fusion_head_exports_with_its_outputs(tmp_path, name):
    dims = {"visual": 6, "audio": 5, "face": 4}
    x, y, _ = toy.toy_batch(30, dims, mode="all")
    model = {**load_config(ROOT / "configs" / "fusion" / f"{name}.yaml")["model"], **SMALL.get(name, {})}
    torch.manual_seed(0)
    head = create_fusion_head(model, stream_dims=dims, num_classes=3)
    if not FUSION_HEADS[name].gradient:
        head.fit_inputs(x, y.numpy(), seed=0, split_inputs=lambda split: (x, y.numpy()))
    head.eval()
    inputs = _inputs(dims)
    example = [inputs[s][:2] for s in dims] + [inputs[MASK_KEY][:2], inputs[PROBS_KEY][:2]]
    export_graph(head_graph(head), example, tmp_path / "h.onnx", input_names=[*dims, "mask", "probs"],
                 output_names=["logits"])
    engine = OnnxHead(open_session(tmp_path / "h.onnx", ["CPUExecutionProvider"]), stream_dims=dims, num_classes=3)
    with torch.no_grad():
        ref = torch.softmax(head(inputs).float(), 1).numpy()
    got = torch.softmax(engine(inputs), 1).numpy()
    np.testing.assert_allclose(got, ref, atol=TOLERANCE)
    assert (got.argmax(1) == ref.argmax(1)).all()
