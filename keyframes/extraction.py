"""The keyframe stage of preprocessing: candidates from one decoding pass, scored by the
sentiment scorer, selected by :func:`keyframes.selection.select_keyframes`, and the record of the
selection (``keyframes.json``; the cache itself is written by :mod:`streams.cache`).

Candidates are ``num_candidates`` evenly spaced times (plus one every ``1 / candidate_fps`` s
when that is set), so a clip with enough frames always has at least N distinct candidates and
top-up never has to repeat frames. The scorer
sees each candidate as it saw its validation images in training: short side at ``score_size``
(the scorer's training size), centre square crop; the keyframes are kept at the
other sizes the streams ask for (e.g. the visual stream's short side, a larger one for face
detection), converted from the same decoded frame.
"""
from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from core.config import ConfigError, check_settings, setting, settings_from_section
from core.storage import config_hash
from keyframes.scorer import PRECISIONS, SentimentScorer
from keyframes.selection import (
    INTENSITIES,
    MODES,
    Candidate,
    Intensity,
    Keyframe,
    Selection,
    create_intensity,
    select_keyframes,
)
from media.decoding import VideoInfo
from media.reuse import ClipReuse
from media.sampling import FrameRequest, FrameSample


@dataclass(frozen=True)
class KeyframeSettings:
    """The ``keyframes:`` section of a preprocessing config (see configs/preprocess/default.yaml).

    ``mode``: ``default`` | ``literal`` | ``uniform`` | ``no_rule1`` .. ``no_rule5`` and
    ``intensity``: ``non_neutral`` (the default, chosen by the keyframe ablation,
    docs/concepts/keyframes.md) | ``max_prob`` (see :mod:`keyframes.selection`); ``threshold`` is
    a probability on the intensity's scale; ``slots``: rule 4's time slots (``None``: ``num_keyframes // 2``).
    Candidates: ``num_candidates`` evenly spaced times plus one every ``1 / candidate_fps`` s (0:
    none), see :func:`candidate_times`. ``score_size``: the scorer's input size (px), which must
    be the size it was trained at (checked when a checkpoint is loaded). ``precision``: what the
    scorer computes in (:data:`keyframes.scorer.PRECISIONS`; ``float32``, the default, gives the
    method's numbers)."""

    num_keyframes: int = setting(16, minimum=1, help="keyframes per clip (the method's N)")
    candidate_fps: float = setting(0.0, minimum=0, help=(
        "extra candidates every 1/fps s (0: none; the cost then grows with the clip length)"))
    num_candidates: int = setting(48, minimum=0, help="evenly spaced candidate frames per clip of any length")
    score_size: int = setting(112, minimum=1, help=(
        "px: the scorer's input (short side, centre square), the size it was trained at (checked)"))
    threshold: float = setting(0.5, minimum=0, maximum=1, help=(
        "a probability on the intensity's scale: candidates below it are dropped (rule 2)"))
    mode: str = setting("default", choices=MODES, help=(
        "default | literal (the first reading, for comparison) | uniform (baseline) | no_rule1 .. no_rule5 (the "
        "default with that rule off, for the keyframe ablation); see keyframes/selection.py"))
    intensity: str = setting("non_neutral", choices=INTENSITIES, help=(
        "rule 2's score: non_neutral (1 - p(neutral)) | max_prob (top class probability)"))
    slots: int | None = setting(None, help=(
        "rule 4's time slots, 1..num_keyframes, each gets a keyframe; null: num_keyframes // 2"))
    motion_width: int = setting(64, minimum=1, help="width (px) of the grey copy used for inter-frame differences")
    batch_size: int = setting(32, minimum=1, help="candidates the scorer scores in one batch")
    precision: str = setting("float32", choices=PRECISIONS, help=(
        "what the scorer computes in: float32 (the method's numbers) | bfloat16 (faster, moves a few keyframes)"))

    def __post_init__(self) -> None:
        check_settings(self, "keyframes")
        if self.slots is not None and not 1 <= self.slots <= self.num_keyframes:
            raise ConfigError(f"keyframes.slots must be between 1 and num_keyframes ({self.num_keyframes}), "
                              f"got {self.slots!r}")

    @classmethod
    def from_config(cls, section: dict | None) -> "KeyframeSettings":
        return settings_from_section(cls, section, "keyframes")

    def intensity_function(self, class_names: Sequence[str]) -> Intensity:
        """The intensity for a scorer with ``class_names`` (raises ``ValueError`` for
        ``non_neutral`` when no class is named neutral): call it when the scorer is loaded, to
        fail before the first clip."""
        return create_intensity(kind=self.intensity, class_names=class_names)


