"""The sentiment-aware keyframe algorithm, as small pure functions.

Input: the scored candidate frames of one clip (see :class:`Candidate`). Output: ``N``
(``num_keyframes``, 16 in the method) frames in temporal order, each with the rule that chose it.

**Sentiment intensity.** A candidate's *score* is a function of its class probabilities
(:func:`create_intensity`): ``max_prob``, the maximum class probability (how sure the scorer is
of any class, Neutral included; with C = 3 classes it lies in [1/3, 1]), or ``non_neutral``,
``1 - p(neutral)`` (the probability that the frame shows a non-neutral group emotion; in
[0, 1]). The ``threshold`` of rule 2 is a probability on that scale: at 0.5, ``max_prob`` keeps
frames whose top class is more likely than the other classes together, ``non_neutral`` keeps
frames more likely emotional than neutral.

**The method's five rules and this implementation** (``mode: default``; every rule acts on
clips of 3 to 10 s at 25-30 fps with N = 16, given the extractor's 48 evenly spaced candidates):

====  ====================================  ====================================================
rule  the method (summary)                  here
====  ====================================  ====================================================
1     best-scoring frames per second        per second of video (``floor(time)``), the ``k``
                                            best-scoring candidates are kept, with ``k`` the
                                            smallest number for which at least N candidates
                                            are kept over the clip (one per second would leave
                                            5 of 16 on a 5 s clip and starve rules 3-4).
2     discard below threshold               kept candidates scoring below ``threshold`` are
                                            dropped.
3     rank by score                         the rest are ranked by score; the N best enter the
                                            time slots of rule 4 (lower-ranked ones do not
                                            compete there).
4     per time slot, the frame with the     ``[0, duration)`` is split into S equal slots
      largest inter-frame difference        (``num_slots``, default N / 2 = 8); in each slot
                                            holding entrants, the entrant with the largest
                                            inter-frame difference to its predecessor frame
                                            is chosen (ties: higher rank).
5     top up to N                           (a) every slot left empty takes the nearest
                                            unchosen candidate above the threshold (inside the
                                            slot if any; then higher score, nearer the centre);
                                            (b) the remaining picks go to the best-ranked
                                            unchosen candidates above the threshold, whether
                                            or not rule 1 kept them; (c) when those run out,
                                            candidates below the threshold fill the
                                            keyframe-sized sub-slots (``duration / N``) that
                                            hold no pick, spread evenly, nearest in time.
                                            Frames repeat only when the clip has fewer
                                            distinct candidates than N (``duplicated``).
====  ====================================  ====================================================

What follows from it. Steady clip (every slot holds an above-threshold candidate): each of the
S slots gets a keyframe, so with S = 8 each quarter of the clip holds at least 2, and the other
N - S go to the highest scores, wherever they are. Part of the clip above the threshold: every
above-threshold candidate is used before any other frame, so the keyframes come from that part
first, and the rest spread over the remaining sub-slots. A clip whose scores are all above the
threshold but higher in one stretch (an emotional moment on a steady background) gets the S
spread keyframes plus up to N - S from that stretch. S trades these off: S = N puts one keyframe
in every sub-slot (no concentration), S = 1 leaves the choice to the scores. If above-threshold
frames are bunched (every second has some, but all near its start), rule 5a still takes them for
slots far away, so a stretch between bunches can get few keyframes.

Each :class:`Keyframe` records ``reason`` (``slot`` for rule 4; ``fill_above``,
``top_up_rank``, ``fill_below`` or ``repeat`` for rule 5) and :attr:`Keyframe.rule` its rule
number; :attr:`Selection.counts` records how many candidates each rule kept and how many picks
it made.

**Other modes.** ``literal``: the first reading, kept unchanged for comparison: one candidate
per second (the best), threshold, rank (used only to break ties), one frame per slot by
inter-frame difference, then top-up by the best remaining above-threshold candidates
(``top_up_score``) and then candidates nearest to evenly spaced times (``top_up_even``).
``uniform``: the N candidates nearest to the slot centres ``(j + 0.5) * duration / N``
(``reason`` ``uniform``), the baseline.

**Rule ablations** (:data:`ABLATIONS`, for the keyframe ablation): ``no_rule1`` ... ``no_rule5``
run ``default`` with one rule switched off, through the same code (``rule_off``):
``no_rule1``: every candidate goes on to rule 2; ``no_rule2``: nothing is dropped (every
candidate counts as above the threshold, in rule 5 too); ``no_rule3``: the first N survivors in
time enter the slots instead of the N best (rule 4's ties go to the earlier frame); ``no_rule4``:
no slots (no ``slot`` picks, no 5a), so the picks are 5b's best-ranked above-threshold candidates,
then 5c; ``no_rule5``: after rule 4's picks the rest are a uniform fill (``fill_uniform``: the
unchosen candidates of any score nearest to the sub-slots holding no pick, as 5c places them).
On a clip with fewer than N above-threshold candidates (a peak clip) 5a/5b take every one of them,
whatever rules 1, 3 and 4 kept, so switching those off changes nothing there; they decide only
when more than N candidates pass the threshold.

Ties everywhere break towards the earlier frame, so the result is deterministic.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from core.config import ConfigError

ABLATIONS = ("no_rule1", "no_rule2", "no_rule3", "no_rule4", "no_rule5")
"""``default`` with rule K switched off (see the module docstring), named ``no_ruleK``."""
MODES = ("default", "literal", "uniform") + ABLATIONS
INTENSITIES = ("max_prob", "non_neutral")

Intensity = Callable[[Sequence[float]], float]
"""Class probabilities ``(C,)`` -> a sentiment intensity in [0, 1]."""

# The method's rule behind each ``Keyframe.reason`` (``None``: not one of the five rules).
RULE_OF_REASON = {"slot": 4, "fill_above": 5, "top_up_rank": 5, "fill_below": 5, "top_up_score": 5, "top_up_even": 5,
                  "repeat": 5, "uniform": None, "fill_uniform": None}


def max_probability(probs: Sequence[float]) -> float:
    """The ``max_prob`` intensity: the largest class probability."""
    return float(max(probs))


def _non_neutral(probs: Sequence[float], *, neutral: int) -> float:
    return 1.0 - float(probs[neutral])


def create_intensity(*, kind: str, class_names: Sequence[str]) -> Intensity:
    """The intensity function ``kind`` (``max_prob`` or ``non_neutral``) for a scorer with
    ``class_names``. ``non_neutral`` is ``1 - p(neutral)``, with the class named ``neutral``
    (any case); a scorer without one raises :class:`~core.config.ConfigError` naming its classes."""
    if kind == "max_prob":
        return max_probability
    if kind == "non_neutral":
        lowered = [str(n).lower() for n in class_names]
        if "neutral" not in lowered:
            raise ConfigError(f"keyframes.intensity non_neutral needs a class named 'neutral', but the scorer's "
                             f"classes are {list(class_names)}; use intensity: max_prob for this scorer")
        return functools.partial(_non_neutral, neutral=lowered.index("neutral"))
    raise ConfigError(f"keyframes.intensity must be one of {INTENSITIES}, got {kind!r}")


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
        """The ``max_prob`` intensity (the selection may use another, see :func:`create_intensity`)."""
        return max_probability(self.probs)


@dataclass(frozen=True)
class Keyframe:
    """A chosen frame, its intensity ``score`` and why it was chosen (``reason``: ``slot``,
    ``fill_above``, ``top_up_rank``, ``fill_below``, ``repeat``; ``no_rule5``: ``fill_uniform``;
    literal mode: ``slot``, ``top_up_score``, ``top_up_even``, ``repeat``; uniform mode: ``uniform``, ``repeat``)."""

    index: int
    time: float
    score: float
    probs: tuple[float, ...]
    reason: str

    @property
    def rule(self) -> int | None:
        """The method's rule (1-5) that chose this frame; ``None`` for uniform picks."""
        return RULE_OF_REASON[self.reason]


