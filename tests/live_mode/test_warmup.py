"""Live mode's warm-up window: frames it draws itself, with faces MTCNN finds, and no test-data
generator behind it."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from live_mode.warmup import face_frame, tone

LIVE = Path(__file__).resolve().parents[2] / "live"


@pytest.mark.parametrize("size", [(160, 90), (640, 360), (112, 112)])
def test_mtcnn_finds_the_three_drawn_faces(size):
    from streams.inputs.faces import FaceExtractor

    frame = face_frame(*size)
    assert frame.shape == (size[1], size[0], 3) and frame.dtype == np.uint8
    boxes, probs, _ = FaceExtractor().detect([frame])[0]
    assert boxes is not None and len(boxes) == 3 and min(probs) > 0.9
    centres = sorted((b[0] + b[2]) / 2 / size[0] for b in boxes)
    assert np.allclose(centres, [0.25, 0.5, 0.75], atol=0.05)


def test_the_tone_fills_the_window_at_the_audio_rate():
    audio = tone(3.0, 16000)
    assert audio.shape == (48000,) and audio.dtype == np.float32
    assert 0.19 < np.abs(audio).max() <= 0.2


def test_live_mode_imports_no_test_data_generator():
    for path in LIVE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n == "synthetic" or n.startswith("synthetic.") for n in names), path