def candidate_times(duration: float, settings: KeyframeSettings) -> tuple[float, ...]:
    """Candidate times (s) for a clip of ``duration`` s: ``num_candidates`` (M) evenly spaced
    times ``(q + 0.5) * duration / M``, plus every ``1 / candidate_fps`` s from 0 when
    ``candidate_fps > 0``; sorted, duplicates removed. With M an odd multiple of
    ``num_keyframes`` (48 = 3 x 16) the keyframe-slot centres ``(j + 0.5) * duration / N``, which
    ``uniform`` picks, are among them. With ``candidate_fps: 0`` a clip of any length has M
    candidates, so scoring cost and memory do not grow with its length."""
    ticks = set()
    if settings.candidate_fps > 0:
        step = 1.0 / settings.candidate_fps
        ticks.update(round(k * step, 6) for k in range(int(np.floor(duration / step)) + 1) if k * step < duration)
    m = settings.num_candidates
    ticks.update(round((q + 0.5) * duration / m, 6) for q in range(m))
    return tuple(sorted(ticks)) or (0.0,)


def candidate_request(duration: float, settings: KeyframeSettings,
                      keep_sizes: Sequence[tuple[str, int | None, int | None]], *, lazy: bool = True) -> FrameRequest:
    """The :class:`FrameRequest` for candidates: a ``score`` conversion plus each ``keep_sizes``
    entry ``(name, short_side, max_side)``. ``lazy``: the ``keep_sizes`` conversions are made
    only for the candidates that become keyframes (the others are never converted to them; each
    candidate is held decoded until the selection instead, half the bytes of an RGB copy at
    source size); ``False`` converts every candidate during the pass (the same images)."""
    sizes = (("score", settings.score_size, None, False),) + tuple((n, s, m, False) for n, s, m in keep_sizes)
    return FrameRequest(name="candidates", times=candidate_times(duration, settings), sizes=sizes,
                        lazy=tuple(n for n, _, _ in keep_sizes) if lazy else ())


class ScoringPipeline:
    """Scores keyframe candidates on a worker thread while the decoding pass goes on.

    Candidates are :meth:`add` ed as the pass picks them (index order, each frame once); every
    ``batch_size`` of them go to the scorer as one batch, the batches :meth:`SentimentScorer.score`
    makes of the whole list, so the scores are the same numbers. :meth:`finish` scores the rest
    and returns ``{frame index: probs (C,)}``. The worker uses as many torch threads as the
    thread that built the pipeline."""

    def __init__(self, scorer: SentimentScorer, batch_size: int) -> None:
        import torch

        self.scorer = scorer
        self.batch_size = max(1, int(batch_size))
        self._threads = torch.get_num_threads()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scoring")
        self._batch: list = []
        self._jobs: list[tuple[list[int], Future]] = []
        self.seconds = 0.0

    def add(self, frame) -> None:
        """A picked candidate (a :class:`media.sampling.SampledFrame` with a ``score`` image)."""
        self._batch.append(frame)
        if len(self._batch) == self.batch_size:
            self._submit()

    def on_pick(self, request: str, frame) -> None:
        """:func:`media.sampling.sample_video`'s ``on_pick``: candidates go to :meth:`add`."""
        if request == "candidates":
            self.add(frame)

    def _submit(self) -> None:
        batch, self._batch = self._batch, []
        images = [f.images["score"] for f in batch]
        self._jobs.append(([f.index for f in batch], self._executor.submit(self._score, images)))

    def _score(self, images: list[np.ndarray]) -> np.ndarray:
        import torch

        torch.set_num_threads(self._threads)  # this thread's own setting (OpenMP keeps one per thread)
        t0 = time.perf_counter()
        probs = self.scorer.score(images)
        self.seconds += time.perf_counter() - t0
        return probs

    def finish(self) -> dict[int, np.ndarray]:
        """Score what is left, wait, and return ``{frame index: probs}``."""
        if self._batch:
            self._submit()
        try:
            return {i: p for indices, job in self._jobs for i, p in zip(indices, job.result())}
        finally:
            self._executor.shutdown(wait=True)


@dataclass
class KeyframeResult:
    selection: Selection
    images: dict[str, list[np.ndarray]]      # size name -> N images in keyframe order
    class_names: tuple[str, ...]
    timings: dict[str, float]


SCORE_KIND = "keyframe_score"
"""The kind under which scored candidates are shared between clips (:mod:`media.reuse`)."""