@dataclass
class Selection:
    keyframes: list[Keyframe]
    duplicated: bool = False
    counts: dict = field(default_factory=dict)
    mode: str = "default"

    @property
    def indices(self) -> list[int]:
        return [k.index for k in self.keyframes]

    def picks_by_reason(self) -> dict[str, int]:
        """How many keyframes each ``reason`` chose (repeats counted once per repeat)."""
        out: dict[str, int] = {}
        for k in self.keyframes:
            out[k.reason] = out.get(k.reason, 0) + 1
        return out

    def picks_by_rule(self) -> dict[str, int]:
        """How many keyframes each of the method's rules chose (``"4"``, ``"5"``; ``"uniform"``)."""
        out: dict[str, int] = {}
        for k in self.keyframes:
            key = "uniform" if k.rule is None else str(k.rule)
            out[key] = out.get(key, 0) + 1
        return out


def select_keyframes(
    candidates: Sequence[Candidate],
    *,
    duration: float,
    num_keyframes: int = 16,
    threshold: float = 0.5,
    mode: str = "default",
    intensity: Intensity = max_probability,
    num_slots: int | None = None,
) -> Selection:
    """Choose ``num_keyframes`` keyframes from scored ``candidates`` (see the module docstring).

    ``duration`` is the clip length in seconds, ``threshold`` a probability on the scale of
    ``intensity`` (see :func:`create_intensity`), ``mode`` one of :data:`MODES`, ``num_slots``
    rule 4's number of time slots in default mode (``None``: ``num_keyframes // 2``; the literal
    mode always uses ``num_keyframes`` slots). Raises ``ValueError`` when there are no
    candidates, ``num_keyframes < 1``, ``num_slots`` outside ``[1, num_keyframes]`` or the mode
    is unknown.

    ``Selection.counts`` (default mode): ``candidates``, ``per_second_k`` and ``per_second_kept``
    (rule 1), ``above_threshold`` (rule 2), ``entered_slots`` (rule 3), ``slots``, then the
    picks ``slot`` (rule 4), ``fill_above``, ``top_up_rank``, ``fill_below`` and ``repeated``
    (rule 5). Literal mode:
    ``candidates``, ``per_second_kept``, ``above_threshold``, ``slot``, ``top_up_score``,
    ``top_up_even``, ``repeated``; uniform: ``candidates``, ``uniform``, ``repeated``.
    """
    if num_keyframes < 1:
        raise ValueError(f"num_keyframes must be >= 1, got {num_keyframes}")
    if not candidates:
        raise ValueError("no candidate frames to select keyframes from")
    if mode not in MODES:
        raise ValueError(f"keyframes.mode must be one of {MODES}, got {mode!r}")
    if num_slots is not None and not 1 <= num_slots <= num_keyframes:
        raise ValueError(f"num_slots must be between 1 and num_keyframes ({num_keyframes}), got {num_slots}")
    # One entry per frame index (a frame sampled twice counts once).
    unique = {c.index: c for c in sorted(candidates, key=lambda c: c.index)}
    pool = sorted(unique.values(), key=lambda c: (c.time, c.index))
    duration = max(float(duration), pool[-1].time + 1e-6)
    scores = {c.index: float(intensity(c.probs)) for c in pool}
    if mode == "literal":
        return _select_literal(pool, scores, duration=duration, num_keyframes=num_keyframes, threshold=threshold)
    if mode == "uniform":
        return _select_uniform(pool, scores, duration=duration, num_keyframes=num_keyframes)
    off = int(mode[len("no_rule"):]) if mode in ABLATIONS else None
    selection = _select_default(pool, scores, duration=duration, num_keyframes=num_keyframes,
                                threshold=-math.inf if off == 2 else threshold,
                                num_slots=num_slots or max(1, num_keyframes // 2), rule_off=off)
    selection.mode = mode
    return selection


def _keyframe(c: Candidate, scores: dict[int, float], reason: str) -> Keyframe:
    return Keyframe(c.index, c.time, scores[c.index], tuple(c.probs), reason)


def _repeat_evenly(keyframes: list[Keyframe], num_keyframes: int) -> list[Keyframe]:
    """``num_keyframes`` entries from fewer distinct ``keyframes`` (temporal order), each
    repeated about equally often; repeats after the first get ``reason`` ``repeat``."""
    picks = np.floor(np.linspace(0, len(keyframes), num_keyframes, endpoint=False)).astype(int)
    return [
        k if i == 0 or picks[i] != picks[i - 1] else Keyframe(k.index, k.time, k.score, k.probs, "repeat")
        for i, k in ((i, keyframes[p]) for i, p in enumerate(picks))
    ]


def _finish(chosen: list[tuple[Candidate, str]], scores: dict[int, float], num_keyframes: int
            ) -> tuple[list[Keyframe], bool]:
    """Temporal order, then even repeats when fewer than ``num_keyframes`` distinct frames."""
    ordered = sorted(chosen, key=lambda pair: (pair[0].time, pair[0].index))
    keyframes = [_keyframe(c, scores, reason) for c, reason in ordered]
    if len(keyframes) < num_keyframes:
        return _repeat_evenly(keyframes, num_keyframes), True
    return keyframes, False


def per_second_k(pool: Sequence[Candidate], num_keyframes: int) -> int:
    """Rule 1's ``k``: the smallest number of candidates per second (``floor(time)``) that keeps
    at least ``num_keyframes`` candidates over the clip (all of them when there are fewer)."""
    sizes: dict[int, int] = {}
    for c in pool:
        s = int(math.floor(c.time))
        sizes[s] = sizes.get(s, 0) + 1
    need = min(num_keyframes, len(pool))
    k = 1
    while sum(min(k, n) for n in sizes.values()) < need:
        k += 1
    return k


def _select_default(pool: list[Candidate], scores: dict[int, float], *, duration: float, num_keyframes: int,
                    threshold: float, num_slots: int, rule_off: int | None = None) -> Selection:
    """The default rules; ``rule_off`` (1-5) switches one off (rule 2: the caller passes a
    threshold of -inf), as the module docstring's rule ablations say."""
    n = num_keyframes
    rank_key = lambda c: (-scores[c.index], c.time, c.index)  # noqa: E731

    # Rule 1: the k best-scoring candidates of each second.
    k = per_second_k(pool, n)
    by_second: dict[int, list[Candidate]] = {}
    for c in pool:
        by_second.setdefault(int(math.floor(c.time)), []).append(c)
    kept = pool if rule_off == 1 else [c for group in by_second.values() for c in sorted(group, key=rank_key)[:k]]
    # Rule 2: threshold. Rule 3: rank; the N best enter the slots (rule 3 off: the N first in time).
    ranked = sorted((c for c in kept if scores[c.index] >= threshold),
                    key=(lambda c: (c.time, c.index)) if rule_off == 3 else rank_key)
    entrants = ranked[:n]
    rank_of = {c.index: r for r, c in enumerate(ranked)}

    # Rule 4: per slot, the entrant with the largest inter-frame difference (ties: higher rank).
    slot_len = duration / num_slots
    by_slot: dict[int, list[Candidate]] = {}
    for c in ([] if rule_off == 4 else entrants):
        by_slot.setdefault(min(int(c.time / slot_len), num_slots - 1), []).append(c)
    filled: dict[int, tuple[Candidate, str]] = {
        slot: (max(group, key=lambda c: (c.diff, -rank_of[c.index])), "slot") for slot, group in by_slot.items()}
    chosen = list(filled.values())

    used = {c.index for c, _ in chosen}
    above = [c for c in pool if c.index not in used and scores[c.index] >= threshold]
    if rule_off not in (4, 5):
        # Rule 5a: empty slots take the nearest unchosen candidate above the threshold.
        empty = [j for j in range(num_slots) if j not in filled]
        chosen += [(c, "fill_above") for c in _nearest(empty, above, scores, slot_len=slot_len).values()]
    if rule_off != 5:
        # Rule 5b: top up with the remaining above-threshold candidates, best rank first.
        used = {c.index for c, _ in chosen}
        for c in sorted((c for c in above if c.index not in used), key=rank_key)[:max(0, n - len(chosen))]:
            chosen.append((c, "top_up_rank"))
    # Rule 5c: below the threshold, the frames nearest to the emptiest parts of the clip: the
    # keyframe-sized sub-slots (duration / N) that hold no pick, spread evenly (rule 5 off: the
    # same fill from every unchosen candidate, ``fill_uniform``).
    missing = n - len(chosen)
    if missing > 0:
        used = {c.index for c, _ in chosen}
        sub_len = duration / n
        occupied = {min(int(c.time / sub_len), n - 1) for c, _ in chosen}
        empty = [j for j in range(n) if j not in occupied]  # at least ``missing`` of them
        targets = [empty[int(q)] for q in np.floor(np.linspace(0, len(empty), missing, endpoint=False))]
        below = [c for c in pool if c.index not in used]
        reason = "fill_uniform" if rule_off == 5 else "fill_below"
        chosen += [(c, reason) for c in _nearest(targets, below, scores, slot_len=sub_len).values()]

    keyframes, duplicated = _finish(chosen, scores, n)
    reasons = ("slot", "fill_above", "top_up_rank", "fill_below") + (("fill_uniform",) if rule_off == 5 else ())
    picks = {r: sum(reason == r for _, reason in chosen) for r in reasons}
    return Selection(
        keyframes=keyframes,
        duplicated=duplicated,
        mode="default",
        counts={
            "candidates": len(pool),
            "per_second_k": k,
            "per_second_kept": len(kept),
            "above_threshold": len(ranked),
            "entered_slots": len(entrants),
            "slots": num_slots,
            **picks,
            "repeated": n - len({kf.index for kf in keyframes}) if duplicated else 0,
        },
    )


def _nearest(slots: Sequence[int], tier: Sequence[Candidate], scores: dict[int, float], *,
             slot_len: float) -> dict[int, Candidate]:
    """One candidate of ``tier`` for each of ``slots`` (``[j * slot_len, (j + 1) * slot_len)``),
    as far as ``tier`` lasts: repeatedly the (slot, candidate) pair closest in time (distance
    from the candidate to the slot's interval, 0 inside it), ties to the higher score, then
    nearer the slot centre, then earlier. Returns ``{slot: candidate}``."""
    pairs = []
    for c in tier:
        for j in slots:
            start, end = j * slot_len, (j + 1) * slot_len
            gap = max(0.0, start - c.time, c.time - end)
            off_centre = round(abs(c.time - (start + end) / 2), 9)
            pairs.append((round(gap, 9), -scores[c.index], off_centre, c.time, c.index, j, c))
    pairs.sort(key=lambda p: p[:6])
    out: dict[int, Candidate] = {}
    taken: set[int] = set()
    for *_, j, c in pairs:
        if j in out or c.index in taken:
            continue
        out[j] = c
        taken.add(c.index)
        if len(out) == len(slots):
            break
    return out


def _select_uniform(pool: list[Candidate], scores: dict[int, float], *, duration: float,
                    num_keyframes: int) -> Selection:
    """The candidate nearest to each slot centre ``(j + 0.5) * duration / N`` (each frame once;
    ties: earlier); repeats only when there are fewer candidates than keyframes."""
    remaining = list(pool)
    chosen = []
    for j in range(num_keyframes):
        if not remaining:
            break
        t = (j + 0.5) * duration / num_keyframes
        nearest = min(remaining, key=lambda c: (abs(c.time - t), c.time))
        chosen.append((nearest, "uniform"))
        remaining.remove(nearest)
    keyframes, duplicated = _finish(chosen, scores, num_keyframes)
    return Selection(keyframes=keyframes, duplicated=duplicated, mode="uniform",
                     counts={"candidates": len(pool), "uniform": len(chosen),
                             "repeated": num_keyframes - len(chosen) if duplicated else 0})


def _select_literal(pool: list[Candidate], scores: dict[int, float], *, duration: float, num_keyframes: int,
                    threshold: float) -> Selection:
    """The first reading of the rules, unchanged (see ``mode: literal`` in the module docstring)."""
    # Per-second maximum, threshold, rank.
    best_per_second: dict[int, Candidate] = {}
    for c in pool:
        second = int(math.floor(c.time))
        cur = best_per_second.get(second)
        if cur is None or scores[c.index] > scores[cur.index]:
            best_per_second[second] = c
    ranked = sorted(
        (c for c in best_per_second.values() if scores[c.index] >= threshold),
        key=lambda c: (-scores[c.index], c.time, c.index),
    )

    # One frame per time slot, the largest inter-frame difference among its candidates.
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

    # Top-up a: best remaining candidates above the threshold.
    remaining = [c for c in pool if c.index not in chosen]
    for c in sorted((c for c in remaining if scores[c.index] >= threshold),
                    key=lambda c: (-scores[c.index], c.time, c.index)):
        if len(chosen) >= num_keyframes:
            break
        chosen[c.index] = (c, "top_up_score")
    n_score = len(chosen) - n_slot

    # Top-up b: remaining candidates nearest to evenly spaced times.
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

    # Fewer distinct frames than keyframes -> repeat evenly, and say so.
    keyframes, duplicated = _finish(list(chosen.values()), scores, num_keyframes)
    return Selection(
        keyframes=keyframes,
        duplicated=duplicated,
        mode="literal",
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
