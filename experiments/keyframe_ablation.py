"""The keyframe ablation (``tools/ablate.py keyframes``): does the sentiment-aware selection find
a clip's emotional moment better than uniform sampling, and does the keyframe stream gain from it?

It runs on a synthetic set built for the question: every clip is a *peak* clip of
:mod:`synthetic.group` (its class cues at full strength for about one second, a Gaussian bump of
sigma 0.4 s around a recorded centre, and at 30 % elsewhere), 5 s at 25 fps by default (the VGAF
setting). Each selection (``uniform``; ``literal`` and ``default`` for each intensity asked for)
is made by the real preprocessing (``keyframes.mode`` / ``keyframes.intensity`` overrides of the
preprocessing recipe, only the stream that stores the keyframes), then measured twice:

* **salient recall**: per clip, the fraction of its N keyframes whose time lies in the *peak
  second* ``[centre - 0.5 s, centre + 0.5 s]`` recorded in ``synthetic.json`` (uniform sampling
  gets about 1 s / duration). Averaged over the **non-neutral** clips only: a clip whose visual
  cue shows Neutral has valence ~0, so the envelope scales nothing and there is no visible peak
  to find. Per-class means (Neutral included, for reference) and the spread over clips are
  reported beside it. Train and Val clips both count (the selection does not depend on the split).
* **val accuracy**: the stream that stores the keyframes, trained with its tiny recipe on that
  selection's cache (train split), scored on the val split with the weights of the last epoch
  (no checkpoint chosen on val, so the number is not the maximum of a noisy curve); the best
  epoch's accuracy is reported beside it.

Why here: the ablation drives preprocessing (:mod:`streams.preprocessing`) and stream training
(:mod:`streams.training`), so it sits above ``streams`` in the import order (media, training ->
keyframes -> streams -> fusion); :mod:`benchmarks` is the package of measurements that run the
pipeline. Nothing here names a stream: the stream is the spec that stores the keyframes.

Layout of the output folder ``DIR``: ``data/`` (the generated set), ``scorer/`` (when trained
here), ``caches/<selection>/``, ``runs/<selection>-<hash>/`` (the hash of the keyframe settings
and scorer, so a new scorer never reuses an old run), ``ablation.json``, ``ablation.md``. A
re-run reuses everything that is up to date.
"""
from __future__ import annotations

import functools
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch

from benchmarks.timing import BenchmarkError, machine_info
from core.batch import run_batch
from core.command_line import naming_config
from core.config import load_config
from core.storage import atomic_write_json, atomic_write_text
from keyframes.extraction import KeyframeSettings, keyframes_hash
from keyframes.selection import INTENSITIES
from media.selection import select_records
from streams import cache
from streams.preprocessing import build_preprocess_job, check_preprocess_recipe, write_pipeline_record
from streams.specs import STREAM_SPECS, StreamSpec
from synthetic.cues import CLASSES, VISUAL
from synthetic.group import generate_dataset
from training.checkpoints import checkpoint_hash, read_meta

ROOT = Path(__file__).resolve().parents[1]
PREPROCESS_CONFIG = ROOT / "configs/preprocess/demo.yaml"
SCORER_RECIPE = ROOT / "configs/keyframes/scorer_demo.yaml"
PEAK_HALF_WIDTH_S = 0.5
"""The peak second is the recorded peak centre +- this many seconds."""
NEUTRAL = "Neutral"
PEAK_CUE = VISUAL
"""The synthetic modality (:data:`synthetic.group.MODALITIES`: the wall's colour grade) whose shown
class decides whether a clip has a visible peak: the cue the keyframe stream reads."""
TrainTask = tuple[str, str, str, int, "int | None"]
"""``(recipe path, cache, run directory, seed, epochs or None)`` of one stream training."""


