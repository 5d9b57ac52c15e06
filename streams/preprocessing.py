"""One-pass preprocessing of a clip into the streams' inputs.

The clip is decoded once (:func:`media.sampling.sample_video`). Each stream's spec
(:mod:`streams.specs`) says what it needs from that pass: keyframe images at some size, other
frames (flow pairs), the audio track at some rate. When a stream needs keyframes, the candidates
are scored and selected once (:mod:`keyframes.extraction`) and every such stream gets its images
of the same frames; when the entry already holds a selection made with the same keyframe settings
and scorer, its frames are taken again without re-scoring (a face-only re-run). Output:
``CACHE/<clip_id>/`` as documented in :mod:`streams.cache`.

Each array carries the hash of the config that produced it (its own section plus the keyframe
selection for the streams that read keyframes), so a re-run recomputes only what changed, and
the decoding pass is skipped entirely when only audio needs redoing.
"""
from __future__ import annotations

import importlib.metadata
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from core.config import check_keys
from core.storage import atomic_write_json, remove_temp_files
from keyframes.extraction import (
    KeyframeResult,
    KeyframeSettings,
    ScoringPipeline,
    candidate_request,
    keyframes_hash,
    keyframes_record,
    select_from_sample,
    stored_selection,
)
from keyframes.scorer import SentimentScorer
from media.audio_track import open_media, read_audio_track
from media.layouts import ClipRecord
from media.sampling import FrameRequest, sample_video
from streams import cache
from streams.specs import STREAM_SPECS, DecodedClip, StreamSpec, parse_streams

_VERSIONED_PACKAGES = ("torch", "torchvision", "opencv-contrib-python", "av", "librosa", "numpy", "facenet-pytorch")
_SHEET = "contact_sheet"   # name of the small keyframe copy the contact sheet is drawn from
_SHEET_SIDE = 128


def package_versions() -> dict[str, str]:
    out = {}
    for name in _VERSIONED_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


@dataclass
class ClipInputs:
    """The in-memory result of :meth:`ClipPreprocessor.compute`: ``arrays`` (stream -> array, as
    stored in the cache; a missing modality has no entry), the ``meta`` fields, the keyframe
    result (``None`` when no stream read keyframes, or the stored selection was reused:
    ``keyframes_reused``) and per-stage ``timings`` (s)."""

    streams: tuple[str, ...]
    arrays: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    info: object = None
    keyframes: KeyframeResult | None = None
    keyframes_reused: bool = False
    timings: dict = field(default_factory=dict)


def check_preprocess_recipe(cfg: dict, streams: Iterable[str] | None = None) -> None:
    """Read a preprocessing recipe whole, as :class:`ClipPreprocessor` does before the first clip:
    its top-level sections (a misspelt one would be ignored and its stage run on defaults), the
    keyframe settings and the section of every stream in ``streams`` (default: those it enables).
    Raises :class:`core.config.ConfigError` naming the key."""
    check_keys(cfg, ("keyframes", "labels", *(s.section for s in STREAM_SPECS.values())), "the preprocessing recipe")
    KeyframeSettings.from_config(cfg.get("keyframes"))
    for name in parse_streams(streams, cfg):
        STREAM_SPECS[name].checked_settings(cfg)


