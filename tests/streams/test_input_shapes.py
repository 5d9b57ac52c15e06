"""Each stream spec's ``input_shape`` and ``input_dtype`` are what its ``load_input`` gives, for
its full and tiny recipes' ``data:`` settings, whatever the stored array's size (the memory
estimate builds its batch from them, without a cache)."""
from __future__ import annotations

import numpy as np
import pytest

from core.config import load_config
from streams.specs import STREAM_SPECS

#: a stored array of each stream at sizes real preprocessing writes (16:9 sources), and its meta
STORED = {
    "visual": (lambda: np.zeros((16, 256, 455, 3), np.uint8), {}),
    "face": (lambda: np.zeros((16, 112, 112, 3), np.uint8), {"n_faces": 1}),
    "flow": (lambda: np.full((8, 2, 256, 455), 128, np.uint8), {"flow": {"bound": 20.0}}),
    "audio": (lambda: np.random.default_rng(0).normal(size=(128, 157)).astype(np.float16), {"has_audio": True}),
    "speech": (lambda: np.random.default_rng(0).normal(size=90000).astype(np.float16) * 0.1, {"has_audio": True}),
}


@pytest.mark.parametrize("tiny", [False, True])
@pytest.mark.parametrize("stream", list(STREAM_SPECS))
def test_input_shape_is_what_load_input_gives(stream, tiny):
    spec = STREAM_SPECS[stream]
    settings = spec.data_settings(load_config(spec.recipe_path(tiny=tiny)).get("data"))
    make, meta = STORED[stream]
    for rng in (None, np.random.default_rng(0)):  # the evaluation and the training view
        x = spec.load_input(make(), meta, settings, rng)
        assert tuple(x.shape) == spec.input_shape(settings) and x.dtype == spec.input_dtype()
