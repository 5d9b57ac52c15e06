"""The keyframe contact sheet: one tile per keyframe in order, laid out in rows of ``columns``,
each showing its image above a caption that changes with the keyframe's time, score and top class;
written as a PNG that decodes back to the rendered RGB image."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from keyframes.contact_sheet import render_contact_sheet, write_contact_sheet
from keyframes.selection import Keyframe, Selection

CLASSES = ("Positive", "Neutral", "Negative")
THUMB, CAPTION, GAP = 96, 18, 4  # thumb height, caption band and gap (px) of the default sheet


def keyframe(i: int, probs=(0.7, 0.2, 0.1), time: float | None = None) -> Keyframe:
    return Keyframe(index=i, time=0.2 * i if time is None else time, score=max(probs), probs=probs, reason="slot")


def colours(n: int) -> list[tuple[int, int, int]]:
    return [(20 * i, 255 - 20 * i, (90 * i) % 256) for i in range(n)]


def solid(rgb, h: int = 48, w: int = 64) -> np.ndarray:
    return np.broadcast_to(np.asarray(rgb, np.uint8), (h, w, 3)).copy()


def caption(sheet: np.ndarray, tile: int, tile_width: int, columns: int = 8) -> np.ndarray:
    r, c = divmod(tile, columns)
    y = r * (THUMB + CAPTION + GAP) + THUMB
    return sheet[y:y + CAPTION, c * (tile_width + GAP):c * (tile_width + GAP) + tile_width]


def test_one_tile_per_keyframe_in_order_and_rows_of_columns():
    n, columns = 10, 4
    images = [solid(rgb) for rgb in colours(n)]
    sheet = render_contact_sheet(images, Selection([keyframe(i) for i in range(n)]), CLASSES, columns=columns)
    tw = 64 * THUMB // 48  # thumbs keep the aspect ratio at the thumb height
    assert sheet.dtype == np.uint8
    assert sheet.shape == (3 * (THUMB + CAPTION + GAP), columns * (tw + GAP), 3)  # 10 tiles: rows of 4, 4, 2
    for i, rgb in enumerate(colours(n)):
        r, c = divmod(i, columns)
        y, x = r * (THUMB + CAPTION + GAP), c * (tw + GAP)
        np.testing.assert_array_equal(sheet[y:y + THUMB, x:x + tw], solid(rgb, THUMB, tw))
        band = caption(sheet, i, tw, columns)
        assert (band < 128).any() and (band == 255).any(), "caption text on white"
    # the two places after the last tile stay blank
    assert (sheet[2 * (THUMB + CAPTION + GAP):, 2 * (tw + GAP):] == 255).all()


def test_a_short_clip_makes_a_single_row_as_wide_as_its_tiles():
    sheet = render_contact_sheet([solid((0, 0, 0))] * 3, Selection([keyframe(i) for i in range(3)]), CLASSES)
    assert sheet.shape == (THUMB + CAPTION + GAP, 3 * (128 + GAP), 3)


def test_the_caption_follows_time_score_and_top_class():
    img = [solid((40, 80, 120))]
    base = render_contact_sheet(img, Selection([keyframe(0, (0.7, 0.2, 0.1), time=1.0)]), CLASSES)
    variants = {
        "time": Selection([keyframe(0, (0.7, 0.2, 0.1), time=2.5)]),
        "score": Selection([keyframe(0, (0.9, 0.05, 0.05), time=1.0)]),
        "top class": Selection([keyframe(0, (0.1, 0.2, 0.7), time=1.0)]),
    }
    for what, sel in variants.items():
        other = render_contact_sheet(img, sel, CLASSES)
        np.testing.assert_array_equal(other[:THUMB], base[:THUMB])  # the picture is the same
        assert not np.array_equal(caption(other, 0, 128), caption(base, 0, 128)), what
    # the top class is written by name when names are given, by index otherwise
    named = render_contact_sheet(img, variants["top class"], CLASSES)
    unnamed = render_contact_sheet(img, variants["top class"])
    assert not np.array_equal(caption(named, 0, 128), caption(unnamed, 0, 128))


def test_images_of_any_size_become_thumbs_of_one_height():
    images = [solid((255, 0, 0), 480, 270), solid((0, 0, 255), 90, 160)]  # portrait phone, landscape
    sheet = render_contact_sheet(images, Selection([keyframe(0), keyframe(1)]), CLASSES, thumb_height=32)
    widths = [18, 57]  # 270 * 32 / 480, 160 * 32 / 90
    assert sheet.shape == (32 + CAPTION + GAP, 2 * (max(widths) + GAP), 3)
    assert (sheet[:32, :18] == (255, 0, 0)).all() and (sheet[:32, 18:57] == 255).all()
    assert (sheet[:32, 57 + GAP:2 * 57 + GAP] == (0, 0, 255)).all()


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="no keyframes"):
        render_contact_sheet([], Selection([]), CLASSES)
    # an image per keyframe: a missing one would silently drop a keyframe from the sheet
    with pytest.raises(ValueError, match="3 images for 4 keyframes"):
        render_contact_sheet([solid((0, 0, 0))] * 3, Selection([keyframe(i) for i in range(4)]), CLASSES)


def test_written_png_decodes_to_the_rendered_rgb_sheet(tmp_path):
    images = [solid(rgb) for rgb in colours(3)]
    sel = Selection([keyframe(i) for i in range(3)])
    path = tmp_path / "clip" / "contact_sheet.png"
    path.parent.mkdir()
    write_contact_sheet(path, images, sel, CLASSES)
    back = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(back, render_contact_sheet(images, sel, CLASSES))
    assert sorted(p.name for p in path.parent.iterdir()) == ["contact_sheet.png"]  # no temp file left
