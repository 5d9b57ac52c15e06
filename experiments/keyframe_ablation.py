"""The keyframe ablation (``tools/ablate.py keyframes``): on clips where the choice of frames can
decide the answer, does the sentiment-aware selection find the emotion better than uniform
sampling, does the keyframe stream gain from it, and what does each rule buy?

For every clip family (:mod:`synthetic.peaks`: ``peak``, ``spread``, ``steady``) and every seed,
a set is generated (:mod:`experiments.keyframe_data`), every selection (``uniform``, ``literal``,
``default``, ``no_rule1`` ... ``no_rule5``; :data:`experiments.keyframe_settings.SELECTION_MODES`)
is made by the real preprocessing with the real scorer (:mod:`experiments.keyframe_measures`),
and the keyframe stream's tiny recipe is trained on each (:mod:`experiments.keyframe_runs`): every
selection of one seed sees the same clips, recipe, epochs and threads. Per family and selection,
pooled over the seeds (intervals: :mod:`experiments.keyframe_intervals`):

* ``salient_recall``: per non-neutral clip (train and val), the fraction of its keyframes inside
  its recorded emotion windows; mean, 95 % interval, and ``recall_ceiling`` (mean over clips of
  the most any N of its candidates could reach) with ``of_ceiling`` (mean of recall / ceiling);
* ``val_accuracy``: the last epoch's weights on the val clips; mean and 95 % interval;
* ``diff_vs_uniform``: val accuracy minus uniform's, paired clip by clip within each seed;
* ``changed_vs_default``: the fraction of clips (train and val, every seed) whose keyframes are not
  the default selection's (same intensity). A selection that picked the default's keyframes on
  every clip of a set shares the default's run there (``same_as_default``) instead of repeating
  the same training on the same inputs.

Layout of ``OUT``: ``data/<family>-seed<S>-<hash>/``, ``caches/<set>/<selection>-<hash>/``,
``runs/<set>/<selection>-<hash>/``, ``scorer/`` and ``scorer_data/`` (``--train-scorer``),
``ablation.json``, ``ablation.md``. Everything is named by the hash of what made it, so a re-run,
an extra seed or family recomputes only what is new.
"""
from __future__ import annotations

import os
import resource
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from benchmarks.timing import BenchmarkError, machine_info
from core.command_line import naming_config
from core.storage import atomic_write_json, atomic_write_text
from experiments.keyframe_ablation_output import format_table
from experiments.keyframe_data import (
    clear_outputs,
    clip_truth,
    data_key,
    generate_family_set,
    read_metadata,
    scorer_input_size,
    train_scorer_here,
)
from experiments.keyframe_intervals import paired_difference, stratified_bootstrap
from experiments.keyframe_measures import (
    changed,
    picks_by_reason,
    preprocess_selection,
    recall_by_clip,
    stored_keyframes,
)
from experiments.keyframe_runs import train_streams
from experiments.keyframe_settings import (
    ROOT,
    SCORER_RECIPE,
    AblationSettings,
    Selection,
    keyframe_stream,
    selections,
)
from keyframes.extraction import KeyframeSettings
from streams.preprocessing import check_preprocess_recipe


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


@dataclass
class _Unit:
    """One set (family, seed) and one selection: where its cache and run are and what they gave."""

    family: str
    seed: int
    key: str
    selection: Selection
    preprocessed: dict[str, Any] = field(default_factory=dict)
    trained: dict[str, Any] = field(default_factory=dict)


def _check_inputs(out: Path, settings: AblationSettings, scorer: str | os.PathLike | None, train_scorer: bool) -> None:
    if (scorer is None) == (not train_scorer):
        raise BenchmarkError("give either a trained scorer (--scorer RUN) or --train-scorer, not both or neither")
    if out.exists() and not out.is_dir():
        raise BenchmarkError(f"{out}: the output folder is a file")
    if scorer is not None:
        scorer_input_size(scorer)  # a missing or unreadable scorer stops here, before hours of work
    with naming_config(settings.preprocess_config):  # so does a recipe mistake
        check_preprocess_recipe(settings.recipe())