@dataclass(frozen=True)
class AblationSettings:
    """What the ablation generates and runs.

    ``n_train``/``n_val``: clips per split (balanced classes); ``seed``: the dataset's and every
    training's seed; ``duration`` (s), ``fps``, ``width``/``height`` (px): the clips;
    ``cue_noise``: the generator's per-modality probability of showing a random class (0 here:
    every clip's visual cue shows its class, so label noise does not blur the comparison);
    ``intensities``: the intensities ``literal`` and ``default`` run with (``uniform`` ignores
    scores and runs once; ``None``: the preprocessing recipe's ``keyframes.intensity``);
    ``stills_per_class``: GroupEmoW-format stills per class for the train
    and val split, used when the scorer is trained here; ``epochs``: the stream recipe's
    ``train.epochs`` override (``None``: the recipe's); ``workers``: processes for generation,
    preprocessing and training (each training uses one torch thread, so results do not depend on
    it); ``preprocess_config``: the preprocessing recipe, with ``overrides`` (``KEY=VALUE``, as
    ``--set``) applied to every selection, e.g. ``keyframes.precision=bfloat16``."""

    n_train: int = 120
    n_val: int = 60
    seed: int = 0
    duration: float = 5.0
    fps: float = 25.0
    width: int = 320
    height: int = 180
    cue_noise: float = 0.0
    intensities: tuple[str, ...] | None = None
    stills_per_class: int = 40
    epochs: int | None = None
    workers: int = 2
    preprocess_config: str = str(PREPROCESS_CONFIG)
    overrides: tuple[str, ...] = ()

    def recipe(self, extra: Sequence[str] = ()) -> dict[str, Any]:
        """The preprocessing recipe with ``overrides`` (``--set``) and then ``extra`` applied."""
        return load_config(self.preprocess_config, [*self.overrides, *extra])

    def __post_init__(self) -> None:
        if self.n_train < 3 or self.n_val < 1:
            raise BenchmarkError(f"the ablation needs at least 3 train clips (one per class) and 1 val clip, "
                                 f"got --train {self.n_train} --val {self.n_val}")
        if self.intensities is not None and (not self.intensities
                                             or any(i not in INTENSITIES for i in self.intensities)):
            raise BenchmarkError(f"intensities must be among {INTENSITIES}, got {list(self.intensities)}")
        if self.duration <= 2 * PEAK_HALF_WIDTH_S:
            raise BenchmarkError(f"clips must be longer than the peak second, got --duration {self.duration}")
        if self.epochs is not None and self.epochs < 1:
            raise BenchmarkError(f"epochs must be >= 1, got {self.epochs}")


@dataclass(frozen=True)
class Selection:
    """One row of the ablation: a keyframe ``mode`` and (except for ``uniform``) an ``intensity``."""

    mode: str
    intensity: str | None

    @property
    def name(self) -> str:
        return self.mode if self.intensity is None else f"{self.mode}-{self.intensity}"


def selections(intensities: Sequence[str]) -> list[Selection]:
    """``uniform`` once, then ``literal`` and ``default`` for each intensity."""
    return [Selection("uniform", None)] + [Selection(m, i) for i in intensities for m in ("literal", "default")]


def keyframe_stream() -> StreamSpec:
    """The stream whose input is the keyframes themselves (the one the ablation trains)."""
    found = [s for s in STREAM_SPECS.values() if s.stores_keyframes]
    if len(found) != 1:
        raise BenchmarkError(f"expected one stream that stores the keyframes, found {[s.name for s in found]}")
    return found[0]


# ----------------------------------------------------------------------------------------------
# salient recall

