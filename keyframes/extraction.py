"""The keyframe stage of preprocessing: candidates from one decoding pass, scored by the
sentiment scorer, selected by :func:`keyframes.selection.select_keyframes`, and the record of the
selection (``keyframes.json``; the cache itself is written by :mod:`streams.cache`).

Candidates are sampled at ``candidate_fps`` plus ``num_keyframes`` evenly spaced times (so a
clip with enough frames always has at least N distinct candidates and top-up never has to
repeat frames). The scorer sees each candidate with its short side at ``score_size``; the
keyframes are kept at the other sizes the streams ask for (e.g. the visual stream's short side, a
larger one for face detection), converted from the same decoded frame.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields
from typing import Sequence

import numpy as np

from media.decoding import VideoInfo
from media.sampling import FrameRequest, FrameSample
from media.storage import config_hash
from training.config import ConfigError
from keyframes.scorer import SentimentScorer
from keyframes.selection import Candidate, Keyframe, Selection, select_keyframes

@dataclass(frozen=True)
class KeyframeSettings:
    """The ``keyframes:`` section of a preprocessing config (see configs/preprocess/default.yaml)."""

    num_keyframes: int = 16
    candidate_fps: float = 4.0
    score_size: int = 112
    threshold: float = 0.5
    motion_width: int = 64
    batch_size: int = 32

    @classmethod
    def from_config(cls, section: dict | None) -> "KeyframeSettings":
        section = dict(section or {})
        known = {f.name for f in fields(cls)}
        unknown = set(section) - known
        if unknown:
            raise ConfigError(f"keyframes: unknown settings {sorted(unknown)} (known: {sorted(known)})")
        return cls(**section)


def candidate_times(duration: float, settings: KeyframeSettings) -> tuple[float, ...]:
    """Candidate times (s): every ``1/candidate_fps`` from 0, plus ``num_keyframes`` evenly spaced
    slot centres; sorted, duplicates removed."""
    ticks = set()
    if settings.candidate_fps > 0:
        step = 1.0 / settings.candidate_fps
        ticks.update(round(k * step, 6) for k in range(int(np.floor(duration / step)) + 1) if k * step < duration)
    n = settings.num_keyframes
    ticks.update(round((j + 0.5) * duration / n, 6) for j in range(n))
    return tuple(sorted(ticks)) or (0.0,)


def candidate_request(duration: float, settings: KeyframeSettings,
                      keep_sizes: Sequence[tuple[str, int | None, int | None]]) -> FrameRequest:
    """The :class:`FrameRequest` for candidates: a ``score`` conversion plus each ``keep_sizes``
    entry ``(name, short_side, max_side)``."""
    sizes = (("score", settings.score_size, None, False),) + tuple((n, s, m, False) for n, s, m in keep_sizes)
    return FrameRequest(name="candidates", times=candidate_times(duration, settings), sizes=sizes)


@dataclass
class KeyframeResult:
    selection: Selection
    images: dict[str, list[np.ndarray]]      # size name -> N images in keyframe order
    class_names: tuple[str, ...]
    timings: dict[str, float]


def select_from_sample(sample: FrameSample, scorer: SentimentScorer, settings: KeyframeSettings,
                       keep: Sequence[str]) -> KeyframeResult:
    """Score the sampled candidates, run the selection, and gather the kept images."""
    cands = sample.unique_frames["candidates"]
    t0 = time.perf_counter()
    probs = scorer.score([c.images["score"] for c in cands])
    t1 = time.perf_counter()
    motion = sample.motion
    candidates = [
        Candidate(index=c.index, time=c.time, probs=tuple(float(p) for p in probs[i]),
                  diff=float(motion[c.index]) if c.index < len(motion) else 0.0)
        for i, c in enumerate(cands)
    ]
    selection = select_keyframes(candidates, duration=sample.info.duration,
                                 num_keyframes=settings.num_keyframes, threshold=settings.threshold)
    t2 = time.perf_counter()
    by_index = {c.index: c for c in cands}
    images = {name: [by_index[k.index].images[name] for k in selection.keyframes] for name in keep}
    return KeyframeResult(selection, images, scorer.class_names, {"scoring": t1 - t0, "selection": t2 - t1})


def keyframes_record(result: KeyframeResult, info: VideoInfo, *, clip_id: str, settings_hash: str,
                     scorer_hash: str) -> dict:
    """The ``keyframes.json`` object."""
    sel = result.selection
    return {
        "clip_id": clip_id,
        "source": {"path": str(info.path), "width": info.width, "height": info.height, "fps": info.fps,
                   "duration": info.duration, "frame_count": info.frame_count},
        "num_keyframes": len(sel.keyframes),
        "duplicated": sel.duplicated,
        "counts": sel.counts,
        "class_names": list(result.class_names),
        "keyframes": [
            {"index": k.index, "time": round(k.time, 6), "score": round(k.score, 6),
             "probs": {n: round(p, 6) for n, p in zip(result.class_names, k.probs)}, "reason": k.reason}
            for k in sel.keyframes
        ],
        "config_hash": settings_hash,
        "scorer_hash": scorer_hash,
    }


def keyframes_hash(settings: KeyframeSettings, scorer_hash: str) -> str:
    """Hash of what determines a clip's keyframe selection: the settings and the scorer."""
    return config_hash({"keyframes": asdict(settings), "scorer": scorer_hash})


def stored_selection(record: dict, sample: FrameSample, request: str) -> KeyframeResult:
    """A :class:`KeyframeResult` from a stored ``keyframes.json`` ``record`` (see
    :func:`keyframes_record`) and a pass that decoded its frames by index (request ``request``
    asked for ``[k["index"] for k in record["keyframes"]]``), without scoring anything again."""
    class_names = tuple(record["class_names"])
    keyframes = [Keyframe(int(k["index"]), float(k["time"]), float(k["score"]),
                          tuple(float(k["probs"][c]) for c in class_names), str(k["reason"]))
                 for k in record["keyframes"]]
    groups = sample.picks[request]
    if len(groups) != len(keyframes):
        raise ValueError(f"{record.get('clip_id')}: the stored selection has {len(keyframes)} keyframes, "
                         f"the decoding pass returned {len(groups)}")
    names = groups[0][0].images.keys() if groups else ()
    images = {name: [g[0].images[name] for g in groups] for name in names}
    selection = Selection(keyframes=keyframes, duplicated=bool(record.get("duplicated", False)),
                          counts=dict(record.get("counts", {})))
    return KeyframeResult(selection, images, class_names, {"scoring": 0.0, "selection": 0.0})
