"""Generated candidate sets for the selection tests: candidates at the frames the extractor would
sample from a clip (``keyframes.extraction.candidate_times`` mapped to frame indices the way
``media.sampling.sample_video`` maps them), with scores and inter-frame differences the test
controls. Pseudo-random values come from an integer hash, not a library generator, so frozen
expectations do not depend on NumPy's streams."""
from __future__ import annotations

import math
from typing import Callable, Sequence

from keyframes.selection import Candidate

CLASSES = ("Positive", "Neutral", "Negative")


def frame_index(t: float, fps: float, n_frames: int) -> int:
    """The frame ``sample_video`` picks for time ``t``: the first whose time is at least ``t``
    minus half a frame period (the nearest frame), the last frame for times past the end."""
    return min(n_frames - 1, max(0, math.ceil(round(t * fps - 0.5, 9))))


def unit(i: int, seed: int, salt: int = 0) -> float:
    """A deterministic pseudo-random number in [0, 1) for ``(i, seed, salt)``."""
    x = (i * 2654435761 + seed * 40503 + salt * 2246822519 + 12345) % (1 << 32)
    x ^= x >> 15
    x = (x * 2246822519) % (1 << 32)
    x ^= x >> 13
    return x / float(1 << 32)


def probs_with(score: float, top: int = 0, n_classes: int = 3) -> tuple[float, ...]:
    """Class probabilities whose maximum is ``score`` (>= 1/C), on class ``top``."""
    rest = (1.0 - score) / (n_classes - 1)
    return tuple(score if c == top else rest for c in range(n_classes))


def candidate_frames(times: Sequence[float], *, fps: float = 25.0, duration: float = 5.0) -> list[tuple[int, float]]:
    """``(index, frame time)`` of the distinct frames the extractor samples for ``times``."""
    n = int(round(duration * fps))
    seen = {}
    for t in times:
        i = frame_index(t, fps, n)
        seen[i] = i / fps
    return sorted(seen.items())


def make_candidates(frames: Sequence[tuple[int, float]], *, score: Callable[[int, float], float],
                    diff: Callable[[int, float], float],
                    top: Callable[[int, float], int] = lambda i, t: 0) -> list[Candidate]:
    """Candidates for ``frames`` with ``score(index, time)`` as max probability (on class
    ``top(index, time)``) and ``diff(index, time)`` as the inter-frame difference."""
    return [Candidate(index=i, time=t, probs=probs_with(score(i, t), top(i, t)), diff=diff(i, t)) for i, t in frames]


def random_candidates(frames: Sequence[tuple[int, float]], seed: int, *, low: float = 0.34,
                      high: float = 1.0) -> list[Candidate]:
    """Scores uniform in [low, high), differences uniform in [0, 20), from ``seed``."""
    return make_candidates(frames, score=lambda i, t: low + (high - low) * unit(i, seed, 1),
                           diff=lambda i, t: 20.0 * unit(i, seed, 2))
