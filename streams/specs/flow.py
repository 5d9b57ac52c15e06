"""The optical-flow stream: x/y flow at 8 evenly spaced points into a 3D ResNet-50 (2-channel stem).

Cache: ``flow.npy`` uint8 (P, 2, H, W), flow between frame ``i`` and ``i + step`` at the P
positions of :func:`streams.inputs.optical_flow.flow_positions` over the decoded frames,
quantised like denseflow (``v = round((clip(f, -b, b) + b) * 255 / 2b)``, bound ``b`` in
``meta.json``). Input: (B, 2, 8, 224, 224) flow / bound in [-1, 1] (random crop and a flip that
negates x-flow for training) -> (B, 2048, 8, 7, 7) -> pooled (B, 2048) -> logits.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, Mapping

import numpy as np
import torch

from core.config import check_settings, setting
from media.sampling import FrameRequest
from streams.inputs.optical_flow import (
    FLOW_ALGORITHMS,
    compute_flow_stack,
    create_flow_estimator,
    dequantise_flow,
    flow_positions,
    quantise_flow,
)
from streams.models.builders import create_resnet3d_stream
from streams.specs.base import DecodedClip, Step, StreamOutput, StreamSpec
from streams.views import ViewSettings, crop_frames, even_indices, flip_now, resize_frames

#: ``create_flow_stream(*, num_classes, depth, stem_dim_out, attention, dropout, pretrained)``.
create_flow_stream = partial(create_resnet3d_stream, in_channels=2, depth=50, attention=False)

QUANTISATION = "uint8: v = round((clip(f, -bound, bound) + bound) * 255 / (2 * bound))"


@dataclass(frozen=True)
class FlowSettings:
    """The ``flow:`` preprocessing section: flow between frame i and i + ``step`` at ``positions``
    evenly spaced points, on grey frames of ``short_side`` px, by ``algorithm``, stored as uint8
    clipped to +-``bound`` px."""

    positions: int = setting(8, minimum=1, help="evenly spaced points in the clip")
    step: int = setting(1, minimum=1, help="flow between frame i and frame i + step")
    short_side: int = setting(256, minimum=1, help="px: the grey frames the flow is computed on")
    algorithm: str = setting("dis", choices=FLOW_ALGORITHMS, help=(
        "dis | farneback | tvl1 (denseflow/mmaction2 default, far slower)"))
    bound: float = setting(20.0, above=0, help=(
        "px; stored as uint8 like denseflow: clipped to +-bound, mapped to 0..255"))

    def __post_init__(self) -> None:
        check_settings(self, "flow")


class FlowStream(StreamSpec):
    name = "flow"
    array_file = "flow.npy"
    section = "flow"
    recipe = "flow"
    model_builder = staticmethod(create_flow_stream)
    settings_class = FlowSettings
    naive_settings = {"algorithm": "tvl1"}          # the classic TV-L1 (denseflow, mmaction2)

    def frame_requests(self, frame_count: int, cfg) -> tuple[FrameRequest, ...]:
        s = self.checked_settings(cfg)
        positions = flow_positions(max(frame_count, s.step + 1), s.positions, s.step)
        return (FrameRequest(name=self.name, indices=tuple(positions), following=s.step,
                             sizes=(("gray", s.short_side, None, True),)),)

    def source_sides(self, cfg):
        return self.checked_settings(cfg).short_side, 0

    def make_step(self, cfg, *, device="cpu") -> Step:
        s = self.checked_settings(cfg)
        algorithm, bound = s.algorithm, s.bound
        estimator: list = []   # built on first use

        def step(clip: DecodedClip) -> StreamOutput:
            if not estimator:
                estimator.append(create_flow_estimator(algorithm))
            groups = clip.sample.picks[self.name]
            pairs = [(g[0].images["gray"], g[-1].images["gray"]) for g in groups]
            flow = quantise_flow(compute_flow_stack(pairs, estimator[0]), bound)
            return StreamOutput(flow, {"flow": {"algorithm": algorithm, "bound": bound, "quantised": QUANTISATION,
                                                "frame_indices": [[f.index for f in g] for g in groups]}})
        return step

    def load_input(self, array: np.ndarray, meta: Mapping[str, Any], settings: ViewSettings, rng) -> torch.Tensor:
        bound = float(meta.get("flow", {}).get("bound", 20.0))
        q = np.asarray(array[even_indices(len(array), settings.num_frames)])         # (T, 2, H, W) uint8
        flow = dequantise_flow(q, bound).transpose(0, 2, 3, 1) / bound                 # (T, H, W, 2) in [-1, 1]
        h, w = flow.shape[1:3]
        flow = resize_frames(flow, settings.resize)
        if flow.shape[1:3] != (h, w):  # displacements are in pixels: they scale with the image
            flow = flow * np.array([flow.shape[2] / w, flow.shape[1] / h], dtype=np.float32)
        flow = crop_frames(flow, settings.crop, rng)
        if flip_now(settings, rng):
            flow = flow[:, :, ::-1].copy()
            flow[..., 0] = -flow[..., 0]   # mirrored motion: x-flow changes sign
        return torch.from_numpy(np.ascontiguousarray(flow.transpose(3, 0, 1, 2), dtype=np.float32))  # (2, T, S, S)

    def input_shape(self, settings: ViewSettings) -> tuple[int, ...]:
        return 2, settings.num_frames, settings.crop, settings.crop


SPEC = FlowStream()
