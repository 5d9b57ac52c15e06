"""The sentiment scorer: a torchvision ResNet-50 with a C-way head (positive / neutral / negative
for GroupEmoW), used to rate how much group emotion each frame carries.

Weights come only from local files: an ImageNet state dict (``pretrained: PATH``) to start
training, or a trained run's checkpoint (``SentimentScorer.from_checkpoint``) to score frames.
"""
from __future__ import annotations

import logging
import os
from typing import Sequence

import cv2
import numpy as np
import torch
import torch.nn as nn
import torchvision

from core.config import ConfigError
from training import devices
from training.checkpoints import CheckpointError, load_checkpoint
from training.weights import load_into, load_state_file

log = logging.getLogger(__name__)

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

_RESNETS = {
    18: torchvision.models.resnet18,
    34: torchvision.models.resnet34,
    50: torchvision.models.resnet50,
    101: torchvision.models.resnet101,
    152: torchvision.models.resnet152,
}
_warned_random_init = False

PRECISIONS = ("float32", "bfloat16")
"""What the scorer computes in (``keyframes.precision``): float32 is the method's numbers;
bfloat16 is faster on a CPU with native bfloat16 (AVX512-BF16 or AMX) or a recent GPU and can
move keyframes to a near-tied neighbour (docs/guides/speed.md says how to measure both)."""
_warned_bf16_devices: set[str] = set()


def create_scorer(*, num_classes: int, depth: int = 50, pretrained: str | os.PathLike | None = None) -> nn.Module:
    """Build a torchvision ResNet-``depth`` with a ``num_classes`` head.

    ``pretrained``: path to a local torchvision-format ImageNet state dict (or a checkpoint with
    ``state_dict``/``model`` inside); the 1000-way ``fc`` is skipped on purpose and every key that
    does not load is reported by name. ``None`` starts from random init (said once per process).
    Input ``(B, 3, H, W)`` normalised RGB, output logits ``(B, num_classes)``.
    """
    if depth not in _RESNETS:
        raise ValueError(f"scorer depth must be one of {sorted(_RESNETS)}, got {depth}")
    model = _RESNETS[depth](weights=None, num_classes=num_classes)
    if pretrained:
        report = load_into(model, load_state_file(pretrained), skip_prefixes=("fc.",))
        log.info("scorer initialised from %s\n%s", pretrained, report.summary())
    else:
        global _warned_random_init
        if not _warned_random_init:
            log.warning("scorer: no pretrained file given (pretrained: PATH in the config); "
                        "starting ResNet-%d from random init", depth)
            _warned_random_init = True
    return model


def centre_square(image: np.ndarray, size: int) -> np.ndarray:
    """The scorer's framing of an ``(H, W, 3)`` uint8 image: short side resized to ``size``
    (area interpolation, aspect kept), then the centre ``(size, size, 3)`` square. Validation
    images in training (:class:`keyframes.data.ImageFolderDataset`) and scored frames both go
    through it, so the scorer rates frames at the resolution and framing its validation
    accuracy was measured on."""
    h, w = image.shape[:2]
    r = size / min(h, w)
    tw, th = max(size, round(w * r)), max(size, round(h * r))
    if (tw, th) != (w, h):
        image = cv2.resize(image, (tw, th), interpolation=cv2.INTER_AREA)
    y0, x0 = (th - size) // 2, (tw - size) // 2
    return image[y0:y0 + size, x0:x0 + size]


