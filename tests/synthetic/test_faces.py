"""Tests for synthetic.faces: the cartoon person is drawn in place, only the mouth follows the
mouth argument, the expression features move the drawn features, and bad input is refused."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from synthetic.faces import draw_cartoon_face
from tests.conftest import load_helper

_measures = load_helper(Path(__file__).with_name("cue_measures.py"), "tests_synthetic_cue_measures")


def test_draw_cartoon_face_in_place_mouth_only_changes_the_mouth():
    blank = np.full((120, 160, 3), 90, np.uint8)
    smile, frown = blank.copy(), blank.copy()
    box = draw_cartoon_face(smile, (80, 50), 50, 1.0, rng=np.random.default_rng(1))
    assert draw_cartoon_face(frown, (80, 50), 50, -1.0, rng=np.random.default_rng(1)) == box
    x0, y0, x1, y1 = box
    assert (x0, y0) == (60, 25) and 0 < x1 - x0 < y1 - y0 <= 51
    assert (smile[:5] == 90).all() and (smile[:, :5] == 90).all()     # only the person is drawn
    eyes = slice(y0, y0 + int(0.55 * (y1 - y0)))
    assert np.array_equal(smile[eyes], frown[eyes])
    assert not np.array_equal(smile, frown)
    assert _measures.mouth_curvature(smile, box) > 0.3 > -0.3 > _measures.mouth_curvature(frown, box)


def test_expression_features_move_the_drawn_features():
    """mouth_open darkens the mouth, eye_open widens the eye whites, brow_tilt raises the inner
    brow ends (sad) or lowers them (angry); the defaults draw the plain face."""
    def draw(**features) -> np.ndarray:
        image = np.full((120, 120, 3), 90, np.uint8)
        draw_cartoon_face(image, (60, 50), 60, 0.0, rng=np.random.default_rng(3), **features)
        return image.astype(int)

    plain = draw()
    assert np.array_equal(plain, draw(mouth_open=0.0, eye_open=1.0, brow_tilt=0.0, brow_raise=0.0, brow_weight=1.0))
    top, s = 50 - 30, 60
    mouth = (slice(top + int(0.66 * s), top + int(0.95 * s)), slice(60 - 15, 60 + 15))
    dark = lambda img: int((img[mouth].sum(axis=2) < 200).sum())   # noqa: E731
    assert dark(draw(mouth_open=1.0)) > dark(plain) + 30
    eyes = (slice(top + int(0.35 * s), top + int(0.56 * s)), slice(20, 100))
    white = lambda img: int((img[eyes].min(axis=2) > 150).sum())   # noqa: E731 (no skin tone is that bright in blue)
    assert white(draw(eye_open=0.4)) < white(plain) < white(draw(eye_open=1.6))

    def inner_minus_outer(img: np.ndarray) -> float:
        """Height of the right brow's inner end above its outer end (px), from the darkest rows."""
        band = img[top + int(0.1 * s):top + int(0.42 * s)].sum(axis=2)
        inner, outer = 60 + int(0.19 * s - 0.07 * s), 60 + int(0.19 * s + 0.07 * s)
        return float(np.argmin(band[:, outer]) - np.argmin(band[:, inner]))
    assert inner_minus_outer(draw(brow_tilt=1.0, brow_weight=2.0)) > 2 > -2 > inner_minus_outer(
        draw(brow_tilt=-1.0, brow_weight=2.0))


def test_draw_cartoon_face_refuses_an_image_that_is_not_uint8_rgb():
    with pytest.raises(ValueError, match="uint8"):
        draw_cartoon_face(np.zeros((90, 160, 3), np.float32), (80, 45), 40, 0.5)
