"""sample_video on small real clips: nearest-frame picking by time, exact picking by index,
``following`` frames, past-the-end repeats, several sizes of one frame, motion values, and one
decoding pass that converts only the requested frames and never holds the clip."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from media.decoding import VideoReader
from media.encoding import write_mp4
from media.sampling import FrameRequest, sample_video
from tests.conftest import make_scene_clip

FPS = 10
# frame i is a flat grey of LEVELS[i]: the decoded mean tells which frame a pick is, and the
# steps between frames (10, 30, 10, 40, ...) are the motion values
LEVELS = (10, 20, 50, 60, 100, 110, 150, 160, 200, 210, 240, 250)
STEPS = np.abs(np.diff(LEVELS))


@pytest.fixture(scope="module")
def levels_clip(tmp_path_factory) -> Path:
    """1.2 s, 64x48 at 10 fps: 12 flat grey frames at LEVELS."""
    frames = [np.full((48, 64, 3), v, np.uint8) for v in LEVELS]
    return write_mp4(tmp_path_factory.mktemp("sampling") / "levels.mp4", frames, fps=FPS)


def sample(path: Path, *requests: FrameRequest, motion_width: int | None = 64):
    with VideoReader(path) as reader:
        return sample_video(reader, list(requests), motion_width=motion_width)


def content(frame, size: str = "image") -> int:
    """Which frame's picture this is, from its grey level."""
    return int(np.argmin(np.abs(np.asarray(LEVELS) - frame.images[size].mean())))


def groups(result, name: str) -> list[list[int]]:
    """Per request target, the indices of [picked, following...], checked against the pictures."""
    out = []
    for group in result.picks[name]:
        assert [f.index for f in group] == [content(f) for f in group]
        out.append([f.index for f in group])
    return out


def test_times_pick_the_nearest_frame_in_request_order(levels_clip):
    times = (0.26, 0.0, 0.04, 0.06, 0.24, 0.91, 0.26, -0.5, 1.1)
    result = sample(levels_clip, FrameRequest("a", times=times))
    assert groups(result, "a") == [[3], [0], [0], [1], [2], [9], [3], [0], [11]]
    assert [g[0].time for g in result.picks["a"]] == pytest.approx([0.3, 0.0, 0.0, 0.1, 0.2, 0.9, 0.3, 0.0, 1.1])
    # the same frames the reader's own nearest-frame read gives, for any times inside the clip
    rng = np.random.default_rng(0)
    random_times = tuple(float(t) for t in rng.uniform(0.0, 1.15, 20))
    picked = [g[0].index for g in sample(levels_clip, FrameRequest("r", times=random_times)).picks["r"]]
    with VideoReader(levels_clip) as reader:
        assert picked == [f.index for f in reader.frames_at(random_times)]


def test_following_frames_come_after_each_pick(levels_clip):
    result = sample(levels_clip, FrameRequest("a", times=(0.2, 0.3, 0.0), following=2))
    assert groups(result, "a") == [[2, 3, 4], [3, 4, 5], [0, 1, 2]]  # overlapping groups each get theirs


def test_past_the_end_picks_and_following_frames_repeat_the_last_frame(levels_clip):
    result = sample(levels_clip, FrameRequest("a", times=(1.0, 1.16, 7.0), following=2))
    assert groups(result, "a") == [[10, 11, 11], [11, 11, 11], [11, 11, 11]]
    by_index = sample(levels_clip, FrameRequest("i", indices=(11, 40), following=1))
    assert groups(by_index, "i") == [[11, 11], [11, 11]]


def test_index_requests_pick_exactly_that_frame(levels_clip):
    result = sample(levels_clip, FrameRequest("flow", indices=(5, 0, 3), following=1))
    assert groups(result, "flow") == [[5, 6], [0, 1], [3, 4]]
    with pytest.raises(ValueError, match="'both': give times or indices"):
        sample(levels_clip, FrameRequest("both", times=(0.0,), indices=(1,)))


