"""The report's error analysis (issue 28): the test clips the method's fusion run gets wrong, most
confident first, each with its explanation card, and the mean Shapley value of each stream per
predicted class over every test clip.

``tools/report.py --errors N`` writes ``OUT/errors.md`` (the page), ``OUT/errors.json`` (its
numbers) and ``OUT/errors/<clip>/explanation.{json,png}`` for the N most confident mistakes. The
clips are read from the preprocessing cache the fusion run records (``pipeline.cache``), so
nothing is decoded again; the probabilities are the run's calibrated ones.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from core.storage import atomic_write_json, atomic_write_text
from explanations.explainer import Explainer
from explanations.output import write_explanation
from fusion.training import load_fusion_head
from streams.cache import CacheError, load_entries

ERRORS_DIR = "errors"


def error_analysis(fusion_run: str | os.PathLike, out_dir: str | os.PathLike, *, split: str = "Test",
                   cards: int = 10, clips: int | None = None, device: str = "cpu") -> dict[str, Any]:
    """Explain every labelled ``split`` clip of the cache recorded by ``fusion_run`` (``clips``:
    only the first N); write the cards of the ``cards`` most confident mistakes and
    ``errors.md``/``errors.json`` into ``out_dir``. Returns the JSON: ``mistakes`` (clip, label,
    predicted, confidence, card), ``mean_shapley`` ({predicted class: {stream: mean Shapley
    value}}) and ``clips_per_class``."""
    explainer = Explainer.from_run(fusion_run, device=device)
    _, recipe, _ = load_fusion_head(fusion_run)
    pipeline = recipe.get("pipeline") or {}
    cache = pipeline.get("cache")
    if not cache:
        raise CacheError(f"{fusion_run}: the fusion run records no preprocessing cache (pipeline.cache)")
    entries = load_entries(cache, split=split, labelled=True)
    if not entries:
        raise CacheError(f"{cache}: no labelled clips of split {split!r}")
    out = Path(out_dir)
    rows, shapley = [], {}
    kept = {}
    for e in entries[:clips]:
        expl = explainer.explain_entry(e, e.clip_id)
        r = expl.record
        label = e.class_names[int(e.label)]
        pred = r["prediction"]["label"]
        conf = float(r["prediction"]["probabilities"][pred])
        rows.append({"clip": e.clip_id, "label": label, "predicted": pred, "confidence": conf})
        shapley.setdefault(pred, []).append({s: v["shapley"] for s, v in r["streams"].items()})
        if pred != label:
            kept[e.clip_id] = expl
    mistakes = sorted((r for r in rows if r["predicted"] != r["label"]), key=lambda r: -r["confidence"])
    for r in mistakes[:cards]:
        card_dir = out / ERRORS_DIR / r["clip"].replace("/", "_")
        write_explanation(kept[r["clip"]], card_dir)
        r["card"] = f"{ERRORS_DIR}/{card_dir.name}/explanation.png"
    streams = list(explainer.predictor.stream_order)
    data = {"run": str(fusion_run), "split": split, "clips": len(rows), "mistakes": mistakes,
            "mean_shapley": {c: {s: float(np.mean([v[s] for v in vals])) for s in streams}
                             for c, vals in sorted(shapley.items())},
            "clips_per_class": {c: len(v) for c, v in sorted(shapley.items())}}
    atomic_write_json(out / "errors.json", data)
    atomic_write_text(out / "errors.md", errors_markdown(data, streams))
    return data


def errors_markdown(data: dict[str, Any], streams: list[str]) -> str:
    """The error-analysis page: the mean-Shapley table, then the mistakes with their cards."""
    lines = [f"# Error analysis: {data['run']}, {data['split']}", "",
             f"{len(data['mistakes'])} of {data['clips']} clips predicted wrongly. Mean Shapley value of each "
             "stream (for the probability of the predicted class) over the clips predicted as each class:", "",
             "| predicted | clips | " + " | ".join(streams) + " |", "|---|---|" + "---|" * len(streams)]
    for c, means in data["mean_shapley"].items():
        cells = " | ".join(f"{means[s]:+.3f}" for s in streams)
        lines.append(f"| {c} | {data['clips_per_class'][c]} | {cells} |")
    lines += ["", "## The mistakes, most confident first", ""]
    for r in data["mistakes"]:
        card = f" ([card]({r['card']}))" if "card" in r else ""
        lines.append(f"* `{r['clip']}`: {r['label']} predicted as {r['predicted']} ({r['confidence']:.2f}){card}")
        if "card" in r:
            lines += ["", f"  ![{r['clip']}]({r['card']})", ""]
    return "\n".join(lines) + "\n"
