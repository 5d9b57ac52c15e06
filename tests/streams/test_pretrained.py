"""Initialising streams from local weight files: Hara 3D-ResNets-PyTorch .pth, torchvision 2D,
pytorchvideo 3D, I3D inflation; the load report every path produces."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import safetensors.torch
import torch
import torchvision
from pytorchvideo.models.resnet import create_resnet
from torch import nn

from streams.models.backbones import create_resnet2d_backbone
from streams.models.pretrained import inflate_2d_state_to_3d, init_from_pretrained, torchvision_to_pytorchvideo_key
from streams.specs.audio import create_audio_stream
from streams.specs.face import create_face_stream
from streams.specs.flow import create_flow_stream
from streams.specs.visual import create_visual_stream
from streams.training import build_stream_model
from training.weights import WeightsError

TINY = 8


def hara():
    """tests/streams/hara_reference.py: Hara et al.'s 3D ResNet re-stated, and their checkpoint writer."""
    from tests.conftest import load_helper

    return load_helper(Path(__file__).with_name("hara_reference.py"), "tests_streams_hara_reference")


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
@pytest.mark.slow  # builds ResNet-50s and full-depth 3D ResNets
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
    assert report.new == ["head.proj.weight", "head.proj.bias"] and report.format == "torchvision2d"
    # the loaded stream computes the torchvision network's pooled features (grey image = 3 equal channels)
    mel = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        trunk = nn.Sequential(*list(resnet.children())[:-1]).eval()
        torch.testing.assert_close(model.eval().features(mel), trunk(mel.expand(-1, 3, -1, -1)).flatten(1),
                                   rtol=1e-4, atol=1e-4)


@pytest.mark.slow  # builds ResNet-50s and full-depth 3D ResNets
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
    # the loaded stream computes what the pytorchvideo network computed before its head
    clip = torch.randn(2, 3, 4, 64, 64)
    with torch.no_grad():
        net.eval()
        expected = nn.Sequential(*net.blocks[:5])(clip).mean(dim=(2, 3, 4))  # its head's average pool
        torch.testing.assert_close(model.eval().features(clip), expected, rtol=1e-4, atol=1e-5)


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
    assert not report.backbone_complete


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
    with pytest.raises(WeightsError, match=r"r18\.pt.*torchvision2d.*ResNetBackbone \(2D\).*SlowBackbone"):
        init_from_pretrained(face, path=path, format="torchvision2d")
    with pytest.raises(WeightsError, match=r"r18\.pt.*hara3d.*ResNetBackbone \(3D\)"):
        init_from_pretrained(face, path=path, format="hara3d")
    with pytest.raises(WeightsError, match=r"r18\.pt.*no tensor"):
        init_from_pretrained(face, path=path, format="pytorchvideo3d")
    with pytest.raises(WeightsError, match=r"r18\.pt.*basic-block"):
        init_from_pretrained(face, path=path, format="inflate2d")
    with pytest.raises(WeightsError, match=r"r18\.pt.*unknown pretrained format"):
        init_from_pretrained(face, path=path, format="imagenet")
    face3d = create_face_stream(num_classes=3, arch="resnet3d", stem_dim_out=TINY)  # bottleneck R50
    with pytest.raises(WeightsError, match=r"r18\.pt.*basic-block.*into a bottleneck"):
        init_from_pretrained(face3d, path=path, format="inflate2d")
    unknown = tmp_path / "other.pt"
    torch.save({"encoder.weight": torch.zeros(2, 2)}, unknown)
    with pytest.raises(WeightsError, match=r"other\.pt.*cannot tell the weights format.*encoder\.weight"):
        init_from_pretrained(face3d, path=unknown)


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


@pytest.mark.slow  # builds ResNet-50s and full-depth 3D ResNets
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


