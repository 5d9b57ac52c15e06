"""Initialising streams from local weight files: torchvision 2D, pytorchvideo 3D, I3D inflation."""
from __future__ import annotations

import pytest
import safetensors.torch
import torch
import torchvision
from pytorchvideo.models.resnet import create_resnet
from torch import nn

from streams.specs.audio import create_audio_stream
from streams.specs.face import create_face_stream
from streams.specs.flow import create_flow_stream
from streams.specs.visual import create_visual_stream
from streams.models.pretrained import inflate_2d_state_to_3d, init_from_pretrained, torchvision_to_pytorchvideo_key
from training.weights import WeightsError

TINY = 8


class NotATensor:
    def __init__(self) -> None:
        self.payload = "anything"


def randomise_batchnorm(model: nn.Module, seed: int = 0) -> None:
    """Give every BN non-trivial affine parameters and running statistics."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                n = module.num_features
                module.weight.copy_(0.5 + torch.rand(n, generator=generator))
                module.bias.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_mean.copy_(0.1 * torch.randn(n, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(n, generator=generator))


@pytest.fixture(scope="module")
def resnet50() -> torchvision.models.ResNet:
    """A randomly initialised torchvision ResNet-50 in eval mode with random BN statistics
    (built once per module: it is the slowest thing these tests make)."""
    torch.manual_seed(3)
    model = torchvision.models.resnet50(weights=None)
    randomise_batchnorm(model)
    return model.eval()


def assert_backbone_equals(backbone: nn.Module, state: dict, *, rename=lambda k: k, skip=lambda k: False) -> int:
    got = backbone.state_dict()
    checked = 0
    for key, tensor in state.items():
        if skip(key):
            continue
        torch.testing.assert_close(got[rename(key)], tensor, rtol=0, atol=0, msg=key)
        checked += 1
    assert checked == len(got)
    return checked


@pytest.mark.parametrize("depth, suffix", [(18, ".pt"), (50, ".safetensors")])
def test_torchvision2d_into_audio_stream(tmp_path, resnet50, depth, suffix):
    if depth == 50:
        resnet = resnet50
    else:
        torch.manual_seed(1)
        resnet = torchvision.models.resnet18(weights=None)
        randomise_batchnorm(resnet)
    state = resnet.state_dict()
    path = tmp_path / f"imagenet{suffix}"
    if suffix == ".pt":
        torch.save(state, path)
    else:
        safetensors.torch.save_file(state, str(path))

    model = create_audio_stream(num_classes=3, depth=depth)
    head_before = model.head.proj.weight.clone()
    report = init_from_pretrained(model, path=path, format="torchvision2d")

    assert sorted(report.skipped_on_purpose) == ["fc.bias", "fc.weight"]
    assert not report.missing and not report.unexpected and not report.skipped_shape
    assert_backbone_equals(model.backbone, state, skip=lambda k: k.startswith("fc."))
    torch.testing.assert_close(model.head.proj.weight, head_before, rtol=0, atol=0)
    assert "fc.weight" in report.summary() and "on purpose" in report.summary()


def test_pytorchvideo3d_checkpoint_into_face_stream(tmp_path):
    torch.manual_seed(2)
    net = create_resnet(model_depth=50, stem_dim_out=TINY, stem_conv_kernel_size=(1, 7, 7), model_num_class=400)
    randomise_batchnorm(net)
    path = tmp_path / "SLOW_8x8_R50.pyth"
    torch.save({"model_state": net.state_dict(), "epoch": 196}, path)

    model = create_face_stream(num_classes=3, stem_dim_out=TINY)
    report = init_from_pretrained(model, path=path, format="pytorchvideo3d")

    assert sorted(report.skipped_on_purpose) == ["blocks.5.proj.bias", "blocks.5.proj.weight"]
    assert not report.missing and not report.unexpected and not report.skipped_shape
    assert_backbone_equals(model.backbone, net.state_dict(), skip=lambda k: k.startswith("blocks.5."))
    assert model.head.proj.weight.shape == (3, 32 * TINY)
    assert "blocks.5.proj.weight" in report.summary() and "head" in report.summary()


def test_pytorchvideo3d_depth_mismatch_lists_missing_keys(tmp_path):
    net = create_resnet(model_depth=50, stem_dim_out=TINY, stem_conv_kernel_size=(1, 7, 7), head=None)
    path = tmp_path / "r50.pt"
    torch.save({"model_state": net.state_dict()}, path)
    model = create_visual_stream(num_classes=3, stem_dim_out=TINY, depth=101)
    report = init_from_pretrained(model, path=path, format="pytorchvideo3d")
    # res4 of ResNet-101 has 23 blocks, ResNet-50 only 6: blocks 6..22 are missing, by name
    assert "blocks.3.res_blocks.6.branch2.conv_a.weight" in report.missing
    assert "blocks.3.res_blocks.22.branch2.norm_c.running_var" in report.missing
    assert "blocks.3.res_blocks.5.branch2.conv_a.weight" in report.loaded
    assert not any(k.startswith(("blocks.0.", "blocks.4.")) for k in report.missing)
    assert "blocks.3.res_blocks.6.branch2.conv_a.weight" in report.summary(max_names=None)


def test_pickled_object_refused_through_init(tmp_path):
    path = tmp_path / "suspicious.pth"
    torch.save({"model_state": {"blocks.0.conv.weight": torch.zeros(1)}, "cfg": NotATensor()}, path)
    model = create_face_stream(num_classes=3, stem_dim_out=TINY)
    with pytest.raises(WeightsError, match=r"suspicious\.pth.*weights_only=True"):
        init_from_pretrained(model, path=path, format="pytorchvideo3d")


def test_wrong_format_for_backbone_and_nothing_matching_are_errors(tmp_path):
    path = tmp_path / "r18.pt"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), path)
    face = create_face_stream(num_classes=3, stem_dim_out=TINY)
    with pytest.raises(WeightsError, match=r"r18\.pt.*torchvision2d.*ResNet2dBackbone"):
        init_from_pretrained(face, path=path, format="torchvision2d")
    with pytest.raises(WeightsError, match=r"r18\.pt.*no tensor"):
        init_from_pretrained(face, path=path, format="pytorchvideo3d")
    with pytest.raises(WeightsError, match=r"r18\.pt.*basic-block"):
        init_from_pretrained(face, path=path, format="inflate2d")
    with pytest.raises(WeightsError, match=r"r18\.pt.*unknown pretrained format"):
        init_from_pretrained(face, path=path, format="imagenet")


def test_key_mapping():
    assert torchvision_to_pytorchvideo_key("conv1.weight") == "blocks.0.conv.weight"
    assert torchvision_to_pytorchvideo_key("bn1.running_var") == "blocks.0.norm.running_var"
    assert (torchvision_to_pytorchvideo_key("layer3.4.conv2.weight")
            == "blocks.3.res_blocks.4.branch2.conv_b.weight")
    assert (torchvision_to_pytorchvideo_key("layer1.0.bn3.bias")
            == "blocks.1.res_blocks.0.branch2.norm_c.bias")
    assert (torchvision_to_pytorchvideo_key("layer2.0.downsample.0.weight")
            == "blocks.2.res_blocks.0.branch1_conv.weight")
    assert (torchvision_to_pytorchvideo_key("layer4.0.downsample.1.num_batches_tracked")
            == "blocks.4.res_blocks.0.branch1_norm.num_batches_tracked")
    assert torchvision_to_pytorchvideo_key("fc.weight") is None


def test_inflation_round_trip_matches_2d_network(tmp_path, resnet50):
    """On a temporally constant clip, the inflated 3D ResNet-50 computes the 2D net's layer4 map
    at every time step far enough from the clip ends (9 temporal-3 convs in res4+res5)."""
    resnet = resnet50
    path = tmp_path / "resnet50_imagenet.pth"
    torch.save(resnet.state_dict(), path)

    model = create_face_stream(num_classes=3, depth=50, stem_dim_out=64).eval()
    report = init_from_pretrained(model, path=path, format="inflate2d")
    assert sorted(report.skipped_on_purpose) == ["fc.bias", "fc.weight"]
    assert not report.missing and not report.unexpected and not report.skipped_shape
    assert any("inflated" in note for note in report.notes)

    frame = torch.randn(1, 3, 64, 64)
    frames = 20
    clip = frame.unsqueeze(2).expand(-1, -1, frames, -1, -1).contiguous()
    with torch.no_grad():
        map_3d = model.backbone(clip)  # (1, 2048, 20, 2, 2)
        trunk = nn.Sequential(*list(resnet.children())[:-2])
        map_2d = trunk(frame)  # (1, 2048, 2, 2)
    assert map_3d.shape == (1, 2048, frames, 2, 2) and map_2d.shape == (1, 2048, 2, 2)
    scale = map_2d.abs().max().item()
    for t in (9, 10):
        torch.testing.assert_close(map_3d[:, :, t], map_2d, rtol=1e-4, atol=1e-4 * scale)
    # ...and the temporal kernels really are 3 wide, so the clip ends see the zero padding
    assert not torch.allclose(map_3d[:, :, 0], map_2d, rtol=1e-4, atol=1e-4 * scale)


def test_inflated_kernels_and_flow_stem(resnet50):
    state = resnet50.state_dict()
    flow = create_flow_stream(num_classes=3, depth=50, stem_dim_out=64)
    inflated = inflate_2d_state_to_3d(state, flow.backbone)

    stem = inflated["blocks.0.conv.weight"]
    assert stem.shape == (64, 2, 1, 7, 7)
    rgb_mean = state["conv1.weight"].mean(dim=1)
    for channel in range(2):
        torch.testing.assert_close(stem[:, channel, 0], rgb_mean)

    conv_a = inflated["blocks.3.res_blocks.0.branch2.conv_a.weight"]  # (3, 1, 1) kernel in res4
    assert conv_a.shape == (256, 512, 3, 1, 1)
    torch.testing.assert_close(conv_a.sum(dim=2), state["layer3.0.conv1.weight"])
    torch.testing.assert_close(conv_a[:, :, 0], conv_a[:, :, 2], rtol=0, atol=0)


def test_builder_pretrained_argument_loads_flow_stem(tmp_path, resnet50):
    state = resnet50.state_dict()
    path = tmp_path / "r50.safetensors"
    safetensors.torch.save_file(state, str(path))
    flow = create_flow_stream(num_classes=3, stem_dim_out=64, pretrained={"path": str(path), "format": "inflate2d"})
    torch.testing.assert_close(flow.backbone.blocks[0].conv.weight[:, 1, 0], state["conv1.weight"].mean(dim=1))
    report = init_from_pretrained(flow, path=path, format="inflate2d")
    assert any("cross-modality" in note for note in report.notes)
    assert "cross-modality" in report.summary()
    with pytest.raises(ValueError, match="'path' and 'format'"):
        create_flow_stream(num_classes=3, stem_dim_out=TINY, pretrained={"file": str(path)})


def test_stream_format_skips_classifier_of_other_class_count(tmp_path):
    torch.manual_seed(6)
    source = create_face_stream(num_classes=8, stem_dim_out=TINY)
    randomise_batchnorm(source)
    path = tmp_path / "face_ravdess.safetensors"
    safetensors.torch.save_file(source.state_dict(), str(path))

    target = create_face_stream(num_classes=3, stem_dim_out=TINY)
    report = init_from_pretrained(target, path=path, format="stream")
    assert sorted(report.skipped_on_purpose) == ["head.proj.bias", "head.proj.weight"]
    assert not report.missing and not report.unexpected and not report.skipped_shape
    assert_backbone_equals(target.backbone, source.backbone.state_dict())

    same = create_face_stream(num_classes=8, stem_dim_out=TINY)
    report = init_from_pretrained(same, path=path, format="stream")
    assert not report.skipped_on_purpose and report.complete
    torch.testing.assert_close(same.head.proj.weight, source.head.proj.weight, rtol=0, atol=0)
