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
    state = []
    for req in requests:
        if req.times and req.indices:
            raise ValueError(f"request {req.name!r}: give times or indices, not both")
        targets = req.targets
        order = sorted(range(len(targets)), key=lambda j: targets[j])
        # a time target is reached half a frame early (nearest frame); an index target exactly
        slack = 0.0 if req.indices else half
        state.append({"req": req, "targets": targets, "by_index": bool(req.indices), "slack": slack,
                      "order": order, "next": 0, "open": [], "out": [None] * len(targets), "announced": set()})

    motion: list[float] = []
    times: list[float] = []
    prev_small = None
    last_handle = None
    converted: dict[tuple, np.ndarray] = {}

    def convert(handle, spec) -> np.ndarray:
        _, short_side, max_side, gray = spec
        key = (short_side, max_side, gray)
        if key not in converted:
            converted[key] = handle.to_image(short_side=short_side, max_side=max_side, gray=gray)
        return converted[key]

    def images(handle, req: FrameRequest) -> FrameImages:
        eager = {spec[0]: convert(handle, spec) for spec in req.sizes if spec[0] not in req.lazy}
        lazy = {spec[0]: _deferred(handle, spec) for spec in req.sizes if spec[0] in req.lazy}
        return FrameImages(eager, lazy)

    def picked(st: dict, sf: SampledFrame) -> None:
        if on_pick is not None and sf.index not in st["announced"]:
            st["announced"].add(sf.index)
            on_pick(st["req"].name, sf)

    num = 0
    for handle in reader.iter_handles():
        converted = {}
        num += 1
        times.append(handle.time)
        if motion_width:
            small = handle.to_image(width=motion_width, gray=True).astype(np.int16)
            motion.append(0.0 if prev_small is None else float(np.abs(small - prev_small).mean()))
            prev_small = small
        for st in state:
            req: FrameRequest = st["req"]
            pos = float(handle.index) if st["by_index"] else handle.time
            targets, slack = st["targets"], st["slack"]
            wanted = bool(st["open"]) or (st["next"] < len(st["order"])
                                          and pos >= targets[st["order"][st["next"]]] - slack)
            if not wanted:
                continue
            sf = SampledFrame(handle.index, handle.time, images(handle, req))
            # feed open "following" lists first (this frame follows an earlier pick)
            still_open = []
            for group in st["open"]:
                group["frames"].append(sf)
                if len(group["frames"]) <= req.following:
                    still_open.append(group)
            st["open"] = still_open
            while st["next"] < len(st["order"]) and pos >= targets[st["order"][st["next"]]] - slack:
                j = st["order"][st["next"]]
                group = {"frames": [sf]}
                st["out"][j] = group["frames"]
                if req.following > 0:
                    st["open"].append(group)
                st["next"] += 1
                picked(st, sf)
        last_handle = handle
    if num == 0:
        raise NoFramesError(f"{reader.path}: the video stream has no decodable frames")

    # Times past the end pick the last frame; open "following" lists repeat it.
    for st in state:
        req = st["req"]
        pending = st["order"][st["next"]:]
        if pending or st["open"]:
            converted = {}
            sf_last = SampledFrame(last_handle.index, last_handle.time, images(last_handle, req))
            for j in pending:
                st["out"][j] = [sf_last]
            if pending:
                picked(st, sf_last)
            for group in st["open"]:
                while len(group["frames"]) <= req.following:
                    group["frames"].append(group["frames"][-1])
            for j in pending:
                while len(st["out"][j]) <= req.following:
                    st["out"][j].append(sf_last)

    picks = {st["req"].name: st["out"] for st in state}
    unique = {}
    for name, groups in picks.items():
        seen: dict[int, SampledFrame] = {}
        for g in groups:
            seen.setdefault(g[0].index, g[0])
        unique[name] = sorted(seen.values(), key=lambda f: f.index)
    return FrameSample(info=info, picks=picks, motion=np.asarray(motion, dtype=np.float32),
                       times=np.asarray(times, dtype=np.float64), num_frames=num,
                       decode_warning=getattr(reader, "decode_warning", None), unique_frames=unique)


def _deferred(handle, spec) -> Callable[[], np.ndarray]:
    """The conversion ``spec`` = (name, short_side, max_side, gray) of ``handle``, made when called."""
    _, short_side, max_side, gray = spec
    return lambda: handle.to_image(short_side=short_side, max_side=max_side, gray=gray)