def run_ablation(out: str | os.PathLike, settings: AblationSettings, *, scorer: str | os.PathLike | None = None,
                 train_scorer: bool = False, fresh: bool = False,
                 say: Callable[[str], None] = print) -> AblationResult:
    """Run the keyframe ablation into ``out`` and write ``out/ablation.json`` and ``out/ablation.md``.

    Exactly one of ``scorer`` (a trained scorer run or checkpoint) and ``train_scorer`` (train the
    demo recipe on generated stills, into ``out/scorer``). ``fresh`` first deletes what an earlier
    ablation wrote into ``out``. ``say`` prints progress. Returns one row per family and selection
    (see the module docstring) and what they were measured with."""
    out = Path(out)
    _check_inputs(out, settings, scorer, train_scorer)
    if fresh:
        clear_outputs(out)
    out.mkdir(parents=True, exist_ok=True)
    started, cpu_started = time.perf_counter(), cpu_seconds()
    load_start = machine_info()["load_avg_1min"]
    seconds: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def stage_done(name: str, wall0: float, cpu0: float) -> None:
        seconds[name], cpu[name] = round(time.perf_counter() - wall0, 1), round(cpu_seconds() - cpu0, 1)

    t, c = time.perf_counter(), cpu_seconds()
    if train_scorer:
        say(f"[1/5] keyframe scorer: {SCORER_RECIPE.relative_to(ROOT)} on generated stills -> {out / 'scorer'}")
        metrics = train_scorer_here(out, settings)
        scorer = str(out / "scorer")
        scorer_info = {"run": scorer, "trained_here": True, "recipe": str(SCORER_RECIPE.relative_to(ROOT)),
                       "val_accuracy": metrics["best_val_acc"]}
    else:
        say(f"[1/5] keyframe scorer: {scorer}")
        scorer = str(scorer)
        scorer_info = {"run": scorer, "trained_here": False}
    scorer_info["input_size"] = scorer_input_size(scorer)
    stage_done("scorer", t, c)
    if settings.intensities is None:
        configured = KeyframeSettings.from_config(settings.recipe().get("keyframes")).intensity
        settings = replace(settings, intensities=(configured,))
    sels = selections(settings.mode_list, settings.intensities)

    t, c = time.perf_counter(), cpu_seconds()
    sets = [(f, s, data_key(settings, f, s)) for f in settings.families for s in settings.seed_list]
    for i, (family, seed, key) in enumerate(sets, 1):
        say(f"[2/5] clip set {key} ({i}/{len(sets)}): {settings.n_train} train + {settings.n_val} val {family} clips, "
            f"{settings.duration:g} s at {settings.fps:g} fps")
        if generate_family_set(out / "data" / key, settings, family, seed):
            say("      reusing the set already there")
    stage_done("data", t, c)

    t, c = time.perf_counter(), cpu_seconds()
    stream = keyframe_stream()
    units = [_Unit(f, s, k, sel) for f, s, k in sets for sel in sels]
    for i, u in enumerate(units, 1):
        say(f"[3/5] keyframes {u.selection.name} on {u.key} ({i}/{len(units)}): preprocessing the {stream.name} stream")
        u.preprocessed = preprocess_selection(u.selection, data=out / "data" / u.key, caches=out / "caches" / u.key,
                                              scorer=scorer, settings=settings)
    stage_done("preprocess", t, c)

    t, c = time.perf_counter(), cpu_seconds()
    recipe = str(stream.recipe_path(tiny=True))
    suffix = f"-e{settings.epochs}" if settings.epochs is not None else ""
    shared = _same_as_default(out, units, settings)
    own = [u for u in units if id(u) not in shared]
    tasks = [(recipe, u.preprocessed["cache"],
              str(out / "runs" / u.key / (Path(u.preprocessed["cache"]).name + suffix)), u.seed, settings.epochs)
             for u in own]
    say(f"[4/5] training the {stream.name} stream ({Path(recipe).relative_to(ROOT)}) on {len(tasks)} selections, "
        f"{settings.workers} at a time ({len(shared)} more selected exactly what the default selected and share "
        "its run)")
    for u, fit in zip(own, train_streams(tasks, settings.workers)):
        u.trained = fit
    for u in units:
        if id(u) in shared:
            u.trained = {**shared[id(u)].trained, "train_seconds": 0.0, "same_as_default": True}
    stage_done("train", t, c)

    say("[5/5] measuring")
    rows = _rows(out, units, settings, sels)
    stage_done("total", started, cpu_started)
    info = {
        "stream": stream.name,
        "recipe": str(Path(recipe).relative_to(ROOT)),
        "preprocess_config": settings.preprocess_config,
        "scorer": scorer_info,
        "sets": [k for _, _, k in sets],
        "salient_recall": ("fraction of a clip's keyframes inside its recorded emotion windows, over the non-neutral "
                           "clips of train and val; recall_ceiling: the most any N of its candidates could reach"),
        "val_accuracy": "accuracy of the last epoch's weights on the val split",
        "intervals": ("95 % stratified percentile bootstrap over clips within seeds (seeds kept as strata); "
                      "diff_vs_uniform paired clip by clip"),
        "seconds": seconds,
        "cpu_seconds": cpu,
        "machine": {**machine_info(), "load_avg_1min_at_start": load_start},
    }
    result = AblationResult(rows=rows, settings={k: (list(v) if isinstance(v, tuple) else v)
                                                  for k, v in asdict(settings).items()}, info=info)
    atomic_write_json(out / "ablation.json", result.as_json())
    atomic_write_text(out / "ablation.md", format_table(result.as_json()))
    return result