def test_each_request_gets_its_sizes_and_unique_frames(levels_clip):
    sizes = (("score", 24, None, False), ("capped", None, 40, False), ("grey", None, None, True))
    result = sample(levels_clip, FrameRequest("cands", times=(0.5, 0.0, 0.52), sizes=sizes),
                    FrameRequest("other", times=(0.1,)))
    frame = result.picks["cands"][0][0]
    assert {k: v.shape for k, v in frame.images.items()} == {"score": (24, 32, 3), "capped": (30, 40, 3),
                                                               "grey": (48, 64)}
    assert all(v.dtype == np.uint8 for v in frame.images.values())
    assert content(frame, "grey") == content(frame, "score") == 5
    assert result.picks["other"][0][0].images["image"].shape == (48, 64, 3)  # default: source size RGB
    # two times on one frame give one unique frame; unique frames are in decode order
    assert [f.index for f in result.unique_frames["cands"]] == [0, 5]
    assert [f.index for f in result.unique_frames["other"]] == [1]


def test_motion_is_the_grey_difference_to_the_previous_frame(levels_clip, tmp_path):
    result = sample(levels_clip, FrameRequest("a", times=(0.0,)))
    assert result.num_frames == 12
    np.testing.assert_allclose(result.times, np.arange(12) / FPS, atol=1e-6)
    assert result.motion.shape == (12,) and result.motion[0] == 0.0
    np.testing.assert_allclose(result.motion[1:], STEPS, atol=2.0)
    assert result.decode_warning is None and result.info.fps == FPS
    # a scene whose faces move has more motion than the same scene standing still
    still = make_scene_clip(tmp_path / "still.mp4", n_frames=8, size=(96, 64), faces=2, audio=False, motion=(0, 0))
    moving = make_scene_clip(tmp_path / "moving.mp4", n_frames=8, size=(96, 64), faces=2, audio=False, motion=(3, 0))
    still_motion = sample(still, FrameRequest("a", times=(0.0,))).motion
    moving_motion = sample(moving, FrameRequest("a", times=(0.0,))).motion
    assert moving_motion[1:].min() > 2 * still_motion[1:].max()
    # without motion_width no motion is computed, and picks are unchanged
    bare = sample(levels_clip, FrameRequest("a", times=(0.26,)), motion_width=None)
    assert bare.motion.shape == (0,) and groups(bare, "a") == [[3]]


def test_one_pass_converts_only_requested_frames_and_holds_at_most_two(levels_clip, monkeypatch):
    passes, conversions = [], []
    live = {"now": 0, "peak": 0}

    class TrackedHandle:
        """A frame handle that counts itself alive and records each conversion."""

        def __init__(self, handle):
            self._handle, self.index, self.time = handle, handle.index, handle.time
            live["now"] += 1
            live["peak"] = max(live["peak"], live["now"])

        def __del__(self):
            live["now"] -= 1

        def to_image(self, **kw):
            conversions.append((self.index, tuple(sorted(kw.items()))))
            return self._handle.to_image(**kw)

    with VideoReader(levels_clip) as reader:
        real = reader.iter_handles

        def iter_handles():
            passes.append(1)
            for handle in real():
                yield TrackedHandle(handle)

        monkeypatch.setattr(reader, "iter_handles", iter_handles)
        small = ("small", 24, None, False)
        result = sample_video(reader, [FrameRequest("a", times=(0.0, 0.52), sizes=(small, ("grey", None, None, True))),
                                       FrameRequest("b", times=(0.52,), sizes=(small,))], motion_width=None)
    assert passes == [1]
    # frames 0 and 5 only, each size once: request b shares a's small copy of frame 5
    assert sorted({i for i, _ in conversions}) == [0, 5] and len(conversions) == 4
    assert result.picks["b"][0][0].images["small"] is result.picks["a"][1][0].images["small"]
    assert result.num_frames == 12 and live["peak"] <= 2
