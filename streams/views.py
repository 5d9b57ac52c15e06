"""Building blocks of the streams' input views: which stored frames to take, resizing, cropping,
flipping. The views themselves (what each stream's network sees) live in the stream specs
(:mod:`streams.specs`); this module only holds what they share.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import cv2
import numpy as np

from core.config import ConfigError, check_settings, setting, settings_from_section


@dataclass(frozen=True)
class ViewSettings:
    """The ``data:`` section of a stream recipe for the image-like streams.

    ``num_frames``: frames taken evenly from the stored ones. ``resize``: an int resizes the short
    side to it (aspect kept), ``[H, W]`` to an exact size, ``None`` keeps the stored size.
    ``crop``: side (px) of the square crop, random for training and central for evaluation.
    ``flip``: random horizontal flips for training.
    """

    num_frames: int = setting(16, minimum=1)
    resize: int | tuple[int, int] | None = None
    crop: int = setting(224, minimum=1)
    flip: bool = True

    def __post_init__(self) -> None:
        check_settings(self, "data")
        resize = tuple(self.resize) if isinstance(self.resize, list) else self.resize
        sides = () if resize is None else resize if isinstance(resize, tuple) else (resize,)
        pixels = all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in sides)
        if not pixels or (isinstance(resize, tuple) and len(resize) != 2):
            raise ConfigError(f"data.resize must be a short side in px (>= 1), [H, W], or null, got {self.resize!r}")
        object.__setattr__(self, "resize", resize)

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> "ViewSettings":
        """Parse a ``data:`` section; an unknown key or unusable value is a :class:`ConfigError`
        naming it."""
        return settings_from_section(cls, section, "data")


def even_indices(available: int, wanted: int) -> np.ndarray:
    """``wanted`` indices spread evenly over ``range(available)`` (repeats when fewer are available)."""
    if available <= 0:
        raise ValueError("no frames stored")
    return np.floor((np.arange(wanted) + 0.5) * available / wanted).astype(int)


def resize_frames(frames: np.ndarray, resize: int | tuple[int, int] | None) -> np.ndarray:
    """(T, H, W, C) -> resized (T, H', W', C); ``resize`` int = short side, (H, W) = exact size."""
    if resize is None:
        return frames
    h, w = frames.shape[1:3]
    if isinstance(resize, tuple):
        nh, nw = resize
    else:
        s = resize / min(h, w)
        nh, nw = max(1, round(h * s)), max(1, round(w * s))
    if (nh, nw) == (h, w):
        return frames
    out = [cv2.resize(np.ascontiguousarray(f), (nw, nh), interpolation=cv2.INTER_LINEAR) for f in frames]
    return np.stack(out).reshape(len(frames), nh, nw, -1)


def crop_frames(frames: np.ndarray, size: int, rng: np.random.Generator | None) -> np.ndarray:
    """Random (``rng``) or centre crop of (T, H, W, C) to (T, size, size, C); pads with zeros if smaller."""
    t, h, w = frames.shape[:3]
    if h < size or w < size:
        ph, pw = max(0, size - h), max(0, size - w)
        frames = np.pad(frames, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))
        t, h, w = frames.shape[:3]
    if rng is None:
        y0, x0 = (h - size) // 2, (w - size) // 2
    else:
        y0, x0 = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    return frames[:, y0:y0 + size, x0:x0 + size]


def flip_now(settings: ViewSettings, rng: np.random.Generator | None) -> bool:
    """Whether this training view is mirrored (never for evaluation views)."""
    return rng is not None and settings.flip and rng.random() < 0.5


def rgb_clip(frames: np.ndarray, settings: ViewSettings, rng: np.random.Generator | None) -> np.ndarray:
    """The view of stored RGB frames ``(T0, H, W, 3)`` uint8: ``settings.num_frames`` frames taken
    evenly, resized, cropped (random with ``rng``, else central), flipped at random when training;
    returns ``(3, T, S, S)`` uint8. It travels between processes and to the device as uint8 (a
    quarter of float32's bytes); the model normalises it there
    (:class:`streams.models.recognizer.ImageNetNormalize`)."""
    clip = np.asarray(frames[even_indices(len(frames), settings.num_frames)])
    clip = crop_frames(resize_frames(clip, settings.resize), settings.crop, rng)
    if flip_now(settings, rng):
        clip = clip[:, :, ::-1]
    return np.ascontiguousarray(clip.astype(np.uint8, copy=False).transpose(3, 0, 1, 2))



def centre_view_box(height: int, width: int, settings: ViewSettings) -> tuple[float, float, float, float]:
    """Where the evaluation view (resize, then the centre ``crop``) of a stored frame of
    ``height`` x ``width`` px lies in that frame: ``(x0, y0, x1, y1)`` as fractions of its width
    and height (a crop larger than the resized frame is padded: the box is the whole frame)."""
    if settings.resize is None:
        rh, rw = height, width
    elif isinstance(settings.resize, tuple):
        rh, rw = settings.resize
    else:
        s = settings.resize / min(height, width)
        rh, rw = max(1, round(height * s)), max(1, round(width * s))
    size = settings.crop
    y0, x0 = max(0, (rh - size) // 2), max(0, (rw - size) // 2)
    y1, x1 = min(rh, y0 + size), min(rw, x0 + size)
    return x0 / rw, y0 / rh, x1 / rw, y1 / rh
