"""Initialising stream models from LOCAL weight files (nothing is ever downloaded).

Formats (``init_from_pretrained(model, path=..., format=...)``):

``torchvision2d``
    A torchvision ImageNet ResNet state dict (``conv1.weight``, ``layer1.0.conv1.weight``, ...,
    ``fc.*``) into a 2D backbone (audio stream). ``fc.*`` is skipped on purpose.
``pytorchvideo3d``
    A pytorchvideo / PySlowFast checkpoint (``{"model_state": {...}}`` or a bare state dict)
    with keys ``blocks.0 .. blocks.4`` (backbone) and ``blocks.5`` (Kinetics head) into a 3D
    backbone. The head is skipped on purpose.
``inflate2d``
    A torchvision ImageNet ResNet-50/101/152 state dict, I3D-inflated into a 3D backbone (see
    :func:`inflate_2d_state_to_3d`). ``fc.*`` is skipped on purpose.
``stream``
    A whole :class:`StreamRecognizer` state dict (e.g. trained on another dataset): everything
    loads; the classifier (``head.*``) is skipped on purpose when its class count differs.

``path`` is a weights file, or a run or checkpoint directory of this project (a face-pretraining
run of ``tools/train_face_pretrain.py``, format ``inflate2d``): its best checkpoint, checked
against the SHA-256 in its ``meta.json`` (:func:`read_pretrained_state`).

Stream builders take ``pretrained={"path": ..., "format": ...}`` and call
:func:`init_from_pretrained` after building; call it yourself to get the :class:`LoadReport`
(the builders only log it).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from streams.models.backbones import ResNet2dBackbone, ResNet3dBackbone
from streams.models.recognizer import StreamRecognizer
from training.weights import LoadReport, WeightsError, load_into, load_state_file

PRETRAINED_FORMATS = ("torchvision2d", "pytorchvideo3d", "inflate2d", "stream")

STEM_CONV_3D = "blocks.0.conv.weight"

_BRANCH2 = {"conv1": "conv_a", "bn1": "norm_a", "conv2": "conv_b", "bn2": "norm_b", "conv3": "conv_c", "bn3": "norm_c"}
_BRANCH1 = {"0": "branch1_conv", "1": "branch1_norm"}
_LAYER_KEY = re.compile(r"^layer([1-4])\.(\d+)\.(.+)$")


def torchvision_to_pytorchvideo_key(key: str) -> str | None:
    """Name of a torchvision 2D ResNet tensor in a pytorchvideo 3D ResNet, or None if it has none.

    ``conv1`` -> ``blocks.0.conv``; ``bn1`` -> ``blocks.0.norm``;
    ``layerS.I.{conv1,bn1,conv2,bn2,conv3,bn3}`` ->
    ``blocks.S.res_blocks.I.branch2.{conv_a,norm_a,conv_b,norm_b,conv_c,norm_c}``;
    ``layerS.I.downsample.{0,1}`` -> ``blocks.S.res_blocks.I.{branch1_conv,branch1_norm}``;
    ``fc.*`` (the ImageNet classifier) -> None. The suffix (``weight``, ``bias``,
    ``running_mean``, ``running_var``, ``num_batches_tracked``) is kept.
    """
    if key.startswith("conv1."):
        return "blocks.0.conv." + key[len("conv1."):]
    if key.startswith("bn1."):
        return "blocks.0.norm." + key[len("bn1."):]
    match = _LAYER_KEY.match(key)
    if match is None:
        return None
    stage, index, rest = match.groups()
    module, _, suffix = rest.partition(".")
    prefix = f"blocks.{stage}.res_blocks.{index}."
    if module in _BRANCH2:
        return prefix + f"branch2.{_BRANCH2[module]}.{suffix}"
    if module == "downsample":
        sub, _, suffix = suffix.partition(".")
        if sub in _BRANCH1:
            return prefix + f"{_BRANCH1[sub]}.{suffix}"
    return None


def inflate_2d_state_to_3d(
    state2d: Mapping[str, torch.Tensor],
    target: nn.Module | Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """I3D-inflate a torchvision bottleneck ResNet state dict for a pytorchvideo 3D ResNet.

    Every 2D conv kernel (O, I, kh, kw) becomes (O, I, kt, kh, kw) by repeating it kt times over
    time and dividing by kt, with kt read from the target's tensor of the same name; on a
    temporally constant clip the 3D net then computes the 2D net's features frame by frame
    (away from the clip ends, where zero padding differs). Batch-norm tensors are copied.
    When the 3D stem has a different number of input channels than the 2D one (optical flow:
    2), its kernel is the 2D kernel averaged over the input channels and repeated for each new
    channel (TSN's cross-modality initialisation). Both nets put the spatial stride on the 3x3
    conv (torchvision "v1.5", pytorchvideo ``conv_b``), so the layouts match.

    Args:
        state2d: torchvision ResNet-50/101/152 state dict (``conv1.weight``, ``layer1.0...``).
        target: the 3D backbone (keys ``blocks.0 ..``) or its ``state_dict()``, used for the
            temporal kernel sizes and the stem's input channels.

    Returns:
        ``{3D key: tensor}`` for every mapped key. Keys without a 3D name (``fc.*``, anything
        unknown) are passed through under their 2D name, and tensors whose shape does not fit
        are passed through uninflated under their 3D name, so that ``load_into`` reports them.

    Raises:
        WeightsError: ``state2d`` is a basic-block ResNet (18/34), which has no 3D counterpart here.
    """
    target_state = target.state_dict() if isinstance(target, nn.Module) else target
    if "layer1.0.conv1.weight" in state2d and "layer1.0.conv3.weight" not in state2d:
        raise WeightsError("cannot inflate a basic-block ResNet (18/34) state dict: "
                           "the 3D backbones are bottleneck ResNets (50/101/152)")
    out: dict[str, torch.Tensor] = {}
    for key2d, tensor in state2d.items():
        key3d = torchvision_to_pytorchvideo_key(key2d)
        if key3d is None:
            out[key2d] = tensor
            continue
        reference = target_state.get(key3d)
        if reference is None or tensor.dim() != 4 or reference.dim() != 5:
            out[key3d] = tensor
            continue
        kernel = tensor
        out_ch, in_ch, kt, kh, kw = reference.shape
        if key3d == STEM_CONV_3D and kernel.shape[1] != in_ch:
            kernel = kernel.mean(dim=1, keepdim=True).expand(-1, in_ch, -1, -1)
        if (kernel.shape[0], kernel.shape[1], kernel.shape[2], kernel.shape[3]) != (out_ch, in_ch, kh, kw):
            out[key3d] = tensor  # reported as a shape mismatch by load_into
            continue
        out[key3d] = kernel.unsqueeze(2).repeat(1, 1, kt, 1, 1) / kt
    return out


def read_pretrained_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The state dict at ``path``: a weights file (:func:`training.weights.load_state_file`), or a
    run or checkpoint directory of this project, whose best checkpoint (else last) is read and
    checked against its ``meta.json`` (:func:`training.checkpoints.load_checkpoint`)."""
    if Path(path).is_dir():
        from training.checkpoints import load_checkpoint

        state, _ = load_checkpoint(path)
        return state
    return load_state_file(path)


def init_from_pretrained(model: StreamRecognizer, *, path: str | os.PathLike, format: str) -> LoadReport:
    """Load weights from a local file into ``model`` (in place) and report what loaded.

    Args:
        model: a :class:`StreamRecognizer` from one of the stream builders.
        path: ``.safetensors`` or ``.pt/.pth/.pyth/.bin`` file (read with weights_only=True), or a
            run or checkpoint directory of this project (:func:`read_pretrained_state`).
        format: one of :data:`PRETRAINED_FORMATS` (see the module docstring).

    Returns:
        The :class:`~training.weights.LoadReport`. For the backbone formats the key names in it
        are relative to ``model.backbone``.

    Raises:
        WeightsError: unknown format, a format that does not fit the model's backbone, an
            unreadable file, or a file of which no tensor fits the model at all.
    """
    if format not in PRETRAINED_FORMATS:
        raise WeightsError(f"{path}: unknown pretrained format {format!r}; expected one of {PRETRAINED_FORMATS}")
    state = read_pretrained_state(path)
    source = str(path)
    backbone_note = "key names are relative to model.backbone; the stream's own head keeps its initial values"
    classifier_reason = "the file's ImageNet classifier; the stream has its own head"
    if format == "torchvision2d":
        _require_backbone(model, ResNet2dBackbone, path, format)
        report = load_into(model.backbone, state, skip_prefixes=("fc.",), source=source,
                           skip_reason=classifier_reason, notes=[backbone_note])
    elif format == "pytorchvideo3d":
        _require_backbone(model, ResNet3dBackbone, path, format)
        # pytorchvideo's Net puts the head after the backbone blocks (blocks.5 for a ResNet).
        num_blocks = len(model.backbone.blocks)
        beyond = sorted({m.group(0) for k in state
                         if (m := re.match(r"blocks\.(\d+)\.", k)) and int(m.group(1)) >= num_blocks})
        report = load_into(model.backbone, state, skip_prefixes=beyond, source=source,
                           skip_reason="the checkpoint's classification head; the stream has its own head",
                           notes=[backbone_note])
    elif format == "inflate2d":
        _require_backbone(model, ResNet3dBackbone, path, format)
        try:
            inflated = inflate_2d_state_to_3d(state, model.backbone)
        except WeightsError as e:
            raise WeightsError(f"{path}: {e}") from None
        notes = ["2D kernels inflated over time (repeated and divided by the temporal size, I3D)"]
        stem_2d = state.get("conv1.weight")
        stem_3d = model.backbone.state_dict().get(STEM_CONV_3D)
        if stem_2d is not None and stem_3d is not None and stem_2d.shape[1] != stem_3d.shape[1]:
            notes.append(f"stem for {stem_3d.shape[1]} input channels built from the {stem_2d.shape[1]}-channel "
                         "kernel averaged over channels (cross-modality init)")
        report = load_into(model.backbone, inflated, skip_prefixes=("fc.",), source=source,
                           skip_reason=classifier_reason, notes=notes + [backbone_note])
    else:  # "stream"
        model_state = model.state_dict()
        head_differs = any(k.startswith("head.") and k in model_state and v.shape != model_state[k].shape
                           for k, v in state.items())
        report = load_into(model, state, skip_prefixes=("head.",) if head_differs else (), source=source,
                           skip_reason=f"classifier trained for a different number of classes; "
                                       f"this model has {model.num_classes}")
    if not report.loaded:
        raise WeightsError(f"{path}: no tensor in the file fits this model as format {format!r} "
                           f"(is it the right format?)\n{report.summary(max_names=10)}")
    return report


def apply_pretrained(model: StreamRecognizer, pretrained: Mapping[str, str] | None) -> StreamRecognizer:
    """Builders' hook: ``pretrained`` is None or ``{"path": ..., "format": ...}``; returns ``model``."""
    if pretrained is None:
        return model
    unknown = set(pretrained) - {"path", "format"}
    if unknown or "path" not in pretrained or "format" not in pretrained:
        raise ValueError(f"pretrained must be a mapping with keys 'path' and 'format', got {dict(pretrained)!r}")
    init_from_pretrained(model, path=pretrained["path"], format=pretrained["format"])
    return model


def _require_backbone(model: StreamRecognizer, kind: type, path: str | os.PathLike, format: str) -> None:
    backbone = getattr(model, "backbone", None)
    if not isinstance(backbone, kind):
        raise WeightsError(f"{path}: format {format!r} needs a model with a {kind.__name__}, "
                           f"this one has {type(backbone).__name__}")