def _same_as_default(out: Path, units: list[_Unit], settings: AblationSettings) -> dict[int, _Unit]:
    """``{id(unit): the default's unit}`` for every selection that picked exactly the default's
    keyframes on every clip of its set (same intensity): training on it would repeat the default's
    training on the same inputs, so it shares that run (e.g. ``no_rule1`` on peak clips)."""
    by = {(u.key, u.selection): u for u in units}
    ids = {u.key: [f"{split}/{c['name']}" for split, clips in read_metadata(out / "data" / u.key)["clips"].items()
                   for c in clips] for u in units}
    picks = {id(u): {c: r["indices"] for c, r in stored_keyframes(u.preprocessed["cache"], ids[u.key]).items()}
             for u in units}
    out_map = {}
    for u in units:
        default = by.get((u.key, Selection("default", u.selection.intensity or settings.intensities[0])))
        if default is not None and u is not default and picks[id(u)] == picks[id(default)]:
            out_map[id(u)] = default
    return out_map


def _rows(out: Path, units: list[_Unit], settings: AblationSettings, sels: list[Selection]) -> list[dict[str, Any]]:
    """One row per family and selection, pooled over the seeds."""
    kf_settings = KeyframeSettings.from_config(settings.recipe().get("keyframes"))
    by = {(u.key, u.selection): u for u in units}
    rows = []
    for family in settings.families:
        keys = [(s, data_key(settings, family, s)) for s in settings.seed_list]
        truth = {k: clip_truth(read_metadata(out / "data" / k)) for _, k in keys}
        stored = {(k, sel): stored_keyframes(by[(k, sel)].preprocessed["cache"], sorted(truth[k])) for _, k in keys
                  for sel in sels}
        for sel in sels:
            default = Selection("default", sel.intensity or settings.intensities[0])
            recall, ceiling, of_ceiling, correct, base, flips = [], [], [], [], [], []
            for _, k in keys:
                per_clip = recall_by_clip(stored[(k, sel)], truth[k], fps=settings.fps, settings=kf_settings)
                recall.append([r for r, _ in per_clip.values()])
                ceiling.append([c for _, c in per_clip.values()])
                of_ceiling.append([r / c for r, c in per_clip.values() if c > 0])
                mine, uniform = by[(k, sel)].trained["val"], by[(k, Selection("uniform", None))].trained["val"]
                if mine["clip_ids"] != uniform["clip_ids"]:
                    raise BenchmarkError(f"{k}: the val clips of {sel.name} and uniform differ")
                correct.append(mine["correct"])
                base.append(uniform["correct"])
                flips += changed(stored[(k, sel)], stored[(k, default)])
            units_here = [by[(k, sel)] for _, k in keys]
            rows.append({
                "family": family, "selection": sel.mode, "intensity": sel.intensity, "seeds": settings.seed_list,
                "salient_recall": {**stratified_bootstrap(recall),
                                   "recall_ceiling": round(sum(map(sum, ceiling)) / sum(map(len, ceiling)), 4),
                                   "of_ceiling": round(sum(map(sum, of_ceiling)) / max(1, sum(map(len, of_ceiling))),
                                                       4)},
                "val_accuracy": stratified_bootstrap(correct),
                "diff_vs_uniform": paired_difference(correct, base),
                "changed_vs_default": round(sum(flips) / len(flips), 4),
                "picks_by_reason": picks_by_reason({f"{u.key}/{c}": r for u in units_here
                                                    for c, r in stored[(u.key, sel)].items()}),
                "best_val_accuracy": [u.trained["best_val_accuracy"] for u in units_here],
                "epochs": units_here[0].trained["epochs"],
                "preprocess_seconds": round(sum(u.preprocessed["seconds"] for u in units_here), 1),
                "train_seconds": round(sum(u.trained["train_seconds"] for u in units_here), 1),
                "same_as_default": [bool(u.trained.get("same_as_default")) for u in units_here],
                "caches": [u.preprocessed["cache"] for u in units_here],
                "runs": [u.trained["run"] for u in units_here],
            })
    return rows
