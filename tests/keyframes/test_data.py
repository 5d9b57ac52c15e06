"""The scorer's image dataset on small real GroupEmoW trees: items and labels from every folder
layout the reader accepts, unreadable and truncated images named in the error, centre-cropped
evaluation items, random-resized-crop bounds, and augmentation that depends only on
(seed, epoch, index)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from keyframes.data import ImageFolderDataset, augmentation_rng, random_resized_crop
from keyframes.scorer import IMAGENET_MEAN, IMAGENET_STD
from media.layouts import ClipRecord, read_groupemow

# one colour per class, so an item's pixels tell which file it came from
CLASS_RGB = {"Positive": (220, 40, 40), "Neutral": (40, 220, 40), "Negative": (40, 40, 220)}


def write_image(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return path


def solid(rgb, h: int = 40, w: int = 56) -> np.ndarray:
    return np.broadcast_to(np.asarray(rgb, np.uint8), (h, w, 3)).copy()


def coordinate_image(h: int = 120, w: int = 160) -> np.ndarray:
    """Red is the column, green the row: a crop's pixel values tell where it came from."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.arange(w)[None, :]
    img[..., 1] = np.arange(h)[:, None]
    return img


def unnormalise(x: torch.Tensor) -> np.ndarray:
    """An item ``(3, S, S)`` back to ``(S, S, 3)`` float RGB in 0-255."""
    return (x.numpy().transpose(1, 2, 0) * IMAGENET_STD + IMAGENET_MEAN) * 255.0


def records_for(paths: list[Path], label: int = 0) -> list[ClipRecord]:
    return [ClipRecord(p.stem, p, label, tuple(CLASS_RGB), "train") for p in paths]


@pytest.fixture(scope="module")
def groupemow(tmp_path_factory) -> Path:
    """train/ with mixed-case class folders, a nested sub-folder, .jpg/.jpeg/.png, portrait and
    landscape images; val/ with one image per class."""
    root = tmp_path_factory.mktemp("groupemow")
    files = {
        "train/Positive/a.jpg": ("Positive", 40, 56),
        "train/Positive/party/b.png": ("Positive", 64, 30),
        "train/NEUTRAL/c.jpeg": ("Neutral", 33, 33),
        "train/negative/d.png": ("Negative", 50, 90),
        "val/positive/e.jpg": ("Positive", 40, 56),
        "val/neutral/f.jpg": ("Neutral", 40, 56),
        "val/negative/g.jpg": ("Negative", 40, 56),
    }
    for rel, (name, h, w) in files.items():
        write_image(root / rel, solid(CLASS_RGB[name], h, w))
    return root


@pytest.mark.parametrize("train", [True, False])
def test_every_layout_gives_square_items_with_the_folder_label(groupemow, train):
    records = read_groupemow(groupemow, "train")
    ds = ImageFolderDataset(records, input_size=24, train=train, seed=0)
    assert len(ds) == 4
    seen = set()
    for i, rec in enumerate(records):
        x, label = ds[i]
        assert x.shape == (3, 24, 24) and x.dtype == torch.float32
        assert label == rec.label
        name = rec.class_names[label]
        seen.add(name)
        # the pixels are the class colour of the folder the file sits in (JPEG: within a few levels)
        np.testing.assert_allclose(unnormalise(x).mean(axis=(0, 1)), CLASS_RGB[name], atol=6)
    assert seen == {"Positive", "Neutral", "Negative"}  # the VGAF names, whatever the folder case


def test_unlabelled_records_are_refused(tmp_path):
    path = write_image(tmp_path / "x.png", solid((1, 2, 3)))
    with pytest.raises(ValueError, match="labelled"):
        ImageFolderDataset([ClipRecord("x", path, None, (), "test")], input_size=16, train=False)


