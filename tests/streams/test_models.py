"""Stream models at tiny sizes: shapes, attention behaviour, builder options."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from streams.models import StreamRecognizer, create_stream_model
from streams.models.attention import ChannelAttention, DualAttention, SpatialAttention
from streams.models.backbones import (
    ResNetBackbone,
    ZeroPadShortcut,
    create_resnet2d_backbone,
    create_resnet3d_backbone,
    create_slow_backbone,
)
from streams.models.heads import GlobalAveragePool
from streams.specs import STREAM_SPECS

TINY = 8  # stem_dim_out: stage widths 32..256, features 256

# case -> (stream, builder kwargs at tiny size, input shape for B=2, feature dim)
TINY_STREAMS = {
    "visual": ("visual", dict(stem_dim_out=TINY), (2, 3, 4, 32, 32), 32 * TINY),
    "audio": ("audio", dict(depth=18), (2, 1, 32, 48), 512),
    "flow": ("flow", dict(stem_dim_out=TINY), (2, 2, 4, 32, 32), 32 * TINY),
    "face": ("face", dict(stem_dim_out=TINY), (2, 3, 4, 32, 32), 32 * TINY),
    "audio_narrow101": ("audio", dict(depth=101, stem_dim_out=TINY), (2, 1, 32, 48), 32 * TINY),
    "visual_resnet3d": ("visual", dict(arch="resnet3d", stem_dim_out=TINY), (2, 3, 4, 32, 32), 32 * TINY),
    "flow_resnet3d": ("flow", dict(arch="resnet3d", stem_dim_out=TINY), (2, 2, 4, 32, 32), 32 * TINY),
    "face_resnet3d": ("face", dict(arch="resnet3d", stem_dim_out=TINY), (2, 3, 4, 32, 32), 32 * TINY),
}


def test_the_spec_table_holds_the_four_method_streams():
    assert {"visual", "audio", "flow", "face"} <= set(STREAM_SPECS)


@pytest.mark.parametrize("num_classes", [3, 8])
@pytest.mark.parametrize("name", sorted(TINY_STREAMS))
@pytest.mark.slow  # builds and runs full-depth or 3D stream models
def test_stream_output_shapes(name, num_classes):
    stream, kwargs, shape, dim = TINY_STREAMS[name]
    torch.manual_seed(0)
    model = STREAM_SPECS[stream].create_model(num_classes=num_classes, **kwargs).eval()
    assert isinstance(model, StreamRecognizer)
    assert model.feature_dim == dim and model.num_classes == num_classes
    x = torch.randn(shape)
    with torch.no_grad():
        features = model.features(x)
        logits = model(x)
    assert features.shape == (2, dim)
    assert logits.shape == (2, num_classes)
    assert torch.isfinite(logits).all()
    # the logits are the head applied to the features fusion will use
    torch.testing.assert_close(logits, model.head(features))


def test_visual_stream_depths_and_attention_neck():
    visual = STREAM_SPECS["visual"].create_model(num_classes=3, stem_dim_out=TINY)
    assert isinstance(visual.neck, DualAttention)
    assert len(visual.backbone.blocks[3].res_blocks) == 23  # ResNet-101 by default
    plain = STREAM_SPECS["visual"].create_model(num_classes=3, stem_dim_out=TINY, depth=50, attention=False)
    assert isinstance(plain.neck, nn.Identity)
    assert len(plain.backbone.blocks[3].res_blocks) == 6
    for name in ("flow", "face"):
        model = STREAM_SPECS[name].create_model(num_classes=3, stem_dim_out=TINY)
        assert len(model.backbone.blocks[3].res_blocks) == 6  # ResNet-50 by default
    assert STREAM_SPECS["flow"].create_model(num_classes=3, stem_dim_out=TINY).backbone.blocks[0].conv.in_channels == 2


@pytest.mark.slow  # builds and runs full-depth or 3D stream models
def test_slow_backbone_keeps_time_and_downsamples_space_by_32():
    backbone = create_slow_backbone(depth=50, stem_dim_out=TINY)
    assert backbone.out_channels == 32 * TINY
    with torch.no_grad():
        out = backbone.eval()(torch.randn(1, 3, 6, 64, 64))
    assert out.shape == (1, 32 * TINY, 6, 2, 2)


@pytest.mark.slow  # builds and runs full-depth or 3D stream models
def test_audio_resnet101_builds_and_runs():
    model = STREAM_SPECS["audio"].create_model(num_classes=3, depth=101).eval()
    assert model.feature_dim == 2048
    with torch.no_grad():
        assert model.features(torch.randn(1, 1, 32, 32)).shape == (1, 2048)


def hara_tensor_shapes(depth: int, width: int, in_channels: int = 3, shortcut: str = "B") -> dict:
    """The state-dict shapes of 3D-ResNets-PyTorch's ``generate_model(depth, widen_factor=width/64,
    shortcut_type=shortcut)`` without ``fc``, written out from the paper's layout: conv1 7x7x7,
    then per stage ``layerS.I.conv1..`` (3x3x3 k convs; 1x1x1 reduce/expand in bottlenecks)."""
    blocks = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}[depth]
    bottleneck = depth >= 50
    shapes = {"conv1.weight": (width, in_channels, 7, 7, 7)}
    def bn(prefix, n):
        return {f"{prefix}.{p}": (n,) for p in ("weight", "bias", "running_mean", "running_var")} | {
            f"{prefix}.num_batches_tracked": ()}
    shapes |= bn("bn1", width)
    c_in = width
    for stage, count in enumerate(blocks, start=1):
        planes = width * 2 ** (stage - 1)
        c_out = planes * (4 if bottleneck else 1)
        for i in range(count):
            p = f"layer{stage}.{i}"
            if bottleneck:
                shapes[f"{p}.conv1.weight"] = (planes, c_in, 1, 1, 1)
                shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3, 3)
                shapes[f"{p}.conv3.weight"] = (c_out, planes, 1, 1, 1)
                shapes |= bn(f"{p}.bn1", planes) | bn(f"{p}.bn2", planes) | bn(f"{p}.bn3", c_out)
            else:
                shapes[f"{p}.conv1.weight"] = (planes, c_in, 3, 3, 3)
                shapes[f"{p}.conv2.weight"] = (planes, planes, 3, 3, 3)
                shapes |= bn(f"{p}.bn1", planes) | bn(f"{p}.bn2", planes)
            if i == 0 and (stage > 1 or c_in != c_out) and shortcut == "B":
                shapes[f"{p}.downsample.0.weight"] = (c_out, c_in, 1, 1, 1)
                shapes |= bn(f"{p}.downsample.1", c_out)
            c_in = c_out
    return shapes


@pytest.mark.parametrize("depth, shortcut", [(18, "A"), (34, "B"), (50, "B"), (101, "B"), (152, "B")])
def test_resnet3d_tensor_names_and_shapes_are_hara_s(depth, shortcut):
    backbone = create_resnet3d_backbone(depth=depth, stem_dim_out=TINY, shortcut_type=shortcut)
    got = {k: tuple(v.shape) for k, v in backbone.state_dict().items()}
    assert got == hara_tensor_shapes(depth, TINY, shortcut=shortcut)
    assert backbone.out_channels == (8 if depth < 50 else 32) * TINY
    if shortcut == "A":
        assert isinstance(backbone.layer2[0].downsample, ZeroPadShortcut) and backbone.layer1[0].downsample is None


@pytest.mark.slow  # builds and runs full-depth or 3D stream models
def test_resnet3d_stem_pool_and_strides_as_hara():
    backbone = create_resnet3d_backbone(depth=50, stem_dim_out=TINY)
    conv1, maxpool = backbone.conv1, backbone.maxpool
    assert (conv1.kernel_size, conv1.stride, conv1.padding) == ((7, 7, 7), (1, 2, 2), (3, 3, 3))
    assert isinstance(maxpool, nn.MaxPool3d)
    assert (maxpool.kernel_size, maxpool.stride, maxpool.padding) == ((3, 3, 3), (2, 2, 2), (1, 1, 1))
    assert backbone.layer2[0].conv2.stride == (2, 2, 2) and backbone.layer2[0].conv1.stride == (1, 1, 1)
    assert backbone.layer1[0].conv2.stride == (1, 1, 1)
    with torch.no_grad():
        # space / 32 and time / 16, rounded up
        assert backbone.eval()(torch.randn(1, 3, 17, 64, 96)).shape == (1, 32 * TINY, 2, 2, 3)
        assert backbone(torch.randn(1, 3, 4, 32, 32)).shape == (1, 32 * TINY, 1, 1, 1)


def test_zero_pad_shortcut_subsamples_and_appends_zero_channels():
    x = torch.randn(2, 3, 5, 6, 7)
    out = ZeroPadShortcut(out_channels=8, stride=(2, 2, 2))(x)
    assert out.shape == (2, 8, 3, 3, 4)
    torch.testing.assert_close(out[:, :3], x[:, :, ::2, ::2, ::2], rtol=0, atol=0)
    assert not out[:, 3:].any()


def test_resnet3d_streams_by_arch_and_unknown_arch_refused():
    visual = STREAM_SPECS["visual"].create_model(num_classes=3, arch="resnet3d", stem_dim_out=TINY)
    assert isinstance(visual.backbone, ResNetBackbone) and len(visual.backbone.layer3) == 23
    assert isinstance(visual.neck, DualAttention)
    flow = STREAM_SPECS["flow"].create_model(num_classes=3, arch="resnet3d", stem_dim_out=TINY)
    assert flow.backbone.conv1.in_channels == 2 and len(flow.backbone.layer3) == 6
    r18 = STREAM_SPECS["face"].create_model(num_classes=3, arch="resnet3d", depth=18, stem_dim_out=TINY,
                                            shortcut_type="A")
    assert r18.feature_dim == 8 * TINY
    with pytest.raises(ValueError, match="arch must be one of"):
        STREAM_SPECS["face"].create_model(num_classes=3, arch="r2plus1d", stem_dim_out=TINY)
    with pytest.raises(ValueError, match="shortcut_type"):
        STREAM_SPECS["face"].create_model(num_classes=3, stem_dim_out=TINY, shortcut_type="A")  # slow


@pytest.mark.parametrize("depth", [18, 50])
@pytest.mark.slow  # builds and runs full-depth or 3D stream models
def test_resnet2d_backbone_is_torchvision_resnet(depth):
    """At width 64 the 2D backbone has torchvision's tensors and computes torchvision's trunk."""
    import torchvision

    torch.manual_seed(0)
    reference = getattr(torchvision.models, f"resnet{depth}")(weights=None).eval()
    backbone = create_resnet2d_backbone(depth=depth).eval()
    state = {k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    assert {k: v.shape for k, v in backbone.state_dict().items()} == {k: v.shape for k, v in state.items()}
    backbone.load_state_dict(state)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = nn.Sequential(*list(reference.children())[:-2])(x)
        torch.testing.assert_close(backbone(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.slow  # builds and runs full-depth or 3D stream models
def test_narrow_audio_resnet101():
    model = STREAM_SPECS["audio"].create_model(num_classes=3, depth=101, stem_dim_out=TINY).eval()
    assert model.feature_dim == 32 * TINY and len(model.backbone.layer3) == 23
    assert model.backbone.conv1.weight.shape == (TINY, 3, 7, 7)
    with torch.no_grad():
        assert model.features(torch.randn(1, 1, 32, 32)).shape == (1, 32 * TINY)


def test_wrong_input_channels_are_refused_clearly():
    flow = STREAM_SPECS["flow"].create_model(num_classes=3, stem_dim_out=TINY)
    with pytest.raises(ValueError, match=r"\(B, 2, T, H, W\)"):
        flow(torch.randn(1, 3, 4, 32, 32))
    flow3d = STREAM_SPECS["flow"].create_model(num_classes=3, arch="resnet3d", stem_dim_out=TINY)
    with pytest.raises(ValueError, match=r"\(B, 2, T, H, W\)"):
        flow3d(torch.randn(1, 3, 4, 32, 32))
    audio = STREAM_SPECS["audio"].create_model(num_classes=3, depth=18)
    with pytest.raises(ValueError, match="1-channel"):
        audio(torch.randn(1, 3, 32, 32))


def test_spatial_attention_per_frame_weights_sum_to_one_per_frame():
    torch.manual_seed(0)
    attention = SpatialAttention(16)  # per_frame by default
    nn.init.normal_(attention.score.weight)  # non-uniform weights
    x = torch.randn(2, 16, 3, 4, 5)
    out, weights = attention(x, return_weights=True)
    assert out.shape == x.shape and weights.shape == (2, 1, 3, 4, 5)
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.sum(dim=(-2, -1)), torch.ones(2, 1, 3))  # each frame's regions
    assert weights.flatten(2).std(-1).min() > 0  # really not uniform
    assert attention.last_weights is not None and torch.equal(attention.last_weights, weights)
    # average-pooling a frame of the output is that frame's attention-weighted sum of regions
    torch.testing.assert_close(out.mean(dim=(-2, -1)), (x * weights).sum(dim=(-2, -1)), rtol=1e-5, atol=1e-5)
    # so pooling the clip is the mean over frames of those weighted sums
    torch.testing.assert_close(GlobalAveragePool()(out), (x * weights).sum(dim=(-2, -1)).mean(-1),
                               rtol=1e-5, atol=1e-5)
    # a frame's weights depend on that frame alone
    x2 = x.clone()
    x2[:, :, 0] = torch.randn(2, 16, 4, 5)
    _, weights2 = attention(x2, return_weights=True)
    torch.testing.assert_close(weights2[:, :, 1:], weights[:, :, 1:])
    assert not torch.allclose(weights2[:, :, 0], weights[:, :, 0])


@pytest.mark.parametrize("shape, per_frame", [((2, 16, 3, 4, 5), False), ((2, 16, 4, 5), True), ((2, 16, 4, 5), False)])
def test_spatial_attention_over_all_positions(shape, per_frame):
    """The space-time variant (and any 2D map): one softmax over every position of a sample."""
    torch.manual_seed(0)
    attention = SpatialAttention(16, per_frame=per_frame)
    nn.init.normal_(attention.score.weight)
    x = torch.randn(shape)
    out, weights = attention(x, return_weights=True)
    assert out.shape == x.shape
    assert weights.shape == (shape[0], 1, *shape[2:])
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.flatten(1).sum(1), torch.ones(shape[0]))
    assert weights.flatten(1).std(1).min() > 0
    # average-pooling the output is the attention-weighted sum of the input
    weighted_sum = (x * weights).flatten(2).sum(-1)
    torch.testing.assert_close(GlobalAveragePool()(out), weighted_sum, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("per_frame", [True, False])
def test_spatial_attention_starts_as_average_pooling(per_frame):
    x = torch.randn(2, 16, 3, 4, 5)
    torch.testing.assert_close(SpatialAttention(16, per_frame=per_frame)(x), x)


def danet_channel_attention(x: torch.Tensor, gamma: float) -> torch.Tensor:
    """DANet's CAM written out as in the paper: softmax(rowmax(E) - E) with E = X Xᵀ."""
    flat = x.flatten(2)
    energy = flat @ flat.transpose(1, 2)
    a = torch.softmax(energy.max(-1, keepdim=True).values - energy, dim=-1)
    return gamma * (a @ flat).view_as(x) + x


