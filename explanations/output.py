"""Writing explanations: ``explanation.json`` and the card ``explanation.png`` per clip, the
optional annotated mp4, and the clips of a preprocessing cache explained in turn."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from core.storage import atomic_write_json
from explanations.card import explanation_card
from explanations.explainer import Explainer, Explanation
from streams.cache import CacheError, load_entries
from training.plots import save_figure

#: seconds each keyframe stays on screen in the annotated video
SECONDS_PER_KEYFRAME = 0.5


def write_explanation(expl: Explanation, out_dir: str | os.PathLike, *, video: bool = False) -> list[Path]:
    """``out_dir/explanation.json`` and ``explanation.png`` (and with ``video`` an annotated
    ``explanation.mp4``: the keyframes, each with its time, contribution and the people's boxes);
    returns the paths written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "explanation.json", expl.record)
    fig = explanation_card(expl)
    save_figure(out / "explanation.png", fig, dpi=110)
    written = [out / "explanation.json", out / "explanation.png"]
    if video and expl.keyframe_images is not None and len(expl.keyframe_images):
        from media.encoding import write_mp4

        frames = annotated_keyframes(expl)
        fps = 10.0
        repeat = max(1, int(round(SECONDS_PER_KEYFRAME * fps)))
        write_mp4(out / "explanation.mp4", np.repeat(frames, repeat, axis=0), fps=fps)
        written.append(out / "explanation.mp4")
    return written


def annotated_keyframes(expl: Explanation, *, height: int = 360) -> np.ndarray:
    """(N, H, W, 3) uint8: each keyframe scaled to ``height`` px (even sides), with the label,
    its time and contribution, and each person's box and contribution drawn on it."""
    r = expl.record
    images = expl.keyframe_images
    h0, w0 = images.shape[1:3]
    scale = height / h0
    w = int(round(w0 * scale / 2)) * 2
    people = r.get("people") or []
    out = []
    for i, img in enumerate(images):
        frame = cv2.resize(np.ascontiguousarray(img), (w, height), interpolation=cv2.INTER_LINEAR)
        k = r["keyframes"][i] if i < len(r["keyframes"]) else None
        text = r["prediction"]["label"] + (f"  t={k['time_s']:.1f}s  {k['contribution']:+.2f}" if k else "")
        cv2.putText(frame, text, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (255, 255, 255), 2)
        for p in people:
            size = p.get("frame_size") or [w0, h0]
            for b in p["boxes"]:
                if b["keyframe"] != i:
                    continue
                x0, y0, x1, y1 = (int(v * w / size[0]) if j % 2 == 0 else int(v * height / size[1])
                                  for j, v in enumerate(b["box"]))
                contrib = p["contribution"] or 0.0
                colour = (46, 125, 50) if contrib >= 0 else (198, 40, 40)
                cv2.rectangle(frame, (x0, y0), (x1, y1), colour, 2)
                cv2.putText(frame, f"P{p['id']} {contrib:+.2f}", (x0, max(12, y0 - 4)), cv2.FONT_HERSHEY_SIMPLEX,
                            0.45, colour, 1)
        out.append(frame)
    return np.stack(out)


def explain_cache(explainer: Explainer, cache: str | os.PathLike, split: str, clips: int | None,
                  out_dir: str | os.PathLike, *, video: bool = False) -> list[dict]:
    """Explain the first ``clips`` clips (None: all) of ``split`` in the preprocessing cache
    ``cache``, each into ``out_dir/<clip id>/``; returns their records."""
    entries = load_entries(cache, split=split)
    if not entries:
        raise CacheError(f"{cache}: no clips of split {split!r} (is it a cache made by tools/preprocess.py?)")
    records = []
    for e in entries[:clips]:
        expl = explainer.explain_entry(e, e.clip_id)
        expl.record["label"] = None if e.label is None else e.class_names[int(e.label)]
        write_explanation(expl, Path(out_dir) / e.clip_id.replace("/", "_"), video=video)
        records.append(expl.record)
    return records


def explain_files(explainer: Explainer, paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *,
                  video: bool = False) -> list[dict]:
    """Explain each file of ``paths``: into ``out_dir`` for one file, ``out_dir/<file stem>/`` for
    several. A path that is not a file is refused (``FileNotFoundError``) before any work."""
    for p in paths:
        if not Path(p).is_file():
            raise FileNotFoundError(2, "no such clip", os.fspath(p))
    records = []
    for p in paths:
        expl = explainer.explain_path(p)
        write_explanation(expl, Path(out_dir) if len(paths) == 1 else Path(out_dir) / Path(p).stem, video=video)
        records.append(expl.record)
    return records
