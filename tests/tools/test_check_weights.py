"""tools/check_weights.py: a stream recipe and a weights file in the layouts people download
(3D-ResNets-PyTorch .pth, pytorchvideo .pyth, torchvision .pth) -> the load report, as text or
one JSON object; exit 1 when backbone tensors are missing or mismatched, 2 when unusable."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torchvision
from pytorchvideo.models.resnet import create_resnet

from tests.conftest import load_helper, load_tool

ROOT = Path(__file__).resolve().parents[2]
STREAMS = ROOT / "configs" / "streams"
TINY = 8
REPORT_KEYS = {"loaded", "inflated", "missing", "unexpected", "mismatched", "new", "dropped"}


def hara():
    return load_helper(ROOT / "tests" / "streams" / "hara_reference.py", "tests_streams_hara_reference")


def check(argv: list[str], capsys) -> tuple[int, str, str]:
    from core.command_line import run_main

    code = run_main(load_tool("check_weights").main, argv)  # as the command line runs it
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def check_json(argv: list[str], capsys) -> tuple[int, dict]:
    code, out, _ = check(argv + ["--json"], capsys)
    lines = out.strip().splitlines()
    assert len(lines) == 1, lines  # one JSON object, nothing else on stdout
    report = json.loads(lines[0])
    assert REPORT_KEYS <= set(report)
    assert isinstance(report["loaded"], int) and isinstance(report["inflated"], int)
    return code, report


@pytest.fixture(scope="module")
def hara_r101(tmp_path_factory) -> Path:
    """A narrow ResNet-101 checkpoint as 3D-ResNets-PyTorch writes it (module. prefixes, 400-way fc)."""
    ref = hara()
    torch.manual_seed(0)
    net = ref.generate_model(101, widen_factor=TINY / 64, n_classes=400)
    path = tmp_path_factory.mktemp("hara") / "r3d101_K_200ep.pth"
    return ref.save_checkpoint(net, path, arch="resnet-101")


def test_hara_file_into_visual_recipe_with_attention(hara_r101, capsys):
    code, report = check_json(["--config", str(STREAMS / "visual_tiny.yaml"), "--weights", str(hara_r101),
                               "--set", "model.arch=resnet3d"], capsys)
    assert code == 0
    raw = torch.load(hara_r101, weights_only=True)["state_dict"]
    assert report["loaded"] == len(raw) - 2 and report["inflated"] == 0  # all but fc.weight, fc.bias
    assert report["missing"] == report["unexpected"] == report["mismatched"] == []
    assert sorted(report["dropped"]) == ["fc.bias", "fc.weight"]
    new_keys = {"neck.spatial.score.weight", "neck.channel.gamma", "head.proj.weight", "head.proj.bias"}
    assert new_keys <= set(report["new"])
    assert all(not k.startswith("backbone.") for k in report["new"])
    assert report["format"] == "hara3d"


def test_depth_and_width_mismatches_are_listed(hara_r101, capsys):
    # ResNet-50 has 6 blocks in layer3, the file 23: the extra 17 have no place in the model, but
    # every backbone tensor is filled, so the check passes and lists them as unexpected
    code, report = check_json(["--config", str(STREAMS / "face_tiny.yaml"), "--weights", str(hara_r101),
                               "--set", "model.arch=resnet3d", "model.depth=50"], capsys)
    assert code == 0
    assert "layer3.6.conv1.weight" in report["unexpected"] and report["missing"] == []
    # ...and a ResNet-152 model misses blocks: exit 1
    code, report = check_json(["--config", str(STREAMS / "face_tiny.yaml"), "--weights", str(hara_r101),
                               "--set", "model.arch=resnet3d", "model.depth=152"], capsys)
    assert code == 1
    assert "layer2.4.conv1.weight" in report["missing"] and "layer3.35.bn3.running_var" in report["missing"]
    code, report = check_json(["--config", str(STREAMS / "visual_tiny.yaml"), "--weights", str(hara_r101),
                               "--set", "model.arch=resnet3d", "model.stem_dim_out=16"], capsys)
    assert code == 1
    stem = next(m for m in report["mismatched"] if m["key"] == "conv1.weight")
    assert stem == {"key": "conv1.weight", "file_shape": [8, 3, 7, 7, 7], "model_shape": [16, 3, 7, 7, 7]}
    code, text, _ = check(["--config", str(STREAMS / "visual_tiny.yaml"), "--weights", str(hara_r101),
                           "--set", "model.arch=resnet3d", "model.stem_dim_out=16"], capsys)
    assert code == 1 and "shape mismatch" in text
    assert "conv1.weight: file (8, 3, 7, 7, 7) vs model (16, 3, 7, 7, 7)" in text


def test_rgb_file_into_flow_recipe(tmp_path, capsys):
    ref = hara()
    torch.manual_seed(1)
    path = ref.save_checkpoint(ref.generate_model(50, widen_factor=TINY / 64), tmp_path / "r3d50.pth",
                               arch="resnet-50")
    code, report = check_json(["--config", str(STREAMS / "flow_tiny.yaml"), "--weights", str(path),
                               "--set", "model.arch=resnet3d", "--format", "hara3d"], capsys)
    assert code == 0 and report["missing"] == report["mismatched"] == []
    assert any("cross-modality" in note for note in report["notes"])


def test_pytorchvideo_pyth_into_slow_face_recipe(tmp_path, capsys):
    torch.manual_seed(2)
    net = create_resnet(model_depth=50, stem_dim_out=TINY, stem_conv_kernel_size=(1, 7, 7), model_num_class=400)
    path = tmp_path / "SLOW_8x8_R50.pyth"
    torch.save({"model_state": net.state_dict(), "epoch": 196, "cfg": "SLOW_8x8_R50.yaml"}, path)
    code, report = check_json(["--config", str(STREAMS / "face_tiny.yaml"), "--weights", str(path),
                               "--set", "model.arch=slow", "model.zero_init_residual=false"], capsys)
    assert code == 0 and report["format"] == "pytorchvideo3d"
    assert sorted(report["dropped"]) == ["blocks.5.proj.bias", "blocks.5.proj.weight"]
    assert report["loaded"] == len(net.state_dict()) - 2 and report["new"] == ["head.proj.weight", "head.proj.bias"]


def test_torchvision_imagenet_into_audio_recipe_and_inflated_into_resnet3d(tmp_path, capsys):
    torch.manual_seed(3)
    resnet = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(resnet.state_dict(), path)
    code, report = check_json(["--config", str(STREAMS / "audio_tiny.yaml"), "--weights", str(path),
                               "--set", "model.depth=18", "model.stem_dim_out=64"], capsys)
    assert code == 0 and report["format"] == "torchvision2d" and report["inflated"] == 0
    assert sorted(report["dropped"]) == ["fc.bias", "fc.weight"]

    code, report = check_json(["--config", str(STREAMS / "face_tiny.yaml"), "--weights", str(path),
                               "--set", "model.arch=resnet3d", "model.depth=18", "model.stem_dim_out=64"], capsys)
    assert code == 0 and report["format"] == "inflate2d"
    convs = [k for k, v in resnet.state_dict().items() if v.dim() == 4]  # every conv kernel, the stem included
    assert report["inflated"] == len(convs) and report["loaded"] == len(resnet.state_dict()) - 2


def test_unusable_file_or_recipe_exits_2_naming_it(tmp_path, capsys):
    bad = tmp_path / "notes.pth"
    bad.write_text("not a checkpoint")
    code, out, err = check(["--config", str(STREAMS / "face_tiny.yaml"), "--weights", str(bad)], capsys)
    assert code == 2 and out == "" and "notes.pth" in err and "not a PyTorch checkpoint" in err
    code, _, err = check(["--config", str(STREAMS / "face_tiny.yaml"), "--weights", str(tmp_path / "missing.pth")],
                         capsys)
    assert code == 2 and "missing.pth" in err and "not found" in err
    code, _, err = check(["--config", str(STREAMS / "face_tiny.yaml"), "--weights", str(bad),
                          "--set", "model.arch=x3d"], capsys)
    assert code == 2 and "arch must be one of" in err