class ClipPreprocessor:
    """``ClipPreprocessor(cfg, ...)(record) -> "done" | "skipped"``: brings ``CACHE/<clip_id>/`` up
    to date for the requested ``streams`` (default: those the config enables). ``cfg`` is a
    preprocessing recipe (a ``keyframes`` section plus one section per stream). ``scorer`` may be
    ``None`` only when no requested stream reads keyframes; ``device``: where the steps' networks
    (the face detector) run, the scorer on its own."""

    def __init__(self, cfg: dict, *, cache_root: str | os.PathLike, scorer: SentimentScorer | None,
                 scorer_hash: str, streams: Iterable[str] | None = None, contact_sheet: bool = False,
                 device: str | torch.device = "cpu") -> None:
        check_preprocess_recipe(cfg, streams)
        self.cfg = cfg
        self.cache_root = Path(cache_root)
        self.streams = parse_streams(streams, cfg)
        self.specs: tuple[StreamSpec, ...] = tuple(STREAM_SPECS[s] for s in self.streams)
        self.scorer = scorer
        self.scorer_hash = scorer_hash
        self.contact_sheet = contact_sheet
        self.settings = KeyframeSettings.from_config(cfg.get("keyframes"))
        if scorer is None and any(s.uses_keyframes for s in self.specs):
            raise ValueError(f"streams {[s.name for s in self.specs if s.uses_keyframes]} read keyframes and "
                             "need the keyframe scorer (--scorer RUN_OR_CHECKPOINT)")
        self.keyframes_hash = keyframes_hash(self.settings, scorer_hash)
        self.hashes = {s.name: s.config_hash(cfg, self.keyframes_hash) for s in self.specs}
        self.device = torch.device(device)
        self.steps = {s.name: s.make_step(cfg, device=self.device) for s in self.specs}
        self.last_timings: dict[str, float] = {}

    def todo(self, directory: Path, meta: dict | None) -> list[str]:
        """Requested streams whose array is missing, unreadable or was made with another config."""
        arrays = (meta or {}).get("arrays", {})
        out = []
        for spec in self.specs:
            present = arrays.get(spec.name) == self.hashes[spec.name]
            if present and spec.stores_array(meta or {}) and not cache.missing_reason(meta, spec.name):
                present = cache.array_intact(cache.array_path(directory, spec.name))
            if not present:
                out.append(spec.name)
        return out

    def keyframe_image_sizes(self, streams: Iterable[str]) -> tuple[tuple[str, int | None, int | None], ...]:
        """``(name, short_side, max_side)`` of every keyframe image the ``streams`` read, in
        spec order (the candidates are converted to these sizes, plus ``score``)."""
        names = set(streams)
        return tuple(size for s in self.specs if s.name in names for size in s.keyframe_sizes(self.cfg))

    def compute(self, source, todo: Iterable[str], *, stored_keyframes: dict | None = None) -> ClipInputs:
        """Decode ``source`` once and compute the inputs of the streams in ``todo``, in memory.

        ``source`` is a video path, or an open reader with the :class:`media.decoding.VideoReader`
        interface (``info``, ``iter_handles()``, ``read_audio()``), e.g. a live window of frames.
        A path without decodable video frames but with an audio track
        (:func:`media.audio_track.open_media`) computes only the streams that read nothing but the
        audio; the others get no array and ``meta["missing_modalities"]`` says why;
        a reader with a ``reuse`` attribute (:class:`media.reuse.ClipReuse`) shares scores, face
        detections and audio analysis with overlapping clips of its source.
        ``stored_keyframes``: a ``keyframes.json`` record whose selection is reused when it was
        made with this preprocessor's keyframe settings and scorer (no re-scoring)."""
        todo_specs = [s for s in self.specs if s.name in set(todo)]
        kf_specs = [s for s in todo_specs if s.uses_keyframes]
        reuse = (stored_keyframes if kf_specs and stored_keyframes
                 and stored_keyframes.get("config_hash") == self.keyframes_hash else None)
        plan = _PassPlan(specs=todo_specs, keyframe_specs=kf_specs, stored=reuse)
        timings: dict[str, float] = {}
        t_start = time.perf_counter()
        out = ClipInputs(streams=tuple(s.name for s in todo_specs), keyframes_reused=reuse is not None)
        opened = isinstance(source, (str, os.PathLike))
        # frame-threaded decoding gives the same pictures; as many threads as torch may use here
        with (open_media(source, threads=torch.get_num_threads()) if opened else nullcontext(source)) as reader:
            info = out.info = reader.info
            frames_error = getattr(reader, "frames_error", None)
            if frames_error:  # no frames: only the streams that need nothing but the audio track
                self._drop_frame_streams(plan, out, frames_error)
            rates = sorted({r for s in plan.specs if (r := s.audio_rate(self.cfg)) is not None})
            # a file's audio track is decoded from a container of its own while the video pass runs
            audio_job = (_BACKGROUND.submit(_read_audio_tracks, source, rates)
                         if opened and rates and info.has_audio else None)
            # a live window shares per-frame work with the windows that overlap it (media.reuse)
            clip = DecodedClip(info=info, reuse=getattr(reader, "reuse", None))
            self._plan_frame_requests(plan, info)
            scoring = self._decode_frames(reader, clip, plan, timings) if plan.requests else None
            audio_warning = _decode_audio(reader, clip, rates, audio_job, timings)
            decode_warning = "; ".join(w for w in (getattr(reader, "decode_warning", None), audio_warning) if w)
            outputs = self._run_steps(clip, plan, scoring, out, timings)

        self._record_meta(out.meta, info, clip, plan, decode_warning)
        for spec in plan.specs:
            result, seconds = outputs[spec.name]
            if result.array is not None:
                out.arrays[spec.name] = result.array
            out.meta.update(result.meta)
            timings[spec.name] = seconds
        timings["compute_total"] = time.perf_counter() - t_start
        out.timings = timings
        return out

    def _drop_frame_streams(self, plan: _PassPlan, out: ClipInputs, frames_error: str) -> None:
        """A source without decodable frames: keep only the streams that read nothing but the
        audio track, and record why the others have no array."""
        missing = {s.name: frames_error for s in plan.specs
                   if s.reads_frames(self.cfg) or s.audio_rate(self.cfg) is None}
        out.meta[cache.MISSING_MODALITIES] = missing
        plan.specs = [s for s in plan.specs if s.name not in missing]
        plan.keyframe_specs, plan.stored, out.keyframes_reused = [], None, False

    def _plan_frame_requests(self, plan: _PassPlan, info) -> None:
        """The frames the pass must pick: the keyframe candidates (or the stored selection's
        frames) at every keyframe image size, and the frames the other streams ask for."""
        kf_sizes = self.keyframe_image_sizes(s.name for s in plan.keyframe_specs)
        if self.contact_sheet and plan.selects:
            kf_sizes += ((_SHEET, _SHEET_SIDE, None),)
        requests: list[FrameRequest] = []
        if plan.stored is not None:
            requests.append(FrameRequest(name="keyframes", indices=tuple(k["index"] for k in plan.stored["keyframes"]),
                                         sizes=tuple((n, s, m, False) for n, s, m in kf_sizes)))
        elif plan.keyframe_specs:
            requests.append(candidate_request(info.duration, self.settings, kf_sizes))
        plan.frame_specs = [s for s in plan.specs if s.frame_requests(info.frame_count, self.cfg)]
        for spec in plan.frame_specs:
            requests.extend(spec.frame_requests(info.frame_count, self.cfg))
        plan.keyframe_sizes, plan.requests = kf_sizes, requests

    def _decode_frames(self, reader, clip: DecodedClip, plan: _PassPlan,
                       timings: dict[str, float]) -> ScoringPipeline | None:
        """The decoding pass into ``clip.sample``; returns the scoring pipeline the candidates
        were fed to while it ran (``None`` when nothing is scored here)."""
        t0 = time.perf_counter()
        motion = self.settings.motion_width if plan.selects else None
        # candidates are scored on a worker while the pass goes on (the same batches)
        scoring = (ScoringPipeline(self.scorer, self.settings.batch_size)
                   if plan.selects and clip.reuse is None else None)
        clip.sample = sample_video(reader, plan.requests, motion_width=motion,
                                   on_pick=scoring.on_pick if scoring is not None else None)
        # Frame positions follow the DECODED frame count: a container's header count can be
        # wrong (variable frame rate, truncation); in that rare case decode again for them.
        redo = [r for s in plan.frame_specs for r in s.frame_requests(clip.sample.num_frames, self.cfg)
                if r not in plan.requests]
        if redo:
            again = sample_video(reader, redo, motion_width=None)
            clip.sample.picks.update(again.picks)
        timings["decode"] = time.perf_counter() - t0
        return scoring

    def _run_steps(self, clip: DecodedClip, plan: _PassPlan, scoring: ScoringPipeline | None, out: ClipInputs,
                   timings: dict[str, float]) -> dict:
        """Select the keyframes and run every stream's step; returns stream -> (output, seconds)."""
        # the streams that read no keyframes start now, while the candidates' scoring finishes
        with _StepRunner(clip) as steps:
            for spec in plan.specs:
                if not spec.uses_keyframes:
                    steps.submit(spec.name, self.steps[spec.name])
            if plan.requests:
                if plan.stored is not None:
                    clip.keyframes = stored_selection(plan.stored, clip.sample, "keyframes")
                elif plan.keyframe_specs:
                    clip.keyframes = select_from_sample(clip.sample, self.scorer, self.settings,
                                                        [name for name, _, _ in plan.keyframe_sizes],
                                                        reuse=clip.reuse, scoring=scoring)
                    timings.update(clip.keyframes.timings)
                out.keyframes = None if plan.stored is not None else clip.keyframes
            for spec in plan.specs:
                if spec.uses_keyframes:
                    steps.submit(spec.name, self.steps[spec.name])
            return {spec.name: steps.result(spec.name) for spec in plan.specs}

    @staticmethod
    def _record_meta(meta: dict, info, clip: DecodedClip, plan: _PassPlan, decode_warning: str) -> None:
        """The clip's video properties, decoding notes and keyframe selection into ``meta``."""
        meta.update({"width": info.width, "height": info.height, "fps": info.fps, "duration": info.duration,
                     "frame_count": clip.sample.num_frames if clip.sample is not None else info.frame_count})
        if decode_warning:
            meta["decode_warning"] = decode_warning
        if clip.keyframes is not None:
            sel = clip.keyframes.selection
            meta["keyframes"] = {
                "times": [round(k.time, 6) for k in sel.keyframes],
                "indices": [k.index for k in sel.keyframes],
                "scores": [round(k.score, 6) for k in sel.keyframes],
                "duplicated": sel.duplicated,
                "scorer_classes": list(clip.keyframes.class_names),
                "reused": plan.stored is not None,
            }

    def __call__(self, record: ClipRecord) -> str:
        directory = cache.entry_dir(self.cache_root, record.clip_id)
        meta = cache.read_meta(directory)
        todo = self.todo(directory, meta)
        if not todo:
            if any(meta.get(k) != v for k, v in _label_fields(record).items()):
                # the arrays are current, the dataset's labels are not (e.g. a labels: mapping changed)
                cache.write_meta(directory, {**meta, **_label_fields(record)})
                return "done"
            return "skipped"
        remove_temp_files(directory)  # of writes a killed run left; this job alone writes the entry
        meta = dict(meta or {})
        arrays = dict(meta.get("arrays", {}))
        if meta:
            # Forget the arrays about to be rewritten before touching them: a kill from here on
            # leaves them marked missing, never marked up to date with other contents.
            for s in todo:
                arrays.pop(s, None)
            meta["arrays"] = arrays
            cache.write_meta(directory, meta)
        # a selection is reused only from a complete entry: without meta.json the entry is what a
        # killed run left, and a re-run must write what an uninterrupted run writes
        stored = cache.read_keyframes_record(directory) if meta else None
        inputs = self.compute(record.path, todo, stored_keyframes=stored)
        t0 = time.perf_counter()
        directory.mkdir(parents=True, exist_ok=True)  # only now: a clip that fails leaves no directory
        meta.update({"clip_id": record.clip_id, "source": str(record.path), **_label_fields(record),
                     "package_versions": package_versions()})
        missing = {s: why for s, why in (meta.get(cache.MISSING_MODALITIES) or {}).items() if s not in todo}
        meta.update(inputs.meta)
        missing.update(inputs.meta.get(cache.MISSING_MODALITIES) or {})
        meta.pop(cache.MISSING_MODALITIES, None)
        if missing:  # the arrays recomputed now are no longer missing; those computed before keep their reason
            meta[cache.MISSING_MODALITIES] = missing
        if inputs.keyframes is not None:  # a fresh selection: record it, and draw it if asked
            cache.write_keyframes_record(directory, keyframes_record(
                inputs.keyframes, inputs.info, clip_id=record.clip_id, settings_hash=self.keyframes_hash,
                scorer_hash=self.scorer_hash))
            if self.contact_sheet:
                write_contact_sheet(directory / cache.CONTACT_SHEET, inputs.keyframes)
        for spec in (STREAM_SPECS[s] for s in inputs.streams):
            if spec.name in inputs.arrays:
                cache.write_array(directory, spec.name, inputs.arrays[spec.name])
            else:
                cache.remove_array(directory, spec.name)  # e.g. the clip has no audio track (any more)
        for stream in todo:
            arrays[stream] = self.hashes[stream]
        meta["arrays"] = arrays
        meta["config_hashes"] = {**meta.get("config_hashes", {}), **self.hashes}
        timings = {**inputs.timings, "write": time.perf_counter() - t0}
        meta["timings_s"] = {k: round(v, 4) for k, v in timings.items()}
        cache.write_meta(directory, meta)  # last: marks the arrays above as complete
        self.last_timings = timings
        return "done"