@pytest.mark.slow  # builds ResNet-50s and full-depth 3D ResNets
def test_inflated_kernels_and_flow_stem(resnet50):
    state = resnet50.state_dict()
    flow = create_flow_stream(num_classes=3, depth=50, stem_dim_out=64)
    inflated, names = inflate_2d_state_to_3d(state, flow.backbone)
    assert "blocks.0.conv.weight" in names and "blocks.0.norm.weight" not in names

    stem = inflated["blocks.0.conv.weight"]
    assert stem.shape == (64, 2, 1, 7, 7)
    rgb_mean = state["conv1.weight"].mean(dim=1)
    for channel in range(2):
        torch.testing.assert_close(stem[:, channel, 0], rgb_mean)

    conv_a = inflated["blocks.3.res_blocks.0.branch2.conv_a.weight"]  # (3, 1, 1) kernel in res4
    assert conv_a.shape == (256, 512, 3, 1, 1)
    torch.testing.assert_close(conv_a.sum(dim=2), state["layer3.0.conv1.weight"])
    torch.testing.assert_close(conv_a[:, :, 0], conv_a[:, :, 2], rtol=0, atol=0)


@pytest.mark.slow  # builds ResNet-50s and full-depth 3D ResNets
def test_builder_pretrained_argument_loads_flow_stem(tmp_path, resnet50):
    state = resnet50.state_dict()
    path = tmp_path / "r50.safetensors"
    safetensors.torch.save_file(state, str(path))
    flow = create_flow_stream(num_classes=3, stem_dim_out=64, pretrained={"path": str(path), "format": "inflate2d"})
    torch.testing.assert_close(flow.backbone.blocks[0].conv.weight[:, 1, 0], state["conv1.weight"].mean(dim=1))
    report = init_from_pretrained(flow, path=path, format="inflate2d")
    assert any("cross-modality" in note for note in report.notes)
    assert "cross-modality" in report.summary()
    with pytest.raises(ValueError, match="key 'path'"):
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
    assert report.new == ["head.proj.weight", "head.proj.bias"]
    assert_backbone_equals(target.backbone, source.backbone.state_dict())

    same = create_face_stream(num_classes=8, stem_dim_out=TINY)
    report = init_from_pretrained(same, path=path)  # format read from the keys
    assert report.format == "stream" and not report.skipped_on_purpose and report.complete and not report.new
    torch.testing.assert_close(same.head.proj.weight, source.head.proj.weight, rtol=0, atol=0)


# --- 3D-ResNets-PyTorch (Hara et al.) checkpoints ------------------------------------------------

def backbone_keys_in(model) -> list[str]:
    return list(model.backbone.state_dict())


@pytest.mark.parametrize("depth, shortcut, builder, fmt", [
    (50, "B", create_visual_stream, "hara3d"),  # with attention on top
    (18, "A", create_face_stream, None),        # format read from the file
])
@pytest.mark.slow  # builds ResNet-50s and full-depth 3D ResNets
def test_hara_checkpoint_computes_what_wrote_it(tmp_path, depth, shortcut, builder, fmt):
    ref = hara()
    torch.manual_seed(4)
    net = ref.randomise(ref.generate_model(depth, widen_factor=TINY / 64, shortcut_type=shortcut, n_classes=400))
    path = ref.save_checkpoint(net, tmp_path / f"r3d{depth}_K_200ep.pth", arch=f"resnet-{depth}")

    model = builder(num_classes=3, arch="resnet3d", depth=depth, stem_dim_out=TINY, shortcut_type=shortcut,
                    pretrained={"path": str(path), **({"format": fmt} if fmt else {})})
    report = model.load_report
    assert json.loads(json.dumps(report)) == report  # JSON-ready, for the run's meta.json
    assert report["format"] == "hara3d"
    assert report["loaded"] == len(backbone_keys_in(model)) and report["inflated"] == 0
    assert report["missing"] == [] and report["unexpected"] == [] and report["mismatched"] == []
    assert sorted(report["dropped"]) == ["fc.bias", "fc.weight"]  # the 400-way Kinetics classifier
    assert report["new"] == [k for k in model.state_dict() if not k.startswith("backbone.")]
    assert ("neck.channel.gamma" in report["new"]) == (builder is create_visual_stream)
    assert any("resnet-" in note for note in report["notes"])

    # same input, same map and same features before the head (spatial 2x2, temporal 2 at the end)
    clip = torch.randn(2, 3, 20, 64, 64)
    with torch.no_grad():
        expected_map = net.trunk(clip)
        model.eval()
        got_map = model.backbone(clip)
        assert got_map.shape == expected_map.shape == (2, model.feature_dim, 2, 2, 2)
        torch.testing.assert_close(got_map, expected_map, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(model.features(clip), net.features(clip), rtol=1e-4, atol=1e-4)


@pytest.mark.slow  # builds ResNet-50s and full-depth 3D ResNets
def test_hara_2017_file_legacy_format_without_bn_counters_and_shortcut_a(tmp_path):
    """The 2017 Kinetics files: pre-1.6 serialization, PyTorch 0.3 (no num_batches_tracked),
    ResNet-18/34 with shortcut A. They load completely into a shortcut-A model; into a
    shortcut-B model the report names the shortcut tensors and says what to do."""
    ref = hara()
    torch.manual_seed(5)
    net = ref.randomise(ref.generate_model(18, widen_factor=TINY / 64, shortcut_type="A"))
    path = ref.save_checkpoint(net, tmp_path / "resnet-18-kinetics.pth", arch="resnet-18", legacy=True)
    assert not __import__("zipfile").is_zipfile(path)

    model = create_face_stream(num_classes=3, arch="resnet3d", depth=18, stem_dim_out=TINY, shortcut_type="A")
    report = init_from_pretrained(model, path=path, format="hara3d")
    assert report.backbone_complete and not report.unexpected
    assert any("num_batches_tracked" in note for note in report.notes)
    clip = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.eval().features(clip), net.features(clip), rtol=1e-4, atol=1e-4)

    wrong = create_face_stream(num_classes=3, arch="resnet3d", depth=18, stem_dim_out=TINY)  # shortcut B
    report = init_from_pretrained(wrong, path=path, format="hara3d")
    assert report.missing and all(".downsample." in k for k in report.missing)
    assert any("shortcut_type: A" in note for note in report.notes)


