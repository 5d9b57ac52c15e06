"""Work shared by overlapping live windows under a budget (media.reuse.ClipReuse.per_frame_nearest):
which frames are computed, which borrow, and from where."""
from __future__ import annotations

import pytest

from media.reuse import ClipReuse, ReuseStore


def run(store: ReuseStore, ids: list[int], *, budget: int | None, within: float = 0.5, fps: float = 10.0):
    """Ask for every frame of a clip of source frames ``ids`` (frame i at i / fps s); the result
    of frame i is ``i``. Returns (results, borrowed, ids computed)."""
    reuse = ClipReuse(store=store, frame_ids=ids, start=ids[0] / fps, budget=budget, borrow_within_s=within)
    computed: list[int] = []

    def compute(positions: list[int]) -> list[int]:
        computed.extend(ids[p] for p in positions)
        return [ids[p] for p in positions]

    indices = list(range(len(ids)))
    results, borrowed = reuse.per_frame_nearest("kind", indices, [i / fps for i in indices], compute)
    return results, borrowed, computed


def test_within_budget_the_farthest_frames_are_computed_and_the_rest_borrow_the_nearest():
    results, borrowed, computed = run(ReuseStore(), list(range(10)), budget=2)
    # nothing known: the earliest first, then the farthest from it; every other frame is then
    # within 0.5 s of one of them and borrows the nearest (ties to the earlier)
    assert computed == [0, 9]
    assert results == [0, 0, 0, 0, 0, 9, 9, 9, 9, 9]
    assert borrowed == [False] + [True] * 8 + [False]


def test_a_frame_too_far_from_any_result_is_computed_beyond_the_budget():
    results, borrowed, computed = run(ReuseStore(), list(range(10)), budget=2, within=0.2)
    assert len(computed) == 3 and {0, 9} <= set(computed)
    for i, (r, b) in enumerate(zip(results, borrowed)):
        assert b == (i not in computed)
        assert abs(r - i) / 10.0 <= 0.2 + 1e-9   # borrowed from a frame at most 0.2 s away


def test_later_clips_reuse_what_was_computed_but_not_what_was_borrowed():
    store = ReuseStore()
    run(store, list(range(10)), budget=2)
    # the next window overlaps frames 5..9: frame 9 is stored, 5..8 only borrowed before
    results, borrowed, computed = run(store, list(range(5, 15)), budget=2)
    assert 9 not in computed and len(computed) == 2
    assert results[4] == 9 and not borrowed[4]
    assert ("kind", 9) in store and ("kind", 6) not in store


def test_without_a_budget_every_frame_is_computed_once():
    results, borrowed, computed = run(ReuseStore(), list(range(10)), budget=None)
    assert computed == list(range(10)) and results == list(range(10)) and not any(borrowed)


@pytest.mark.parametrize("budget", [1, 3])
def test_the_budget_bounds_the_new_work_when_results_are_near(budget):
    store = ReuseStore()
    run(store, list(range(30)), budget=30)          # a first window computed every frame
    # the next one: frames 30..34 are new, all within 0.5 s of frame 29's result
    _, borrowed, computed = run(store, list(range(25, 35)), budget=budget)
    assert len(computed) == budget and 34 in computed   # the farthest from what is known first
    assert sum(not b for b in borrowed) == 5 + budget
