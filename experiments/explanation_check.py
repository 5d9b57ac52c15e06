"""Checking explanations against synthetic ground truth (issue 28, ``tools/explain.py --check``).

The synthetic generator knows where every cue is, so three kinds of clip have a known answer:

* ``modality``: the class (Positive or Negative) is shown by ONE modality only, the others show
  Neutral; carriers cycle through visual, face, flow and audio. **modality_top1**: the carrier has
  the largest Shapley value for the true class. Chance: one over the clip's available streams.
* ``person``: 2-5 people, ONE of whom shows the class on their face, the others neutral
  (``face_carrier``; the other modalities show the class). **person_top1**: the tracked person
  matching the carrier (largest IoU with their head boxes over the keyframes) has the largest
  contribution. Chance: one over the tracked people.
* ``peak``: the cues swell to full strength for about one second (:mod:`synthetic.peaks`).
  **keyframes_in_peak**: the keyframe with the largest contribution lies within 0.5 s of the
  peak's centre. Chance: the share of that clip's keyframes inside that second (what picking one
  of its keyframes at random gives; ``uniform``: 1 s / duration, what uniformly spread frames give).

**gradcam_in_region**, on every clip whose wall shows the class (``person``, ``peak`` and
visual-carrier clips): the share of the visual stream's Grad-CAM mass on the wall, the region
that carries the visual cue (:func:`synthetic.scenes.people_masks` gives the rest). Its ``rate`` is
the mean share, ``chance`` the mean share of the wall in the map's view (a flat map).

Every rate comes with a 95 % percentile-bootstrap interval over clips
(:func:`training.statistics.bootstrap_interval`). The clips are generated into ``OUT/clips``,
preprocessed with the run's recipe and explained for their TRUE class with the run's models; the
kinds are interleaved and ``check.json`` is rewritten after each round, so a run cut short keeps
what it measured.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import cv2
import numpy as np

from core.storage import atomic_write_json, read_json
from explanations.explainer import Explainer, Explanation
from explanations.gradcam import region_mass
from explanations.output import write_explanation
from explanations.tracking import box_iou
from media.encoding import write_mp4
from synthetic.cues import CLASSES, MODALITIES
from synthetic.group import render_clip_plan
from synthetic.scenes import people_masks
from training.statistics import bootstrap_interval

KINDS = ("modality", "person", "peak")
CHECKS = ("modality_top1", "person_top1", "keyframes_in_peak", "gradcam_in_region")
#: beside the four: person_top1 over the clips whose carrier the face stream's crops include
EXTRA_CHECKS = ("person_top1_carrier_in_crops",)
NEUTRAL = CLASSES.index("Neutral")
EMOTIONAL = tuple(i for i, c in enumerate(CLASSES) if c != "Neutral")
#: cards kept per kind, for the docs
CARDS_PER_KIND = 2


def clip_geometry(runs: str | os.PathLike) -> dict[str, Any]:
    """Duration (s), size (px), fps and sample rate of the demo's synthetic clips (its
    ``data/synthetic.json``), else the generator's defaults."""
    params = ((read_json(Path(runs) / "data" / "synthetic.json") or {}).get("params") or {})
    return {"duration": float(params.get("duration", 3.0)), "width": int(params.get("width", 320)),
            "height": int(params.get("height", 180)), "fps": float(params.get("fps", 15.0)),
            "sample_rate": int(params.get("sample_rate", 16000))}


