"""The keyframe stage of preprocessing: candidates from one decoding pass, scored by the
sentiment scorer, selected by :func:`keyframes.selection.select_keyframes`, written to the cache.

Candidates are sampled at ``candidate_fps`` plus ``num_keyframes`` evenly spaced times (so a
clip with enough frames always has at least N distinct candidates and top-up never has to
repeat frames). The scorer sees each candidate with its short side at ``score_size``; the
keyframes are kept at other sizes (``visual.short_side`` for the visual stream, a larger one for
face detection) from the same decoded frame.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Sequence

import numpy as np

from media.decoding import VideoInfo, VideoReader
from media.datasets import ClipRecord
from media.sampling import FrameRequest, FrameSample, sample_video
from media.storage import atomic_save_npy, atomic_write_json, config_hash, read_json, safe_child
from training.config import ConfigError
from keyframes.scorer import SentimentScorer
from keyframes.selection import Candidate, Selection, select_keyframes

KEYFRAMES_FILE = "keyframes.npy"
KEYFRAMES_JSON = "keyframes.json"


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


def keyframes_hash(settings: KeyframeSettings, visual_short_side: int, scorer_hash: str) -> str:
    return config_hash({"keyframes": asdict(settings), "short_side": visual_short_side, "scorer": scorer_hash})


class KeyframeExtractor:
    """Keyframes-only preprocessing of one clip into ``CACHE/<clip_id>/keyframes.{npy,json}``.

    ``extractor(record)`` returns ``"skipped"`` when the entry is up to date for this config and
    scorer, else decodes, selects, writes atomically and returns ``"done"``.
    """

    def __init__(self, *, settings: KeyframeSettings, scorer: SentimentScorer, scorer_hash: str,
                 cache_root: str | os.PathLike, short_side: int = 256, contact_sheet: bool = False) -> None:
        self.settings = settings
        self.scorer = scorer
        self.scorer_hash = scorer_hash
        self.cache_root = Path(cache_root)
        self.short_side = short_side
        self.contact_sheet = contact_sheet
        self.hash = keyframes_hash(settings, short_side, scorer_hash)
        self.last_timings: dict[str, float] = {}

    def up_to_date(self, directory: Path) -> bool:
        rec = read_json(directory / KEYFRAMES_JSON)
        return bool(rec) and rec.get("config_hash") == self.hash and (directory / KEYFRAMES_FILE).exists()

    def extract(self, reader: VideoReader, keep: Sequence[tuple[str, int | None, int | None]]) -> tuple[FrameSample, KeyframeResult]:
        """Sample, score and select from an open reader; ``keep`` lists the extra sizes to return."""
        t0 = time.perf_counter()
        sample = sample_video(reader, [candidate_request(reader.info.duration, self.settings, keep)],
                              motion_width=self.settings.motion_width)
        t1 = time.perf_counter()
        result = select_from_sample(sample, self.scorer, self.settings, [k[0] for k in keep])
        result.timings = {"decode": t1 - t0, **result.timings}
        return sample, result

    def __call__(self, record: ClipRecord) -> str:
        directory = safe_child(self.cache_root, record.clip_id)
        if self.up_to_date(directory):
            return "skipped"
        with VideoReader(record.path) as reader:
            sample, result = self.extract(reader, [("visual", self.short_side, None)])
        t0 = time.perf_counter()
        write_keyframes(directory, np.stack(result.images["visual"]),
                        keyframes_record(result, sample.info, clip_id=record.clip_id,
                                         settings_hash=self.hash, scorer_hash=self.scorer_hash))
        if self.contact_sheet:
            from keyframes.contact_sheet import write_contact_sheet

            write_contact_sheet(directory / "contact_sheet.png", result.images["visual"], result.selection, result.class_names)
        self.last_timings = {**result.timings, "write": time.perf_counter() - t0}
        return "done"


def write_keyframes(directory: Path, images: np.ndarray, record: dict) -> None:
    """Write ``keyframes.npy`` (N, H, W, 3) uint8 then ``keyframes.json``, each atomically; the JSON
    (which carries the config hash) goes last, so a kill in between leaves the entry stale, never
    wrongly up to date."""
    directory.mkdir(parents=True, exist_ok=True)
    stale = directory / KEYFRAMES_JSON
    if stale.exists():
        stale.unlink()
    atomic_save_npy(directory / KEYFRAMES_FILE, images)
    atomic_write_json(directory / KEYFRAMES_JSON, record)


def build_keyframe_job(cfg: dict, scorer_path: str, cache_root: str, contact_sheet: bool = False) -> KeyframeExtractor:
    """A :class:`KeyframeExtractor` from a preprocessing recipe and a scorer run/checkpoint (a
    module-level function, so worker processes can build their own)."""
    from training.checkpoints import checkpoint_hash

    settings = KeyframeSettings.from_config(cfg.get("keyframes"))
    scorer = SentimentScorer.from_checkpoint(scorer_path, input_size=settings.score_size,
                                             batch_size=settings.batch_size)
    return KeyframeExtractor(settings=settings, scorer=scorer, scorer_hash=checkpoint_hash(scorer_path),
                             cache_root=cache_root, short_side=int(cfg.get("visual", {}).get("short_side", 256)),
                             contact_sheet=contact_sheet)
