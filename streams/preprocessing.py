"""One-pass preprocessing of a clip into the four streams' inputs.

The clip is decoded once (:func:`media.sampling.sample_video`); from that pass come the keyframe
candidates (scored small, kept at the visual size and at a larger size for face detection), the
grey frame pairs for optical flow, and the per-frame motion used by the keyframe rule. The audio
track is decoded from the same open container. Output: ``CACHE/<clip_id>/`` as documented in
:mod:`streams.cache`.

Each array carries the hash of the config that produced it (its own section plus upstream ones:
faces depend on the keyframes), so a re-run recomputes only what changed, and the decode pass
is skipped entirely when only the audio needs redoing.
"""
from __future__ import annotations

import importlib.metadata
from contextlib import nullcontext
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from media.datasets import ClipRecord
from media.decoding import VideoReader
from media.sampling import FrameRequest, sample_video
from media.storage import atomic_save_npy, config_hash, read_json, safe_child
from keyframes.extraction import (
    KeyframeSettings, candidate_request, keyframes_hash, keyframes_record, select_from_sample, write_keyframes,
)
from keyframes.scorer import SentimentScorer
from streams.cache import ARRAY_FILES, META_FILE, STREAMS, write_meta
from streams.inputs.faces import FaceExtractor
from streams.inputs.optical_flow import compute_flow_stack, create_flow_estimator, flow_positions, quantise_flow
from streams.inputs.spectrogram import log_mel_spectrogram

_VERSIONED_PACKAGES = ("torch", "torchvision", "opencv-contrib-python", "av", "librosa", "numpy", "facenet-pytorch")


def package_versions() -> dict[str, str]:
    out = {}
    for name in _VERSIONED_PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def parse_streams(spec: str | Iterable[str] | None) -> tuple[str, ...]:
    """``"visual,flow"`` -> ``("visual", "flow")``; ``None`` -> all four. Unknown names raise."""
    if spec is None:
        return STREAMS
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    bad = [n for n in names if n not in STREAMS]
    if bad or not names:
        raise ValueError(f"--streams: unknown {bad or 'empty list'}; choose from {','.join(STREAMS)}")
    return tuple(n for n in STREAMS if n in names)


