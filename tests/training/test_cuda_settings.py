"""The CUDA-only speed settings: what they set on a CUDA device (flags and layouts can be set
without a GPU), that they are restored, and that on the CPU they change nothing."""
from __future__ import annotations

import logging

import torch

from training.cuda_settings import channels_last_inputs, cuda_speed_settings, use_channels_last_3d
from training.train_config import resolve_train_config

CUDA, CPU = torch.device("cuda", 0), torch.device("cpu")


def _flags():
    return (torch.backends.cudnn.benchmark, torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)


def test_defaults_and_cuda_flags_are_set_for_the_run_and_restored():
    tc = resolve_train_config(None)
    assert (tc["cudnn_benchmark"], tc["tf32"], tc["channels_last_3d"]) == (True, True, False)
    before = _flags()
    with cuda_speed_settings({**tc, "cudnn_benchmark": True, "tf32": False}, CUDA):
        assert _flags() == (True, False, False)
    assert _flags() == before
    with cuda_speed_settings({**tc, "cudnn_benchmark": not before[0], "tf32": not before[2]}, CPU):
        assert _flags() == before  # the CPU: nothing set


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv3d(3, 4, 3), torch.nn.BatchNorm3d(4), torch.nn.Flatten(),
                               torch.nn.LazyLinear(2))


def test_channels_last_3d_converts_the_conv3d_weights_only_on_cuda(caplog):
    tc = {**resolve_train_config(None), "channels_last_3d": True}
    net = _net()
    x = torch.randn(2, 3, 4, 6, 6)
    expected = net(x)
    reference = {k: v.clone() for k, v in net.state_dict().items()}
    with caplog.at_level(logging.DEBUG, logger="training.cuda_settings"):
        assert use_channels_last_3d(net, tc, CPU) is False
    assert "not applied on cpu" in caplog.text
    assert net[0].weight.is_contiguous()
    assert use_channels_last_3d(net, {**tc, "channels_last_3d": False}, CUDA) is False
    assert use_channels_last_3d(net, tc, CUDA) is True
    assert net[0].weight.is_contiguous(memory_format=torch.channels_last_3d) and not net[0].weight.is_contiguous()
    assert net[3].weight.is_contiguous()
    state = net.state_dict()
    assert state.keys() == reference.keys() and all(torch.equal(state[k], reference[k]) for k in state)
    batch = channels_last_inputs({"clip": x, "mask": torch.ones(2, 3)})
    assert batch["clip"].is_contiguous(memory_format=torch.channels_last_3d) and batch["mask"].is_contiguous()
    assert torch.allclose(net(batch["clip"]), expected, atol=1e-5)