def test_hara_rgb_file_into_flow_stem_and_depth_mismatch(tmp_path):
    ref = hara()
    torch.manual_seed(6)
    net = ref.randomise(ref.generate_model(50, widen_factor=TINY / 64))
    path = ref.save_checkpoint(net, tmp_path / "r3d50_KM_200ep.pth", arch="resnet-50")
    rgb_stem = net.conv1.weight.detach()

    flow = create_flow_stream(num_classes=3, arch="resnet3d", stem_dim_out=TINY)
    report = init_from_pretrained(flow, path=path)
    assert report.backbone_complete and not report.unexpected
    assert any("cross-modality" in note for note in report.notes)
    for channel in range(2):
        torch.testing.assert_close(flow.backbone.conv1.weight[:, channel], rgb_stem.mean(dim=1), rtol=0, atol=0)
    torch.testing.assert_close(flow.backbone.layer4[2].conv3.weight, net.layer4[2].conv3.weight, rtol=0, atol=0)

    deeper = create_visual_stream(num_classes=3, arch="resnet3d", depth=101, stem_dim_out=TINY)
    report = init_from_pretrained(deeper, path=path)
    assert "layer3.6.conv1.weight" in report.missing and "layer3.22.bn3.running_var" in report.missing
    assert "layer3.5.conv1.weight" in report.loaded and not report.backbone_complete