def _label_fields(record: ClipRecord) -> dict:
    """What an entry's ``meta.json`` records about the clip's place in the dataset."""
    return {"split": record.split, "label": record.label, "class_names": list(record.class_names)}


@dataclass
class _PassPlan:
    """What :meth:`ClipPreprocessor.compute` does with one clip: the streams to compute
    (``specs``), those of them that read keyframes, the stored ``keyframes.json`` record whose
    selection is taken again (``None``: select afresh), and, once planned, the keyframe image
    sizes, the frame requests of the decoding pass and the streams that asked for frames."""

    specs: list[StreamSpec]
    keyframe_specs: list[StreamSpec]
    stored: dict | None
    keyframe_sizes: tuple[tuple[str, int | None, int | None], ...] = ()
    requests: list[FrameRequest] = field(default_factory=list)
    frame_specs: list[StreamSpec] = field(default_factory=list)

    @property
    def selects(self) -> bool:
        """Whether keyframes are scored and selected in this pass."""
        return bool(self.keyframe_specs) and self.stored is None


def _decode_audio(reader, clip: DecodedClip, rates: Sequence[int], audio_job, timings: dict[str, float]) -> str | None:
    """The audio track at every rate in ``rates`` into ``clip.audio`` (from the background job
    ``audio_job`` when a file's track is decoded beside the video pass); returns the note of a
    track that broke off."""
    audio_warning = None
    if rates:
        t0 = time.perf_counter()
        if audio_job is not None:
            clip.audio, audio_warning = audio_job.result()
        else:
            clip.audio = {r: reader.read_audio(sample_rate=r) if clip.info.has_audio else None for r in rates}
        timings["audio_decode"] = time.perf_counter() - t0
    return audio_warning