def test_channel_attention_identity_at_gamma_zero_and_danet_formula():
    torch.manual_seed(0)
    attention = ChannelAttention(6)
    x = torch.randn(2, 6, 3, 4, 4)
    assert attention.gamma.item() == 0.0
    torch.testing.assert_close(attention(x), x, rtol=0, atol=0)

    with torch.no_grad():
        attention.gamma.fill_(0.5)
    torch.testing.assert_close(attention(x), danet_channel_attention(x, 0.5))
    # large activations (energies of thousands, as in a trained 2048-channel map) too
    big = 20 * torch.randn(2, 6, 3, 4, 4)
    torch.testing.assert_close(attention(big), danet_channel_attention(big, 0.5))


@pytest.mark.parametrize("shape", [(2, 8, 2, 3, 3), (2, 8, 3, 3)])
def test_dual_attention_starts_as_identity_sums_branch_changes_and_trains(shape):
    torch.manual_seed(0)
    dual = DualAttention(8)
    x = torch.randn(shape)
    torch.testing.assert_close(dual(x), x)  # identity at initialisation, not 2x
    with torch.no_grad():
        nn.init.normal_(dual.spatial.score.weight)
        dual.channel.gamma.fill_(0.3)
    # each branch's change to the map, summed: spatial(x) + channel(x) - x
    expected = dual.spatial(x) + danet_channel_attention(x, 0.3) - x
    torch.testing.assert_close(dual(x), expected)
    assert not torch.allclose(dual(x), x)
    dual(x).pow(2).mean().backward()
    assert dual.channel.gamma.grad is not None and dual.channel.gamma.grad.abs().item() > 0
    assert dual.spatial.score.weight.grad.abs().sum().item() > 0


