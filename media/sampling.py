"""One decoding pass, several frame sets.

Preprocessing needs, from the same clip, candidate frames for the keyframe scorer (small),
the same candidates at a larger size (to keep as keyframes and to find faces in), grey frame
pairs for optical flow, and the inter-frame difference of every frame. Decoding is the
expensive part, so :func:`sample_video` walks the video stream once and converts a frame to
an array only when some request wants it, at the size that request wants.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

import numpy as np

from media.decoding import NoFramesError, VideoInfo, VideoReader


@dataclass(frozen=True)
class FrameRequest:
    """Frames nearest to ``times`` (seconds), each followed by ``following`` later frames, converted
    to RGB (or ``gray``) with the short side resized to ``short_side`` and/or the long side capped
    at ``max_side`` (``None``: source size). Several conversions of the same picked frame can be
    asked for with ``sizes`` (name -> (short_side, max_side, gray)); then ``images`` holds each."""

    name: str
    times: tuple[float, ...] = ()
    following: int = 0
    sizes: tuple[tuple[str, int | None, int | None, bool], ...] = (("image", None, None, False),)
    indices: tuple[int, ...] = ()
    #: names of ``sizes`` converted only when first read (the picked frame stays decoded until
    #: then, or until :meth:`FrameImages.release`): for conversions only some picks will need
    lazy: tuple[str, ...] = ()

    @property
    def targets(self) -> tuple[float, ...]:
        return tuple(float(i) for i in self.indices) if self.indices else self.times


class FrameImages(Mapping):
    """A picked frame's conversions, name -> image: those converted during the pass, and the
    ``lazy`` ones, converted from the still decoded frame when first read (the same conversion,
    so the same pixels). :meth:`release` lets the decoded frame go; a lazy image not read by
    then is gone (reading it raises ``KeyError``)."""

    def __init__(self, images: dict[str, np.ndarray], lazy: dict[str, Callable[[], np.ndarray]] | None = None
                 ) -> None:
        self._images = dict(images)
        self._lazy = dict(lazy or {})
        self._names = list(self._images) + [n for n in self._lazy if n not in self._images]

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._images and name in self._lazy:
            self._images[name] = self._lazy.pop(name)()
        return self._images[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    @property
    def pending(self) -> tuple[str, ...]:
        """Lazy conversions not made yet."""
        return tuple(self._lazy)

    def release(self) -> None:
        """Drop the unmade lazy conversions (and with them the decoded frame)."""
        self._names = [n for n in self._names if n in self._images]
        self._lazy.clear()


@dataclass
class SampledFrame:
    index: int               # decode-order index in the video
    time: float              # seconds from the stream start
    images: Mapping[str, np.ndarray]


@dataclass
class FrameSample:
    """What one pass produced. ``picks[name][j]`` is the list ``[picked, following...]`` for the
    request's ``j``-th time; ``motion[i]`` is the mean absolute grey difference (0-255) between
    frame ``i`` and frame ``i - 1`` on a small copy (0 for the first frame); ``times[i]`` its time."""

    info: VideoInfo
    picks: dict[str, list[list[SampledFrame]]]
    motion: np.ndarray
    times: np.ndarray
    num_frames: int
    decode_warning: str | None = None
    unique_frames: dict[str, list[SampledFrame]] = field(default_factory=dict)


def sample_video(reader: VideoReader, requests: Sequence[FrameRequest], *, motion_width: int | None = 64,
                 on_pick: Callable[[str, SampledFrame], None] | None = None) -> FrameSample:
    """Decode ``reader``'s video stream once and serve every request (see the module docstring).

    A time picks the first frame whose timestamp is at least ``t - half a frame period``, i.e.
    the nearest frame for constant frame rates; times past the end pick the last frame, and
    following frames past the end repeat the last frame. Memory holds only the requested
    conversions (and the decoded frames of picks with ``lazy`` conversions still to make), never
    the whole clip. ``on_pick(request name, frame)`` is called as soon as a frame is picked for
    a request's time or index (once per distinct frame, in decoding order), so its images can be
    used while the pass goes on.
    """
    info = reader.info
    half = 0.5 / info.fps if info.fps > 0 else 0.0
    passes = [_RequestPass.start(req, half) for req in requests]

    motion: list[float] = []
    times: list[float] = []
    prev_small = None
    last_handle = None
    num = 0
    for handle in reader.iter_handles():
        conversions = _FrameConversions(handle)
        num += 1
        times.append(handle.time)
        if motion_width:
            small = handle.to_image(width=motion_width, gray=True).astype(np.int16)
            motion.append(0.0 if prev_small is None else float(np.abs(small - prev_small).mean()))
            prev_small = small
        for rp in passes:
            rp.take(handle, conversions, on_pick)
        last_handle = handle
    if num == 0:
        raise NoFramesError(f"{reader.path}: the video stream has no decodable frames")

    for rp in passes:
        rp.finish(last_handle, on_pick)

    picks = {rp.req.name: rp.out for rp in passes}
    return FrameSample(info=info, picks=picks, motion=np.asarray(motion, dtype=np.float32),
                       times=np.asarray(times, dtype=np.float64), num_frames=num,
                       decode_warning=getattr(reader, "decode_warning", None), unique_frames=_unique_picks(picks))


class _FrameConversions:
    """One decoded frame's conversions, each (short_side, max_side, gray) made once and shared by
    every request that asks for it."""

    def __init__(self, handle) -> None:
        self.handle = handle
        self._made: dict[tuple, np.ndarray] = {}

    def convert(self, spec) -> np.ndarray:
        _, short_side, max_side, gray = spec
        key = (short_side, max_side, gray)
        if key not in self._made:
            self._made[key] = self.handle.to_image(short_side=short_side, max_side=max_side, gray=gray)
        return self._made[key]

    def images(self, req: FrameRequest) -> FrameImages:
        """``req``'s sizes: the eager ones converted now, the ``lazy`` ones deferred."""
        eager = {spec[0]: self.convert(spec) for spec in req.sizes if spec[0] not in req.lazy}
        lazy = {spec[0]: _deferred(self.handle, spec) for spec in req.sizes if spec[0] in req.lazy}
        return FrameImages(eager, lazy)


