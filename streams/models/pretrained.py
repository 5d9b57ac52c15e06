"""Initialising stream models from LOCAL weight files (nothing is ever downloaded).

Formats (``init_from_pretrained(model, path=..., format=...)``; ``format=None`` reads it from
the file's keys, see :func:`detect_format`):

``hara3d``
    A 3D-ResNets-PyTorch checkpoint (Hara et al.; ``r3d50_K_200ep.pth``,
    ``resnet-101-kinetics.pth``, their UCF101/HMDB51 fine-tunes): ``{"arch": "resnet-101",
    "state_dict": {...}, "epoch", "optimizer", ...}`` or a bare state dict, keys ``conv1``,
    ``bn1``, ``layer1..layer4.{i}.conv1..3 / bn1..3 / downsample.0 / downsample.1`` and ``fc``,
    possibly behind DataParallel's ``module.``. Into a ``resnet3d`` backbone, whose names are the
    same. ``fc.*`` (the Kinetics/UCF101 classifier) is dropped on purpose.
``pytorchvideo3d``
    A pytorchvideo / PySlowFast checkpoint (``{"model_state": {...}}`` or a bare state dict)
    with keys ``blocks.0 .. blocks.4`` (backbone) and ``blocks.5`` (Kinetics head) into a
    ``slow`` backbone. The head is dropped on purpose.
``torchvision2d``
    A torchvision ImageNet ResNet state dict (``conv1.weight``, ``layer1.0.conv1.weight``, ...,
    ``fc.*``) into a 2D backbone (audio stream). ``fc.*`` is dropped on purpose.
``inflate2d``
    A torchvision ImageNet ResNet state dict, I3D-inflated into a 3D backbone (``resnet3d``:
    any depth with the same block type; ``slow``: 50/101/152), see
    :func:`inflate_2d_state_to_3d`. ``fc.*`` is dropped on purpose.
``stream``
    A whole :class:`~streams.models.recognizer.StreamRecognizer` state dict (e.g. trained on another
    dataset): everything loads; the classifier (``head.*``) is dropped on purpose when its class count differs.

Where the model's stem takes another number of input channels than the file's RGB stem
(optical flow: 2), the stem kernel is averaged over the RGB channels and repeated for each
input channel (TSN's cross-modality initialisation), for every format but ``stream``.

The :class:`~training.weights.LoadReport` says what happened: ``loaded`` (and of those
``inflated``), ``missing`` and ``skipped_shape`` (backbone tensors only; names relative to
``model.backbone`` for the backbone formats, the model's own names for ``stream``),
``unexpected`` and ``skipped_on_purpose`` (the file's names; the latter is the file's own
classifier), and ``new``: the model's tensors outside the backbone that the file did not fill
(attention, the stream's head), which start from their initial values. Stream builders take
``pretrained={"path": ..., "format": ...}``, call :func:`init_from_pretrained` after building
and keep the report as ``model.load_report`` (a JSON-ready dict).

``path`` may also be a run or checkpoint directory of this project (a face-pretraining run of
``tools/train_face_pretrain.py``, format ``inflate2d``): its best checkpoint, checked against
the SHA-256 in its ``meta.json`` (:func:`read_pretrained_state`).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from streams.models.backbones import ResNetBackbone, SlowBackbone
from streams.models.recognizer import StreamRecognizer
from training.weights import LoadReport, WeightsError, load_into, read_checkpoint

PRETRAINED_FORMATS = ("hara3d", "pytorchvideo3d", "torchvision2d", "inflate2d", "stream")

STEM_CONV_SLOW = "blocks.0.conv.weight"
STEM_CONV_RESNET = "conv1.weight"

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


def average_stem_channels(kernel: torch.Tensor, in_channels: int) -> torch.Tensor:
    """A stem kernel (O, I, *k) for ``in_channels`` inputs: the mean over the I input channels,
    repeated ``in_channels`` times (TSN's cross-modality initialisation, e.g. RGB -> x/y flow)."""
    return kernel.mean(dim=1, keepdim=True).expand(-1, in_channels, *kernel.shape[2:]).contiguous()


def _is_basic_block_state(state: Mapping[str, torch.Tensor]) -> bool | None:
    """True for a ResNet-18/34 state dict (torchvision / Hara names), False for 50+, None if unknown."""
    if "layer1.0.conv3.weight" in state:
        return False
    if "layer1.0.conv1.weight" in state:
        return True
    return None


def inflate_2d_state_to_3d(
    state2d: Mapping[str, torch.Tensor],
    target: nn.Module | Mapping[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """I3D-inflate a torchvision ResNet state dict for a 3D backbone.

    Every 2D conv kernel (O, I, kh, kw) becomes (O, I, kt, kh, kw) by repeating it kt times over
    time and dividing by kt, with kt read from the target's tensor of the same name; on a
    temporally constant clip the 3D net then computes the 2D net's features frame by frame
    (away from the clip ends, where zero padding differs). Batch-norm tensors are copied.
    When the 3D stem has a different number of input channels than the 2D one (optical flow:
    2), see :func:`average_stem_channels`. The target is a ``resnet3d`` backbone (torchvision's
    names, no renaming) or a ``slow`` one (keys renamed by
    :func:`torchvision_to_pytorchvideo_key`); every net involved puts the spatial stride on
    the 3x3 conv, so the layouts match.

    Args:
        state2d: torchvision ResNet state dict (``conv1.weight``, ``layer1.0...``).
        target: the 3D backbone or its ``state_dict()``, used for the key names, the temporal
            kernel sizes and the stem's input channels.

    Returns:
        ``({3D key: tensor}, [inflated 3D keys])``. Keys without a 3D name (``fc.*``, anything
        unknown) are passed through under their 2D name, and tensors whose shape does not fit
        are passed through uninflated under their 3D name, so that ``load_into`` reports them.

    Raises:
        WeightsError: the 2D and 3D nets have different block types (basic 18/34 vs
            bottleneck 50+); a ``slow`` target is always a bottleneck net.
    """
    target_state = target.state_dict() if isinstance(target, nn.Module) else target
    slow = STEM_CONV_SLOW in target_state
    basic_2d = _is_basic_block_state(state2d)
    basic_3d = False if slow else _is_basic_block_state(target_state)
    if basic_2d is not None and basic_3d is not None and basic_2d != basic_3d:
        kinds = {True: "a basic-block ResNet (18/34)", False: "a bottleneck ResNet (50/101/152)"}
        raise WeightsError(f"cannot inflate {kinds[basic_2d]} state dict into {kinds[basic_3d]}"
                           + (" (the slow backbone is a bottleneck ResNet)" if slow else ""))
    stem_key = STEM_CONV_SLOW if slow else STEM_CONV_RESNET
    out: dict[str, torch.Tensor] = {}
    inflated: list[str] = []
    for key2d, tensor in state2d.items():
        key3d = torchvision_to_pytorchvideo_key(key2d) if slow else key2d
        if key3d is None:
            out[key2d] = tensor
            continue
        reference = target_state.get(key3d)
        if reference is None or tensor.dim() != 4 or reference.dim() != 5:
            out[key3d] = tensor
            continue
        kernel = tensor
        out_ch, in_ch, kt, kh, kw = reference.shape
        if key3d == stem_key and kernel.shape[1] != in_ch:
            kernel = average_stem_channels(kernel, in_ch)
        if tuple(kernel.shape) != (out_ch, in_ch, kh, kw):
            out[key3d] = tensor  # reported as a shape mismatch by load_into
            continue
        out[key3d] = kernel.unsqueeze(2).repeat(1, 1, kt, 1, 1) / kt
        inflated.append(key3d)
    return out, inflated


def detect_format(state: Mapping[str, torch.Tensor], model: StreamRecognizer) -> str:
    """The format of a state dict, from its key names and the model's backbone.

    ``backbone.*`` keys: ``stream``; ``blocks.*``: ``pytorchvideo3d``; ``conv1.weight`` 5-D:
    ``hara3d``; 4-D: ``torchvision2d`` for a 2D backbone, ``inflate2d`` for a 3D one.

    Raises:
        WeightsError: none of these (the message lists a few of the file's keys).
    """
    if any(k.startswith("backbone.") for k in state):
        return "stream"
    if any(k.startswith("blocks.") for k in state):
        return "pytorchvideo3d"
    stem = state.get(STEM_CONV_RESNET)
    if stem is not None and stem.dim() == 5:
        return "hara3d"
    if stem is not None and stem.dim() == 4:
        backbone = getattr(model, "backbone", None)
        return "torchvision2d" if isinstance(backbone, ResNetBackbone) and backbone.dims == 2 else "inflate2d"
    shown = ", ".join(list(state)[:5])
    raise WeightsError(f"cannot tell the weights format from the keys ({shown}, ...); "
                       f"name it (one of {PRETRAINED_FORMATS})")


def _fit_stem(state: dict[str, torch.Tensor], stem_key: str, target_state: Mapping[str, torch.Tensor],
              notes: list[str]) -> None:
    """Average an RGB stem into the model's stem channels in ``state`` (in place), with a note."""
    kernel, reference = state.get(stem_key), target_state.get(stem_key)
    if kernel is None or reference is None or kernel.dim() != reference.dim() or kernel.shape[1] == reference.shape[1]:
        return
    if kernel.shape[0] == reference.shape[0] and kernel.shape[2:] == reference.shape[2:]:
        state[stem_key] = average_stem_channels(kernel, reference.shape[1])
        notes.append(f"stem for {reference.shape[1]} input channels built from the {kernel.shape[1]}-channel "
                     "kernel averaged over channels (cross-modality init)")


def _hara_notes(state: Mapping[str, torch.Tensor], info: Mapping[str, object],
                target_state: Mapping[str, torch.Tensor]) -> list[str]:
    notes = []
    arch = info.get("arch")
    if isinstance(arch, str):
        notes.append(f"the file's arch: {arch!r}"
                     + ("" if arch.startswith("resnet-") else
                        " (not 3D-ResNets-PyTorch's plain 'resnet-N': expect shape mismatches)"))
    file_down = any(".downsample." in k for k in state)
    model_down = any(".downsample." in k for k in target_state)
    if model_down and not file_down:
        notes.append("the file has no downsample (shortcut) tensors: it was trained with shortcut type A "
                     "(3D-ResNets-PyTorch's 2017 resnet-18/34-kinetics.pth); build the model with shortcut_type: A")
    elif file_down and not model_down:
        notes.append("the file has downsample (shortcut) tensors and the model none: build it with shortcut_type: B")
    return notes


def read_pretrained_state(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    """The state dict at ``path`` and the file's other top-level entries: a weights file
    (:func:`training.weights.read_checkpoint`), or a run or checkpoint directory of this project,
    whose best checkpoint (else last) is read and checked against its ``meta.json``
    (:func:`training.checkpoints.load_checkpoint`; no entries)."""
    if Path(path).is_dir():
        from training.checkpoints import load_checkpoint

        state, _ = load_checkpoint(path)
        return state, {}
    return read_checkpoint(path)


def init_from_pretrained(model: StreamRecognizer, *, path: str | os.PathLike, format: str | None = None) -> LoadReport:

    """Load weights from a local file into ``model`` (in place) and report what loaded.

    Args:
        model: a :class:`StreamRecognizer` from one of the stream builders.
        path: ``.safetensors`` or ``.pt/.pth/.pyth/.bin`` file (read with weights_only=True), or a
            run or checkpoint directory of this project (:func:`read_pretrained_state`).
        format: one of :data:`PRETRAINED_FORMATS` (see the module docstring), or None to
            read it from the file (:func:`detect_format`).

    Returns:
        The :class:`~training.weights.LoadReport` (see the module docstring for what its lists
        hold); ``report.format`` is the format used.

    Raises:
        WeightsError: unknown format, a format that does not fit the model's backbone, an
            unreadable file, or a file of which no tensor fits the model at all.
    """
    if format is not None and format not in PRETRAINED_FORMATS:
        raise WeightsError(f"{path}: unknown pretrained format {format!r}; expected one of {PRETRAINED_FORMATS}")
    state, info = read_pretrained_state(path)
    notes: list[str] = []
    if format is None:
        try:
            format = detect_format(state, model)
        except WeightsError as e:
            raise WeightsError(f"{path}: {e}") from None
        notes.append(f"format {format!r} read from the file's key names")
    source = str(path)
    backbone_note = "key names are relative to model.backbone; the stream's own head keeps its initial values"
    classifier_reason = "the file's own classifier; the stream has its own head"
    inflated: list[str] = []
    if format == "torchvision2d":
        _require_backbone(model, ResNetBackbone, path, format, dims=2)
        state = dict(state)
        _fit_stem(state, STEM_CONV_RESNET, model.backbone.state_dict(), notes)
        report = load_into(model.backbone, state, skip_prefixes=("fc.",), source=source,
                           skip_reason=classifier_reason, notes=notes + [backbone_note])
    elif format == "hara3d":
        _require_backbone(model, ResNetBackbone, path, format, dims=3)
        target_state = model.backbone.state_dict()
        notes += _hara_notes(state, info, target_state)
        state = dict(state)
        _fit_stem(state, STEM_CONV_RESNET, target_state, notes)
        report = load_into(model.backbone, state, skip_prefixes=("fc.",), source=source,
                           skip_reason=classifier_reason, notes=notes + [backbone_note])
    elif format == "pytorchvideo3d":
        _require_backbone(model, SlowBackbone, path, format)
        # pytorchvideo's Net puts the head after the backbone blocks (blocks.5 for a ResNet).
        num_blocks = len(model.backbone.blocks)
        beyond = sorted({m.group(0) for k in state
                         if (m := re.match(r"blocks\.(\d+)\.", k)) and int(m.group(1)) >= num_blocks})
        state = dict(state)
        _fit_stem(state, STEM_CONV_SLOW, model.backbone.state_dict(), notes)
        report = load_into(model.backbone, state, skip_prefixes=beyond, source=source,
                           skip_reason="the checkpoint's classification head; the stream has its own head",
                           notes=notes + [backbone_note])
    elif format == "inflate2d":
        _require_backbone(model, (ResNetBackbone, SlowBackbone), path, format, dims=3)
        stem_2d = state.get(STEM_CONV_RESNET)
        try:
            state, inflated = inflate_2d_state_to_3d(state, model.backbone)
        except WeightsError as e:
            raise WeightsError(f"{path}: {e}") from None
        notes.append("2D kernels inflated over time (repeated and divided by the temporal size, I3D)")
        stem_key = STEM_CONV_SLOW if isinstance(model.backbone, SlowBackbone) else STEM_CONV_RESNET
        stem_3d = model.backbone.state_dict()[stem_key]
        if stem_2d is not None and stem_key in inflated and stem_2d.shape[1] != stem_3d.shape[1]:
            notes.append(f"stem for {stem_3d.shape[1]} input channels built from the {stem_2d.shape[1]}-channel "
                         "kernel averaged over channels (cross-modality init)")
        report = load_into(model.backbone, state, skip_prefixes=("fc.",), source=source,
                           skip_reason=classifier_reason, notes=notes + [backbone_note])
    else:  # "stream"
        model_state = model.state_dict()
        head_differs = any(k.startswith("head.") and k in model_state and v.shape != model_state[k].shape
                           for k, v in state.items())
        report = load_into(model, state, skip_prefixes=("head.",) if head_differs else (), source=source,
                           skip_reason=f"classifier trained for a different number of classes; "
                                       f"this model has {model.num_classes}", notes=notes)
    if not report.loaded:
        raise WeightsError(f"{path}: no tensor in the file fits this model as format {format!r} "
                           f"(is it the right format?)\n{report.summary(max_names=10)}")
    report.format = format
    report.inflated = [k for k in inflated if k in set(report.loaded)]
    _split_new(report, model, whole_model=format == "stream")
    return report


def _split_new(report: LoadReport, model: StreamRecognizer, *, whole_model: bool) -> None:
    """Set ``report.new``: the model's tensors outside the backbone the file did not fill.

    For a backbone format that is everything outside ``backbone.``; for ``stream`` (whose names
    are the model's) the non-backbone keys among missing or shape-mismatched ones move there.
    """
    if not whole_model:
        report.new = [k for k in model.state_dict() if not k.startswith("backbone.")]
        return
    loaded = set(report.loaded)
    report.new = [k for k in model.state_dict() if not k.startswith("backbone.") and k not in loaded]
    report.missing = [k for k in report.missing if k.startswith("backbone.")]
    moved = [m for m in report.skipped_shape if not m.key.startswith("backbone.")]
    if moved:
        report.skipped_shape = [m for m in report.skipped_shape if m.key.startswith("backbone.")]
        report.notes.append("shape mismatches outside the backbone (they start from their initial values): "
                            + ", ".join(str(m) for m in moved))


def apply_pretrained(model: StreamRecognizer, pretrained: Mapping[str, str] | None) -> StreamRecognizer:
    """Builders' hook: ``pretrained`` is None or ``{"path": ..., "format": ...}`` (``format``
    optional: read from the file). Sets ``model.load_report`` and returns ``model``."""
    if pretrained is None:
        return model
    if not isinstance(pretrained, Mapping) or set(pretrained) - {"path", "format"} or "path" not in pretrained:
        raise ValueError(f"pretrained must be a mapping with key 'path' (and optionally 'format'), e.g. "
                         f"--set model.pretrained.path=FILE, got {pretrained!r}")
    report = init_from_pretrained(model, path=pretrained["path"], format=pretrained.get("format"))
    model.load_report = report.as_dict()
    return model


def _require_backbone(model: StreamRecognizer, kind: type | tuple[type, ...], path: str | os.PathLike, format: str,
                      *, dims: int | None = None) -> None:
    backbone = getattr(model, "backbone", None)
    kinds = kind if isinstance(kind, tuple) else (kind,)
    fits = isinstance(backbone, kinds)
    if fits and dims is not None and isinstance(backbone, ResNetBackbone):
        fits = backbone.dims == dims
    if not fits:
        wanted = " or ".join(f"a {k.__name__}" for k in kinds) + (f" ({dims}D)" if dims else "")
        have = type(backbone).__name__ + (f" ({backbone.dims}D)" if isinstance(backbone, ResNetBackbone) else "")
        raise WeightsError(f"{path}: format {format!r} needs a model with {wanted}, this one has {have}")
