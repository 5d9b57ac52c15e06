"""``predict`` from the runs under PyTorch against a release bundle under ONNX Runtime, on the same
clip in the same run, interleaved (A B A B ...): the keyframe scorer on the clip's frames, the
streams and the fusion head on the clip's precomputed inputs, and the whole prediction of the
file (decoding, keyframes, faces, stream inputs, networks). Medians, spreads and the ratio per
round (PyTorch / ONNX Runtime: above 1, ONNX Runtime is faster); the issue's goals (issue 30)
are checked and reported, met or not."""
from __future__ import annotations

import os
from pathlib import Path

from benchmarks.inputs import clip_info
from benchmarks.timing import interleaved, machine_info, paired_ratio
from fusion.prediction import Predictor
from media.decoding import read_frames

#: issue 30's speed goals: streams and fusion this many times faster than PyTorch eager, and
#: single-clip preprocessing with the bundled scorer within this many seconds (a 5 s 720p clip)
GOALS = {"networks_speedup": 1.3, "preprocess_s": 1.0}
ENGINES = ("torch", "onnxruntime")


def _networks(predictor: Predictor, inputs, name: str):
    def run() -> dict:
        r = predictor.predict_inputs(inputs, name)
        t = r["timings_s"]
        streams = sum(v for k, v in t.items() if k.startswith("stream_"))
        return {"streams_s": streams, "fusion_s": t["fusion"], "_result": r}
    return run


def _whole(predictor: Predictor, video: str):
    def run() -> dict:
        r = predictor.predict(video)
        t = r["timings_s"]
        return {"preprocess_s": t.get("compute_total", 0.0), "scoring_s": t.get("scoring", 0.0), "_result": r}
    return run


def _median(timed: dict, name: str, stage: str | None = None) -> float:
    return timed[name]["stages"][stage] if stage else timed[name]["wall"]["median"]


def predict_benchmark(video: str | os.PathLike, *, torch_predictor: Predictor, bundle_predictor: Predictor,
                      repeats: int = 5, warmup: int = 1, network_repeats: int | None = None,
                      scorer_frames: int = 48) -> dict:
    """Time the two predictors on ``video`` (see the module docstring); ``network_repeats``: rounds
    of the streams + fusion measurement (default 4 x ``repeats``: it is cheap); ``scorer_frames``:
    frames of the clip the scorers rate per round. Returns one flat dict: per stage and whole, each
    engine's median seconds, the per-round ratio's median and spread, the largest probability
    difference between the engines and whether the goals (:data:`GOALS`) are met."""
    video = str(video)
    predictors = dict(zip(ENGINES, (torch_predictor, bundle_predictor)))
    out: dict = {"benchmark": "predict", "video": video, "clip": clip_info(Path(video)), "machine": machine_info()}
    if all(p.preprocessor.scorer is not None for p in predictors.values()):
        frames = [f.image for f in read_frames(video)[:scorer_frames]]

        def scoring(p: Predictor):
            return lambda: {"_result": p.preprocessor.scorer.score(frames).shape}

        scorer = interleaved({e: scoring(p) for e, p in predictors.items()}, repeats=repeats, warmup=warmup)
        out["scorer_frames"] = len(frames)
        for e in ENGINES:
            out[f"scorer_{e}_s"] = _median(scorer, e)
        out["scorer_ratio"] = paired_ratio(scorer, "torch", "onnxruntime")
    inputs = torch_predictor.preprocessor.compute(video, torch_predictor.stream_order)
    nets = interleaved({e: _networks(p, inputs, video) for e, p in predictors.items()},
                       repeats=network_repeats or 4 * repeats, warmup=warmup)
    for e in ENGINES:
        out[f"networks_{e}_s"] = _median(nets, e)
        out[f"streams_{e}_s"] = _median(nets, e, "streams_s")
        out[f"fusion_{e}_s"] = _median(nets, e, "fusion_s")
    out["networks_ratio"] = paired_ratio(nets, "torch", "onnxruntime")
    out["streams_ratio"] = out["streams_torch_s"] / max(out["streams_onnxruntime_s"], 1e-9)
    out["fusion_ratio"] = out["fusion_torch_s"] / max(out["fusion_onnxruntime_s"], 1e-9)
    whole = interleaved({e: _whole(p, video) for e, p in predictors.items()}, repeats=repeats, warmup=warmup)
    for e in ENGINES:
        out[f"whole_{e}_s"] = _median(whole, e)
        out[f"preprocess_{e}_s"] = _median(whole, e, "preprocess_s")
        out[f"scoring_in_predict_{e}_s"] = _median(whole, e, "scoring_s")
    out["whole_ratio"] = paired_ratio(whole, "torch", "onnxruntime")
    a, b = whole["torch"]["result"], whole["onnxruntime"]["result"]
    out["same_label"] = a["label"] == b["label"]
    out["max_prob_difference"] = max(abs(a["probs"][c] - b["probs"][c]) for c in a["probs"])
    out["goal_networks_speedup"] = GOALS["networks_speedup"]
    out["goal_networks_met"] = out["networks_ratio"]["median"] >= GOALS["networks_speedup"]
    out["goal_preprocess_s"] = GOALS["preprocess_s"]
    out["goal_preprocess_met"] = out["preprocess_onnxruntime_s"] <= GOALS["preprocess_s"]
    return out


def predict_markdown(result: dict) -> str:
    """The results page body of :func:`predict_benchmark`'s result: per stage, both engines'
    median seconds and the ratio (median per round where measured per round), then the goals."""
    def ratio(key: str) -> str:
        r = result.get(key)
        if isinstance(r, dict):
            return f"{r['median']:.2f} (min {r['min']:.2f}, max {r['max']:.2f}, n {r['n']})"
        return f"{r:.2f} (of medians)" if isinstance(r, (int, float)) else "n/a"

    clip = result["clip"]
    lines = [f"Clip: {result['video']} ({clip['width']}x{clip['height']}, {clip['duration_s']} s, "
             f"{clip['fps']} fps); machine: {result['machine']}.", "",
             "| stage | PyTorch (runs) s | ONNX Runtime (bundle) s | PyTorch / ONNX Runtime |", "|---|---|---|---|"]
    for stage, title in (("scorer", f"keyframe scorer ({result.get('scorer_frames', 0)} frames)"),
                         ("streams", "streams"), ("fusion", "fusion head"), ("networks", "streams + fusion"),
                         ("preprocess", "preprocessing (in predict)"), ("whole", "whole predict")):
        if f"{stage}_torch_s" in result:
            lines.append(f"| {title} | {result[f'{stage}_torch_s']:.4f} | {result[f'{stage}_onnxruntime_s']:.4f} | "
                         f"{ratio(f'{stage}_ratio')} |")
    lines += ["", f"Same label: {result['same_label']}; largest probability difference "
                  f"{result['max_prob_difference']:.2e}.", "",
              f"Goal: streams + fusion at least {result['goal_networks_speedup']}x faster under ONNX Runtime: "
              f"{'met' if result['goal_networks_met'] else 'not met'} ({ratio('networks_ratio')}).",
              f"Goal: preprocessing with the bundled scorer within {result['goal_preprocess_s']} s: "
              f"{'met' if result['goal_preprocess_met'] else 'not met'} "
              f"({result['preprocess_onnxruntime_s']:.3f} s)."]
    return "\n".join(lines)
