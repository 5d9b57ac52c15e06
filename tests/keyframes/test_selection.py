"""The default keyframe selection (every rule acts), the uniform baseline and the sentiment
intensities, on generated 5 s, 25 fps candidate sets at N = 16: the 48 frames the extractor
samples (evenly spaced, 6 per rule-4 slot of 0.625 s), with scores and inter-frame differences
set by each test.

The per-rule tests start from one clip, ``BASE``, with an emotional second: in [2, 3) s the 10
candidates score 0.95-0.995; elsewhere each second has four candidates 0.05 above the rest of
that second (second 0: 0.79, second 1: 0.77, second 3: 0.73, second 4: 0.69; frame 20: 0.785),
which rule 1 keeps, and every difference is 1 except frames 9, 22, 35, 87 and 95 (5). With the
threshold at 0.5 everything is above it. Rule 1 keeps the 4 best of each second (20), rule 3
lets the 16 best of them into the 8 slots (second 4's are ranked out), rule 4 picks frames 9,
22, 35, 87, 95 and two peak frames, rule 5 fills slot 7 (no entrant) with its best frame 121 and
tops up with the 8 remaining peak frames. Each test changes one rule's input and checks which
frames move.
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
SLOT = DURATION / 8          # rule 4's slots
SUB_SLOT = DURATION / N      # keyframe-sized sub-slots (uniform's spacing)
SLOTS = {q: [i for i, t in FRAMES if int(t / SLOT) == q] for q in range(8)}
CENTRES = [min(FRAMES, key=lambda f: abs(f[1] - (j + 0.5) * SUB_SLOT))[0] for j in range(N)]

SECOND_BASE = {0: 0.74, 1: 0.72, 3: 0.68, 4: 0.64}
KEPT_BONUS = {4: 0.05, 9: 0.05, 20: 0.045, 22: 0.05, 27: 0.05, 30: 0.05, 35: 0.05, 43: 0.05,
              82: 0.05, 87: 0.05, 95: 0.05, 98: 0.05, 103: 0.05, 108: 0.05, 113: 0.05, 121: 0.05}
PEAK = {51: 0.96, 53: 0.99, 56: 0.97, 59: 0.95, 61: 0.98, 64: 0.955, 66: 0.985, 69: 0.965, 72: 0.975, 74: 0.995}
BASE_DIFF = {9: 5.0, 22: 5.0, 35: 5.0, 87: 5.0, 95: 5.0}
BASE_PICKS = sorted([9, 22, 35, 87, 95, 121, *PEAK])


def base_score(index: int, time: float) -> float:
    return PEAK.get(index) or SECOND_BASE[int(time)] + KEPT_BONUS.get(index, 0.0)


def select(scores=None, diffs=None, *, threshold=0.5, mode="default", num_slots=None):
    scores, diffs = dict(scores or {}), dict(diffs or {})
    cands = cs.make_candidates(FRAMES, score=lambda i, t: scores.get(i, base_score(i, t)),
                               diff=lambda i, t: diffs.get(i, BASE_DIFF.get(i, 1.0)))
    return select_keyframes(cands, duration=DURATION, num_keyframes=N, threshold=threshold, mode=mode,
                            num_slots=num_slots)


def moved(before, after):
    """(frames that left, frames that came in)."""
    return sorted(set(before.indices) - set(after.indices)), sorted(set(after.indices) - set(before.indices))


def reason_of(sel, index):
    return next(k.reason for k in sel.keyframes if k.index == index)


def test_extractor_samples_six_candidates_per_slot():
    assert len(FRAMES) == 48 and all(len(SLOTS[q]) == 6 for q in range(8))
    assert SLOTS[0] == [1, 4, 7, 9, 12, 14]
    assert [i for i, t in FRAMES if 2.0 <= t < 3.0] == sorted(PEAK)


def test_base_clip():
    sel = select()
    assert sel.indices == BASE_PICKS
    assert [reason_of(sel, i) for i in (9, 22, 35, 87, 95)] == ["slot"] * 5
    assert reason_of(sel, 121) == "fill_above"
    assert sel.counts == {"candidates": 48, "per_second_k": 4, "per_second_kept": 20, "above_threshold": 20,
                          "entered_slots": 16, "slots": 8, "slot": 7, "fill_above": 1, "top_up_rank": 8,
                          "fill_below": 0, "repeated": 0}
    assert {k.reason: k.rule for k in sel.keyframes} == {"slot": 4, "fill_above": 5, "top_up_rank": 5}


def test_rule1_a_frame_outside_its_seconds_k_best_never_reaches_the_slots():
    # Frame 14 (slot 0) has the largest difference in its slot, and at 0.78 it outranks every
    # frame kept in seconds 1-4, but second 0 keeps 4, 9, 22 (0.79) and 20 (0.785): rule 1
    # drops it, and slot 0 goes to frame 9.
    left_out = select({14: 0.78}, {14: 10.0})
    assert left_out.indices == BASE_PICKS
    # At 0.788 it is among second 0's four best (frame 20, not a keyframe, drops out) and wins.
    kept = select({14: 0.788}, {14: 10.0})
    assert moved(left_out, kept) == ([9], [14])
    assert reason_of(kept, 14) == "slot"


def test_rule2_candidates_below_the_threshold_lose_their_slots():
    sel = select(threshold=0.9)
    # Only the emotional second is above 0.9: its 10 frames stay; the other six keyframes are
    # no longer chosen by difference or score but as the frames nearest the emptiest sub-slots
    # (0, 2, 4, 10, 12, 14), the best-scoring in each.
    assert moved(select(), sel) == ([9, 87, 95, 121], [4, 82, 98, 113])
    assert set(PEAK) <= set(sel.indices)
    assert [reason_of(sel, i) for i in (4, 22, 35, 82, 98, 113)] == ["fill_below"] * 6
    assert sel.counts["above_threshold"] == 4 and sel.counts["fill_below"] == 6


def test_rule3_the_ranking_decides_which_candidates_enter_the_slots():
    # Frame 108 (slot 6) has the largest difference in its slot and is among second 4's four
    # best, but 16 candidates rank above it: it does not enter, slot 6 goes to frame 95.
    ranked_out = select(diffs={108: 9.0})
    assert ranked_out.indices == BASE_PICKS
    # Ranked higher (0.80; still one of second 4's four best), it enters, pushing out frame 98
    # (the 16th, not a keyframe), and wins slot 6 on difference.
    ranked_in = select({108: 0.80}, {108: 9.0})
    assert moved(ranked_out, ranked_in) == ([95], [108])
    assert reason_of(ranked_in, 108) == "slot"
    assert ranked_in.counts["per_second_kept"] == ranked_out.counts["per_second_kept"] == 20


def test_rule4_the_largest_inter_frame_difference_wins_the_slot():
    # slot 0's entrants are frames 4 and 9 (both 0.79): the larger difference wins; same scores,
    # so rules 1-3 are unchanged, and the loser does not come back (rule 5 tops up with peak frames)
    sel = select(diffs={4: 8.0})
    assert moved(select(), sel) == ([9], [4])
    assert reason_of(sel, 4) == "slot"


def test_rule5_tops_up_by_rank_and_fills_empty_slots_nearest_in_time():
    # The top-up takes the 8 best remaining candidates: the peak frames rule 1 dropped. A peak
    # frame scoring 0.75 loses its place to the best remaining frame elsewhere, 4 (0.79).
    demoted = select({53: 0.75})
    assert moved(select(), demoted) == ([53], [4])
    assert reason_of(demoted, 4) == "top_up_rank"
    # Slot 7 has no entrant; it takes its best frame, 121. With nothing above the threshold in
    # slot 7, it takes the nearest above-threshold frame outside it (108, t = 4.32 s, slot 6)
    # before any below-threshold frame inside it.
    emptied = select({i: 0.4 for i in SLOTS[7]})
    assert moved(select(), emptied) == ([121], [108])
    assert reason_of(emptied, 108) == "fill_above" and emptied.counts["fill_below"] == 0


def test_more_slots_spread_more():
    # 16 slots (one per keyframe): each slot's own frame instead of the peak top-up
    sel = select(num_slots=16)
    assert sel.counts["top_up_rank"] == 0 and sum(1 for i in sel.indices if i in PEAK) == 4


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
    # the other 11 fill the keyframe-sized sub-slots left empty, one each
    assert sorted(int(k.time / SUB_SLOT) for k in sel.keyframes) == list(range(N))
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
    # spread over the 12 empty sub-slots: every other one, 3 before and 3 after the emotional second
    assert sorted(int(k.time / SUB_SLOT) for k in rest) == [0, 2, 4, 10, 12, 14]


def test_sparse_clip_with_more_emotional_frames_than_keyframes_uses_only_them():
    emotional = [i for i, t in FRAMES if 1.5 <= t < 4.0]
    assert len(emotional) > N
    sel = select({i: (0.7 if i in emotional else 0.45) for i, _ in FRAMES})
    assert set(sel.indices) <= set(emotional)
    assert sel.counts["fill_below"] == 0


def test_uniform_takes_evenly_spaced_frames_whatever_the_scores():
    sel = select(diffs={9: 50.0}, mode="uniform")
    assert sel.indices == CENTRES == [4, 12, 20, 27, 35, 43, 51, 59, 66, 74, 82, 90, 98, 105, 113, 121]
    gaps = [b.time - a.time for a, b in zip(sel.keyframes, sel.keyframes[1:])]
    assert max(abs(g - SUB_SLOT) for g in gaps) <= 1.0 / FPS
    assert all(k.reason == "uniform" and k.rule is None for k in sel.keyframes)
    assert select({i: 0.34 for i, _ in FRAMES}, mode="uniform").indices == CENTRES


def test_uniform_on_a_short_clip_repeats_frames_evenly():
    cands = [Candidate(index=i, time=i / 25, probs=cs.probs_with(0.9)) for i in range(5)]
    sel = select_keyframes(cands, duration=0.2, num_keyframes=16, mode="uniform")
    assert sel.duplicated and sorted(set(sel.indices)) == [0, 1, 2, 3, 4]
    assert sel.indices == sorted(sel.indices)


def test_the_counts_add_up_to_the_picks_by_rule():
    sel = select({53: 0.75, **{i: 0.4 for i in SLOTS[7]}}, threshold=0.7)
    picks = sum(sel.counts[r] for r in ("slot", "fill_above", "top_up_rank", "fill_below"))
    assert picks == N
    assert sel.picks_by_rule() == {"4": sel.counts["slot"], "5": N - sel.counts["slot"]}
    assert sel.picks_by_reason() == {r: sel.counts[r] for r in ("slot", "fill_above", "top_up_rank", "fill_below")
                                     if sel.counts[r]}


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
    # max_prob: both halves above 0.6; one keyframe per slot, and the top-up by rank goes to the
    # confident Neutral half (0.96 > 0.62). non_neutral: 0.04 vs 0.8, the emotional half's 24
    # candidates supply all 16
    assert len(set(by_max.indices) & neutral_half) == 12
    assert not set(by_non_neutral.indices) & neutral_half
    assert by_non_neutral.keyframes[0].score == pytest.approx(0.8)
