"""The default keyframe selection (every rule acts), the uniform baseline and the sentiment
intensities, on generated 5 s, 25 fps candidate sets at N = 16: the 48 frames the extractor
samples (3 per time slot), with scores and inter-frame differences set by each test.

The per-rule tests start from one steady clip, ``BASE``: in every slot the middle candidate
scores highest (0.90 in slot 0 down to 0.825 in slot 15), the other two 0.70 and 0.72, every
difference is 1. Then ``22`` (slot 2, t = 0.88 s, beside slot 2's middle frame ``20``) gets
score 0.85 and difference 10 (``X``): it ranks among the 16 best and has the largest difference
in its slot, so rule 4 picks it. Each test changes one rule's input and checks which frames move.
"""
from collections import Counter
from pathlib import Path

import pytest

from keyframes.extraction import KeyframeSettings, candidate_times
from keyframes.selection import Candidate, create_intensity, max_probability, per_second_k, select_keyframes
from tests.conftest import load_helper

cs = load_helper(Path(__file__).with_name("candidate_sets.py"), "tests_keyframes_candidate_sets")

DURATION, FPS, N = 5.0, 25.0, 16
FRAMES = cs.candidate_frames(candidate_times(DURATION, KeyframeSettings()), fps=FPS, duration=DURATION)
SLOT = DURATION / N
# slot -> its three candidate frame indices, in time order
SLOTS = {j: [i for i, t in FRAMES if int(t / SLOT) == j] for j in range(N)}
MIDDLES = [SLOTS[j][1] for j in range(N)]
X = 22


def base_score(index: int) -> float:
    j = next(j for j, members in SLOTS.items() if index in members)
    position = SLOTS[j].index(index)
    return 0.90 - 0.005 * j if position == 1 else (0.70, None, 0.72)[position]


def select(scores=None, diffs=None, *, threshold=0.5, mode="default"):
    scores, diffs = dict(scores or {}), dict(diffs or {})
    cands = cs.make_candidates(FRAMES, score=lambda i, t: scores.get(i, base_score(i)),
                               diff=lambda i, t: diffs.get(i, 1.0))
    return select_keyframes(cands, duration=DURATION, num_keyframes=N, threshold=threshold, mode=mode)


def moved(before, after):
    """(frames that left, frames that came in)."""
    return sorted(set(before.indices) - set(after.indices)), sorted(set(after.indices) - set(before.indices))


def reason_of(sel, index):
    return next(k.reason for k in sel.keyframes if k.index == index)


def test_extractor_samples_three_candidates_per_slot():
    assert len(FRAMES) == 48 and all(len(SLOTS[j]) == 3 for j in range(N))
    assert SLOTS[2] == [17, 20, 22]


def test_steady_base_clip_takes_each_slots_best_candidate():
    sel = select()
    assert sel.indices == MIDDLES
    assert all(k.reason == "slot" and k.rule == 4 for k in sel.keyframes)
    assert sel.counts["per_second_k"] == 4 and sel.counts["per_second_kept"] == 20


def test_rule1_a_frame_outside_its_seconds_k_best_never_reaches_the_slots():
    with_x = select({X: 0.85}, {X: 10.0})
    assert reason_of(with_x, X) == "slot"
    # Slot 0's frame 7 now outscores X within second 0 (whose k = 4 best were frames 4, 12, 20
    # and X): X's score and difference are unchanged, but rule 1 no longer keeps it, so slot 2
    # goes to its middle frame 20. Frame 7 itself enters slot 0 but loses it to frame 4 (equal
    # differences, higher rank).
    crowded = select({X: 0.85, 7: 0.87}, {X: 10.0})
    assert moved(with_x, crowded) == ([X], [20])
    assert reason_of(crowded, 20) == "slot" and reason_of(crowded, 4) == "slot"


def test_rule2_a_frame_below_the_threshold_is_dropped():
    low = select({X: 0.85}, {X: 10.0}, threshold=0.5)
    high = select({X: 0.85}, {X: 10.0}, threshold=0.86)
    # X (0.85) falls below 0.86: slot 2 goes to frame 20 (0.89). Slots 9-15, whose middles score
    # 0.855 and less, keep their frames, but now as below-threshold fills.
    assert moved(low, high) == ([X], [20])
    assert high.counts["above_threshold"] == 9
    assert [reason_of(high, MIDDLES[j]) for j in range(9, 16)] == ["fill_below"] * 7


def test_rule3_the_ranking_decides_which_candidates_enter_the_slots():
    # Frame 30 (slot 3, 0.72) has the largest difference in slot 3 and is among second 1's
    # four best, but 16 candidates rank above it: it does not enter, slot 3 goes to frame 27.
    ranked_out = select({X: 0.85}, {X: 10.0, 30: 10.0})
    assert 30 not in ranked_out.indices and reason_of(ranked_out, 27) == "slot"
    # Ranked higher (0.84, still below frame 27's 0.885), it enters and wins slot 3 on difference.
    ranked_in = select({X: 0.85, 30: 0.84}, {X: 10.0, 30: 10.0})
    assert moved(ranked_out, ranked_in) == ([27], [30])
    assert reason_of(ranked_in, 30) == "slot"
    assert ranked_in.counts["per_second_kept"] == ranked_out.counts["per_second_kept"] == 20