def replicate_padding(model: nn.Module) -> nn.Module:
    """Every convolution pads by repeating the border instead of with zeros. On a clip of
    identical frames the 3D net then sees an endless constant clip, so that the zero padding
    at the clip's ends (which no inflation can match: the receptive field of a 3D ResNet spans
    hundreds of frames) plays no part, and every output frame can be compared with the 2D net
    padded the same way."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Conv3d)):
            module.padding_mode = "replicate"
    return model


@pytest.mark.parametrize("depth, width", [(18, 64), (50, TINY)])
@pytest.mark.slow  # builds ResNet-50s and full-depth 3D ResNets
def test_inflated_2d_weights_give_2d_response_on_identical_frames(tmp_path, depth, width):
    """torchvision ResNet-18 (published width) and a narrow ResNet-50 in torchvision's layout,
    inflated into the resnet3d network: on a clip of identical frames every output frame is
    the 2D network's map of that frame."""
    torch.manual_seed(7)
    if width == 64:
        resnet = torchvision.models.resnet18(weights=None)
        randomise_batchnorm(resnet)
        trunk2d = nn.Sequential(*list(resnet.children())[:-2]).eval()
        state = resnet.state_dict()
    else:
        trunk2d = create_resnet2d_backbone(depth=depth, stem_dim_out=width)
        randomise_batchnorm(trunk2d)
        trunk2d.eval()
        state = trunk2d.state_dict()
    path = tmp_path / "imagenet.pth"
    torch.save(state, path)

    model = create_face_stream(num_classes=3, arch="resnet3d", depth=depth, stem_dim_out=width,
                               pretrained={"path": str(path), "format": "inflate2d"}).eval()
    report = model.load_report
    convs = [k for k, v in model.backbone.state_dict().items() if v.dim() == 5]
    assert report["inflated"] == len(convs) and report["loaded"] == len(model.backbone.state_dict())
    assert report["missing"] == report["mismatched"] == report["unexpected"] == []
    assert sorted(report["dropped"]) == (["fc.bias", "fc.weight"] if width == 64 else [])
    torch.testing.assert_close(model.backbone.conv1.weight.sum(dim=2), state["conv1.weight"])

    frame = torch.randn(1, 3, 64, 64)
    clip = frame.unsqueeze(2).expand(-1, -1, 5, -1, -1).contiguous()
    with torch.no_grad():
        map_2d = replicate_padding(trunk2d)(frame)
        map_3d = replicate_padding(model.backbone)(clip)
    assert map_3d.shape[:2] == map_2d.shape[:2] and map_3d.shape[3:] == map_2d.shape[2:]
    scale = map_2d.abs().max().item()
    for t in range(map_3d.shape[2]):
        torch.testing.assert_close(map_3d[:, :, t], map_2d, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.slow  # builds ResNet-50s and full-depth 3D ResNets
def test_pretrained_through_recipe_building(tmp_path):
    """The path training takes: build_stream_model(recipe) with model.pretrained."""
    ref = hara()
    torch.manual_seed(8)
    net = ref.randomise(ref.generate_model(50, widen_factor=TINY / 64))
    path = ref.save_checkpoint(net, tmp_path / "r3d50.pth", arch="resnet-50")
    recipe = {"stream": "face", "model": {"arch": "resnet3d", "depth": 50, "stem_dim_out": TINY,
                                          "pretrained": {"path": str(path), "format": "hara3d"}}}
    model = build_stream_model(recipe, 3)
    assert model.load_report["missing"] == [] and model.load_report["loaded"] == len(backbone_keys_in(model))
    clip = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model.eval().features(clip), net.features(clip), rtol=1e-4, atol=1e-4)
    plain = build_stream_model({**recipe, "model": {**recipe["model"], "pretrained": None}}, 3)
    assert plain.load_report is None


@pytest.mark.slow  # builds ResNet-50s and full-depth 3D ResNets
def test_a_training_run_records_what_the_pretrained_file_gave(tmp_path):
    """The load report (loaded, missing, new, ...) lands in every checkpoint's meta.json."""
    import json

    from safetensors.torch import save_file

    from benchmarks.training import fabricate_cache
    from core.config import load_config
    from streams.training import train_stream

    root = Path(__file__).resolve().parents[2]
    cache = fabricate_cache(tmp_path / "cache", stream="flow", n_clips=4, clip_size=(64, 36), clip_seconds=0.6,
                            preprocess_cfg=load_config(root / "configs/preprocess/demo.yaml"))
    for entry in sorted(cache.iterdir())[2:]:  # two of the four clips validate
        meta = json.loads((entry / "meta.json").read_text())
        meta["split"] = "val"
        (entry / "meta.json").write_text(json.dumps(meta))
    source = create_flow_stream(num_classes=3, arch="resnet3d", stem_dim_out=TINY)
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(tmp_path / "flow.safetensors"))
    recipe = load_config(root / "configs/streams/flow_tiny.yaml",
                         ["train.epochs=1", "train.batch_size=2", "train.precise_bn_batches=0",
                          f"model.pretrained={{path: {tmp_path / 'flow.safetensors'}, format: stream}}"])
    train_stream(recipe, cache, tmp_path / "run")
    report = json.loads((tmp_path / "run" / "last" / "meta.json").read_text())["pretrained"]
    assert report["loaded"] == len(source.state_dict()) and report["missing"] == [] and report["format"] == "stream"