def draw_clip(kind: str, index: int, geometry: Mapping[str, Any], *, seed: int = 0) -> dict[str, Any]:
    """One check clip in memory: ``frames``, ``audio``, ``record`` (the generator's), ``label``,
    ``truth`` (the carrier modality, the carrier person's head boxes per frame, or the peak),
    ``masks`` (T, H, W) where the people are, or None when the wall does not show the class."""
    rng = np.random.default_rng([seed, KINDS.index(kind), index])
    label = EMOTIONAL[index % len(EMOTIONAL)]
    shown, n_faces, carrier, peak = None, None, None, False
    if kind == "modality":
        modality = MODALITIES[(index // len(EMOTIONAL)) % len(MODALITIES)]
        shown = {m: label if m == modality else NEUTRAL for m in MODALITIES}
    elif kind == "person":
        n_faces = 2 + index % 4
        carrier = int(rng.integers(n_faces))
    else:
        peak = True
    frames, audio, record, (plan, boxes) = render_clip_plan(
        label=label, rng=rng, shown=shown, with_audio=True, with_faces=True, n_faces=n_faces, peak=peak,
        cue_jitter=0.2, face_carrier=carrier, **geometry)
    wall_shows_class = kind != "modality" or shown["visual"] == label
    truth: Any = {"modality": shown and next((m for m in MODALITIES if shown[m] == label), None),
                  "person": carrier is not None and [b[carrier] for b in boxes], "peak": record["peak"]}[kind]
    return {"frames": frames, "audio": audio, "record": record, "label": label, "truth": truth,
            "masks": people_masks(plan, len(frames)) if wall_shows_class else None}


def score_modality(record: Mapping[str, Any], carrier: str) -> tuple[bool, float]:
    """``(the carrier has the largest Shapley value, chance)``."""
    available = {s: v["shapley"] for s, v in record["streams"].items() if v["available"]}
    if not available:
        return False, 0.0
    return max(available, key=available.get) == carrier, 1.0 / len(available)


def score_person(record: Mapping[str, Any], carrier_boxes: list, fps: float, width: int
                 ) -> tuple[bool, float, bool]:
    """``(the tracked person matching the carrier contributes most, chance, the carrier is among
    the face stream's crops)``: the match is the person whose boxes overlap the carrier's head
    boxes (``carrier_boxes`` per frame, in a frame ``width`` px wide) most on average; a clip
    where no one overlaps the carrier counts as a miss. A carrier without crops is one the face
    stream never saw (a detection missed, or a cache made with ``crop_order: confidence``), so no occlusion of its
    input can find them; ``person_top1_carrier_in_crops`` counts the clips where it could."""
    people = [p for p in record["people"] if p["contribution"] is not None]
    if not people:
        return False, 0.0, False

    def overlap(p) -> float:
        scale = width / float((p.get("frame_size") or [width])[0])
        ious = [box_iou([v * scale for v in b["box"]],
                        carrier_boxes[min(len(carrier_boxes) - 1, int(round((b["time_s"] or 0.0) * fps)))])
                for b in p["boxes"]]
        return float(np.mean(ious)) if ious else 0.0

    matches = [overlap(p) for p in people]
    match = int(np.argmax(matches))
    top = int(np.argmax([p["contribution"] for p in people]))
    found = matches[match] > 0
    return found and top == match, 1.0 / len(people), found and bool(people[match]["crops"])


def score_peak(record: Mapping[str, Any], peak: Mapping[str, float]) -> tuple[bool, float] | None:
    """``(the top keyframe lies in the emotional second, share of keyframes there)``; None without keyframes."""
    kfs = record["keyframes"]
    if not kfs:
        return None
    inside = [abs(k["time_s"] - peak["center_s"]) <= 0.5 for k in kfs]
    top = int(np.argmax([k["contribution"] for k in kfs]))
    return inside[top], float(np.mean(inside))


def score_region(expl: Explanation, masks: np.ndarray, fps: float) -> tuple[float, float] | None:
    """``(Grad-CAM mass share on the wall, the wall's share of the view)`` of the visual stream;
    None without a map."""
    cam = expl.gradcam.get("visual")
    if cam is None or not expl.record["keyframes"]:
        return None
    idx = [min(len(masks) - 1, int(round(k["time_s"] * fps))) for k in expl.record["keyframes"]]
    wall = 1.0 - masks[idx].mean(0)                                                       # (H, W)
    h, w = wall.shape
    x0, y0, x1, y1 = expl.view_box["visual"]
    view = wall[int(y0 * h):max(int(y1 * h), int(y0 * h) + 1), int(x0 * w):max(int(x1 * w), int(x0 * w) + 1)]
    frac = cv2.resize(view.astype(np.float32), (cam.shape[2], cam.shape[1]), interpolation=cv2.INTER_AREA)
    return region_mass(cam.sum(0), frac), float(frac.mean())


def summarise(values: list[float], chances: list[float], *, seed: int = 0) -> dict[str, Any]:
    """``{rate, ci95, chance, clips}`` of per-clip values (1/0 hits, or shares)."""
    if not values:
        return {"rate": None, "ci95": None, "chance": None, "clips": 0}
    v = np.asarray(values, dtype=np.float64)
    lo, hi = bootstrap_interval(lambda idx: v[idx].mean(axis=1), len(v), seed=seed)
    return {"rate": float(v.mean()), "ci95": [lo, hi], "chance": float(np.mean(chances)), "clips": len(v)}


def run_check(runs: str | os.PathLike, out: str | os.PathLike, *, clips: int = 60, device: str = "cpu",
              calibrated: bool = True, seed: int = 0) -> dict[str, Any]:
    """Generate ``clips`` clips of each kind, explain them with ``runs/fusion`` and write
    ``out/check.json`` (``checks``: the four rates, ``details``: one row per clip); returns it."""
    out = Path(out)
    explainer = Explainer.from_run(Path(runs) / "fusion", device=device, calibrated=calibrated, gradcam=True)
    geometry = clip_geometry(runs)
    fps = geometry["fps"]
    found: dict[str, tuple[list[float], list[float]]] = {c: ([], []) for c in CHECKS + EXTRA_CHECKS}
    details: list[dict] = []
    summary: dict[str, Any] = {}
    for i in range(clips):
        for kind in KINDS:
            clip = draw_clip(kind, i, geometry, seed=seed)
            path = out / "clips" / f"{kind}_{i:03d}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_mp4(path, clip["frames"], fps=fps, audio=clip["audio"], sample_rate=geometry["sample_rate"])
            expl = explainer.explain_path(path, target=clip["label"])
            r = expl.record
            row: dict[str, Any] = {"clip": path.name, "kind": kind, "label": CLASSES[clip["label"]],
                                   "predicted": r["prediction"]["label"]}
            scored = None
            if kind == "modality":
                scored, check = score_modality(r, clip["truth"]), "modality_top1"
                row["carrier"] = clip["truth"]
            elif kind == "person":
                *scored, in_crops = score_person(r, clip["truth"], fps, geometry["width"])
                check = "person_top1"
                row["carrier"] = clip["record"]["face_carrier"]
                row["carrier_in_crops"] = in_crops
                if in_crops:
                    found[EXTRA_CHECKS[0]][0].append(float(scored[0]))
                    found[EXTRA_CHECKS[0]][1].append(scored[1])
            else:
                scored, check = score_peak(r, clip["truth"]), "keyframes_in_peak"
            if scored is not None:
                found[check][0].append(float(scored[0]))
                found[check][1].append(scored[1])
                row[check] = bool(scored[0])
            if clip["masks"] is not None:
                region = score_region(expl, clip["masks"], fps)
                if region is not None:
                    found["gradcam_in_region"][0].append(region[0])
                    found["gradcam_in_region"][1].append(region[1])
                    row["gradcam_in_region"] = region[0]
            if i < CARDS_PER_KIND:
                write_explanation(expl, out / "cards" / f"{kind}_{i:03d}")
            details.append(row)
        summary = {"runs": str(runs), "clips_per_kind": i + 1, "seed": seed, "geometry": geometry,
                   "checks": {c: summarise(*found[c], seed=seed) for c in CHECKS + EXTRA_CHECKS},
                   "uniform_keyframes_in_peak": min(1.0, 1.0 / geometry["duration"]),
                   "details": details}
        atomic_write_json(out / "check.json", summary)
    return summary


def check_markdown(summary: Mapping[str, Any]) -> str:
    """The results page's body: the four checks with intervals and chance levels."""
    lines = [f"{summary['clips_per_kind']} synthetic clips of each kind, explained for their true class with the "
             f"models of `{summary['runs']}` (seed {summary['seed']}). What each check counts: "
             "[the explanations guide](../guides/explanations.md#checked-against-ground-truth).", "",
             "| check | rate | 95 % interval | chance | clips |", "|---|---|---|---|---|"]
    for name, v in summary["checks"].items():
        if v["rate"] is None:
            lines.append(f"| {name} | n/a | | | 0 |")
            continue
        lines.append(f"| {name} | {v['rate']:.3f} | {v['ci95'][0]:.3f} - {v['ci95'][1]:.3f} | {v['chance']:.3f} | "
                     f"{v['clips']} |")
    lines += ["", f"Uniformly spread keyframes would put {summary['uniform_keyframes_in_peak']:.3f} of them in the "
              "emotional second (the `chance` of keyframes_in_peak is the share of each clip's own keyframes there)."]
    return "\n".join(lines) + "\n"
