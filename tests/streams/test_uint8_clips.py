"""RGB clips travel as uint8 and the visual and face models normalise them on their device: the
normalised batch is bit for bit what the loaders computed in float32 before, the checkpoints keep
their keys, and training on uint8 clips gives the run that float32 clips gave."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from keyframes.scorer import IMAGENET_MEAN, IMAGENET_STD
from streams.models.builders import create_resnet3d_stream
from streams.models.recognizer import ImageNetNormalize
from streams.specs import STREAM_SPECS
from streams.views import ViewSettings, rgb_clip

SETTINGS = ViewSettings(num_frames=4, resize=[20, 24], crop=16)


def float_clip(clip: np.ndarray) -> np.ndarray:
    """What rgb_clip returned before: ``(3, T, S, S)`` float32, normalised on the CPU."""
    x = clip.transpose(1, 2, 3, 0)
    return np.ascontiguousarray(((x.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD).transpose(3, 0, 1, 2))


def frames(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (10, 24, 30, 3), dtype=np.uint8)


@pytest.mark.parametrize("stream", ["visual", "face"])
def test_the_view_is_uint8_and_the_model_normalises_it_bit_for_bit(stream):
    spec = STREAM_SPECS[stream]
    clips = [spec.load_input(frames(i), {}, SETTINGS, np.random.default_rng(i) if i else None) for i in range(3)]
    assert all(c.dtype == torch.uint8 and c.shape == (3, 4, 16, 16) for c in clips)
    model = spec.create_model(num_classes=3, depth=50, stem_dim_out=4)
    assert isinstance(model.input_adapter, ImageNetNormalize)
    batch = torch.stack(clips)
    normalised = model.input_adapter(batch)
    expected = torch.from_numpy(np.stack([float_clip(c.numpy()) for c in clips]))
    assert normalised.dtype == torch.float32
    assert torch.equal(normalised.view(torch.int32), expected.view(torch.int32))
    assert torch.equal(model.input_adapter(expected), expected)  # a float input counts as normalised
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(batch), model(expected))
    plain = create_resnet3d_stream(num_classes=3, depth=50, stem_dim_out=4, in_channels=3,
                                   attention=stream == "visual")
    assert model.state_dict().keys() == plain.state_dict().keys()  # checkpoints load either way
    plain.load_state_dict(model.state_dict())
    with pytest.raises(ValueError, match="uint8 RGB clips"):
        model.input_adapter(batch[:, :2])


class _Clips(Dataset):
    def __init__(self, *, as_float: bool):
        self.as_float = as_float
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return 12

    def __getitem__(self, i: int):
        clip = rgb_clip(frames(i), SETTINGS, np.random.default_rng([self.epoch, i]))
        return torch.from_numpy(float_clip(clip) if self.as_float else clip), i % 3


@pytest.mark.slow  # trains two tiny visual streams
def test_training_on_uint8_clips_is_training_on_float_clips(tmp_path: Path):
    from training.loop import fit

    results = {}
    for as_float in (False, True):
        torch.manual_seed(0)
        model = STREAM_SPECS["visual"].create_model(num_classes=3, depth=50, stem_dim_out=4)
        results[as_float] = fit(model=model, train_dataset=_Clips(as_float=as_float),
                                val_dataset=_Clips(as_float=as_float), class_names=["a", "b", "c"],
                                cfg={"epochs": 2, "batch_size": 4, "optimizer": {"name": "sgd", "lr": 0.01}},
                                out_dir=tmp_path / str(as_float))
        results[as_float] = (results[as_float]["history"], model.state_dict())
    (h8, w8), (h32, w32) = results[False], results[True]
    assert h8 == h32
    assert all(torch.equal(w8[k], w32[k]) for k in w8)