def frames_to_tensor(frames: Sequence[np.ndarray], size: int) -> torch.Tensor:
    """``(H, W, 3)`` uint8 RGB frames (any sizes) -> normalised ``(N, 3, size, size)`` float32,
    each framed by :func:`centre_square`."""
    batch = np.stack([centre_square(f, size) for f in frames]).astype(np.float32) / 255.0
    batch = (batch - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()


def native_bfloat16(device: str | torch.device) -> bool:
    """Whether ``device`` computes bfloat16 convolutions in hardware (a CPU with AVX512-BF16 or
    AMX, as oneDNN reports it; a CUDA GPU of compute capability 8.0 or newer); elsewhere they are
    emulated and slower than float32."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def inference_copy(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` for scoring: batch norms folded into the convolutions
    before them (``torch.fx``'s ``fuse``; a model ``torch.fx`` cannot trace is copied unfused)
    and weights in channels-last layout. The same function to float rounding (logits within
    1e-4 on a ResNet-50) and faster on CPU (``python tools/benchmark.py keyframes`` times the
    scoring); ``model`` itself is left as it is."""
    import copy

    from torch.fx.experimental.optimization import fuse

    model = model.eval()
    try:
        fast = fuse(model)           # copies (inplace=False) and needs eval mode
    except torch.fx.proxy.TraceError:
        fast = copy.deepcopy(model)
    return fast.eval().to(memory_format=torch.channels_last)


class SentimentScorer:
    """Scores frames: ``probs = scorer.score(frames)`` with ``probs`` ``(N, C)`` summing to 1.

    Each frame is scored as the scorer saw its validation images in training: short side
    resized to ``input_size``, centre square (:func:`centre_square`). On a wide frame the sides
    are not seen (a 16:9 frame loses 44 % of its width); scoring the whole frame instead would
    show the network an aspect ratio and scale it never trained on. ``input_size`` should be the
    size the network was trained at (:meth:`from_checkpoint` checks it). Frames are scored by
    :func:`inference_copy` of ``model``, made here (later changes to ``model`` are not seen), in
    ``precision`` (:data:`PRECISIONS`: with ``bfloat16`` the copy's weights and inputs are
    bfloat16 and the softmax is taken in float32; bfloat16 keeps 8 bits of mantissa, so the
    probabilities differ from float32's from about the third significant digit).
    """

    def __init__(self, model: nn.Module, class_names: Sequence[str], *, input_size: int,
                 batch_size: int = 32, device: str | torch.device = "cpu", precision: str = "float32") -> None:
        if precision not in PRECISIONS:
            raise ValueError(f"scorer precision must be one of {list(PRECISIONS)}, got {precision!r}")
        self.model = model.eval().to(device)
        self.precision = precision
        self._dtype = torch.bfloat16 if precision == "bfloat16" else torch.float32
        self._net = inference_copy(self.model).to(self._dtype)
        self.class_names = tuple(class_names)
        self.input_size = int(input_size)
        self.batch_size = int(batch_size)
        self.device = torch.device(device)
        if (precision == "bfloat16" and not native_bfloat16(self.device)
                and str(self.device) not in _warned_bf16_devices):
            _warned_bf16_devices.add(str(self.device))
            log.warning("keyframes.precision: bfloat16 on %s, which has no native bfloat16 (AVX512-BF16, AMX or a "
                        "GPU of compute capability >= 8.0): it is emulated there and slower than float32", self.device)

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, *, input_size: int | None = None,
                        batch_size: int = 32, device: str = "cpu", precision: str = "float32") -> "SentimentScorer":
        """Load a trained scorer from a run directory or checkpoint directory (safetensors, no pickle).

        The scorer scores at the size it was trained at (the recipe's ``data.input_size``, 224
        when absent); ``input_size``, when given, must equal it, else :class:`ConfigError` says which
        setting to change (score at the training size, or train the scorer at the scoring size).
        """
        state, meta = load_checkpoint(path)
        cfg = meta.get("config", {})
        other = sorted(set(cfg) - {"class_names", "model", "data", "train"})
        if other:  # a stream run records 'stream', a fusion run 'streams'
            kind = (f"a run of the {cfg['stream']} stream" if "stream" in cfg else
                    "a fusion run" if "streams" in cfg else f"a run whose recipe has {other}")
            raise CheckpointError(f"{path}: {kind}, not a keyframe scorer (train one with "
                                  "tools/train_keyframe_scorer.py)")
        trained = int(cfg.get("data", {}).get("input_size", 224))
        if input_size is not None and int(input_size) != trained:
            raise ConfigError(f"{path}: this scorer was trained at {trained} px (data.input_size of its recipe) but is "
                              f"asked to score at {input_size} px (keyframes.score_size); set keyframes.score_size: "
                              f"{trained}, or train a scorer with data.input_size: {input_size}")
        model_cfg = dict(cfg.get("model", {}))
        model_cfg.pop("pretrained", None)
        class_names = meta["class_names"]
        depth = int(model_cfg.get("depth", 50))
        if depth not in _RESNETS:
            raise CheckpointError(
                f"{path}: checkpoint records scorer depth {depth}, expected one of {sorted(_RESNETS)}")
        model = _RESNETS[depth](weights=None, num_classes=len(class_names))  # weights come from the checkpoint
        try:
            model.load_state_dict(state)
        except RuntimeError as e:
            raise CheckpointError(f"{path}: its weights do not fit a ResNet-{depth} scorer with "
                                  f"{len(class_names)} classes ({str(e).splitlines()[0]})") from e
        return cls(model, class_names, input_size=trained, batch_size=batch_size, device=device, precision=precision)

    @torch.inference_mode()
    def score(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """``frames``: (H, W, 3) uint8 RGB. Returns ``(N, C)`` float32 probabilities (computed on
        the scorer's device, moved to the CPU once)."""
        if len(frames) == 0:
            return np.zeros((0, len(self.class_names)), dtype=np.float32)
        out = []
        for start in range(0, len(frames), self.batch_size):
            x = frames_to_tensor(frames[start:start + self.batch_size], self.input_size).to(self.device, self._dtype)
            x = x.contiguous(memory_format=torch.channels_last)
            out.append(torch.softmax(self._net(x).float(), dim=1))
        return devices.to_host(torch.cat(out)).astype(np.float32)   # the one move to the host
