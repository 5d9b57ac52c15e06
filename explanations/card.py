"""The one-page card of an :class:`~explanations.explainer.Explanation` (matplotlib, no GUI).

Top row: the prediction's probabilities, each stream's Shapley value (grey: missing) and each
second of audio's contribution. Then the keyframe strip, each frame titled with its time and its
contribution (green border: it supports the predicted class, red: it speaks against it), the
people (their boxes on the keyframe where most of them are seen, each with its contribution, and
one crop each), and, when computed, the Grad-CAM maps of the visual and flow streams over the
keyframes where they peak, beside the visual stream's spatial attention.
"""
from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from explanations.explainer import Explanation

SUPPORT, AGAINST, MISSING = "#2e7d32", "#c62828", "#9e9e9e"


def _signed_colours(values) -> list[str]:
    return [SUPPORT if v >= 0 else AGAINST for v in values]


def _bars(ax, names, values, title, colours=None, unit=""):
    ax.barh(range(len(names)), values, color=colours or _signed_colours(values))
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.5)
    ax.set_title(title, fontsize=8)
    ax.tick_params(axis="x", labelsize=6)
    if unit:
        ax.set_xlabel(unit, fontsize=6)


def _image(ax, img, title=None, border=None):
    ax.imshow(img)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=6)
    if border:
        for spine in ax.spines.values():
            spine.set_edgecolor(border)
            spine.set_linewidth(2)


def _overlay(img: np.ndarray, heat: np.ndarray, box) -> np.ndarray:
    """``img`` (H, W, 3) uint8 with ``heat`` (h, w) in [0, 1] laid over the fractional ``box``."""
    import cv2

    out = img.astype(np.float32) / 255
    h, w = img.shape[:2]
    x0, y0, x1, y1 = int(box[0] * w), int(box[1] * h), max(int(box[2] * w), int(box[0] * w) + 1), \
        max(int(box[3] * h), int(box[1] * h) + 1)
    up = cv2.resize(heat.astype(np.float32), (x1 - x0, y1 - y0), interpolation=cv2.INTER_LINEAR)
    red = np.zeros_like(out[y0:y1, x0:x1])
    red[..., 0] = 1.0
    alpha = 0.6 * up[..., None]
    out[y0:y1, x0:x1] = (1 - alpha) * out[y0:y1, x0:x1] + alpha * red
    return (out * 255).clip(0, 255).astype(np.uint8)


def explanation_card(expl: Explanation) -> Figure:
    """The card (one A4-landscape-like page) of ``expl``."""
    r = expl.record
    fig = Figure(figsize=(11.7, 8.3))
    grid = fig.add_gridspec(4, 16, height_ratios=[1.2, 0.9, 1.2, 1.2], hspace=0.6, wspace=0.3)
    pred = r["prediction"]
    calibrated = f"calibrated, T={pred['temperature']:.2f}" if pred.get("calibrated") else "raw"
    fig.suptitle(f"{r['video']}\n{pred['label']} ({calibrated})", fontsize=10)

    ax = fig.add_subplot(grid[0, 0:4])
    names = list(pred["probabilities"])
    _bars(ax, names, [pred["probabilities"][n] for n in names], "probabilities",
          colours=[SUPPORT if n == pred["label"] else MISSING for n in names])
    ax = fig.add_subplot(grid[0, 5:10])
    streams = r["streams"]
    _bars(ax, [s if v["available"] else f"{s} (missing)" for s, v in streams.items()],
          [v["shapley"] for v in streams.values()], "streams: Shapley value",
          colours=[(SUPPORT if v["shapley"] >= 0 else AGAINST) if v["available"] else MISSING
                   for v in streams.values()], unit=r["shapley_check"]["value"])
    ax = fig.add_subplot(grid[0, 11:16])
    secs = r.get("audio_seconds") or []
    if secs:
        _bars(ax, [f"{s['start_s']:.0f}-{s['end_s']:.0f} s" for s in secs], [s["contribution"] for s in secs],
              "audio: each second occluded", unit="audio logit change")
    else:
        ax.axis("off")
        ax.set_title("audio: missing", fontsize=8)

    kfs = r.get("keyframes") or []
    images = expl.keyframe_images
    for i, k in enumerate(kfs[:16]):
        ax = fig.add_subplot(grid[1, i])
        img = images[i] if images is not None and i < len(images) else np.full((8, 8, 3), 230, np.uint8)
        rule = f"r{k['rule']}" if k.get("rule") else ""
        _image(ax, img, f"{k['time_s']:.1f}s {rule}\n{k['contribution']:+.2f}", _signed_colours([k["contribution"]])[0])
    if not kfs:
        ax = fig.add_subplot(grid[1, :])
        ax.axis("off")
        ax.set_title("keyframes: none (no video frames)", fontsize=8)

    _people_row(fig, grid, expl)
    _heat_row(fig, grid, expl)
    return fig


