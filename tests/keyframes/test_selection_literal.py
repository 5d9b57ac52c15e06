"""``mode: literal``: the keyframe rules as first implemented (one candidate per second, slots
by inter-frame difference, top-up by score then evenly spaced), kept for comparison. The
hand-made cases below are that code's original tests; ``FROZEN`` holds its picks on generated
candidate sets, recorded before the default selection was rewritten."""
import functools
from pathlib import Path

import pytest

from keyframes.extraction import KeyframeSettings, candidate_times
from keyframes.selection import Candidate, select_keyframes
from tests.conftest import load_helper

select_literal = functools.partial(select_keyframes, mode="literal")
cs = load_helper(Path(__file__).with_name("candidate_sets.py"), "tests_keyframes_candidate_sets")

# (duration s, fps, seed, threshold) -> (indices, reasons: S slot, U top_up_score, E top_up_even),
# on the frames the extractor then sampled (4 fps plus 16 slot centres), random scores in
# [0.34, 1) and differences in [0, 20).
FROZEN = {
    (5.0, 25.0, 1, 0.5): ([6, 12, 19, 20, 25, 27, 35, 37, 50, 51, 59, 62, 87, 105, 113, 119],
                          "USUUUUUSUUUSSSUU"),
    (5.0, 25.0, 2, 0.5): ([4, 20, 37, 43, 50, 51, 59, 62, 66, 69, 82, 87, 90, 98, 100, 121],
                          "SUUSUSUUUUUUUUSU"),
    (5.0, 25.0, 3, 0.8): ([4, 6, 25, 37, 43, 44, 56, 69, 75, 87, 100, 106, 112, 113, 119, 121],
                          "SEEESUEESEEUEUUS"),
    (5.0, 25.0, 4, 0.95): ([4, 6, 12, 20, 31, 43, 50, 59, 66, 75, 87, 94, 100, 105, 112, 121],
                           "ESEEEEEEEEEESEEE"),
    (3.0, 30.0, 5, 0.5): ([7, 8, 14, 15, 25, 30, 31, 42, 45, 52, 53, 65, 67, 75, 82, 87],
                          "SUUUUUUSUUUUUSUU"),
    (10.0, 25.0, 6, 0.7): ([8, 25, 69, 75, 81, 86, 100, 133, 148, 164, 187, 194, 200, 211, 237, 244],
                           "SSSUUSSSUSSUUSSU"),
}
REASONS = {"S": "slot", "U": "top_up_score", "E": "top_up_even"}


@pytest.mark.parametrize("case", sorted(FROZEN))
def test_reproduces_the_picks_of_the_original_code(case):
    duration, fps, seed, threshold = case
    settings = KeyframeSettings(candidate_fps=4.0, num_candidates=16, num_keyframes=16)
    frames = cs.candidate_frames(candidate_times(duration, settings), fps=fps, duration=duration)
    sel = select_literal(cs.random_candidates(frames, seed), duration=duration, num_keyframes=16,
                           threshold=threshold)
    indices, reasons = FROZEN[case]
    assert sel.indices == indices
    assert [k.reason for k in sel.keyframes] == [REASONS[r] for r in reasons]


def cand(index, time, score, diff=0.0, n_classes=3):
    rest = (1.0 - score) / (n_classes - 1)
    return Candidate(index=index, time=time, probs=(score,) + (rest,) * (n_classes - 1), diff=diff)


def test_score_is_max_probability_and_probs_travel():
    c = Candidate(index=0, time=0.0, probs=(0.1, 0.7, 0.2))
    assert c.score == pytest.approx(0.7)
    sel = select_literal([c], duration=1.0, num_keyframes=1, threshold=0.5)
    assert sel.keyframes[0].probs == (0.1, 0.7, 0.2)
    assert sel.keyframes[0].score == pytest.approx(0.7)


def test_per_second_maximum_wins_the_slot():
    # two candidates in second 0, one slot covering it: the higher score is the per-second max
    cands = [cand(0, 0.1, 0.6, diff=50.0), cand(5, 0.5, 0.9, diff=1.0)]
    sel = select_literal(cands, duration=1.0, num_keyframes=1, threshold=0.5)
    assert sel.indices == [5]
    assert sel.keyframes[0].reason == "slot"
    assert sel.counts["per_second_kept"] == 1