@pytest.mark.parametrize("content", [b"", b"not an image at all", "truncated png"])
def test_unreadable_image_is_named_in_the_error(tmp_path, content):
    path = tmp_path / "train" / "positive" / "broken.png"
    if content == "truncated png":
        data = write_image(path, coordinate_image()).read_bytes()
        content = data[: len(data) // 2]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    ds = ImageFolderDataset(records_for([path]), input_size=16, train=True)
    with pytest.raises(ValueError, match="cannot be read") as err:
        ds[0]
    assert str(path) in str(err.value)


def test_truncated_jpeg_is_named_in_the_error(tmp_path):
    # OpenCV decodes a truncated JPEG without complaint (the missing rows come out grey), so a
    # download cut short would silently train on a half-grey picture
    rng = np.random.default_rng(0)
    good = write_image(tmp_path / "good.jpg", rng.integers(0, 256, (60, 80, 3), dtype=np.uint8))
    data = good.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) * 2 // 3])
    ds = ImageFolderDataset(records_for([good, cut]), input_size=16, train=False)
    assert ds[0][0].shape == (3, 16, 16)
    with pytest.raises(ValueError, match="truncated") as err:
        ds[1]
    assert str(cut) in str(err.value)


def test_evaluation_item_is_the_resized_centre_crop(tmp_path):
    # a wide image: left, centre and right thirds in three colours; the crop sees only the centre
    img = np.concatenate([solid((255, 0, 0), 30, 30), solid((0, 255, 0), 30, 30), solid((0, 0, 255), 30, 30)], axis=1)
    path = write_image(tmp_path / "wide.png", img)
    ds = ImageFolderDataset(records_for([path]), input_size=10, train=False)
    x, _ = ds[0]
    assert x.shape == (3, 10, 10)
    np.testing.assert_allclose(unnormalise(x), solid((0, 255, 0), 10, 10), atol=1.0)
    assert torch.equal(ds[0][0], x)  # evaluation is not augmented
    ds.set_epoch(5)
    assert torch.equal(ds[0][0], x)


def test_augmentation_depends_only_on_seed_epoch_and_index(tmp_path):
    paths = [write_image(tmp_path / f"{i}.png", coordinate_image()) for i in range(3)]
    recs = records_for(paths)

    def items(seed, epoch, order):
        ds = ImageFolderDataset(recs, input_size=16, train=True, seed=seed)
        ds.set_epoch(epoch)
        return {i: ds[i][0] for i in order}

    first = items(0, 1, [0, 1, 2])
    # a new dataset (a resumed run, a DataLoader worker) asked in another order gives the same items
    again = items(0, 1, [2, 0, 1, 0])
    assert all(torch.equal(first[i], again[i]) for i in range(3))
    # the three files are identical, so only the index makes items 0, 1, 2 differ
    assert not torch.equal(first[0], first[1]) and not torch.equal(first[1], first[2])
    # another epoch or another seed draws other crops
    assert not any(torch.equal(first[i], items(0, 2, [i])[i]) for i in range(3))
    assert not any(torch.equal(first[i], items(1, 1, [i])[i]) for i in range(3))
    # and the generator is the documented one
    rng = augmentation_rng(0, 1, 2)
    crop = random_resized_crop(coordinate_image(), 16, rng, scale=(0.25, 1.0))
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    np.testing.assert_allclose(unnormalise(first[2]), crop, atol=1e-3)


def test_training_items_are_crops_within_scale_and_aspect_and_flip_half_the_time(tmp_path):
    h, w = 120, 160
    path = write_image(tmp_path / "coords.png", coordinate_image(h, w))
    ds = ImageFolderDataset(records_for([path]), input_size=16, train=True, seed=3)
    flips = 0
    for epoch in range(40):
        ds.set_epoch(epoch)
        img = unnormalise(ds[0][0])
        cols, rows = img[..., 0], img[..., 1]
        # each output pixel averages a block of the crop: the value range spans 15/16 of the crop
        cw = (cols.max() - cols.min()) * 16 / 15
        ch = (rows.max() - rows.min()) * 16 / 15
        assert 0.25 * 0.85 <= cw * ch / (h * w) <= 1.0 + 1e-6
        assert 3 / 4 * 0.85 <= cw / ch <= 4 / 3 / 0.85
        flipped = cols[:, 0].mean() > cols[:, -1].mean()
        flips += flipped
    assert 8 <= flips <= 32  # about half of 40 draws