def peak_windows(metadata: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """``clip_id -> (start, end)`` of every peak clip's peak second (s), from a loaded
    ``synthetic.json``; clip ids as in the cache (``Train/1_1``). A clip without a peak is left out."""
    out = {}
    for split, clips in metadata["clips"].items():
        for clip in clips:
            peak = clip.get("peak")
            if peak:
                centre = float(peak["center_s"])
                out[f"{split}/{clip['name']}"] = (centre - PEAK_HALF_WIDTH_S, centre + PEAK_HALF_WIDTH_S)
    return out


def salient_recall(times: Sequence[float], window: tuple[float, float]) -> float:
    """The fraction of keyframe ``times`` (s; repeats count each time) inside ``window`` (closed)."""
    if not times:
        raise ValueError("no keyframe times")
    start, end = window
    return sum(start <= t <= end for t in times) / len(times)


def _spread(values: Sequence[float]) -> dict[str, float]:
    vals = sorted(values)
    q = statistics.quantiles(vals, n=4, method="inclusive") if len(vals) > 1 else [vals[0]] * 3
    return {"std": round(statistics.pstdev(vals), 4), "min": round(vals[0], 4), "q25": round(q[0], 4),
            "median": round(q[1], 4), "q75": round(q[2], 4), "max": round(vals[-1], 4)}


def cache_recall(cache_root: str | os.PathLike, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Salient recall of the selection stored in ``cache_root`` (every entry's ``keyframes.json``)
    against the peaks recorded in ``metadata`` (a loaded ``synthetic.json``).

    Returns ``salient_recall`` (mean over the non-neutral clips: those whose visual cue shows
    Positive or Negative), ``recall_spread`` over those clips, ``recall_by_class`` (every class,
    Neutral included), ``recall_clips`` (how many non-neutral clips) and ``picks_by_reason``
    (keyframes per selection reason, summed over all clips). Raises :class:`BenchmarkError` when
    a clip of the dataset has no stored selection."""
    windows = peak_windows(metadata)
    shown = {f"{split}/{c['name']}": c["shown"][PEAK_CUE] for split, clips in metadata["clips"].items() for c in clips}
    by_class: dict[str, list[float]] = {}
    non_neutral: list[float] = []
    reasons: dict[str, int] = {}
    for clip_id, window in sorted(windows.items()):
        record = cache.read_keyframes_record(cache.entry_dir(cache_root, clip_id))
        if record is None:
            raise BenchmarkError(f"{cache.entry_dir(cache_root, clip_id)}: no keyframes.json for clip {clip_id} "
                                 f"(see {cache.errors_path(cache_root)})")
        recall = salient_recall([float(k["time"]) for k in record["keyframes"]], window)
        by_class.setdefault(shown[clip_id], []).append(recall)
        if shown[clip_id] != NEUTRAL:
            non_neutral.append(recall)
        for k in record["keyframes"]:
            reasons[k["reason"]] = reasons.get(k["reason"], 0) + 1
    if not non_neutral:
        raise BenchmarkError(f"{cache_root}: no non-neutral peak clip to measure salient recall on")
    return {
        "salient_recall": round(statistics.fmean(non_neutral), 4),
        "recall_spread": _spread(non_neutral),
        "recall_by_class": {c: round(statistics.fmean(by_class[c]), 4) for c in CLASSES if c in by_class},
        "recall_clips": len(non_neutral),
        "picks_by_reason": dict(sorted(reasons.items())),
    }


# ----------------------------------------------------------------------------------------------
# the steps

def _dataset_params(settings: AblationSettings, stills: int) -> dict[str, Any]:
    return {"n_train": settings.n_train, "n_val": settings.n_val, "n_test": 0, "seed": settings.seed,
            "cue_noise": settings.cue_noise, "duration": settings.duration, "fps": settings.fps,
            "width": settings.width, "height": settings.height, "peak_fraction": 1.0,
            "n_stills_per_class": {"train": stills, "val": stills, "test": 0}}


def generate_peak_set(data: Path, settings: AblationSettings, *, stills: int) -> bool:
    """Write the ablation's synthetic set to ``data`` (every clip a peak clip, no audio; ``stills``
    GroupEmoW-format stills per class in train and val), or reuse the one there when it was made
    with the same parameters. Returns True when it was reused. A set made with other parameters
    raises :class:`BenchmarkError` (the caches and runs beside it were built on it)."""
    wanted = _dataset_params(settings, stills)
    meta_path = data / "synthetic.json"
    if meta_path.exists():
        params = json.loads(meta_path.read_text())["params"]
        have = {k: params.get(k) for k in wanted}
        if have != wanted:
            raise BenchmarkError(f"{meta_path}: generated with other parameters ({have}); pass --fresh to start "
                                 f"over with {wanted}, or choose another --out")
        return True
    generate_dataset(data, n_train=settings.n_train, n_val=settings.n_val, n_test=0, seed=settings.seed,
                     cue_noise=settings.cue_noise, duration=settings.duration, width=settings.width,
                     height=settings.height, fps=settings.fps, n_stills_per_class=wanted["n_stills_per_class"],
                     audio=False, peak_fraction=1.0, workers=settings.workers)
    return False


def train_scorer_here(data: Path, out: Path, *, seed: int) -> dict[str, Any]:
    """Train the demo scorer recipe (configs/keyframes/scorer_demo.yaml) on the set's stills.
    Returns its run's metrics (a finished run is reused)."""
    from keyframes.training import train_scorer

    return train_scorer(load_config(SCORER_RECIPE, [f"train.seed={seed}"]), data / "groupemow", out)


def scorer_input_size(scorer: str | os.PathLike) -> int:
    """The size (px) the scorer was trained at (its recipe's ``data.input_size``, 224 when absent)."""
    return int(read_meta(scorer).get("config", {}).get("data", {}).get("input_size", 224))


def preprocess_selection(selection: Selection, *, data: Path, cache_root: Path, scorer: str,
                         settings: AblationSettings) -> dict[str, Any]:
    """Preprocess every clip of ``data`` for the keyframe stream with ``selection``'s mode and
    intensity, the scorer scoring at its training size. Returns ``{"keyframes_hash", "seconds",
    "done", "skipped"}``; a clip that fails raises :class:`BenchmarkError` naming the error log."""
    overrides = [f"keyframes.mode={selection.mode}", f"keyframes.score_size={scorer_input_size(scorer)}"]
    if selection.intensity is not None:
        overrides.append(f"keyframes.intensity={selection.intensity}")
    cfg = settings.recipe(overrides)
    stream = keyframe_stream().name
    make_job = functools.partial(build_preprocess_job, cfg, scorer, str(cache_root), (stream,), False)
    records = [r for split in ("train", "val") for r in select_records(str(data), split=split, shard=None)]
    write_pipeline_record(cache_root, cfg, scorer)
    summary = run_batch(records, make_job, errors_log=cache.errors_path(cache_root), workers=settings.workers,
                        desc=f"keyframes {selection.name}")
    if summary.failed:
        raise BenchmarkError(f"{cache.errors_path(cache_root)}: {summary.failed} clip(s) failed to preprocess "
                             f"for {selection.name} (first: {summary.failures[0][0]}: {summary.failures[0][1]})")
    made_with = keyframes_hash(KeyframeSettings.from_config(cfg.get("keyframes")), checkpoint_hash(scorer))
    return {"keyframes_hash": made_with, "seconds": round(summary.seconds, 1), "done": summary.done,
            "skipped": summary.skipped}


def _train_one(task: TrainTask) -> dict[str, Any]:
    """Train the keyframe stream's tiny recipe on one cache (a process pool's job), with one
    torch thread (restored afterwards). Returns the row's training fields."""
    from streams.training import train_stream

    recipe, cache_root, run_dir, seed, epochs = task
    overrides = [f"train.seed={seed}"] + ([f"train.epochs={epochs}"] if epochs is not None else [])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    started = time.perf_counter()
    try:
        metrics = train_stream(load_config(recipe, overrides), cache_root, run_dir)
    finally:
        torch.set_num_threads(threads)
    last = metrics["history"][-1]
    return {"val_accuracy": round(float(last["val_acc"]), 4),
            "best_val_accuracy": round(float(metrics["best_val_acc"]), 4),
            "best_epoch": metrics["best_epoch"], "epochs": last["epoch"],
            "val_clips": (metrics.get("best_val_report") or {}).get("num_samples"),
            "train_seconds": round(time.perf_counter() - started, 1), "run": str(run_dir)}


def train_streams(tasks: Sequence[TrainTask], workers: int) -> list[dict[str, Any]]:
    """:func:`_train_one` for every task, ``workers`` at a time in spawned processes (in this
    process when ``workers <= 1``)."""
    if workers <= 1 or len(tasks) <= 1:
        return [_train_one(t) for t in tasks]
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=spawn) as pool:
        return list(pool.map(_train_one, tasks))


# ----------------------------------------------------------------------------------------------
# the whole ablation

def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its finished children (the worker
    processes of generation, preprocessing and training, counted once they have exited)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


@dataclass
class AblationResult:
    rows: list[dict[str, Any]]
    settings: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "settings": self.settings, **self.info}