class ClipPreprocessor:
    """``ClipPreprocessor(cfg, ...)(record) -> "done" | "skipped"``: brings ``CACHE/<clip_id>/`` up
    to date for the requested ``streams``. ``cfg`` is a preprocessing recipe (sections keyframes,
    visual, flow, faces, audio). ``scorer`` may be ``None`` only when neither visual nor face is
    requested."""

    def __init__(self, cfg: dict, *, cache_root: str | os.PathLike, scorer: SentimentScorer | None,
                 scorer_hash: str, streams: Iterable[str] = STREAMS, contact_sheet: bool = False) -> None:
        self.cfg = cfg
        self.cache_root = Path(cache_root)
        self.streams = tuple(streams)
        self.scorer = scorer
        self.contact_sheet = contact_sheet
        self.settings = KeyframeSettings.from_config(cfg.get("keyframes"))
        self.visual_cfg = dict(cfg.get("visual", {}))
        self.flow_cfg = dict(cfg.get("flow", {}))
        self.faces_cfg = dict(cfg.get("faces", {}))
        self.audio_cfg = dict(cfg.get("audio", {}))
        if scorer is None and {"visual", "face"} & set(self.streams):
            raise ValueError("visual and face inputs need the keyframe scorer (--scorer RUN_OR_CHECKPOINT)")
        kf_hash = keyframes_hash(self.settings, int(self.visual_cfg.get("short_side", 256)), scorer_hash)
        self.hashes = {
            "visual": kf_hash,
            "face": config_hash({"faces": self.faces_cfg, "keyframes": kf_hash}),
            "flow": config_hash({"flow": self.flow_cfg}),
            "audio": config_hash({"audio": self.audio_cfg}),
        }
        self.scorer_hash = scorer_hash
        self._faces: FaceExtractor | None = None
        self._flow = None
        self.last_timings: dict[str, float] = {}

    # -- lazily built, so a worker that only does audio never loads MTCNN
    @property
    def faces(self) -> FaceExtractor:
        if self._faces is None:
            f = self.faces_cfg
            self._faces = FaceExtractor(
                detect_max_side=int(f.get("detect_max_side", 640)), min_confidence=float(f.get("min_confidence", 0.9)),
                min_size=int(f.get("min_size", 20)), num_faces=int(f.get("num_faces", 16)),
                crop_size=int(f.get("crop_size", 112)), margin=float(f.get("margin", 0.25)))
        return self._faces

    @property
    def flow(self):
        if self._flow is None:
            self._flow = create_flow_estimator(str(self.flow_cfg.get("algorithm", "dis")))
        return self._flow

    def todo(self, directory: Path, meta: dict | None) -> list[str]:
        """Requested streams whose array is missing or was made with another config."""
        arrays = (meta or {}).get("arrays", {})
        out = []
        for s in self.streams:
            present = arrays.get(s) == self.hashes[s]
            if present and s != "audio" and not (directory / ARRAY_FILES[s]).exists():
                present = False
            if present and s == "audio" and (meta or {}).get("has_audio") and not (directory / ARRAY_FILES[s]).exists():
                present = False
            if not present:
                out.append(s)
        return out

    def compute(self, source, todo: Iterable[str]) -> "ClipInputs":
        """Decode ``source`` once and compute the inputs of the streams in ``todo``, in memory.

        ``source`` is a video path, or an open reader with the :class:`media.decoding.VideoReader`
        interface (``info``, ``iter_handles()``, ``read_audio()``), e.g. a live window of frames."""
        todo = [s for s in STREAMS if s in set(todo)]
        timings: dict[str, float] = {}
        t_start = time.perf_counter()
        need_kf = bool({"visual", "face"} & set(todo))
        need_frames = need_kf or "flow" in todo
        out = ClipInputs(streams=tuple(todo))
        opened = isinstance(source, (str, os.PathLike))
        with (VideoReader(source) if opened else nullcontext(source)) as reader:
            info = out.info = reader.info
            sample = result = None
            if need_frames:
                requests = []
                if need_kf:
                    keep = [("visual", int(self.visual_cfg.get("short_side", 256)), None),
                            ("face_source", None, int(self.faces_cfg.get("source_max_side", 1280)))]
                    requests.append(candidate_request(info.duration, self.settings, keep))
                if "flow" in todo:
                    step = int(self.flow_cfg.get("step", 1))
                    n_frames = max(info.frame_count, step + 1)
                    positions = flow_positions(n_frames, int(self.flow_cfg.get("positions", 8)), step)
                    requests.append(FrameRequest(name="flow", indices=tuple(positions), following=step,
                                                 sizes=(("gray", int(self.flow_cfg.get("short_side", 256)), None, True),)))
                t0 = time.perf_counter()
                sample = sample_video(reader, requests, motion_width=self.settings.motion_width if need_kf else None)
                timings["decode"] = time.perf_counter() - t0
                if need_kf:
                    result = out.keyframes = select_from_sample(sample, self.scorer, self.settings, ["visual", "face_source"])
                    timings.update(result.timings)
            audio = None
            if "audio" in todo and info.has_audio:
                t0 = time.perf_counter()
                audio = reader.read_audio(sample_rate=int(self.audio_cfg.get("sample_rate", 16000)))
                timings["audio_decode"] = time.perf_counter() - t0
            decode_warning = getattr(reader, "decode_warning", None)

        meta = out.meta
        meta.update({
            "width": info.width, "height": info.height, "fps": info.fps, "duration": info.duration,
            "frame_count": sample.num_frames if sample is not None else info.frame_count,
            "has_audio": bool(info.has_audio),
        })
        if decode_warning:
            meta["decode_warning"] = decode_warning
        if need_kf:
            sel = result.selection
            meta["keyframes"] = {
                "times": [round(k.time, 6) for k in sel.keyframes],
                "indices": [k.index for k in sel.keyframes],
                "scores": [round(k.score, 6) for k in sel.keyframes],
                "duplicated": sel.duplicated,
                "scorer_classes": list(result.class_names),
            }
            out.arrays["visual"] = np.stack(result.images["visual"])
            if "face" in todo:
                t0 = time.perf_counter()
                faces = self.faces.extract(result.images["face_source"], [k.time for k in sel.keyframes])
                timings["faces"] = time.perf_counter() - t0
                out.arrays["face"] = faces.crops
                meta["n_faces"] = int(faces.n_faces)
                meta["faces"] = {
                    "repeated": bool(faces.repeated),
                    "boxes": [[[round(float(v), 1) for v in b] for b in frame] for frame in faces.boxes],
                    "confidences": [[round(float(c), 4) for c in frame] for frame in faces.confidences],
                    "selected": [list(map(int, s)) for s in faces.selected],
                    "crop_size": int(self.faces_cfg.get("crop_size", 112)),
                }
        if "flow" in todo:
            t0 = time.perf_counter()
            bound = float(self.flow_cfg.get("bound", 20.0))
            pairs = [(g[0].images["gray"], g[-1].images["gray"]) for g in sample.picks["flow"]]
            out.arrays["flow"] = quantise_flow(compute_flow_stack(pairs, self.flow), bound)
            meta["flow"] = {"algorithm": str(self.flow_cfg.get("algorithm", "dis")), "bound": bound,
                            "quantised": "uint8: v = round((clip(f, -bound, bound) + bound) * 255 / (2 * bound))",
                            "frame_indices": [[f.index for f in g] for g in sample.picks["flow"]]}
            timings["flow"] = time.perf_counter() - t0
        if "audio" in todo:
            t0 = time.perf_counter()
            sr = int(self.audio_cfg.get("sample_rate", 16000))
            if audio is not None and audio.size > 0:
                mel = log_mel_spectrogram(audio, sr, n_mels=int(self.audio_cfg.get("n_mels", 128)),
                                          n_fft=int(self.audio_cfg.get("n_fft", 1024)),
                                          hop_length=int(self.audio_cfg.get("hop_length", 512)))
                out.arrays["audio"] = mel.astype(np.float16)
                meta["audio"] = {"sample_rate": sr, "source_sample_rate": info.audio_sample_rate,
                                 "n_mels": int(mel.shape[0]), "frames": int(mel.shape[1]), "unit": "dB"}
            else:
                meta["has_audio"] = False  # store nothing fake
                meta["audio"] = {"sample_rate": sr, "source_sample_rate": None}
            timings["mel"] = time.perf_counter() - t0
        timings["compute_total"] = time.perf_counter() - t_start
        out.timings = timings
        return out

    def __call__(self, record: ClipRecord) -> str:
        directory = safe_child(self.cache_root, record.clip_id)
        meta = read_json(directory / META_FILE)
        todo = self.todo(directory, meta)
        if not todo:
            return "skipped"
        meta = dict(meta or {})
        arrays = dict(meta.get("arrays", {}))
        if meta:
            # Forget the arrays about to be rewritten before touching them: a kill from here on
            # leaves them marked missing, never marked up to date with other contents.
            for s in todo:
                arrays.pop(s, None)
            meta["arrays"] = arrays
            write_meta(directory, meta)
        directory.mkdir(parents=True, exist_ok=True)
        inputs = self.compute(record.path, todo)
        t0 = time.perf_counter()
        meta.update({"clip_id": record.clip_id, "source": str(record.path), "split": record.split,
                     "label": record.label, "class_names": list(record.class_names),
                     "package_versions": package_versions()})
        meta.update(inputs.meta)
        if "visual" in todo:
            result = inputs.keyframes
            write_keyframes(directory, inputs.arrays["visual"],
                            keyframes_record(result, inputs.info, clip_id=record.clip_id,
                                             settings_hash=self.hashes["visual"], scorer_hash=self.scorer_hash))
            if self.contact_sheet:
                from keyframes.contact_sheet import write_contact_sheet

                write_contact_sheet(directory / "contact_sheet.png", result.images["visual"], result.selection,
                                    result.class_names)
        for stream in ("face", "flow", "audio"):
            if stream not in todo:
                continue
            path = directory / ARRAY_FILES[stream]
            if stream in inputs.arrays:
                atomic_save_npy(path, inputs.arrays[stream])
            elif path.exists():
                path.unlink()  # e.g. the clip has no audio track (any more)
        for stream in todo:
            arrays[stream] = self.hashes[stream]
        meta.setdefault("n_faces", 0)
        meta["arrays"] = arrays
        meta["config_hashes"] = dict(self.hashes)
        timings = {**inputs.timings, "write": time.perf_counter() - t0}
        meta["timings_s"] = {k: round(v, 4) for k, v in timings.items()}
        write_meta(directory, meta)  # last: marks the arrays above as complete
        self.last_timings = timings
        return "done"


