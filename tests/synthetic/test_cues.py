"""Tests for synthetic.cues: the cue ceiling counts agreeing cues, missing modalities and fair ties."""
from __future__ import annotations

import json

import pytest

from synthetic.cues import CLASSES, MODALITIES, cue_ceiling
from synthetic.group import generate_dataset

POS, NEU, NEG = CLASSES


def test_cue_ceiling_counts_agreeing_cues_and_fair_ties():
    def clip(cls, visual, face, flow, audio, has_audio=True, n_faces=2):
        return {"class": cls, "shown": {"visual": visual, "face": face, "flow": flow, "audio": audio},
                "has_audio": has_audio, "n_faces": n_faces}
    meta = {"classes": list(CLASSES), "modalities": list(MODALITIES), "params": {"cue_noise": 0.3},
            "clips": {"Val": [
                clip(POS, POS, POS, NEU, POS),                    # 3 of 4 agree: right
                clip(NEU, NEU, NEU, NEG, NEG),                    # 2 vs 2: a fair coin, 0.5
                clip(NEG, POS, POS, NEG, NEG, has_audio=False),   # audio missing: 2 POS vs 1 NEG: wrong
                clip(NEG, NEG, POS, NEG, POS, n_faces=0),         # face missing: 2 NEG vs 1 POS: right
            ]}}
    out = cue_ceiling(meta, "Val")
    assert out["clips"] == 4
    assert out["fused"] == pytest.approx((1 + 0.5 + 0 + 1) / 4)
    assert out["modalities"]["visual"] == pytest.approx(3 / 4)
    assert out["modalities"]["audio"] == pytest.approx(1 / 3)   # over the clips that have audio
    assert out["modalities"]["face"] == pytest.approx(2 / 3)


def test_cue_ceiling_of_a_generated_set_matches_its_noise(tmp_path):
    """With cue_noise 0 every modality shows the class, so every ceiling is 1."""
    generate_dataset(tmp_path, n_train=0, n_val=3, seed=1, cue_noise=0.0, duration=1.0, width=96, height=64,
                     n_stills_per_class=0)
    out = cue_ceiling(json.loads((tmp_path / "synthetic.json").read_text()), "Val")
    assert out["fused"] == 1.0 and all(v == 1.0 for v in out["modalities"].values())
