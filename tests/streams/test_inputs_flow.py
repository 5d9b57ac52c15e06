"""Optical-flow inputs: estimator accuracy on known shifts, quantisation, flow positions."""

import cv2
import numpy as np
import pytest

from streams.inputs.optical_flow import (
    FLOW_ALGORITHMS,
    compute_flow_stack,
    create_flow_estimator,
    dequantise_flow,
    flow_positions,
    quantise_flow,
)

SIZE = 96
PAD = 16
SHIFT = 3


def _texture(seed: int = 0) -> np.ndarray:
    """Smooth random texture (blurred noise) with a border to shift into."""
    rng = np.random.default_rng(seed)
    noise = rng.random((SIZE + 2 * PAD, SIZE + 2 * PAD)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min()) * 255.0
    return smooth.astype(np.uint8)


def _shifted_pair(dx: int, dy: int) -> tuple[np.ndarray, np.ndarray]:
    """prev, and next = prev's content moved by (dx, dy) pixels (right / down positive)."""
    big = _texture()
    prev = big[PAD:PAD + SIZE, PAD:PAD + SIZE]
    nxt = big[PAD - dy:PAD - dy + SIZE, PAD - dx:PAD - dx + SIZE]
    return np.ascontiguousarray(prev), np.ascontiguousarray(nxt)


def _interior(flow: np.ndarray) -> np.ndarray:
    return flow[PAD:-PAD, PAD:-PAD]


@pytest.mark.parametrize("algorithm", FLOW_ALGORITHMS)
def test_horizontal_shift_gives_x_flow(algorithm):
    estimator = create_flow_estimator(algorithm)
    prev, nxt = _shifted_pair(SHIFT, 0)
    flow = estimator(prev, nxt)
    assert flow.shape == (SIZE, SIZE, 2) and flow.dtype == np.float32
    inner = _interior(flow)
    assert abs(inner[..., 0].mean() - SHIFT) < 0.5
    assert abs(inner[..., 1].mean()) < 0.5


@pytest.mark.parametrize("algorithm", FLOW_ALGORITHMS)
def test_vertical_shift_gives_y_flow(algorithm):
    estimator = create_flow_estimator(algorithm)
    prev, nxt = _shifted_pair(0, SHIFT)
    inner = _interior(estimator(prev, nxt))
    assert abs(inner[..., 1].mean() - SHIFT) < 0.5
    assert abs(inner[..., 0].mean()) < 0.5


def test_estimator_is_reusable_and_params_apply():
    estimator = create_flow_estimator("farneback", winsize=21)
    assert estimator.params["winsize"] == 21
    prev, nxt = _shifted_pair(SHIFT, 0)
    first = estimator(prev, nxt)
    second = estimator(prev, nxt)
    np.testing.assert_allclose(first, second)
    dis = create_flow_estimator("dis", preset="fast", finest_scale=1)
    assert abs(_interior(dis(prev, nxt))[..., 0].mean() - SHIFT) < 0.5


def test_unknown_algorithm_lists_valid_ones():
    with pytest.raises(ValueError) as err:
        create_flow_estimator("raft")
    for name in FLOW_ALGORITHMS:
        assert name in str(err.value)
    with pytest.raises(ValueError, match="winsiz"):
        create_flow_estimator("farneback", winsiz=15)


def test_estimator_rejects_colour_or_mismatched_frames():
    estimator = create_flow_estimator("dis")
    gray = np.zeros((32, 32), np.uint8)
    with pytest.raises(ValueError, match="uint8 grayscale"):
        estimator(np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="differ in shape"):
        estimator(gray, np.zeros((32, 40), np.uint8))


def test_compute_flow_stack_is_channels_first():
    prev, nxt = _shifted_pair(SHIFT, 0)
    prev_v, nxt_v = _shifted_pair(0, SHIFT)
    stack = compute_flow_stack([(prev, nxt), (prev_v, nxt_v)], create_flow_estimator("farneback"))
    assert stack.shape == (2, 2, SIZE, SIZE) and stack.dtype == np.float32
    assert abs(stack[0, 0, PAD:-PAD, PAD:-PAD].mean() - SHIFT) < 0.5  # x-flow of the x shift
    assert abs(stack[1, 1, PAD:-PAD, PAD:-PAD].mean() - SHIFT) < 0.5  # y-flow of the y shift
    with pytest.raises(ValueError, match="no frame pairs"):
        compute_flow_stack([], create_flow_estimator("dis"))


def test_quantise_round_trip_within_half_step_and_clips():
    bound = 20.0
    rng = np.random.default_rng(1)
    flow = rng.uniform(-bound, bound, size=(8, 2, 6, 7)).astype(np.float32)
    q = quantise_flow(flow, bound)
    assert q.dtype == np.uint8 and q.shape == flow.shape
    back = dequantise_flow(q, bound)
    assert back.dtype == np.float32
    assert np.abs(back - flow).max() <= bound / 255 + 1e-5

    extremes = np.array([-100.0, -bound, 0.0, bound, 100.0], np.float32)
    np.testing.assert_array_equal(quantise_flow(extremes, bound), [0, 0, 128, 255, 255])
    np.testing.assert_allclose(dequantise_flow(quantise_flow(extremes, bound), bound)[[0, 4]],
                               [-bound, bound])


def test_quantise_rejects_bad_input():
    with pytest.raises(ValueError, match="bound"):
        quantise_flow(np.zeros(3, np.float32), 0.0)
    with pytest.raises(ValueError, match="NaN"):
        quantise_flow(np.array([np.nan], np.float32))
    with pytest.raises(ValueError, match="uint8"):
        dequantise_flow(np.zeros(3, np.float32))


def test_flow_positions_spread_and_in_range():
    positions = flow_positions(125, 8, 1)
    assert len(positions) == 8
    assert positions == sorted(set(positions))  # distinct and increasing
    assert positions[0] < 125 // 8 and positions[-1] > 125 - 1 - 125 // 8  # covers the clip
    for step in (1, 2, 5):
        for num_frames in range(step + 1, 40):
            pos = flow_positions(num_frames, 8, step)
            assert len(pos) == 8
            assert all(0 <= i and i + step < num_frames for i in pos)
            assert pos == sorted(pos)


def test_flow_positions_short_clip_repeats():
    assert flow_positions(4, 8, 1) == [0, 0, 0, 1, 1, 2, 2, 2]
    assert flow_positions(2, 8, 1) == [0] * 8
    assert flow_positions(9, 8, 1) == list(range(8))
    with pytest.raises(ValueError, match="no frame pair"):
        flow_positions(1, 8, 1)
    with pytest.raises(ValueError, match="no frame pair"):
        flow_positions(3, 8, 3)
