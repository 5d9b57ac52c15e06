"""Tests for media.frame_conversion: sizes, rotation, and conversions equal to PyAV's own."""
from __future__ import annotations

import numpy as np
import pytest

from media.decoding import VideoReader
from media.encoding import write_mp4
from media.frame_conversion import rotate_upright, target_size


def test_target_size_keeps_aspect_ratio():
    assert target_size(640, 480, short_side=240) == (320, 240)
    assert target_size(480, 640, short_side=240) == (240, 320)
    assert target_size(1920, 1080, max_side=480) == (480, 270)
    assert target_size(100, 50, max_side=200) == (100, 50)  # max_side never enlarges
    assert target_size(100, 50) == (100, 50)
    assert target_size(64, 48, fixed_width=32) == (32, 24)
    with pytest.raises(ValueError):
        target_size(64, 48, short_side=10, fixed_width=32)


def test_rotate_upright_on_arrays():
    image = np.arange(6).reshape(2, 3)
    assert rotate_upright(image, 0) is image
    np.testing.assert_array_equal(rotate_upright(image, 90), [[2, 5], [1, 4], [0, 3]])
    np.testing.assert_array_equal(rotate_upright(image, 180), image[::-1, ::-1])
    np.testing.assert_array_equal(rotate_upright(image, -90), rotate_upright(image, 270))
    rgb = np.zeros((2, 3, 3))
    assert rotate_upright(rgb, 270).shape == (3, 2, 3)


def test_conversions_are_pyavs_own_across_frames_sizes_and_threads(tmp_path):
    """Converters keep one swscale context per thread for many frames: the pixels must be what
    PyAV's per-frame conversion gives, also when frames of another size come between and when
    another thread converts the same frames."""
    import threading

    rng = np.random.default_rng(0)
    clips = [write_mp4(tmp_path / f"texture_{w}x{h}.mp4",
                       [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(6)], fps=15)
             for w, h in ((64, 48), (96, 54))]
    handles = []
    for clip in clips:
        with VideoReader(clip) as reader:
            handles.append(list(reader.iter_handles()))
    mixed = [h for pair in zip(*handles) for h in pair]  # 64x48, 96x54, 64x48, ...

    def expected(handle, kwargs):
        w, h = handle.frame.width, handle.frame.height
        if kwargs.get("width"):
            size = target_size(w, h, fixed_width=kwargs["width"])
        else:
            size = target_size(w, h, short_side=kwargs.get("short_side"))
        fmt = "gray" if kwargs.get("gray") else "rgb24"
        if size == (w, h):
            return handle.frame.to_ndarray(format=fmt)
        down = size[0] * size[1] < w * h
        return handle.frame.to_ndarray(width=size[0], height=size[1], format=fmt,
                                       interpolation="AREA" if down else "BILINEAR")

    asks = ({}, {"short_side": 24}, {"short_side": 90}, {"width": 32, "gray": True})
    want = [[expected(h, kw) for kw in asks] for h in mixed]
    results: dict[str, list] = {}

    def convert(name: str) -> None:
        results[name] = [[h.to_image(**kw) for kw in asks] for h in mixed]

    convert("main")
    worker = threading.Thread(target=convert, args=("worker",))
    worker.start()
    worker.join()
    for name, got in results.items():
        for frame_want, frame_got in zip(want, got):
            for a, b in zip(frame_want, frame_got):
                assert a.shape == b.shape and np.array_equal(a, b), name
