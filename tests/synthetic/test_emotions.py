"""Tests for synthetic.emotions: every pair of emotions differs in a bold feature and every
emotion has its own cues; unknown emotions are named."""
from __future__ import annotations

import pytest

from synthetic.emotions import EMOTIONS, EXPRESSIONS, MOTIONS, VOICES, WALL_COLOURS, canonical_emotion


def test_expression_table_separates_every_pair_of_emotions_by_a_bold_feature():
    """Any two emotions differ by at least 0.4 in one expression feature, and every emotion has
    its own wall colour, motion and voice."""
    names = list(EXPRESSIONS)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ea, eb = EXPRESSIONS[a], EXPRESSIONS[b]
            gap = max(abs(ea.mouth - eb.mouth), abs(ea.mouth_open - eb.mouth_open), abs(ea.eye_open - eb.eye_open),
                      abs(ea.brow_tilt - eb.brow_tilt), abs(ea.brow_raise - eb.brow_raise))
            assert gap >= 0.4, (a, b)
    for table in (WALL_COLOURS, MOTIONS, VOICES):
        assert len(set(table.values())) == len(EMOTIONS)


def test_canonical_emotion_knows_other_spellings_and_names_an_unknown_one():
    assert canonical_emotion(" Anger ") == "angry" and canonical_emotion("SURPRISE") == "surprised"
    with pytest.raises(ValueError, match="no synthetic cue"):
        canonical_emotion("contempt")
