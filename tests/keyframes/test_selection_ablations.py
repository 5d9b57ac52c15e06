"""The rule ablations (``mode: no_rule1`` ... ``no_rule5``, the default with one rule switched
off, run by the same code): on a constructed clip where a rule decides, switching it off changes
the selection, by the mechanism the rule stands for; and on a peak clip (fewer than N candidates
above the threshold) switching off rule 1, 3 or 4 changes nothing, because rule 5 takes every
above-threshold candidate whatever those rules kept (the finding of issue 27, kept visible here).

The clips are test_selection.py's ``BASE`` (every candidate above 0.5, an emotional second in
[2, 3) s, rule 4's picks 9, 22, 35, 87, 95 by their larger inter-frame difference) and variants.
"""
from pathlib import Path

import pytest

from keyframes.selection import ABLATIONS, MODES
from tests.conftest import load_helper

ts = load_helper(Path(__file__).with_name("test_selection.py"), "tests_keyframes_test_selection")


def test_every_ablation_is_a_mode():
    assert ABLATIONS == tuple(f"no_rule{k}" for k in range(1, 6)) and set(ABLATIONS) <= set(MODES)
    assert ts.select(mode="no_rule3").mode == "no_rule3"


def test_rule1_off_lets_the_peak_second_crowd_out_the_other_seconds():
    default, off = ts.select(), ts.select(mode="no_rule1")
    assert set(default.indices) != set(off.indices)
    # with rule 1 each second sends its 4 best; without it the 10 peak frames take 10 of the 16
    # places in the slots, so the slot picks of seconds 1 and 3 (frames 35, 95) are not entrants
    assert {ts.reason_of(default, 35), ts.reason_of(default, 95)} == {"slot"}
    assert not {35, 95} & set(off.indices)
    assert default.counts["per_second_kept"] == 20 and off.counts["per_second_kept"] == 48


def test_rule2_off_keeps_frames_below_the_threshold_in_the_competition():
    default, off = ts.select(threshold=0.9), ts.select(threshold=0.9, mode="no_rule2")
    assert set(default.indices) != set(off.indices)
    # with the threshold only the 10 peak frames are above it and the rest are fill_below picks;
    # without it nothing is below, the slots hold every part of the clip
    assert default.picks_by_reason().get("fill_below") == 6 and "fill_below" not in off.picks_by_reason()
    # (above_threshold counts the candidates rule 1 kept: 4 of the peak second, all 20 without rule 2)
    assert off.counts["above_threshold"] == 20 and default.counts["above_threshold"] == 4


def test_rule3_off_lets_the_first_survivors_in_time_into_the_slots():
    # second 0 scores lowest of the kept, and its frame 4 has the largest difference of the clip
    sec0 = {i: ts.base_score(i, t) - 0.12 for i, t in ts.FRAMES if t < 1}
    default, off = ts.select(sec0, {4: 50.0}), ts.select(sec0, {4: 50.0}, mode="no_rule3")
    assert set(default.indices) != set(off.indices)
    # ranked, second 0 is out of the 16 entrants and its slot is filled (5a); unranked, the first
    # 16 in time enter and rule 4 takes frame 4 for its difference
    assert 4 not in default.indices and ts.reason_of(off, 4) == "slot"


def test_rule4_off_gives_up_the_spread_over_the_clip():
    default, off = ts.select(), ts.select(mode="no_rule4")
    assert set(default.indices) != set(off.indices)
    assert off.picks_by_reason() == {"top_up_rank": 16}  # no slots: the 16 best-ranked frames
    # the high-difference slot picks of seconds 1, 3 and the last slot's filler are gone
    assert not {35, 87, 95, 121} & set(off.indices)


def test_rule5_off_fills_uniformly_instead_of_with_the_best_frames():
    default, off = ts.select(), ts.select(mode="no_rule5")
    assert set(default.indices) != set(off.indices)
    peak = set(ts.PEAK)
    assert peak <= set(default.indices)  # the top-up takes every peak frame
    assert len(peak & set(off.indices)) < len(peak)
    assert "fill_uniform" in off.picks_by_reason() and "top_up_rank" not in off.picks_by_reason()
    assert {k.rule for k in off.keyframes if k.reason == "fill_uniform"} == {None}


@pytest.mark.parametrize("rule", [1, 3, 4])
def test_on_a_peak_clip_rules_1_3_and_4_change_nothing(rule):
    # threshold 0.9: only the 10 peak frames pass; rule 5 takes all of them whatever rules 1, 3
    # and 4 kept, and the below-threshold fill depends only on where those picks are
    default, off = ts.select(threshold=0.9), ts.select(threshold=0.9, mode=f"no_rule{rule}")
    assert default.indices == off.indices


@pytest.mark.parametrize("rule", [2, 5])
def test_on_a_peak_clip_rules_2_and_5_decide(rule):
    default, off = ts.select(threshold=0.9), ts.select(threshold=0.9, mode=f"no_rule{rule}")
    assert default.indices != off.indices