@dataclass
class ClipInputs:
    """The in-memory result of :meth:`ClipPreprocessor.compute`: ``arrays`` (stream -> array, as
    stored in the cache; a missing modality has no entry), the ``meta`` fields, the keyframe
    result and per-stage ``timings`` (s)."""

    streams: tuple[str, ...]
    arrays: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    info: object = None
    keyframes: object = None
    timings: dict = field(default_factory=dict)


def build_preprocess_job(cfg: dict, scorer_path: str | None, cache_root: str, streams: Iterable[str] = STREAMS,
                         contact_sheet: bool = False) -> ClipPreprocessor:
    """A :class:`ClipPreprocessor` from a recipe and a scorer run/checkpoint (module-level, so each
    worker process builds its own models)."""
    from training.checkpoints import checkpoint_hash

    settings = KeyframeSettings.from_config(cfg.get("keyframes"))
    scorer, scorer_hash = None, "none"
    if scorer_path and {"visual", "face"} & set(streams):
        scorer = SentimentScorer.from_checkpoint(scorer_path, input_size=settings.score_size,
                                                 batch_size=settings.batch_size)
        scorer_hash = checkpoint_hash(scorer_path)
    return ClipPreprocessor(cfg, cache_root=cache_root, scorer=scorer, scorer_hash=scorer_hash, streams=streams,
                            contact_sheet=contact_sheet)


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
            lines.append(f"  stale or incomplete {clip_id}: {','.join(streams)}")
        lines.append("OK: cache is complete and consistent" if self.ok else
                     "NOT OK: re-run tools/preprocess.py (for all shards) to fill the gaps")
        return "\n".join(lines)