def test_channel_attention_gram_matrix_in_float32_for_half_inputs():
    """A float16 map whose energies (sums of N products) pass float16's maximum of 65504: the
    Gram matrix and softmax run in float32, so the result is finite and right."""
    torch.manual_seed(0)
    attention = ChannelAttention(6)
    with torch.no_grad():
        attention.gamma.fill_(0.5)
    half = (40 + 20 * torch.rand(2, 6, 3, 4, 4)).half()  # positive, like post-ReLU features
    flat = half.flatten(2).float()
    assert (flat @ flat.transpose(1, 2)).min() > 65504  # every energy would overflow in float16
    out = attention(half)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out.float(), danet_channel_attention(half.float(), 0.5), rtol=1e-2, atol=0.5)


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_attention_runs_on_any_device_type(device):
    """The channel branch switches autocast off on its input's device; on a device type autocast
    does not know (``meta``, the stand-in device of the inference tests) it still runs."""
    dual = DualAttention(4).to(device)
    out = dual(torch.ones(2, 4, 2, 3, 3, device=device))
    assert out.device.type == device and out.shape == (2, 4, 2, 3, 3)


@pytest.mark.parametrize("per_frame", [True, False])
@pytest.mark.slow  # builds and runs full-depth or 3D stream models
def test_dual_attention_gradients_are_exact(per_frame):
    """Analytic gradients (the in-place negation, the fused sum) match finite differences."""
    torch.manual_seed(0)
    dual = DualAttention(4, per_frame=per_frame).double()
    with torch.no_grad():
        nn.init.normal_(dual.spatial.score.weight)
        dual.channel.gamma.fill_(0.7)
    x = torch.randn(2, 4, 2, 3, 3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(dual, (x,))
    weight = dual.spatial.score.weight
    assert torch.autograd.gradcheck(lambda w: torch.func.functional_call(dual, {"spatial.score.weight": w}, (x,)),
                                    (weight.detach().clone().requires_grad_(True),))


def test_stream_attention_option_chooses_the_spatial_softmax():
    per_frame = STREAM_SPECS["visual"].create_model(num_classes=3, stem_dim_out=TINY, depth=50)
    clip = STREAM_SPECS["visual"].create_model(num_classes=3, stem_dim_out=TINY, depth=50, attention_per_frame=False)
    assert per_frame.neck.spatial.per_frame and not clip.neck.spatial.per_frame


def test_create_stream_model_with_custom_neck_and_adapter():
    backbone = create_resnet2d_backbone(depth=18)
    seen = []

    def neck(channels: int) -> nn.Module:
        seen.append(channels)
        return SpatialAttention(channels)

    model = create_stream_model(backbone=backbone, num_classes=4, attention=neck, dropout=0.0)
    assert seen == [512] and isinstance(model.neck, SpatialAttention)
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 4)
    with pytest.raises(TypeError):
        create_stream_model(backbone=backbone, num_classes=4, attention="dual")
    with pytest.raises(ValueError, match="out_channels"):
        create_stream_model(backbone=nn.Identity(), num_classes=4)