# one worker for a file's audio track, decoded while the video pass runs
_BACKGROUND = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audio_track")


def _read_audio_tracks(path, rates: Sequence[int]) -> tuple[dict[int, np.ndarray | None], str | None]:
    """The audio track of ``path`` at each rate, and the note of a track that broke off."""
    out, notes = {}, []
    for r in rates:
        out[r], note = read_audio_track(path, r)
        notes.append(note)
    return out, next((n for n in notes if n), None)


class _StepRunner:
    """Runs the streams' steps on ``clip`` two at a time on worker threads, each as soon as it is
    submitted (they read the clip and write nothing shared: the flow and the spectrogram are
    computed while the candidates' scoring finishes, face detection while they end); workers use
    as many torch threads as the thread that made the runner. :meth:`result` is ``(output,
    seconds)``, re-raising a step's error. Use it as a context manager: leaving it waits for the
    steps still running and ends the threads."""

    def __init__(self, clip: DecodedClip) -> None:
        self.clip = clip
        self.threads = torch.get_num_threads()
        self.jobs: dict = {}
        self.pool: ThreadPoolExecutor | None = None

    def _timed(self, step):
        torch.set_num_threads(self.threads)  # OpenMP keeps a thread count per thread
        t0 = time.perf_counter()
        result = step(self.clip)
        return result, time.perf_counter() - t0

    def submit(self, name: str, step) -> None:
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="stream_step")
        self.jobs[name] = self.pool.submit(self._timed, step)

    def result(self, name: str):
        return self.jobs[name].result()

    def __enter__(self) -> "_StepRunner":
        return self

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)


