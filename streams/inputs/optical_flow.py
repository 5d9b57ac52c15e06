"""Dense optical flow for the flow stream: estimators, denseflow-style quantisation, sampling.

The flow stream sees x/y flow at a few positions of a clip. This module holds the pure pieces:

- :func:`create_flow_estimator` builds a callable ``(prev_gray, next_gray) -> (H, W, 2)`` flow
  (TV-L1 as in denseflow/mmaction2, Farneback, or DIS);
- :func:`flow_positions` picks the frame indices the flows start at;
- :func:`compute_flow_stack` runs an estimator over frame pairs into ``(P, 2, H, W)``;
- :func:`quantise_flow` / :func:`dequantise_flow` convert flow to and from uint8 exactly like
  denseflow's JPEG flow images (clip to +-bound, linear map to 0..255), which is what the cache
  stores as ``(8, 2, H, W)`` uint8.

Units everywhere: flow is in pixels of the frames it was computed on, channel 0 is x (positive to
the right), channel 1 is y (positive downwards); flow maps a pixel of ``prev`` to its position in
``next``: ``prev(y, x) ~ next(y + fy, x + fx)``.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import cv2
import numpy as np

__all__ = [
    "FLOW_ALGORITHMS",
    "FlowEstimator",
    "compute_flow_stack",
    "create_flow_estimator",
    "dequantise_flow",
    "flow_positions",
    "quantise_flow",
]

FLOW_ALGORITHMS = ("tvl1", "farneback", "dis")

# The parameters of OpenCV's sample / most tutorials for Farneback
# (cv2.calcOpticalFlowFarneback(prev, next, None, 0.5, 3, 15, 3, 5, 1.2, 0)).
_FARNEBACK_DEFAULTS: dict[str, Any] = {
    "pyr_scale": 0.5,
    "levels": 3,
    "winsize": 15,
    "iterations": 3,
    "poly_n": 5,
    "poly_sigma": 1.2,
    "flags": 0,
}

# Keyword arguments of cv2.optflow.DualTVL1OpticalFlow_create (OpenCV's spelling, typo included).
_TVL1_PARAMS = (
    "tau", "lambda_", "theta", "nscales", "warps", "epsilon", "innnerIterations",
    "outerIterations", "scaleStep", "gamma", "medianFiltering",
)

_DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
# Optional DIS tuning knobs -> the setter that applies them after the preset.
_DIS_SETTERS = {
    "finest_scale": "setFinestScale",
    "patch_size": "setPatchSize",
    "patch_stride": "setPatchStride",
    "gradient_descent_iterations": "setGradientDescentIterations",
    "variational_refinement_iterations": "setVariationalRefinementIterations",
    "variational_refinement_alpha": "setVariationalRefinementAlpha",
    "variational_refinement_delta": "setVariationalRefinementDelta",
    "variational_refinement_gamma": "setVariationalRefinementGamma",
    "use_mean_normalization": "setUseMeanNormalization",
    "use_spatial_propagation": "setUseSpatialPropagation",
}


class FlowEstimator:
    """A dense optical-flow estimator: ``estimator(prev_gray, next_gray) -> flow``.

    Args of the call:
        prev_gray: ``(H, W)`` uint8 grayscale frame at time t.
        next_gray: ``(H, W)`` uint8 grayscale frame at time t + step, same shape.

    Returns:
        ``(H, W, 2)`` float32 flow in pixels, ``[..., 0]`` = x, ``[..., 1]`` = y.

    The OpenCV algorithm object is created once and reused; it is not thread-safe, so use one
    estimator per worker process/thread. Build it with :func:`create_flow_estimator`.
    """

    def __init__(
        self,
        *,
        algorithm: str,
        compute: Callable[[np.ndarray, np.ndarray], np.ndarray],
        params: dict[str, Any],
    ) -> None:
        self.algorithm = algorithm
        self.params = dict(params)
        self._compute = compute

    def __call__(self, prev_gray: np.ndarray, next_gray: np.ndarray) -> np.ndarray:
        for name, frame in (("prev_gray", prev_gray), ("next_gray", next_gray)):
            if not isinstance(frame, np.ndarray) or frame.ndim != 2 or frame.dtype != np.uint8:
                raise ValueError(
                    f"{self.algorithm} flow: {name} must be a (H, W) uint8 grayscale array, got "
                    f"{_describe(frame)}"
                )
        if prev_gray.shape != next_gray.shape:
            raise ValueError(
                f"{self.algorithm} flow: prev_gray {prev_gray.shape} and next_gray "
                f"{next_gray.shape} differ in shape"
            )
        flow = self._compute(
            np.ascontiguousarray(prev_gray), np.ascontiguousarray(next_gray)
        )
        return np.asarray(flow, dtype=np.float32)

    def __repr__(self) -> str:
        return f"FlowEstimator(algorithm={self.algorithm!r}, params={self.params!r})"


def create_flow_estimator(algorithm: str = "dis", **params: Any) -> FlowEstimator:
    """Build a dense flow estimator.

    Args:
        algorithm: one of ``'tvl1'`` (``cv2.optflow.DualTVL1OpticalFlow_create``, the
            denseflow / mmaction2 default: most accurate, slowest), ``'farneback'``
            (``cv2.calcOpticalFlowFarneback``) or ``'dis'`` (``cv2.DISOpticalFlow_create``,
            fast; default).
        **params: algorithm options.
            - tvl1: keyword arguments of ``DualTVL1OpticalFlow_create`` (``tau``, ``lambda_``,
              ``theta``, ``nscales``, ``warps``, ``epsilon``, ``innnerIterations``,
              ``outerIterations``, ``scaleStep``, ``gamma``, ``medianFiltering``); OpenCV's
              defaults otherwise.
            - farneback: ``pyr_scale`` (0.5), ``levels`` (3), ``winsize`` (15), ``iterations``
              (3), ``poly_n`` (5), ``poly_sigma`` (1.2), ``flags`` (0).
            - dis: ``preset`` (``'medium'``; or ``'fast'``, ``'ultrafast'``), then optional
              ``finest_scale``, ``patch_size``, ``patch_stride``,
              ``gradient_descent_iterations``, ``variational_refinement_iterations``,
              ``variational_refinement_alpha/delta/gamma``, ``use_mean_normalization``,
              ``use_spatial_propagation``.

    Returns:
        A :class:`FlowEstimator` mapping two ``(H, W)`` uint8 frames to ``(H, W, 2)`` float32
        flow in pixels (x, y).

    Raises:
        ValueError: unknown algorithm (the message lists the valid ones) or unknown parameter.
    """
    if algorithm == "tvl1":
        unknown = sorted(set(params) - set(_TVL1_PARAMS))
        if unknown:
            raise ValueError(
                f"unknown tvl1 parameter(s) {unknown}; valid: {list(_TVL1_PARAMS)}"
            )
        tvl1 = cv2.optflow.DualTVL1OpticalFlow_create(**params)

        def compute(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
            return tvl1.calc(prev, nxt, None)

        return FlowEstimator(algorithm="tvl1", compute=compute, params=params)

    if algorithm == "farneback":
        unknown = sorted(set(params) - set(_FARNEBACK_DEFAULTS))
        if unknown:
            raise ValueError(
                f"unknown farneback parameter(s) {unknown}; valid: {list(_FARNEBACK_DEFAULTS)}"
            )
        fb = {**_FARNEBACK_DEFAULTS, **params}

        def compute(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
            return cv2.calcOpticalFlowFarneback(
                prev, nxt, None, fb["pyr_scale"], fb["levels"], fb["winsize"],
                fb["iterations"], fb["poly_n"], fb["poly_sigma"], fb["flags"],
            )

        return FlowEstimator(algorithm="farneback", compute=compute, params=fb)

    if algorithm == "dis":
        params = dict(params)
        preset = params.pop("preset", "medium")
        if preset not in _DIS_PRESETS:
            raise ValueError(f"unknown dis preset {preset!r}; valid: {list(_DIS_PRESETS)}")
        unknown = sorted(set(params) - set(_DIS_SETTERS))
        if unknown:
            raise ValueError(
                f"unknown dis parameter(s) {unknown}; valid: ['preset'] + {list(_DIS_SETTERS)}"
            )
        dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[preset])
        for key, value in params.items():
            getattr(dis, _DIS_SETTERS[key])(value)

        def compute(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
            return dis.calc(prev, nxt, None)

        return FlowEstimator(algorithm="dis", compute=compute, params={"preset": preset, **params})

    raise ValueError(f"unknown flow algorithm {algorithm!r}; valid: {list(FLOW_ALGORITHMS)}")


def quantise_flow(flow: np.ndarray, bound: float = 20.0) -> np.ndarray:
    """Quantise flow to uint8 the way denseflow writes flow images.

    ``q = round((clip(f, -bound, bound) + bound) * 255 / (2 * bound))``, so -bound -> 0,
    0 -> 128 (127.5 rounded half to even gives 128), +bound -> 255.

    Args:
        flow: float flow in pixels, any shape: the map is element-wise, so both
            ``(..., 2, H, W)`` (the cache layout, ``(8, 2, H, W)``) and ``(..., H, W, 2)`` work
            and the shape is kept.
        bound: clipping bound in pixels (> 0); denseflow's default is 20.

    Returns:
        uint8 array of the same shape.

    Raises:
        ValueError: non-positive bound or non-finite flow values.
    """
    bound = _check_bound(bound)
    flow = np.asarray(flow, dtype=np.float32)
    if not np.all(np.isfinite(flow)):
        raise ValueError("quantise_flow: flow contains NaN or infinite values")
    scaled = (np.clip(flow, -bound, bound) + bound) * (255.0 / (2.0 * bound))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def dequantise_flow(q: np.ndarray, bound: float = 20.0) -> np.ndarray:
    """Inverse of :func:`quantise_flow`: ``f = q * 2 * bound / 255 - bound``.

    Args:
        q: uint8 quantised flow, any shape.
        bound: the bound it was quantised with (> 0).

    Returns:
        float32 flow in pixels, same shape; for unclipped values the error is at most
        ``bound / 255`` (half a quantisation step).
    """
    bound = _check_bound(bound)
    q = np.asarray(q)
    if q.dtype != np.uint8:
        raise ValueError(f"dequantise_flow: expected a uint8 array, got dtype {q.dtype}")
    return (q.astype(np.float32) * np.float32(2.0 * bound / 255.0) - np.float32(bound)).astype(
        np.float32
    )


def flow_positions(num_frames: int, num_positions: int = 8, step: int = 1) -> list[int]:
    """Frame indices where the flows of a clip start (TSN-style segment centres).

    A flow at position ``i`` is computed between frames ``i`` and ``i + step``, so valid starts
    are ``0 .. num_frames - 1 - step`` (``n_valid = num_frames - step`` of them). That range is
    cut into ``num_positions`` equal segments and the centre of each is taken:
    ``i_k = floor((k + 0.5) * n_valid / num_positions)`` for ``k = 0 .. num_positions - 1``.

    The result is non-decreasing and always has ``num_positions`` entries, each satisfying
    ``i + step < num_frames``. For short clips (``n_valid < num_positions``) positions repeat
    (e.g. 4 frames, 8 positions, step 1 -> ``[0, 0, 0, 1, 1, 2, 2, 2]``); nothing ever goes out
    of range.

    Raises:
        ValueError: ``num_positions < 1``, ``step < 1``, or ``num_frames <= step`` (no pair of
            frames ``step`` apart exists).
    """
    if num_positions < 1:
        raise ValueError(f"flow_positions: num_positions must be >= 1, got {num_positions}")
    if step < 1:
        raise ValueError(f"flow_positions: step must be >= 1, got {step}")
    n_valid = num_frames - step
    if n_valid < 1:
        raise ValueError(
            f"flow_positions: a clip of {num_frames} frame(s) has no frame pair {step} apart"
        )
    return [int((2 * k + 1) * n_valid // (2 * num_positions)) for k in range(num_positions)]


def compute_flow_stack(
    pairs: Sequence[tuple[np.ndarray, np.ndarray]], estimator: FlowEstimator
) -> np.ndarray:
    """Run ``estimator`` over frame pairs and stack channels first.

    Args:
        pairs: P pairs ``(prev_gray, next_gray)`` of ``(H, W)`` uint8 frames, all the same size.
        estimator: from :func:`create_flow_estimator` (any callable with that contract).

    Returns:
        ``(P, 2, H, W)`` float32 flow in pixels, channel 0 = x, channel 1 = y.

    Raises:
        ValueError: no pairs, or pairs of different sizes.
    """
    if len(pairs) == 0:
        raise ValueError("compute_flow_stack: got no frame pairs")
    shape = np.shape(pairs[0][0])
    flows = []
    for idx, (prev, nxt) in enumerate(pairs):
        if np.shape(prev) != shape:
            raise ValueError(
                f"compute_flow_stack: pair {idx} has frames of shape {np.shape(prev)}, "
                f"pair 0 has {shape}"
            )
        flow = estimator(prev, nxt)
        flows.append(np.moveaxis(np.asarray(flow, dtype=np.float32), -1, 0))
    return np.ascontiguousarray(np.stack(flows, axis=0))


def _check_bound(bound: float) -> float:
    bound = float(bound)
    if not np.isfinite(bound) or bound <= 0:
        raise ValueError(f"flow bound must be a positive number of pixels, got {bound}")
    return bound


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} dtype {value.dtype}"
    return type(value).__name__