@dataclass
class _RequestPass:
    """One request's progress through the pass: its targets in ascending order, the next one to
    reach, the picks still collecting ``following`` frames, and what it has picked so far."""

    req: FrameRequest
    targets: tuple[float, ...]
    by_index: bool
    slack: float
    order: list[int]
    out: list[list[SampledFrame] | None]
    next: int = 0
    open: list[list[SampledFrame]] = field(default_factory=list)
    announced: set[int] = field(default_factory=set)

    @classmethod
    def start(cls, req: FrameRequest, half: float) -> _RequestPass:
        """``half``: half a frame period (seconds), how early a time target is reached."""
        if req.times and req.indices:
            raise ValueError(f"request {req.name!r}: give times or indices, not both")
        targets = req.targets
        order = sorted(range(len(targets)), key=lambda j: targets[j])
        # a time target is reached half a frame early (nearest frame); an index target exactly
        slack = 0.0 if req.indices else half
        return cls(req=req, targets=targets, by_index=bool(req.indices), slack=slack, order=order,
                   out=[None] * len(targets))

    def _due(self, pos: float) -> bool:
        return self.next < len(self.order) and pos >= self.targets[self.order[self.next]] - self.slack

    def _announce(self, sf: SampledFrame, on_pick: Callable[[str, SampledFrame], None] | None) -> None:
        if on_pick is not None and sf.index not in self.announced:
            self.announced.add(sf.index)
            on_pick(self.req.name, sf)

    def take(self, handle, conversions: _FrameConversions,
             on_pick: Callable[[str, SampledFrame], None] | None) -> None:
        """Offer the decoded frame ``handle``: it follows the open picks and is picked for every
        target it reaches."""
        pos = float(handle.index) if self.by_index else handle.time
        if not (self.open or self._due(pos)):
            return
        sf = SampledFrame(handle.index, handle.time, conversions.images(self.req))
        # feed open "following" lists first (this frame follows an earlier pick)
        still_open = []
        for frames in self.open:
            frames.append(sf)
            if len(frames) <= self.req.following:
                still_open.append(frames)
        self.open = still_open
        while self._due(pos):
            frames = [sf]
            self.out[self.order[self.next]] = frames
            if self.req.following > 0:
                self.open.append(frames)
            self.next += 1
            self._announce(sf, on_pick)

    def finish(self, last_handle, on_pick: Callable[[str, SampledFrame], None] | None) -> None:
        """Times past the end pick the last frame; open "following" lists repeat it."""
        pending = self.order[self.next:]
        if not (pending or self.open):
            return
        following = self.req.following
        sf_last = SampledFrame(last_handle.index, last_handle.time,
                               _FrameConversions(last_handle).images(self.req))
        for j in pending:
            self.out[j] = [sf_last]
        if pending:
            self._announce(sf_last, on_pick)
        for frames in self.open:
            while len(frames) <= following:
                frames.append(frames[-1])
        for j in pending:
            while len(self.out[j]) <= following:
                self.out[j].append(sf_last)


def _unique_picks(picks: dict[str, list[list[SampledFrame]]]) -> dict[str, list[SampledFrame]]:
    """Each request's distinct picked frames (first of each group), in decoding order."""
    unique = {}
    for name, groups in picks.items():
        seen: dict[int, SampledFrame] = {}
        for g in groups:
            seen.setdefault(g[0].index, g[0])
        unique[name] = sorted(seen.values(), key=lambda f: f.index)
    return unique


def _deferred(handle, spec) -> Callable[[], np.ndarray]:
    """The conversion ``spec`` = (name, short_side, max_side, gray) of ``handle``, made when called."""
    _, short_side, max_side, gray = spec
    return lambda: handle.to_image(short_side=short_side, max_side=max_side, gray=gray)
