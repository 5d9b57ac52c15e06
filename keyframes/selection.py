"""The sentiment-aware keyframe algorithm, as one small pure function.

Input: the scored candidate frames of one clip. Output: ``num_keyframes`` frames in temporal
order. The rules, in order (numbers refer to the method's description):

1. a candidate's *score* is its maximum class probability (emotional intensity); the per-class
   probabilities travel with it;
2. per second of video (``floor(time)``), only the highest-scoring candidate is kept;
3. kept candidates scoring below ``threshold`` are dropped;
4. the rest are ranked by score;
5. the clip ``[0, duration)`` is split into ``num_keyframes`` equal time slots; in each slot, among
   the ranked candidates falling in it, the one with the largest inter-frame difference to its
   predecessor frame is chosen (ties: higher score, then earlier);
6. while fewer than ``num_keyframes`` are chosen, top up: first with the best remaining
   candidates scoring at least ``threshold`` (highest score first), then with the remaining
   candidates closest to evenly spaced times; a frame is never used twice unless the clip has
   fewer candidate frames than ``num_keyframes``, in which case frames are repeated evenly and
   ``duplicated`` is set;
7. the keyframes are returned in temporal order.

Ties everywhere break towards the earlier frame, so the result is deterministic.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Candidate:
    """One scored frame: decode-order ``index``, ``time`` in seconds from the clip start,
    per-class ``probs`` (C,) summing to 1, and ``diff``, the mean absolute grey-level difference
    (0-255 scale) to the frame just before it in the video."""

    index: int
    time: float
    probs: tuple[float, ...]
    diff: float = 0.0

    @property
    def score(self) -> float:
        return float(max(self.probs))


@dataclass(frozen=True)
class Keyframe:
    """A chosen frame and why it was chosen (``reason``: 'slot', 'top_up_score', 'top_up_even',
    'repeat')."""

    index: int
    time: float
    score: float
    probs: tuple[float, ...]
    reason: str


@dataclass
class Selection:
    keyframes: list[Keyframe]
    duplicated: bool = False
    counts: dict = field(default_factory=dict)

    @property
    def indices(self) -> list[int]:
        return [k.index for k in self.keyframes]


def select_keyframes(
    candidates: Sequence[Candidate],
    *,
    duration: float,
    num_keyframes: int = 16,
    threshold: float = 0.5,
) -> Selection:
    """Choose ``num_keyframes`` keyframes from scored ``candidates`` (see the module docstring).

    ``duration`` is the clip length in seconds (slots are ``duration / num_keyframes`` long).
    Raises ``ValueError`` when there are no candidates or ``num_keyframes < 1``.
    """
    if num_keyframes < 1:
        raise ValueError(f"num_keyframes must be >= 1, got {num_keyframes}")
    if not candidates:
        raise ValueError("no candidate frames to select keyframes from")
    # One entry per frame index (a frame sampled twice counts once).
    unique = {c.index: c for c in sorted(candidates, key=lambda c: c.index)}
    pool = sorted(unique.values(), key=lambda c: (c.time, c.index))
    duration = max(float(duration), pool[-1].time + 1e-6)

    # Rules 2-4: per-second maximum, threshold, rank.
    best_per_second: dict[int, Candidate] = {}
    for c in pool:
        second = int(math.floor(c.time))
        cur = best_per_second.get(second)
        if cur is None or c.score > cur.score:
            best_per_second[second] = c
    ranked = sorted(
        (c for c in best_per_second.values() if c.score >= threshold),
        key=lambda c: (-c.score, c.time, c.index),
    )

    # Rule 5: one frame per time slot, the largest inter-frame difference among its candidates.
    slot_len = duration / num_keyframes
    chosen: dict[int, tuple[Candidate, str]] = {}
    by_slot: dict[int, list[Candidate]] = {}
    for c in ranked:
        slot = min(int(c.time / slot_len), num_keyframes - 1)
        by_slot.setdefault(slot, []).append(c)
    for slot in sorted(by_slot):
        # ``ranked`` order breaks ties in difference: higher score, then earlier.
        best = max(by_slot[slot], key=lambda c: (c.diff, -ranked.index(c)))
        chosen[best.index] = (best, "slot")
    n_slot = len(chosen)

    # Rule 6a: best remaining candidates above the threshold.
    remaining = [c for c in pool if c.index not in chosen]
    for c in sorted((c for c in remaining if c.score >= threshold), key=lambda c: (-c.score, c.time, c.index)):
        if len(chosen) >= num_keyframes:
            break
        chosen[c.index] = (c, "top_up_score")
    n_score = len(chosen) - n_slot

    # Rule 6b: remaining candidates nearest to evenly spaced times.
    remaining = [c for c in pool if c.index not in chosen]
    missing = num_keyframes - len(chosen)
    if missing > 0 and remaining:
        targets = [(j + 0.5) * duration / missing for j in range(missing)]
        for t in targets:
            if not remaining:
                break
            nearest = min(remaining, key=lambda c: (abs(c.time - t), c.time))
            chosen[nearest.index] = (nearest, "top_up_even")
            remaining.remove(nearest)
    n_even = len(chosen) - n_slot - n_score

    ordered = sorted(chosen.values(), key=lambda pair: (pair[0].time, pair[0].index))
    keyframes = [Keyframe(c.index, c.time, c.score, tuple(c.probs), reason) for c, reason in ordered]

    # Rule 6c: fewer distinct frames than keyframes -> repeat evenly, and say so.
    duplicated = False
    if len(keyframes) < num_keyframes:
        duplicated = True
        picks = np.floor(np.linspace(0, len(keyframes), num_keyframes, endpoint=False)).astype(int)
        base = keyframes
        keyframes = [
            k if i == 0 or picks[i] != picks[i - 1] else Keyframe(k.index, k.time, k.score, k.probs, "repeat")
            for i, k in ((i, base[p]) for i, p in enumerate(picks))
        ]

    return Selection(
        keyframes=keyframes,
        duplicated=duplicated,
        counts={
            "candidates": len(pool),
            "per_second_kept": len(best_per_second),
            "above_threshold": len(ranked),
            "slot": n_slot,
            "top_up_score": n_score,
            "top_up_even": n_even,
            "repeated": num_keyframes - len({k.index for k in keyframes}) if duplicated else 0,
        },
    )
