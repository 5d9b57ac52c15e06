"""Explanation cost: explaining a clip (:mod:`explanations`, without the Grad-CAM maps unless
asked) against predicting it with the same pipeline, interleaved in one run (issue 28's goal:
explaining costs at most 2x predicting)."""
from __future__ import annotations

import os
from pathlib import Path

from benchmarks.timing import interleaved, machine_info, paired_ratio
from explanations.explainer import Explainer

#: the most an explanation (without the maps) may cost, in predictions of the same clip
GOAL_RATIO = 2.0


def explain_benchmark(video: str | os.PathLike, *, explainer: Explainer, repeats: int = 5, warmup: int = 1,
                      gradcam: bool = False) -> dict:
    """Seconds per clip of ``predict`` (:meth:`fusion.prediction.Predictor.predict`) and ``explain``
    (:meth:`Explainer.explain_path`, maps off) on ``video``, and with ``gradcam`` also
    ``explain_gradcam``; interleaved ``repeats`` times after ``warmup`` rounds (both include the
    preprocessing of the file). ``ratio``: explain / predict round by round; ``goal_met``: its
    median is at most :data:`GOAL_RATIO`."""
    plain = Explainer(explainer.predictor, gradcam=False)
    runs = {"predict": lambda: {"_result": explainer.predictor.predict(video)["label"]},
            "explain": lambda: {"_result": plain.explain_path(video).record["prediction"]["label"]}}
    if gradcam:
        maps = Explainer(explainer.predictor, gradcam=True)
        runs["explain_gradcam"] = lambda: {"_result": maps.explain_path(video).record["prediction"]["label"]}
    timed = interleaved(runs, repeats=repeats, warmup=warmup)
    ratio = paired_ratio(timed, "explain", "predict")
    out = {"benchmark": "explain", "video": str(Path(video)),
           **{f"{name}_median_s": t["wall"]["median"] for name, t in timed.items()},
           "ratio_median": ratio["median"],
           **{f"{name}_s": t["wall"] for name, t in timed.items()},
           "ratio_explain_to_predict": ratio, "goal_ratio": GOAL_RATIO,
           "goal_met": ratio["median"] <= GOAL_RATIO, "machine": machine_info()}
    if gradcam:
        out["ratio_gradcam_to_predict"] = paired_ratio(timed, "explain_gradcam", "predict")
    return out