def write_contact_sheet(path: Path, result: KeyframeResult) -> None:
    """The contact sheet of a fresh keyframe selection (drawn from its small copies)."""
    from keyframes.contact_sheet import write_contact_sheet as draw

    draw(path, result.images[_SHEET], result.selection, result.class_names)


def build_preprocess_job(cfg: dict, scorer_path: str | None, cache_root: str, streams: Iterable[str] | None = None,
                         contact_sheet: bool = False, device: str = "cpu") -> ClipPreprocessor:
    """A :class:`ClipPreprocessor` from a recipe and a scorer run/checkpoint (module-level, so each
    worker process builds its own models), the scorer and the face detector on ``device``."""
    from training.checkpoints import checkpoint_hash

    names = parse_streams(streams, cfg)
    settings = KeyframeSettings.from_config(cfg.get("keyframes"))
    scorer, scorer_hash = None, "none"
    if scorer_path and any(STREAM_SPECS[s].uses_keyframes for s in names):
        scorer = SentimentScorer.from_checkpoint(scorer_path, input_size=settings.score_size, device=device,
                                                 batch_size=settings.batch_size, precision=settings.precision)
        settings.intensity_function(scorer.class_names)  # a scorer without a neutral class fails here, not per clip
        scorer_hash = checkpoint_hash(scorer_path)
    return ClipPreprocessor(cfg, cache_root=cache_root, scorer=scorer, scorer_hash=scorer_hash, streams=names,
                            contact_sheet=contact_sheet, device=device)


