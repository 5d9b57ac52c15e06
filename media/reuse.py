"""Work shared by overlapping clips of one source (live windows): each frame converted, scored,
searched for faces and each stretch of audio analysed once, then reused by every window that
contains it.

A :class:`ReuseStore` holds the results, each tagged with the source time up to which it
depends on the source (its frame's time, the last sample it read); the owner drops what no later
clip can contain with :meth:`ReuseStore.forget_before`. A clip that shares work carries a
:class:`ClipReuse`: the store, and how the clip's frames and samples sit on the source's
timeline. Results are keyed by what determines them (the kind of work with its settings, and
the frame id or sample position), so a value found in the store is the value the computation
would return for this clip.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Hashable, Sequence


class ReuseStore:
    """``(kind, key) -> value`` with the source time (s) each value depends on up to."""

    def __init__(self) -> None:
        self._items: dict[tuple[Hashable, Hashable], tuple[float, Any]] = {}
        self.hits = 0
        self.misses = 0

    def get(self, kind: Hashable, key: Hashable) -> Any | None:
        """The stored value, or ``None`` (counted in ``hits`` / ``misses``)."""
        item = self._items.get((kind, key))
        if item is None:
            self.misses += 1
            return None
        self.hits += 1
        return item[1]

    def lookup(self, kind: Hashable, key: Hashable) -> tuple[float, Any] | None:
        """``(until, value)`` as stored, or ``None``; not counted in ``hits`` / ``misses``."""
        return self._items.get((kind, key))

    def __contains__(self, kind_key: tuple[Hashable, Hashable]) -> bool:
        return kind_key in self._items

    def put(self, kind: Hashable, key: Hashable, value: Any, *, until: float) -> None:
        """Store ``value``; ``until``: the latest source time (s) it depends on."""
        self._items[(kind, key)] = (float(until), value)

    def forget_before(self, t: float) -> None:
        """Drop every value that depends only on source time before ``t`` (s)."""
        stale = [k for k, (until, _) in self._items.items() if until < t - 1e-9]
        for k in stale:
            del self._items[k]

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class ClipReuse:
    """How one clip of a source shares work through ``store``.

    ``frame_ids``: per decoded frame of the clip (0-based, clip order) the id of that frame in
    the source (unique within the source). ``start``: source time (s) of the clip's time 0, so
    clip time ``t`` is source time ``start + t``. ``audio_rate`` (Hz) and ``audio_start``: the
    clip's audio at that rate begins at sample ``audio_start`` of the source's audio, whose
    sample 0 is at source time ``audio_origin`` (s); ``audio_start`` is ``None`` when the clip's
    audio is not a slice of one continuous source signal.

    ``budget``: for the costly per-frame work that :meth:`per_frame_nearest` computes (face
    detection), at most this many frames of the clip are computed anew, as long as every other
    frame asked for lies within ``borrow_within_s`` (s) of a frame of the clip that has a result
    and can borrow it; ``None``: every frame is computed."""

    store: ReuseStore
    frame_ids: Sequence[int]
    start: float = 0.0
    audio_rate: int | None = None
    audio_start: int | None = None
    audio_origin: float = 0.0
    budget: int | None = None
    borrow_within_s: float = 0.5

    def source_time(self, t: float) -> float:
        """Source time (s) of clip time ``t`` (s): the ``until`` of a result on a clip frame at ``t``."""
        return self.start + float(t)

    def sample_time(self, sample: int) -> float:
        """Source time (s) of source audio sample ``sample`` (at ``audio_rate``)."""
        return self.audio_origin + sample / float(self.audio_rate or 1)

    def _stored(self, kind: Hashable, indices: Sequence[int]) -> tuple[list[Any], list[int]]:
        """The stored result of each of ``indices`` (``None`` when absent) and the positions
        into ``indices`` still to compute, each frame once (its first position)."""
        out: list[Any] = [self.store.get(kind, self.frame_ids[i]) for i in indices]
        first: dict[int, int] = {}
        for j, i in enumerate(indices):
            if out[j] is None:
                first.setdefault(i, j)
        return out, sorted(first.values())

    def per_frame(self, kind: Hashable, indices: Sequence[int], times: Sequence[float],
                  compute: Callable[[list[int]], Sequence[Any]]) -> list[Any]:
        """Per-frame results for the clip frames ``indices`` (at clip ``times``, s): those another
        clip of the source computed come from the store (under ``kind``, by frame id), the others
        from ``compute(positions)`` (positions into ``indices``, each frame once), and are stored."""
        out, todo = self._stored(kind, indices)
        fresh = {}
        for j, value in zip(todo, compute(todo)):
            fresh[indices[j]] = value
            self.store.put(kind, self.frame_ids[indices[j]], value, until=self.source_time(times[j]))
        return [fresh[i] if v is None else v for i, v in zip(indices, out)]


    def per_frame_nearest(self, kind: Hashable, indices: Sequence[int], times: Sequence[float],
                          compute: Callable[[list[int]], Sequence[Any]]) -> tuple[list[Any], list[bool]]:
        """:meth:`per_frame` within :attr:`budget`: ``(results, borrowed)``.

        Frames without a stored result are computed farthest first: the one farthest in time
        from any frame of the clip with a result (stored or just computed; the earliest when none
        has one) is computed next, while fewer than ``budget`` were, and after that only while
        some frame is more than ``borrow_within_s`` from the nearest result. Each frame left
        takes the result of the nearest frame that has one (``borrowed`` true for it); borrowed
        results are not stored, so a later clip may still compute that frame. Without a budget,
        :meth:`per_frame` with nothing borrowed."""
        if self.budget is None:
            return self.per_frame(kind, indices, times, compute), [False] * len(indices)
        known: list[tuple[float, Any]] = []          # (source time, result) of the clip's frames
        for fid in dict.fromkeys(self.frame_ids):
            item = self.store.lookup(kind, fid)
            if item is not None:
                known.append(item)
        out, todo = self._stored(kind, indices)
        remaining = set(todo)
        when = {j: self.source_time(times[j]) for j in remaining}

        def distance(j: int, ts: list[float]) -> float:
            return min((abs(when[j] - t) for t in ts), default=float("inf"))

        known_times = [t for t, _ in known]
        chosen: list[int] = []
        while remaining:
            j = max(sorted(remaining), key=lambda q: distance(q, known_times))
            if len(chosen) >= self.budget and distance(j, known_times) <= self.borrow_within_s + 1e-9:
                break
            chosen.append(j)
            remaining.discard(j)
            known_times.append(when[j])
        chosen.sort()
        fresh: dict[int, Any] = {}
        for j, value in zip(chosen, compute(chosen) if chosen else []):
            fresh[indices[j]] = value
            known.append((when[j], value))
            self.store.put(kind, self.frame_ids[indices[j]], value, until=when[j])
        borrowed_from: dict[int, Any] = {}
        for j in remaining:
            borrowed_from[indices[j]] = min(known, key=lambda item: abs(item[0] - when[j]))[1]
        results, borrowed = [], []
        for i, v in zip(indices, out):
            if v is not None:
                results.append(v)
                borrowed.append(False)
            elif i in fresh:
                results.append(fresh[i])
                borrowed.append(False)
            else:
                results.append(borrowed_from[i])
                borrowed.append(True)
        return results, borrowed