def test_rule4_the_largest_inter_frame_difference_wins_the_slot():
    x_moves = select({X: 0.85}, {X: 10.0})
    middle_moves = select({X: 0.85}, {20: 10.0})
    # same scores, so rules 1-3 are unchanged; slot 2 holds entrants 20 (0.89) and X (0.85)
    assert moved(x_moves, middle_moves) == ([X], [20])
    assert reason_of(middle_moves, 20) == "slot"


def test_rule5_empty_slots_take_the_nearest_above_threshold_candidate():
    # X's entry pushes slot 15's middle (the lowest-ranked) out of the slots: slot 15 is filled
    # with its best-scoring candidate, 121 ...
    sel = select({X: 0.85}, {X: 10.0})
    assert reason_of(sel, 121) == "fill_above" and sel.counts["fill_above"] == 1
    # ... which a better-scoring remaining candidate in the slot replaces (its difference is not used) ...
    better = select({X: 0.85, 124: 0.826}, {X: 10.0})
    assert moved(sel, better) == ([121], [124]) and reason_of(better, 124) == "fill_above"
    # ... and with no above-threshold candidate left in slot 15 it takes the nearest one outside
    # it (slot 14's 116, t = 4.64 s) before any below-threshold frame inside it.
    emptied = select({X: 0.85, 118: 0.4, 121: 0.4, 124: 0.4}, {X: 10.0})
    assert moved(sel, emptied) == ([121], [116]) and reason_of(emptied, 116) == "fill_above"
    assert emptied.counts["fill_below"] == 0


@pytest.mark.parametrize("duration,fps", [(3.0, 25.0), (5.0, 25.0), (5.0, 30.0), (10.0, 30.0)])
def test_steady_clips_spread_over_every_quarter(duration, fps):
    """Every second holds above-threshold candidates (random scores in [0.34, 1), threshold 0.5):
    each quarter of the clip gets at least 2 of the 16 keyframes."""
    frames = cs.candidate_frames(candidate_times(duration, KeyframeSettings()), fps=fps, duration=duration)
    for seed in range(40):
        cands = cs.random_candidates(frames, seed)
        assert all(any(c.score >= 0.5 for c in cands if int(c.time) == s) for s in range(int(duration)))
        sel = select_keyframes(cands, duration=duration, num_keyframes=N, threshold=0.5)
        quarters = Counter(min(3, int(k.time / (duration / 4))) for k in sel.keyframes)
        assert min(quarters[q] for q in range(4)) >= 2, (seed, sel.indices)
        assert len(set(sel.indices)) == N


def test_steady_clip_with_one_emotional_frame_per_second_still_spreads():
    # only the first candidate of each second is above the threshold
    firsts = {min(i for i, t in FRAMES if int(t) == s) for s in range(5)}
    sel = select({i: (0.9 if i in firsts else 0.4) for i, _ in FRAMES})
    assert firsts <= set(sel.indices)
    quarters = Counter(min(3, int(k.time / (DURATION / 4))) for k in sel.keyframes)
    assert min(quarters[q] for q in range(4)) >= 2
    assert Counter(k.reason for k in sel.keyframes) == {"slot": 5, "fill_below": 11}


def test_sparse_clip_takes_the_emotional_part_first():
    # only [2, 3) s is above the threshold: 10 candidates
    emotional = [i for i, t in FRAMES if 2.0 <= t < 3.0]
    assert len(emotional) == 10
    sel = select({i: (0.6 + 0.03 * (i % 7) if i in emotional else 0.3 + 0.01 * (i % 5)) for i, _ in FRAMES})
    assert set(emotional) <= set(sel.indices)
    # the other six come from the remaining empty slots, one each, outside [2, 3)
    rest = [k for k in sel.keyframes if k.index not in emotional]
    assert len(rest) == 6 and all(k.reason == "fill_below" for k in rest)
    assert len({int(k.time / SLOT) for k in rest}) == 6


def test_sparse_clip_with_more_emotional_frames_than_keyframes_uses_only_them():
    emotional = [i for i, t in FRAMES if 1.5 <= t < 4.0]
    assert len(emotional) > N
    sel = select({i: (0.7 if i in emotional else 0.45) for i, _ in FRAMES})
    assert set(sel.indices) <= set(emotional)
    assert sel.counts["fill_below"] == 0


def test_literal_mode_crowds_where_default_spreads():
    """The motivating case of the rewrite: on the base clip with every candidate above the
    threshold, the literal reading keeps 5 per-second maxima and tops up 11 by score."""
    literal = select(mode="literal")
    assert literal.counts["slot"] == 5 and literal.counts["top_up_score"] == 11
    assert select().indices == MIDDLES


