"""Stream models at tiny sizes: shapes, attention behaviour, builder options."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from streams.models import StreamRecognizer, create_stream_model
from streams.specs import STREAM_SPECS
from streams.models.attention import ChannelAttention, DualAttention, SpatialAttention
from streams.models.backbones import create_resnet2d_backbone, create_resnet3d_backbone
from streams.models.heads import GlobalAveragePool

TINY = 8  # stem_dim_out: stage widths 32..256, features 256

# name -> (builder kwargs at tiny size, input shape for B=2, feature dim)
TINY_STREAMS = {
    "visual": (dict(stem_dim_out=TINY), (2, 3, 4, 32, 32), 32 * TINY),
    "audio": (dict(depth=18), (2, 1, 32, 48), 512),
    "flow": (dict(stem_dim_out=TINY), (2, 2, 4, 32, 32), 32 * TINY),
    "face": (dict(stem_dim_out=TINY), (2, 3, 4, 32, 32), 32 * TINY),
}


def test_the_spec_table_holds_the_four_method_streams():
    assert {"visual", "audio", "flow", "face"} <= set(STREAM_SPECS)


@pytest.mark.parametrize("num_classes", [3, 8])
@pytest.mark.parametrize("name", sorted(TINY_STREAMS))
def test_stream_output_shapes(name, num_classes):
    kwargs, shape, dim = TINY_STREAMS[name]
    torch.manual_seed(0)
    model = STREAM_SPECS[name].create_model(num_classes=num_classes, **kwargs).eval()
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


def test_3d_backbone_keeps_time_and_downsamples_space_by_32():
    backbone = create_resnet3d_backbone(depth=50, stem_dim_out=TINY)
    assert backbone.out_channels == 32 * TINY
    with torch.no_grad():
        out = backbone.eval()(torch.randn(1, 3, 6, 64, 64))
    assert out.shape == (1, 32 * TINY, 6, 2, 2)


def test_audio_resnet101_builds_and_runs():
    model = STREAM_SPECS["audio"].create_model(num_classes=3, depth=101).eval()
    assert model.feature_dim == 2048
    with torch.no_grad():
        assert model.features(torch.randn(1, 1, 32, 32)).shape == (1, 2048)


def test_wrong_input_channels_are_refused_clearly():
    flow = STREAM_SPECS["flow"].create_model(num_classes=3, stem_dim_out=TINY)
    with pytest.raises(ValueError, match=r"\(B, 2, T, H, W\)"):
        flow(torch.randn(1, 3, 4, 32, 32))
    audio = STREAM_SPECS["audio"].create_model(num_classes=3, depth=18)
    with pytest.raises(ValueError, match="1-channel"):
        audio(torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize("shape", [(2, 16, 3, 4, 5), (2, 16, 4, 5)])
def test_spatial_attention_weights_sum_to_one(shape):
    torch.manual_seed(0)
    attention = SpatialAttention(16)
    nn.init.normal_(attention.score.weight)  # non-uniform weights
    x = torch.randn(shape)
    out, weights = attention(x, return_weights=True)
    assert out.shape == x.shape
    assert weights.shape == (shape[0], 1, *shape[2:])
    assert (weights >= 0).all()
    torch.testing.assert_close(weights.flatten(1).sum(1), torch.ones(shape[0]))
    assert weights.flatten(1).std(1).min() > 0  # really not uniform
    assert attention.last_weights is not None and torch.equal(attention.last_weights, weights)
    # average-pooling the output is the attention-weighted sum of the input
    weighted_sum = (x * weights).flatten(2).sum(-1)
    torch.testing.assert_close(GlobalAveragePool()(out), weighted_sum, rtol=1e-5, atol=1e-5)


def test_spatial_attention_starts_as_average_pooling():
    x = torch.randn(2, 16, 3, 4, 5)
    torch.testing.assert_close(SpatialAttention(16)(x), x)


def test_channel_attention_identity_at_gamma_zero_and_danet_formula():
    torch.manual_seed(0)
    attention = ChannelAttention(6)
    x = torch.randn(2, 6, 3, 4, 4)
    assert attention.gamma.item() == 0.0
    torch.testing.assert_close(attention(x), x, rtol=0, atol=0)

    with torch.no_grad():
        attention.gamma.fill_(0.5)
    flat = x.flatten(2)
    energy = flat @ flat.transpose(1, 2)
    a = torch.softmax(energy.max(-1, keepdim=True).values - energy, dim=-1)
    expected = 0.5 * (a @ flat).view_as(x) + x
    torch.testing.assert_close(attention(x), expected)


@pytest.mark.parametrize("shape", [(2, 8, 2, 3, 3), (2, 8, 3, 3)])
def test_dual_attention_sums_both_branches_and_trains(shape):
    torch.manual_seed(0)
    dual = DualAttention(8)
    x = torch.randn(shape)
    torch.testing.assert_close(dual(x), dual.spatial(x) + dual.channel(x))
    dual(x).pow(2).mean().backward()
    assert dual.channel.gamma.grad is not None and dual.channel.gamma.grad.abs().item() > 0
    assert dual.spatial.score.weight.grad.abs().sum().item() > 0


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
