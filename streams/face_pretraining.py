"""Face-expression pretraining for the face stream: a torchvision 2D ResNet trained on FER2013
(either published form, :mod:`media.layouts.fer2013`) with the shared loop (:func:`training.loop.fit`),
whose checkpoint then initialises the 3D face stream through I3D inflation.

The recipe (``configs/faces/fer2013_r50.yaml``) has four sections; ``model:`` and ``data:`` are
settings dataclasses (:func:`face_pretraining_settings`), listed in docs/reference/config.md:

``model``
    the keyword arguments of :func:`create_face_expression_model`: ``depth`` (50, 101 or 152:
    bottleneck ResNets, the ones the 3D face stream can inflate) and ``pretrained`` (optional
    local torchvision ImageNet state dict; ``fc`` skipped).
``data``
    :class:`FacePretrainData`. ``input_size``: the 48x48 grey images are upsampled (bilinear) to
    this side and repeated to 3 channels, then ImageNet-normalised like the face stream's crops, so
    the inflated filters see faces at the scale and in the format the stream feeds them (the
    stream's crops are 112 px by default). Training views are random resized crops (``crop_scale``,
    aspect 3/4-4/3) of the 48 px image with horizontal flips (``flip``); evaluation views the whole
    image. ``train_split`` / ``val_split``: which FER2013 splits train and validate (default
    ``train`` and ``val``, i.e. Training and PublicTest; ``val_split: null`` trains without
    validation, e.g. on the image-folder release, which has no val split).
``labels``
    optional class mapping (:mod:`training.label_maps`), e.g. FER2013's seven emotions onto
    Positive / Neutral / Negative for a group model's face stream; ``null`` keeps the seven.
``train``
    the shared loop's settings (:mod:`training.train_config`).

The run directory is the one every training writes (:mod:`training.run_directory`); its
``best/model.safetensors`` is a torchvision-layout state dict (``conv1.weight``,
``layer1.0.conv1.weight``, ..., ``fc.*``), which the face stream reads as
``model.pretrained: {path: RUN, format: inflate2d}`` (``fc`` skipped on purpose).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Mapping

import cv2
import numpy as np
import torch
import torchvision
from torch import nn

from core.config import ConfigError, builder_settings, check_keys, check_settings, setting, settings_from_section
from keyframes.data import augmentation_rng, random_resized_crop
from keyframes.scorer import IMAGENET_MEAN, IMAGENET_STD
from media.layouts import FER2013_SPLITS, FaceImages, read_fer2013
from training.label_maps import create_label_map
from training.loop import fit
from training.train_config import resolve_train_config
from training.weights import load_into, load_state_file

log = logging.getLogger(__name__)

RECIPE_KEYS = ("model", "data", "labels", "train")
_RESNETS = {50: torchvision.models.resnet50, 101: torchvision.models.resnet101, 152: torchvision.models.resnet152}


def create_face_expression_model(*, num_classes: int, depth: int = 50,
                                 pretrained: str | os.PathLike | None = None) -> nn.Module:
    """A torchvision ResNet-``depth`` (50, 101, 152) with a ``num_classes`` head.

    ``pretrained``: a local torchvision-format ImageNet state dict; its 1000-way ``fc`` is
    skipped and what does not load is reported by name. Input ``(B, 3, S, S)`` normalised, output
    logits ``(B, num_classes)``.

    Args:
        num_classes: the head's classes (FER2013's seven, or those of the recipe's labels mapping).
        depth: the ResNet depth: 50, 101 or 152, the bottleneck ResNets the 3D face stream can inflate.
        pretrained: a local torchvision ImageNet state dict (its fc skipped); null: random init.
    """
    if depth not in _RESNETS:
        raise ConfigError(f"model.depth must be one of {sorted(_RESNETS)} (bottleneck ResNets, which the 3D face "
                          f"stream can inflate), got {depth!r}")
    model = _RESNETS[depth](weights=None, num_classes=num_classes)
    if pretrained:
        report = load_into(model, load_state_file(pretrained), skip_prefixes=("fc.",), source=str(pretrained),
                           skip_reason="the ImageNet classifier; this model has its own head")
        log.info("face-expression model initialised from %s\n%s", pretrained, report.summary())
    return model


@dataclass(frozen=True)
class FacePretrainData:
    """The face pretraining recipe's ``data:`` section: which FER2013 splits train and validate,
    the side the 48 px images are upsampled to, and the training views' augmentation."""

    input_size: int = setting(112, minimum=1, help=(
        "side (px) the 48 px grey images are upsampled to (bilinear); the face stream's crops are 112 px"))
    train_split: str = setting("train", choices=FER2013_SPLITS, help="the FER2013 split trained on (CSV Training rows)")
    val_split: str | None = setting("val", choices=FER2013_SPLITS, help=(
        "the FER2013 split validated on (CSV PublicTest rows); null: no validation (the image folders have no val)"))
    crop_scale: tuple[float, float] | list[float] = setting((0.7, 1.0), accepts="two numbers in (0, 1], low <= high",
                                                            help="area fraction of the training views' random crops")
    flip: bool = setting(True, help="random horizontal flips of the training views")

    def __post_init__(self) -> None:
        check_settings(self, "data")
        scale = self.crop_scale
        if not (isinstance(scale, (list, tuple)) and len(scale) == 2
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in scale)
                and 0 < scale[0] <= scale[1] <= 1):
            raise ConfigError(f"data.crop_scale must be two numbers in (0, 1], low <= high, got {scale!r}")
        object.__setattr__(self, "crop_scale", (float(scale[0]), float(scale[1])))