def run_ablation(out: str | os.PathLike, settings: AblationSettings, *, scorer: str | os.PathLike | None = None,
                 train_scorer: bool = False, fresh: bool = False,
                 say: Callable[[str], None] = print) -> AblationResult:
    """Run the keyframe ablation into ``out`` and write ``out/ablation.json`` and ``out/ablation.md``.

    Exactly one of ``scorer`` (a trained scorer run or checkpoint) and ``train_scorer`` (train the
    demo recipe on the generated set's stills, into ``out/scorer``). ``fresh`` first deletes what
    an earlier ablation wrote into ``out``. ``say`` prints progress. Returns the rows (see the
    module docstring) and what they were measured with."""
    if (scorer is None) == (not train_scorer):
        raise BenchmarkError("give either a trained scorer (--scorer RUN) or --train-scorer, not both or neither")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise BenchmarkError(f"{out}: the output folder is a file")
    if scorer is not None:
        scorer_input_size(scorer)  # a missing or unreadable scorer stops here, before hours of work
    with naming_config(settings.preprocess_config):  # so does a recipe mistake
        check_preprocess_recipe(settings.recipe())
    if fresh:
        for name in ("data", "scorer", "caches", "runs", "ablation.json", "ablation.md"):
            path = out / name
            if path.is_dir():
                shutil.rmtree(path)
            elif path.exists():
                path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    started, cpu_started = time.perf_counter(), cpu_seconds()
    load_start = machine_info()["load_avg_1min"]
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def stage_done(name: str, wall0: float, cpu0: float) -> None:
        seconds[name], cpu[name] = round(time.perf_counter() - wall0, 1), round(cpu_seconds() - cpu0, 1)

    t, c = time.perf_counter(), cpu_seconds()
    data = out / "data"
    say(f"[1/4] synthetic peak set: {settings.n_train} train + {settings.n_val} val clips, "
        f"{settings.duration:g} s at {settings.fps:g} fps -> {data}")
    reused = generate_peak_set(data, settings, stills=settings.stills_per_class if train_scorer else 0)
    if reused:
        say("      reusing the set already there (same parameters)")
    stage_done("data", t, c)
    metadata = json.loads((data / "synthetic.json").read_text())

    t, c = time.perf_counter(), cpu_seconds()
    scorer_info: dict[str, Any]
    if train_scorer:
        say(f"[2/4] keyframe scorer: {SCORER_RECIPE.relative_to(ROOT)} on the set's stills -> {out / 'scorer'}")
        metrics = train_scorer_here(data, out / "scorer", seed=settings.seed)
        scorer = str(out / "scorer")
        scorer_info = {"run": scorer, "trained_here": True, "recipe": str(SCORER_RECIPE.relative_to(ROOT)),
                       "val_accuracy": metrics["best_val_acc"]}
    else:
        say(f"[2/4] keyframe scorer: {scorer}")
        scorer = str(scorer)
        scorer_info = {"run": scorer, "trained_here": False}
    scorer_info["input_size"] = scorer_input_size(scorer)
    stage_done("scorer", t, c)

    t, c = time.perf_counter(), cpu_seconds()
    if settings.intensities is None:
        configured = KeyframeSettings.from_config(settings.recipe().get("keyframes")).intensity
        settings = replace(settings, intensities=(configured,))
    rows_sel = selections(settings.intensities)
    stream = keyframe_stream()
    preprocessed = {}
    for i, sel in enumerate(rows_sel, 1):
        say(f"[3/4] keyframes {sel.name} ({i}/{len(rows_sel)}): preprocessing the {stream.name} stream")
        preprocessed[sel] = preprocess_selection(sel, data=data, cache_root=out / "caches" / sel.name, scorer=scorer,
                                                 settings=settings)
    stage_done("preprocess", t, c)

    t, c = time.perf_counter(), cpu_seconds()
    recipe = str(stream.recipe_path(tiny=True))
    tasks = [(recipe, str(out / "caches" / sel.name),
              str(out / "runs" / f"{sel.name}-{preprocessed[sel]['keyframes_hash'][:8]}"),
              settings.seed, settings.epochs) for sel in rows_sel]
    say(f"[4/4] training the {stream.name} stream ({Path(recipe).relative_to(ROOT)}) on each selection, "
        f"{settings.workers} at a time")
    trained = train_streams(tasks, settings.workers)
    stage_done("train", t, c)

    rows = []
    for sel, fit in zip(rows_sel, trained):
        recall = cache_recall(out / "caches" / sel.name, metadata)
        rows.append({"selection": sel.mode, "intensity": sel.intensity, **recall, **fit,
                     "preprocess_seconds": preprocessed[sel]["seconds"], "cache": str(out / "caches" / sel.name)})
    stage_done("total", started, cpu_started)
    info = {
        "stream": stream.name,
        "recipe": str(Path(recipe).relative_to(ROOT)),
        "preprocess_config": settings.preprocess_config,
        "scorer": scorer_info,
        "dataset": str(data),
        "recall": ("fraction of a clip's keyframes inside its peak second (recorded peak centre +- 0.5 s), "
                   "mean over the non-neutral clips of train and val (a Neutral clip has no visible peak)"),
        "val_accuracy": "accuracy on the val split of the last epoch's weights (best_val_accuracy: best epoch's)",
        "seconds": seconds,
        "cpu_seconds": cpu,
        "machine": {**machine_info(), "load_avg_1min_at_start": load_start},
    }
    result = AblationResult(rows=rows, settings={k: (list(v) if isinstance(v, tuple) else v)
                                                  for k, v in asdict(settings).items()}, info=info)
    atomic_write_json(out / "ablation.json", result.as_json())
    atomic_write_text(out / "ablation.md", format_table(result.as_json()))
    return result