class VerifyReport:
    def __init__(self) -> None:
        self.complete: list[str] = []
        self.missing: list[str] = []
        self.stale: dict[str, list[str]] = {}
        self.unexpected: list[str] = []

    @property
    def ok(self) -> bool:
        return not self.missing and not self.stale

    def format(self) -> str:
        lines = [f"complete {len(self.complete)} | missing {len(self.missing)} | stale {len(self.stale)} "
                 f"| in cache but not in the dataset {len(self.unexpected)}"]
        if self.missing:
            lines.append("  missing: " + ", ".join(self.missing[:5]) + (" ..." if len(self.missing) > 5 else ""))
        for clip_id, streams in list(self.stale.items())[:5]:
            lines.append(f"  stale, incomplete or unreadable {clip_id}: {','.join(streams)}")
        lines.append("OK: cache is complete and consistent" if self.ok else
                     "NOT OK: re-run tools/preprocess.py (for all shards) to fill the gaps")
        return "\n".join(lines)


def verify_cache(records: Iterable[ClipRecord], preprocessor: ClipPreprocessor) -> VerifyReport:
    """Check every record has an up-to-date, readable cache entry for the preprocessor's streams and
    config (what a merged, sharded cache must satisfy before training)."""
    report = VerifyReport()
    ids = set()
    for record in records:
        ids.add(record.clip_id)
        directory = cache.entry_dir(preprocessor.cache_root, record.clip_id)
        meta = cache.read_meta(directory)
        if meta is None:
            report.missing.append(record.clip_id)
            continue
        todo = preprocessor.todo(directory, meta)
        if todo:
            report.stale[record.clip_id] = todo
        else:
            report.complete.append(record.clip_id)
    if preprocessor.cache_root.is_dir():
        report.unexpected = [e.clip_id for e in cache.iter_entries(preprocessor.cache_root) if e.clip_id not in ids]
    return report


def write_pipeline_record(cache_root: str | os.PathLike, cfg: dict, scorer_path: str | None) -> None:
    """``CACHE/pipeline.json``: the preprocessing config and scorer that made this cache, so that
    later stages (prediction on raw video) can rebuild the same preprocessing."""
    from training.checkpoints import checkpoint_hash

    Path(cache_root).mkdir(parents=True, exist_ok=True)
    atomic_write_json(cache.pipeline_path(cache_root), {
        "config": cfg,
        "scorer": str(Path(scorer_path).resolve()) if scorer_path else None,
        "scorer_hash": checkpoint_hash(scorer_path) if scorer_path else None,
    })