def verify_cache(records: Iterable[ClipRecord], preprocessor: ClipPreprocessor) -> VerifyReport:
    """Check every record has an up-to-date cache entry for the preprocessor's streams and config
    (what a merged, sharded cache must satisfy before training)."""
    from streams.cache import iter_entries

    report = VerifyReport()
    ids = set()
    for record in records:
        ids.add(record.clip_id)
        directory = safe_child(preprocessor.cache_root, record.clip_id)
        meta = read_json(directory / META_FILE)
        if meta is None:
            report.missing.append(record.clip_id)
            continue
        todo = preprocessor.todo(directory, meta)
        if todo:
            report.stale[record.clip_id] = todo
        else:
            report.complete.append(record.clip_id)
    if preprocessor.cache_root.is_dir():
        report.unexpected = [e.clip_id for e in iter_entries(preprocessor.cache_root) if e.clip_id not in ids]
    return report


def write_pipeline_record(cache_root: str | os.PathLike, cfg: dict, scorer_path: str | None) -> None:
    """``CACHE/pipeline.json``: the preprocessing config and scorer that made this cache, so that
    later stages (prediction on raw video) can rebuild the same preprocessing."""
    from media.storage import atomic_write_json
    from training.checkpoints import checkpoint_hash

    Path(cache_root).mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(cache_root) / "pipeline.json", {
        "config": cfg,
        "scorer": str(Path(scorer_path).resolve()) if scorer_path else None,
        "scorer_hash": checkpoint_hash(scorer_path) if scorer_path else None,
    })