def _stages(times: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v:.0f}" for k, v in times.items() if k != "total")


def _row_label(row: Mapping[str, Any]) -> str:
    return row["selection"] if row["intensity"] is None else f"{row['selection']} ({row['intensity']})"


def format_table(result: Mapping[str, Any]) -> str:
    """The ablation as a Markdown table (``ablation.md``): one row per selection, then the
    default selection against uniform, and what was measured with what."""
    rows = result["rows"]
    lines = ["| selection | salient recall | recall q25-q75 | Positive / Negative / Neutral | val accuracy "
             "| best val acc (epoch) |",
             "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        by_class = r["recall_by_class"]
        classes = " / ".join(f"{by_class[c]:.2f}" if c in by_class else "-" for c in ("Positive", "Negative", NEUTRAL))
        lines.append(f"| {_row_label(r)} | {r['salient_recall']:.3f} | {r['recall_spread']['q25']:.2f}-"
                     f"{r['recall_spread']['q75']:.2f} | {classes} | {r['val_accuracy']:.3f} | "
                     f"{r['best_val_accuracy']:.3f} ({r['best_epoch']}) |")
    uniform = next((r for r in rows if r["selection"] == "uniform"), None)
    lines.append("")
    if uniform is not None:
        for r in rows:
            if r["selection"] == "default":
                ratio = r["salient_recall"] / uniform["salient_recall"] if uniform["salient_recall"] else float("inf")
                gain = 100 * (r["val_accuracy"] - uniform["val_accuracy"])
                lines.append(f"- {_row_label(r)} vs uniform: salient recall x{ratio:.2f}, val accuracy "
                             f"{gain:+.1f} points")
    s = result["settings"]
    n_val = rows[0].get("val_clips") if rows else None
    lines += [
        "",
        f"Salient recall: {result['recall']} ({rows[0]['recall_clips'] if rows else 0} clips). "
        f"Val accuracy: {result['val_accuracy']} ({n_val} clips, {result['recipe']}).",
        f"Data: {s['n_train']} train + {s['n_val']} val peak clips, {s['duration']:g} s at {s['fps']:g} fps, "
        f"{s['width']}x{s['height']}, cue noise {s['cue_noise']:g}, seed {s['seed']}. "
        f"Scorer: {result['scorer']['run']}"
        + (" (trained here on the set's stills)" if result["scorer"]["trained_here"] else "")
        + f", scoring at {result['scorer']['input_size']} px."
        + (f" Recipe overrides: {', '.join(s['overrides'])}." if s.get("overrides") else ""),
        f"Time: {result['seconds']['total']:.0f} s wall ({_stages(result['seconds'])}) with {s['workers']} worker(s), "
        f"load average {result['machine']['load_avg_1min_at_start']} at the start and "
        f"{result['machine']['load_avg_1min']} at the end on {result['machine']['cpu_count']} cores; "
        f"{result['cpu_seconds']['total']:.0f} CPU s in all processes ({_stages(result['cpu_seconds'])}).",
    ]
    return "\n".join(lines) + "\n"