def test_resized_flow_fields_rescale_their_vectors():
    """Displacements are in pixels: a field resized to twice the width moves twice as far in x."""
    import numpy as np

    from streams.inputs.optical_flow import quantise_flow
    from streams.specs import STREAM_SPECS

    spec = STREAM_SPECS["flow"]
    field = np.zeros((2, 2, 16, 16), np.float32)
    field[:, 0] = 4.0   # 4 px to the right
    field[:, 1] = -2.0  # 2 px up
    stored = quantise_flow(field, 20.0)
    meta = {"flow": {"bound": 20.0}}
    same = spec.load_input(stored, meta, spec.data_settings({"num_frames": 2, "crop": 16}), None)
    wide = spec.load_input(stored, meta, spec.data_settings({"num_frames": 2, "resize": [16, 32], "crop": 16}), None)
    assert torch.allclose(wide[0], same[0] * 2, atol=0.02) and torch.allclose(wide[1], same[1], atol=0.02)


@pytest.mark.parametrize("dims", [2, 3])
def test_zero_init_residual_starts_every_block_as_its_shortcut(dims):
    from streams.models.backbones import create_resnet2d_backbone, create_resnet3d_backbone

    build = create_resnet2d_backbone if dims == 2 else create_resnet3d_backbone
    torch.manual_seed(0)
    net = build(depth=50, stem_dim_out=4, zero_init_residual=True).eval()
    blocks = [b for layer in (net.layer1, net.layer2, net.layer3, net.layer4) for b in layer]
    assert len(blocks) == 16 and all(float(b.bn3.weight.detach().abs().sum()) == 0.0 for b in blocks)
    x = torch.randn(2, 16, *(8,) * dims)
    block = net.layer1[1]  # an identity shortcut: the block passes its (non-negative) input through
    torch.testing.assert_close(block(x.relu()), x.relu())
    plain = build(depth=50, stem_dim_out=4).eval()
    assert all(float(b.bn3.weight.detach().min()) == 1.0 for layer in (plain.layer1, plain.layer4) for b in layer)