def score_candidates(frames: Sequence[np.ndarray], scorer: SentimentScorer, *, indices: Sequence[int] | None = None,
                     times: Sequence[float] | None = None, reuse: ClipReuse | None = None) -> np.ndarray:
    """``scorer.score(frames)`` ``(N, C)``; with ``reuse`` (and the frames' clip ``indices`` and
    ``times``) frames scored before for another clip of the source are taken from its store, the
    others are scored in one batch and stored."""
    if reuse is None:
        return scorer.score(frames)
    key = (SCORE_KIND, getattr(scorer, "input_size", None), getattr(scorer, "precision", "float32"))
    probs = reuse.per_frame(key, indices, times,
                            lambda todo: list(scorer.score([frames[j] for j in todo])))
    return np.stack(probs).astype(np.float32) if probs else scorer.score([])


def select_from_sample(sample: FrameSample, scorer: SentimentScorer, settings: KeyframeSettings,
                       keep: Sequence[str], *, reuse: ClipReuse | None = None,
                       scoring: ScoringPipeline | None = None) -> KeyframeResult:
    """Score the sampled candidates, run the selection, and gather the kept images (converted now
    when the candidates' keep sizes are lazy; the other candidates' decoded frames are let go).
    ``reuse``: candidates already scored for an overlapping clip of the same source are not
    scored again. ``scoring``: the pipeline the pass fed; its scores are used."""
    cands = sample.unique_frames["candidates"]
    t0 = time.perf_counter()
    if scoring is not None:
        scored = scoring.finish()
        probs = np.stack([scored[c.index] for c in cands]) if cands else scorer.score([])
    else:
        probs = score_candidates([c.images["score"] for c in cands], scorer, indices=[c.index for c in cands],
                                 times=[c.time for c in cands], reuse=reuse)
    t1 = time.perf_counter()
    motion = sample.motion
    candidates = [
        Candidate(index=c.index, time=c.time, probs=tuple(float(p) for p in probs[i]),
                  diff=float(motion[c.index]) if c.index < len(motion) else 0.0)
        for i, c in enumerate(cands)
    ]
    selection = select_keyframes(candidates, duration=sample.info.duration,
                                 num_keyframes=settings.num_keyframes, threshold=settings.threshold,
                                 mode=settings.mode, intensity=settings.intensity_function(scorer.class_names),
                                 num_slots=settings.slots)
    t2 = time.perf_counter()
    by_index = {c.index: c for c in cands}
    images = {name: [by_index[k.index].images[name] for k in selection.keyframes] for name in keep}
    for c in cands:
        if hasattr(c.images, "release"):
            c.images.release()
    timings = {"scoring": t1 - t0, "selection": t2 - t1}
    if scoring is not None:
        timings["scoring_overlapped"] = scoring.seconds  # spent on the worker during the pass
    return KeyframeResult(selection, images, scorer.class_names, timings)


def keyframes_record(result: KeyframeResult, info: VideoInfo, *, clip_id: str, settings_hash: str,
                     scorer_hash: str) -> dict:
    """The ``keyframes.json`` object: per keyframe its time, index, intensity ``score``, class
    probabilities, ``reason`` and the method's ``rule`` (1-5; ``null`` for uniform picks); per
    clip the selection ``mode``, ``counts`` (candidates kept by each rule and picks by reason,
    see :func:`keyframes.selection.select_keyframes`) and ``picks_by_rule``."""
    sel = result.selection
    return {
        "clip_id": clip_id,
        "source": {"path": str(info.path), "width": info.width, "height": info.height, "fps": info.fps,
                   "duration": info.duration, "frame_count": info.frame_count},
        "num_keyframes": len(sel.keyframes),
        "duplicated": sel.duplicated,
        "mode": sel.mode,
        "counts": sel.counts,
        "picks_by_rule": sel.picks_by_rule(),
        "class_names": list(result.class_names),
        "keyframes": [
            {"index": k.index, "time": round(k.time, 6), "score": round(k.score, 6),
             "probs": {n: round(p, 6) for n, p in zip(result.class_names, k.probs)}, "reason": k.reason,
             "rule": k.rule}
            for k in sel.keyframes
        ],
        "config_hash": settings_hash,
        "scorer_hash": scorer_hash,
    }


_HASHED_WHEN_SET = {"precision": "float32"}
"""Settings added after caches existed: hashed only when not at these defaults, so a cache made
before they existed (with what is now their default) stays current."""


def keyframes_hash(settings: KeyframeSettings, scorer_hash: str) -> str:
    """Hash of what determines a clip's keyframe selection: the settings and the scorer."""
    fields = {k: v for k, v in asdict(settings).items() if _HASHED_WHEN_SET.get(k, object()) != v}
    return config_hash({"keyframes": fields, "scorer": scorer_hash})


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
                          counts=dict(record.get("counts", {})), mode=str(record.get("mode", "default")))
    return KeyframeResult(selection, images, class_names, {"scoring": 0.0, "selection": 0.0})