def test_threshold_drops_low_scores_from_slots():
    cands = [cand(0, 0.2, 0.4, diff=99.0), cand(10, 1.2, 0.8, diff=1.0)]
    sel = select_literal(cands, duration=2.0, num_keyframes=2, threshold=0.5)
    reasons = {k.index: k.reason for k in sel.keyframes}
    assert reasons[10] == "slot"
    # the low-scoring frame is only used as an evenly-spaced top-up, never chosen for its slot
    assert reasons[0] == "top_up_even"
    assert sel.counts["above_threshold"] == 1


def test_slot_choice_uses_largest_frame_difference():
    # 4 s clip, 2 slots of 2 s; slot 0 holds the per-second maxima of seconds 0 and 1
    cands = [cand(0, 0.5, 0.9, diff=2.0), cand(30, 1.5, 0.7, diff=40.0),
             cand(60, 2.5, 0.8, diff=5.0), cand(90, 3.5, 0.95, diff=1.0)]
    sel = select_literal(cands, duration=4.0, num_keyframes=2, threshold=0.5)
    assert sel.indices == [30, 60]  # largest diff in each slot, not the highest score
    assert [k.reason for k in sel.keyframes] == ["slot", "slot"]


def test_top_up_prefers_best_remaining_then_evenly_spaced():
    # 1 s clip: one per-second max -> one slot pick; top-up from the rest
    cands = [cand(i, i / 10, s) for i, s in enumerate([0.9, 0.3, 0.8, 0.2, 0.7, 0.1, 0.35, 0.2, 0.3, 0.25])]
    sel = select_literal(cands, duration=1.0, num_keyframes=5, threshold=0.5)
    reasons = {k.index: k.reason for k in sel.keyframes}
    assert reasons[0] == "slot"
    assert reasons[2] == "top_up_score" and reasons[4] == "top_up_score"
    assert sum(r == "top_up_even" for r in reasons.values()) == 2
    assert len(set(sel.indices)) == 5 and not sel.duplicated


def test_output_in_temporal_order_without_duplicates():
    cands = [cand(i, i / 25, 0.5 + 0.4 * ((i * 7) % 11) / 10, diff=(i * 13) % 17) for i in range(125)]
    sel = select_literal(cands, duration=5.0, num_keyframes=16, threshold=0.6)
    times = [k.time for k in sel.keyframes]
    assert times == sorted(times)
    assert len(sel.keyframes) == 16 and len(set(sel.indices)) == 16
    assert not sel.duplicated


def test_very_short_clip_repeats_frames_and_says_so():
    cands = [cand(i, i / 25, 0.9) for i in range(5)]
    sel = select_literal(cands, duration=0.2, num_keyframes=16, threshold=0.5)
    assert len(sel.keyframes) == 16
    assert sel.duplicated
    assert sorted(set(sel.indices)) == [0, 1, 2, 3, 4]
    assert sel.indices == sorted(sel.indices)  # still temporal order
    assert sel.counts["repeated"] == 11
    assert sum(k.reason == "repeat" for k in sel.keyframes) == 11


def test_ties_break_towards_earlier_frames():
    cands = [cand(i, i / 10, 0.8, diff=3.0) for i in range(10)]
    sel = select_literal(cands, duration=1.0, num_keyframes=1, threshold=0.5)
    assert sel.indices == [0]
    # repeated selection is deterministic
    assert select_literal(cands, duration=1.0, num_keyframes=3).indices == \
        select_literal(list(reversed(cands)), duration=1.0, num_keyframes=3).indices


def test_frame_sampled_twice_counts_once():
    c = cand(3, 0.3, 0.9)
    sel = select_literal([c, c, cand(4, 0.4, 0.8)], duration=1.0, num_keyframes=2)
    assert sorted(sel.indices) == [3, 4] and not sel.duplicated


def test_rejects_empty_input():
    with pytest.raises(ValueError, match="no candidate"):
        select_literal([], duration=1.0)