def face_pretraining_settings(cfg: Mapping[str, Any]) -> tuple[Any, FacePretrainData]:
    """The checked ``model:`` (the settings of :func:`create_face_expression_model`'s keyword
    arguments, less ``num_classes``) and ``data:`` (:class:`FacePretrainData`) sections of the face
    pretraining recipe ``cfg``; :class:`ConfigError` for an unknown key or a value out of range."""
    check_keys(cfg, RECIPE_KEYS, "the face pretraining recipe")
    model = settings_from_section(builder_settings(create_face_expression_model, ("num_classes",)),
                                  cfg.get("model"), "model")
    return model, settings_from_section(FacePretrainData, cfg.get("data"), "data")


class FaceImageDataset(torch.utils.data.Dataset):
    """Items ``(image (3, S, S) float32, label int)`` from grey face images.

    ``images`` (N, H, W) uint8 grey, ``labels`` (N,) int. ``input_size`` S: the side the image is
    resized to (bilinear); the grey channel is repeated to RGB and ImageNet-normalised.
    ``train``: random resized crops (scale ``crop_scale`` of the area) and horizontal flips,
    drawn from a generator seeded by ``(seed, epoch, index)``; otherwise the whole image."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, *, input_size: int, train: bool, seed: int = 0,
                 crop_scale: tuple[float, float] = (0.7, 1.0), flip: bool = True) -> None:
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"images must be (N, H, W) uint8 grey, got {images.shape} {images.dtype}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = np.asarray(labels, np.int64)
        self.input_size = int(input_size)
        self.train = train
        self.seed = int(seed)
        self.crop_scale = (float(crop_scale[0]), float(crop_scale[1]))
        self.flip = bool(flip)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        image = self.images[index]
        s = self.input_size
        if self.train:
            rng = augmentation_rng(self.seed, self.epoch, index)
            view = random_resized_crop(image, s, rng, scale=self.crop_scale)
            if self.flip and rng.random() < 0.5:
                view = view[:, ::-1]
        else:
            view = cv2.resize(image, (s, s), interpolation=cv2.INTER_LINEAR)
        rgb = np.repeat(view[..., None].astype(np.float32) / 255.0, 3, axis=2)
        x = (rgb - IMAGENET_MEAN) / IMAGENET_STD
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))), int(self.labels[index])


def _split(data: FaceImages, label_map) -> tuple[np.ndarray, np.ndarray]:
    if label_map is None:
        return data.images, data.labels
    keep, labels = label_map.map_labels(data.labels)
    return data.images[keep], labels


def train_face_pretraining(cfg: Mapping[str, Any], data_root: str | os.PathLike, out_dir: str | os.PathLike, *,
                           fresh: bool = False) -> dict:
    """Train the face-expression model of recipe ``cfg`` (see the module docstring) on the
    FER2013 data at ``data_root`` (``fer2013.csv``, a folder holding it, or the image-folder
    root); returns the run's metrics (:func:`training.loop.fit`)."""
    model_settings, data = face_pretraining_settings(cfg)
    train_data = read_fer2013(data_root, data.train_split)
    label_map = create_label_map(cfg.get("labels"), train_data.class_names)
    class_names = label_map.target_classes if label_map is not None else train_data.class_names
    if label_map is not None:
        log.info("labels: %s", label_map.describe())
    seed = resolve_train_config(cfg.get("train"))["seed"]
    images, labels = _split(train_data, label_map)
    train_ds = FaceImageDataset(images, labels, input_size=data.input_size, train=True, seed=seed,
                                crop_scale=data.crop_scale, flip=data.flip)
    val_ds = None
    if data.val_split is not None:
        images, labels = _split(read_fer2013(data_root, data.val_split), label_map)
        val_ds = FaceImageDataset(images, labels, input_size=data.input_size, train=False, seed=seed)
    torch.manual_seed(seed)  # same initial weights on every run
    model = create_face_expression_model(num_classes=len(class_names), depth=model_settings.depth,
                                         pretrained=model_settings.pretrained)
    recipe = {k: v for k, v in cfg.items() if k != "train"}
    recipe["dataset"] = str(data_root)
    return fit(model=model, train_dataset=train_ds, val_dataset=val_ds, class_names=class_names,
               cfg=cfg.get("train"), out_dir=out_dir, fresh=fresh, recipe=recipe)