def _people_row(fig: Figure, grid, expl: Explanation) -> None:
    people = expl.record.get("people") or []
    ax = fig.add_subplot(grid[2, 0:6])
    images = expl.keyframe_images
    if not people or images is None:
        ax.axis("off")
        ax.set_title("people: none found" if not people else "people", fontsize=8)
        return
    counts = np.bincount([b["keyframe"] for p in people for b in p["boxes"]], minlength=len(images))
    k = int(counts[:len(images)].argmax())
    _image(ax, images[k], f"people at {expl.record['keyframes'][k]['time_s']:.1f} s (face-stream logit change)")
    size = people[0].get("frame_size") or [images.shape[2], images.shape[1]]
    sx, sy = images.shape[2] / size[0], images.shape[1] / size[1]
    for p in people:
        for b in p["boxes"]:
            if b["keyframe"] != k:
                continue
            x0, y0, x1, y1 = b["box"]
            contrib = p["contribution"]
            colour = MISSING if contrib is None else _signed_colours([contrib])[0]
            ax.add_patch(Rectangle((x0 * sx, y0 * sy), (x1 - x0) * sx, (y1 - y0) * sy, fill=False,
                                   edgecolor=colour, linewidth=1.5))
            ax.text(x0 * sx, y0 * sy - 1, f"P{p['id']} {'' if contrib is None else f'{contrib:+.2f}'}",
                    color=colour, fontsize=6, va="bottom")
    if expl.face_crops is not None:
        for i, p in enumerate(people[:8]):
            ax = fig.add_subplot(grid[2, 7 + i])
            crop = expl.face_crops[p["crops"][0]] if p["crops"] else np.full((8, 8, 3), 230, np.uint8)
            contrib = p["contribution"] or 0.0
            _image(ax, crop, f"P{p['id']} {contrib:+.2f}\n{len(p['crops'])} crops", _signed_colours([contrib])[0])


def _heat_row(fig: Figure, grid, expl: Explanation) -> None:
    images = expl.keyframe_images
    if not expl.gradcam or images is None:
        ax = fig.add_subplot(grid[3, :])
        ax.axis("off")
        ax.set_title("regions: Grad-CAM not computed (tools/explain.py --gradcam)" if not expl.gradcam
                     else "regions: no keyframes", fontsize=8)
        return
    col = 0
    for s, cam in expl.gradcam.items():
        mass = cam.reshape(len(cam), -1).sum(1)
        for t in np.argsort(-mass)[:2]:
            frame = int(round((t + 0.5) * len(images) / len(cam) - 0.5))
            ax = fig.add_subplot(grid[3, col:col + 2])
            _image(ax, _overlay(images[frame], cam[t], expl.view_box[s]), f"{s} Grad-CAM\nkeyframe {frame}")
            col += 2
            if s in expl.attention:
                att = expl.attention[s]
                ta = min(int(t * len(att) / len(cam)), len(att) - 1)
                ax = fig.add_subplot(grid[3, col:col + 2])
                _image(ax, _overlay(images[frame], att[ta], expl.view_box[s]), f"{s} attention\nkeyframe {frame}")
                col += 2
            if col >= 16:
                return