def test_uniform_takes_evenly_spaced_frames_whatever_the_scores():
    sel = select({X: 0.99}, {X: 50.0}, mode="uniform")
    assert sel.indices == MIDDLES  # the frames nearest the slot centres (j + 0.5) * 5 / 16 s
    gaps = [b.time - a.time for a, b in zip(sel.keyframes, sel.keyframes[1:])]
    assert max(abs(g - SLOT) for g in gaps) <= 1.0 / FPS
    assert all(k.reason == "uniform" and k.rule is None for k in sel.keyframes)
    assert select({i: 0.34 for i, _ in FRAMES}, mode="uniform").indices == MIDDLES


def test_uniform_on_a_short_clip_repeats_frames_evenly():
    cands = [Candidate(index=i, time=i / 25, probs=cs.probs_with(0.9)) for i in range(5)]
    sel = select_keyframes(cands, duration=0.2, num_keyframes=16, mode="uniform")
    assert sel.duplicated and sorted(set(sel.indices)) == [0, 1, 2, 3, 4]
    assert sel.indices == sorted(sel.indices)


def test_every_keyframe_names_its_rule_and_the_counts_add_up():
    sel = select({X: 0.85, 118: 0.4, 121: 0.4, 124: 0.4, 51: 0.3, 53: 0.3, 56: 0.3}, {X: 10.0})
    assert {k.reason: k.rule for k in sel.keyframes} == {"slot": 4, "fill_above": 5}
    assert sel.counts["slot"] + sel.counts["fill_above"] + sel.counts["fill_below"] == N
    assert sel.picks_by_rule() == {"4": sel.counts["slot"], "5": N - sel.counts["slot"]}


def test_short_clip_repeats_frames_and_says_so():
    cands = [Candidate(index=i, time=i / 25, probs=cs.probs_with(0.9 if i == 2 else 0.4)) for i in range(5)]
    sel = select_keyframes(cands, duration=0.2, num_keyframes=16, threshold=0.5)
    assert sel.duplicated and sel.counts["repeated"] == 11
    assert sorted(set(sel.indices)) == [0, 1, 2, 3, 4] and sel.indices == sorted(sel.indices)
    assert sum(k.reason == "repeat" for k in sel.keyframes) == 11


def test_per_second_k_keeps_at_least_n_candidates():
    assert per_second_k([Candidate(i, i / 25, (1.0,)) for i in range(125)], 16) == 4  # 5 s: 4 x 5 = 20
    assert per_second_k([Candidate(i, i / 30, (1.0,)) for i in range(90)], 16) == 6   # 3 s: 6 x 3 = 18
    assert per_second_k([Candidate(i, i / 25, (1.0,)) for i in range(10)], 16) == 10  # fewer than N: all


def test_deterministic_whatever_the_input_order():
    cands = cs.random_candidates(FRAMES, 3)
    a = select_keyframes(cands, duration=DURATION, num_keyframes=N)
    b = select_keyframes(list(reversed(cands)) + cands[:5], duration=DURATION, num_keyframes=N)
    assert a.indices == b.indices and [k.reason for k in a.keyframes] == [k.reason for k in b.keyframes]


def test_rejects_unknown_mode_and_empty_input():
    with pytest.raises(ValueError, match="mode"):
        select(mode="best")
    with pytest.raises(ValueError, match="no candidate"):
        select_keyframes([], duration=1.0)


# --- sentiment intensity ------------------------------------------------------------------------

def test_non_neutral_is_one_minus_the_neutral_probability():
    f = create_intensity(kind="non_neutral", class_names=("Positive", "Neutral", "Negative"))
    assert f((0.1, 0.7, 0.2)) == pytest.approx(0.3)
    assert create_intensity(kind="non_neutral", class_names=("neutral", "happy"))((0.25, 0.75)) == pytest.approx(0.75)
    assert create_intensity(kind="max_prob", class_names=("a", "b")) is max_probability


def test_non_neutral_without_a_neutral_class_is_a_clear_error():
    with pytest.raises(ValueError, match=r"non_neutral needs a class named 'neutral'.*'angry', 'happy'"):
        create_intensity(kind="non_neutral", class_names=("angry", "happy"))
    with pytest.raises(ValueError, match="intensity must be one of"):
        create_intensity(kind="entropy", class_names=("neutral",))


def test_a_confidently_neutral_stretch_counts_as_emotional_only_under_max_prob():
    # first half: the scorer is sure the group is Neutral; second half: moderately Positive
    def probs(t):
        return (0.02, 0.96, 0.02) if t < 2.5 else (0.62, 0.2, 0.18)
    cands = [Candidate(index=i, time=t, probs=probs(t), diff=1.0) for i, t in FRAMES]
    neutral_half = {i for i, t in FRAMES if t < 2.5}
    by_max = select_keyframes(cands, duration=DURATION, threshold=0.6)
    by_non_neutral = select_keyframes(cands, duration=DURATION, threshold=0.6,
                                      intensity=create_intensity(kind="non_neutral", class_names=cs.CLASSES))
    # max_prob: both halves above 0.6, one keyframe per slot; non_neutral: 0.04 vs 0.8, the
    # emotional half's 24 candidates supply all 16
    assert len(set(by_max.indices) & neutral_half) == 8
    assert not set(by_non_neutral.indices) & neutral_half
    assert by_non_neutral.keyframes[0].score == pytest.approx(0.8)
