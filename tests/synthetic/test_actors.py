"""Tests for synthetic.actors: face crops separate the emotions across actors, a clip is a pure
function of its seed, and a label outside the classes is refused."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from synthetic.actors import make_actor, render_actor_clip
from synthetic.emotions import EMOTIONS


def test_face_crops_separate_the_emotions_across_actors():
    """Nearest-centroid on 40 px grey face crops (head box + 25 % margin, what the face stream
    sees at demo size): centroids from three actors classify a fourth and fifth actor's faces."""
    def crop(label: str, actor: int) -> np.ndarray:
        frames, _, record = render_actor_clip(label=label, actor=make_actor(actor, 0), rng=np.random.default_rng(actor),
                                              duration=0.2, fps=5, with_audio=False)
        x0, y0, x1, y1 = record["faces"][0]["box"]
        side = 1.25 * max(x1 - x0, y1 - y0)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        patch = frames[0][max(0, int(cy - side / 2)):int(cy + side / 2), max(0, int(cx - side / 2)):int(cx + side / 2)]
        grey = cv2.cvtColor(cv2.resize(patch, (40, 40), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
        grey = grey.astype(np.float32)
        return ((grey - grey.mean()) / (grey.std() + 1e-6)).ravel()

    centroids = {e: np.mean([crop(e, a) for a in (1, 2, 3)], axis=0) for e in EMOTIONS}
    right = [min(centroids, key=lambda c: np.linalg.norm(crop(e, a) - centroids[c])) == e
             for e in EMOTIONS for a in (7, 11)]
    assert np.mean(right) >= 0.8, right


def test_same_seed_renders_the_same_clip_and_another_seed_differs():
    def render(seed: int):
        return render_actor_clip(label="sad", actor=make_actor(5, 0), rng=np.random.default_rng(seed), duration=0.4,
                                 fps=5, width=96, height=64)
    (f1, a1, r1), (f2, a2, r2), (f3, _, _) = render(1), render(1), render(2)
    assert np.array_equal(f1, f2) and np.array_equal(a1, a2) and r1 == r2
    assert not np.array_equal(f1, f3)


def test_a_label_outside_the_classes_is_refused():
    with pytest.raises(ValueError, match="not one of the classes"):
        render_actor_clip(label="joy", actor=make_actor(1, 0), rng=np.random.default_rng(0))
