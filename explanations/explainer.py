"""One clip's explanation: which streams, which moments, which people, which regions.

:class:`Explainer` wraps the trained pipeline of a fusion run (:class:`fusion.prediction.Predictor`)
and, for a video file or a clip already in a preprocessing cache, returns an :class:`Explanation`
whose ``record`` is the JSON ``tools/explain.py`` writes:

* ``prediction``: ``label`` and ``probabilities`` (calibrated with the run's temperature where it
  has one: ``calibrated``, ``temperature``); ``explained``: the class every value below is about
  (the predicted one unless another is asked for);
* ``streams``: per stream of the head, ``shapley`` (its exact Shapley value for the predicted
  class's probability, :mod:`explanations.shapley`; 0 for a stream the clip lacks), ``available``
  and the stream's own ``probabilities`` (None when missing);
* ``shapley_check``: ``full`` (the probability with every available stream), ``empty`` (every
  stream missing), ``sum`` (of the Shapley values; equals ``full - empty``) and ``error``;
* ``keyframes``: per keyframe ``time_s``, ``score`` (the selector's intensity), ``rule`` (the
  method's rule that chose it, 4 or 5; None for uniform picks or when the selection is unknown),
  ``reason``, and ``contribution``: the sum over the visual and face streams (``streams``) of the
  change in the predicted class's logit when the keyframe is replaced by its neighbour
  (:mod:`explanations.occlusion`);
* ``audio_seconds``: per second of the spectrogram ``start_s``, ``end_s``, ``contribution``;
* ``people``: per tracked person (:mod:`explanations.tracking`) ``id``, ``boxes`` (``time_s``,
  ``keyframe``, ``box`` [x0, y0, x1, y1] in pixels of ``frame_size``), ``crops`` (indices of the
  face stream's crops that are theirs) and ``contribution`` (their crops occluded, face logit);
* ``gradcam`` (with ``gradcam=True``): per 3D stream the heat map's shape and its peak frame.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from core.storage import read_json
from explanations.gradcam import grad_cam
from explanations.occlusion import contributions, occlude_seconds, replace_by_neighbours
from explanations.shapley import head_coalition_values, shapley_values
from explanations.tracking import crops_of, track_faces
from fusion.heads.inputs import MASK_KEY, PROBS_KEY
from fusion.prediction import Predictor
from keyframes.selection import RULE_OF_REASON
from streams.cache import KEYFRAMES_JSON, MISSING_MODALITIES, CacheEntry, MemoryEntry
from training import devices

#: the streams whose input is the keyframes, frame by frame (occluded keyframe by keyframe)
KEYFRAME_STREAMS = ("visual", "face")
#: the 3D streams Grad-CAM maps
GRADCAM_STREAMS = ("visual", "flow")
#: grey that stands in for a face crop when no other crop is left to take its place
GREY = 128


@dataclass
class Explanation:
    """``record``: the JSON (module docstring). For the card: ``keyframe_images`` (N, H, W, 3)
    uint8 (the visual stream's keyframes; None without them), ``face_crops`` (F, S, S, 3) uint8,
    ``gradcam`` {stream: (T', H', W') in [0, 1]}, ``attention`` {stream: (T', H', W')} and
    ``view_box`` {stream: (x0, y0, x1, y1)} (where the maps lie in a stored frame, as fractions)."""

    record: dict[str, Any]
    keyframe_images: np.ndarray | None = None
    face_crops: np.ndarray | None = None
    gradcam: dict[str, np.ndarray] = field(default_factory=dict)
    attention: dict[str, np.ndarray] = field(default_factory=dict)
    view_box: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)


class Explainer:
    """Explanations from the pipeline of one fusion run; ``gradcam``: also compute the maps."""

    def __init__(self, predictor: Predictor, *, gradcam: bool = False) -> None:
        self.predictor = predictor
        self.gradcam = gradcam

    @classmethod
    def from_run(cls, run: str | os.PathLike, *, device: str = "cpu", calibrated: bool = True,
                 gradcam: bool = False) -> "Explainer":
        """The explainer of fusion run ``run`` (its networks on ``device``); raises what
        :meth:`Predictor.from_run` raises for a run that is not a complete fusion run."""
        return cls(Predictor.from_run(run, device=device, calibrated=calibrated), gradcam=gradcam)

    def explain_path(self, path: str | os.PathLike, *, target: int | None = None) -> Explanation:
        """Preprocess the video (or audio) file ``path`` as the run's recipe does, then explain it
        (``target``: as in :meth:`explain_entry`). Raises :class:`media.decoding.MediaError` for an
        unreadable file."""
        p = self.predictor
        inputs = p.preprocessor.compute(path, p.stream_order)
        entry = MemoryEntry(str(path), inputs.arrays, {**inputs.meta, "arrays": {s: "memory" for s in inputs.arrays}})
        reasons = None
        if inputs.keyframes is not None:
            reasons = [k.reason for k in inputs.keyframes.selection.keyframes]
        return self.explain_entry(entry, str(path), reasons=reasons, target=target)

    def explain_entry(self, entry: CacheEntry, name: str, *, reasons: Sequence[str] | None = None,
                      target: int | None = None) -> Explanation:
        """Explain one clip of a cache (or a :class:`streams.cache.MemoryEntry`); ``reasons``: the
        selection's reason per keyframe (default: those of the entry's ``keyframes.json``, when
        it has one). ``target``: the class index to explain (None: the predicted class);
        ``record["explained"]`` names it."""
        p = self.predictor
        if reasons is None and not isinstance(entry, MemoryEntry):
            stored = read_json(entry.directory / KEYFRAMES_JSON) or {}
            reasons = [str(k.get("reason")) for k in stored.get("keyframes") or []] or None
        streams = p.stream_order
        device = devices.module_device(p.head)
        feats, stream_probs, shown, mask = {}, [], {}, []
        with torch.inference_mode():
            for s in streams:
                model, view = p.streams[s]
                if entry.available(s):
                    f = model.features(view.load_input(entry)[None].to(devices.module_device(model)))
                    logits = model.head(f).float()
                    feats[s] = f.float().to(device)
                    stream_probs.append(torch.softmax(logits, 1).to(device))
                    shown[s] = torch.softmax(logits / p.stream_temperatures[s], 1)[0]
                    mask.append(1.0)
                else:
                    feats[s] = torch.zeros(1, p.head.stream_dims[s], device=device)
                    stream_probs.append(torch.zeros(1, len(p.class_names), device=device))
                    mask.append(0.0)
            inputs = {**feats, MASK_KEY: torch.tensor([mask], device=device),
                      PROBS_KEY: torch.stack(stream_probs, dim=1)}
            fused = devices.to_host(torch.softmax(p.head(inputs).double() / p.temperature, 1))[0]
        predicted = int(fused.argmax())
        c = predicted if target is None else int(target)
        available = [s for s, m in zip(streams, mask) if m]
        values = head_coalition_values(p.head, inputs, streams, available, c, temperature=p.temperature)
        phi, check = shapley_values(available, values)
        record: dict[str, Any] = {
            "video": name,
            "prediction": {"label": p.class_names[predicted],
                           "probabilities": {k: round(float(v), 6) for k, v in zip(p.class_names, fused)},
                           "calibrated": p.temperature != 1.0, "temperature": p.temperature},
            "explained": p.class_names[c],
            "streams": {s: {"shapley": float(phi.get(s, 0.0)), "available": s in available,
                            "probabilities": ({k: round(float(v), 6) for k, v in zip(p.class_names, shown[s].tolist())}
                                              if s in shown else None)} for s in streams},
            "shapley_check": {**check, "error": abs(check["sum"] - (check["full"] - check["empty"])),
                              "value": f"probability of {p.class_names[c]}"},
            "missing_reasons": {s: why for s, why in (entry.meta.get(MISSING_MODALITIES) or {}).items()
                                if s in streams},
        }
        out = Explanation(record=record)
        record["keyframes"] = self._keyframes(entry, available, c, reasons, out)
        record["audio_seconds"] = self._audio_seconds(entry, available, c)
        record["people"] = self._people(entry, available, c)
        if self.gradcam:
            record["gradcam"] = self._gradcam(entry, available, c, out)
        return out

    # ---------------------------------------------------------------------------- the parts

    def _keyframes(self, entry: CacheEntry, available: list[str], c: int, reasons: Sequence[str] | None,
                   out: Explanation) -> list[dict]:
        kf = entry.meta.get("keyframes") or {}
        times, scores = list(kf.get("times") or []), list(kf.get("scores") or [])
        n = len(times)
        per_stream: dict[str, list[float | None]] = {}
        if "visual" in available and "visual" in self.predictor.streams:
            frames = np.asarray(entry.load("visual"))
            out.keyframe_images = frames
            if len(frames) == n:
                model, view = self.predictor.streams["visual"]
                variants = [replace_by_neighbours(frames, {i}) for i in range(n)]
                per_stream["visual"] = contributions(model, view, frames, variants, entry.meta, c)
        if "face" in available and "face" in self.predictor.streams:
            crops = np.asarray(entry.load("face"))
            out.face_crops = crops
            selected = (entry.meta.get("faces") or {}).get("selected") or []
            model, view = self.predictor.streams["face"]
            which = [i for i in range(n) if any(int(k) == i for k, _ in selected)]
            variants = [replace_by_neighbours(crops, [j for j, (k, _) in enumerate(selected) if int(k) == i], fill=GREY)
                        for i in which]
            found = dict(zip(which, contributions(model, view, crops, variants, entry.meta, c)))
            per_stream["face"] = [found.get(i, 0.0) for i in range(n)]
        rows = []
        for i in range(n):
            reason = reasons[i] if reasons is not None and i < len(reasons) else None
            parts = {s: float(v[i]) for s, v in per_stream.items() if v[i] is not None}
            rows.append({"time_s": float(times[i]), "score": float(scores[i]) if i < len(scores) else None,
                         "rule": RULE_OF_REASON.get(reason) if reason else None, "reason": reason,
                         "contribution": float(sum(parts.values())), "streams": parts})
        return rows

    def _audio_seconds(self, entry: CacheEntry, available: list[str], c: int) -> list[dict]:
        if "audio" not in available or "audio" not in self.predictor.streams:
            return []
        mel = np.asarray(entry.load("audio"), dtype=np.float32)
        audio = entry.meta.get("audio") or {}
        settings = self.predictor.preprocessor.cfg.get("audio") or {}
        rate = float(audio.get("sample_rate") or settings.get("sample_rate", 16000))
        hop = float(settings.get("hop_length", 512))
        seconds = occlude_seconds(mel, rate / hop)
        model, view = self.predictor.streams["audio"]
        contrib = contributions(model, view, mel, [m for _, _, m in seconds], entry.meta, c)
        return [{"start_s": round(a, 4), "end_s": round(b, 4), "contribution": v}
                for (a, b, _), v in zip(seconds, contrib)]

    def _people(self, entry: CacheEntry, available: list[str], c: int) -> list[dict]:
        faces = entry.meta.get("faces") or {}
        boxes = faces.get("boxes") or []
        if not boxes:
            return []
        times = list((entry.meta.get("keyframes") or {}).get("times") or [])
        tracks = track_faces(boxes)
        selected = faces.get("selected") or []
        crops_by_person = [crops_of(t, selected) for t in tracks]
        contrib: list[float | None] = [None] * len(tracks)
        if "face" in available and "face" in self.predictor.streams:
            crops = np.asarray(entry.load("face"))
            model, view = self.predictor.streams["face"]
            which = [i for i, js in enumerate(crops_by_person) if js]
            values = contributions(model, view, crops, [replace_by_neighbours(crops, crops_by_person[i], fill=GREY)
                                                        for i in which], entry.meta, c)
            for i, v in zip(which, values):
                contrib[i] = v
            for i in range(len(tracks)):
                contrib[i] = 0.0 if contrib[i] is None else contrib[i]
        size = faces.get("source_size")
        return [{"id": t.id, "frame_size": size,
                 "boxes": [{"keyframe": k, "time_s": float(times[k]) if k < len(times) else None, "box": b}
                           for (k, _), b in zip(t.detections, t.boxes)],
                 "crops": crops_by_person[i], "contribution": contrib[i]} for i, t in enumerate(tracks)]

    def _gradcam(self, entry: CacheEntry, available: list[str], c: int, out: Explanation) -> dict:
        from streams.views import centre_view_box

        summary = {}
        for s in GRADCAM_STREAMS:
            if s not in available or s not in self.predictor.streams:
                continue
            model, view = self.predictor.streams[s]
            cam, att = grad_cam(model, view.load_input(entry)[None], c)
            out.gradcam[s] = cam
            if att is not None:
                out.attention[s] = att
            stored = np.asarray(entry.load(s))
            h, w = (stored.shape[1:3] if s == "visual" else stored.shape[2:4])
            out.view_box[s] = centre_view_box(int(h), int(w), view.settings)
            summary[s] = {"shape": list(cam.shape), "peak_frame": int(cam.reshape(len(cam), -1).sum(1).argmax()),
                          "attention": att is not None}
        return summary
