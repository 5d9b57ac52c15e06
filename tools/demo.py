#!/usr/bin/env python
"""The main job: the whole method end to end on the embedded synthetic dataset.

    python tools/demo.py [--out runs/demo] [--fresh] [--train 120 --val 60 --test 60] [--cue-noise 0.3]
        [--features in_sample|holdout|cross_fit|RECIPE.yaml]
    python tools/demo.py --layout ravdess [--out runs/demo_ravdess]     (8 emotions, one actor per clip)
    python tools/demo.py --layout cremad  [--out runs/demo_cremad]      (6 emotions, one actor per clip)

Steps (each is the real tool with a demo config; a re-run reuses finished steps):
  1. synthetic set in the layout (VGAF: + GroupEmoW-format stills) -> OUT/data
     (RAVDESS, CREMA-D: the GroupEmoW-format stills in OUT/stills)
  2. keyframe scorer (ResNet-50) trained on the stills          -> OUT/scorer
     (the 3-class group scorer for every layout: it only selects the keyframes)
  3. preprocessing cache (keyframes, flow, faces, log-mel)      -> OUT/cache
  4. the four streams trained (tiny configs, same code)         -> OUT/streams/{visual,audio,flow,face}
  5. stream features extracted                                  -> OUT/features
  6. Concat-FC fusion trained                                   -> OUT/fusion
  7. the rest of the fusion family on the same features          -> OUT/fusion_family/<head>,
                                                                   OUT/fusion_family.json
  8. evaluation on the val split                                -> OUT/fusion/eval_val
  9. prediction on a held-out test clip
 10. the report: every model on val and test (labelled: the synthetic set's test labels are
     known) with 95 % intervals, curves, the streams' contributions, calibration (ECE, NLL, Brier,
     raw and after each model's temperature fitted on val) -> OUT/report
 11. the system as a release bundle, the held-out clip predicted from it -> OUT/bundle
Nothing is chosen on test: steps 2-7 select on val, and test is first scored in step 10.

--features chooses how fusion's training features are made (configs/features/<mode>.yaml,
docs/concepts/leakage.md): the stream runs it needs are OUT/streams/<s> (whole train split),
OUT/streams/<s>_holdout and OUT/streams/<s>_fold<k>of<K>. A mode other than the default writes
OUT/features_<mode>, OUT/fusion_<mode> and
OUT/fusion_family_<mode>, so one OUT holds every mode and shares what they share.
The default stays in_sample (docs/concepts/leakage.md): with face crops spread over the people
in view the tiny streams score their own training clips about as well as val, and on val the
in-sample head beat two-fold cross-fitting in accuracy and when a stream was missing (the
half-train fold runs feature the train clips worse than the deployed runs feature val). On real
data, where full-size streams fit their training clips closely, use cross_fit (or holdout).

The class count comes from the data (3, 8 or 6). Each layout's targets, printed at the end: every
stream above twice chance on val, and Concat-FC above the best stream.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

from core.command_line import add_debug_argument, fraction, non_negative_int, positive_float, positive_int, run_main
from core.storage import atomic_write_json
from fusion.features import FeaturePlan, load_feature_plan
from fusion.heads import DEFAULT_HEAD, FUSION_HEADS
from fusion.training import METHOD_STREAMS
from streams.specs import get_spec

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent
CONFIGS = ROOT / "configs"
#: how the demo's fusion head gets its training features (configs/features/<name>.yaml); see the
#: module docstring for why in_sample
DEFAULT_FEATURES = "in_sample"


def run_tool(name: str, argv: list[str]) -> int:
    """Run ``tools/<name>.py``'s ``main(argv)`` in this process (the same code as the CLI)."""
    spec = importlib.util.spec_from_file_location(f"tool_{name}", TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rc = module.main(argv)
    if rc:
        raise SystemExit(f"demo: step tools/{name}.py failed with exit code {rc}")
    return rc


class DemoLayout(NamedTuple):
    """How the demo runs on one layout: its default (train, val, test) clip counts and OUT,
    the val split's key in ``synthetic.json``, the generator (``(args, OUT, wanted parameters,
    generator arguments) -> the stills folder``), a held-out clip of OUT/data, whether it takes
    ``--faceless-fraction``, and step 1's title."""

    counts: tuple[int, int, int]
    out: str
    val_split: str
    make_data: Callable[[argparse.Namespace, Path, dict, list[str]], Path]
    first_test_clip: Callable[[Path], Path | None]
    faceless: bool
    data_title: str


def make_group_set(args: argparse.Namespace, out: Path, wanted: dict, counts: list[str]) -> Path:
    """The VGAF-layout set in OUT/data with its GroupEmoW-format stills in OUT/data/groupemow."""
    wanted["faceless_fraction"] = args.faceless_fraction
    generate(out / "data", wanted, args.stills, ["--out", str(out / "data"), *counts, "--faceless-fraction",
                                                 str(args.faceless_fraction), "--stills", str(args.stills),
                                                 "--workers", str(args.workers)])
    return out / "data" / "groupemow"


def make_individual_set(args: argparse.Namespace, out: Path, wanted: dict, counts: list[str]) -> Path:
    """The individual-level set of ``args.layout`` in OUT/data, GroupEmoW-format stills in OUT/stills."""
    data, stills = out / "data", out / "stills"
    wanted["layout"] = args.layout
    generate(data, wanted, None, ["--layout", args.layout, "--out", str(data), *counts, "--workers", str(args.workers)])
    generate(stills, {"seed": args.seed}, args.stills,
             ["--layout", "groupemow", "--out", str(stills), "--stills", str(args.stills), "--seed", str(args.seed),
              "--workers", str(args.workers)], what="the GroupEmoW-format stills")
    return stills


def generate(folder: Path, wanted: dict, stills: int | None, argv: list[str], what: str = "the synthetic dataset"
             ) -> None:
    """``tools/make_synthetic.py argv``, unless ``folder/synthetic.json`` exists and was written with
    the ``wanted`` parameters (and ``stills`` per class and split, unless None). Data written with
    other parameters is an error (the rest of the run was built on it): pass ``--fresh``."""
    meta = folder / "synthetic.json"
    if not meta.exists():
        run_tool("make_synthetic", argv)
        return
    params = json.loads(meta.read_text())["params"]
    if params.get("layout", "vgaf") == "vgaf" and params.get("n_test") and not (folder / "Test_labels.txt").exists():
        raise SystemExit(f"demo: {folder} was generated before the synthetic test split was labelled "
                         "(no Test_labels.txt); run with --fresh to start over")
    have = {k: params.get(k) for k in wanted}
    have_stills = params.get("n_stills_per_class", {})
    differs = any(have[k] is None or (have[k] != v if isinstance(v, str) else float(have[k]) != float(v))
                  for k, v in wanted.items())
    if differs or (stills is not None and any(v != stills for v in have_stills.values())):
        raise SystemExit(f"demo: {meta} was generated with other parameters ({have}, stills {have_stills}); "
                         f"run with --fresh to start over with {wanted}, stills {stills}")
    print(f"reusing {what} in {folder} (same parameters)")


def first_group_test_clip(data: Path) -> Path | None:
    """VGAF's first ``Test/`` clip."""
    clips = sorted((data / "Test").glob("*.mp4"))
    return clips[0] if clips else None


def first_individual_test_clip(data: Path) -> Path | None:
    """The first clip of the test actors (RAVDESS, CREMA-D), as ``synthetic.json`` lists them."""
    test = json.loads((data / "synthetic.json").read_text())["clips"]["test"]
    return data / f"{test[0]['clip_id']}.mp4" if test else None


#: the layouts the demo runs on (vgaf, the first, is the default)
DEMO_LAYOUTS: dict[str, DemoLayout] = {
    "vgaf": DemoLayout((120, 60, 60), "runs/demo", "Val", make_group_set, first_group_test_clip, True,
                       "synthetic dataset"),
    "ravdess": DemoLayout((192, 64, 64), "runs/demo_ravdess", "val", make_individual_set,
                          first_individual_test_clip, False, "synthetic dataset (RAVDESS layout)"),
    "cremad": DemoLayout((144, 60, 60), "runs/demo_cremad", "val", make_individual_set,
                         first_individual_test_clip, False, "synthetic dataset (CREMA-D layout)"),
}


def features_recipe(value: str) -> Path:
    """``--features``: a mode name (configs/features/<name>.yaml) or a features recipe path."""
    path = Path(value) if value.endswith((".yaml", ".yml")) else ROOT / "configs" / "features" / f"{value}.yaml"
    if not path.is_file():
        raise SystemExit(f"demo: --features {value}: no features recipe {path}")
    return path


def stream_runs(out: Path, plan: FeaturePlan
                ) -> tuple[dict[str, tuple[Path, dict | None]], dict[str, list[tuple[Path, dict]]]]:
    """``(deployed, folds)``: per stream the run fusion deploys and its ``exclude`` section, and
    the cross-fitting runs with theirs (empty unless ``plan`` cross-fits)."""
    held = plan.deployed_exclude()
    deployed = {s: (out / "streams" / (s if held is None else f"{s}_holdout"), held) for s in METHOD_STREAMS}
    folds = {s: [(out / "streams" / f"{s}_fold{e['fold']}of{e['folds']}", e) for e in plan.fold_excludes()]
             for s in METHOD_STREAMS}
    return deployed, folds


def _defaults_help(what: str, index: int) -> str:
    return f"{what} (default " + ", ".join(f"{n} {row.counts[index]}" for n, row in DEMO_LAYOUTS.items()) + ")"


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    """The demo's options, with the layout's defaults filled in (clip counts, OUT)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None,
                        help="where everything lands (default runs/demo, runs/demo_<layout> for the others)")
    parser.add_argument("--fresh", action="store_true", help="delete OUT and start over")
    parser.add_argument("--layout", choices=tuple(DEMO_LAYOUTS), default="vgaf",
                        help="dataset layout: vgaf (groups, 3 classes; default), ravdess (8 emotions), cremad (6)")
    parser.add_argument("--train", type=positive_int, default=None, help=_defaults_help("train clips", 0))
    parser.add_argument("--val", type=positive_int, default=None, help=_defaults_help("val clips", 1))
    parser.add_argument("--test", type=non_negative_int, default=None,
                        help=_defaults_help("test clips", 2)[:-1] + "; labelled, scored in the report)")
    parser.add_argument("--duration", type=positive_float, default=3.0, help="clip length (s)")
    parser.add_argument("--cue-noise", type=fraction, default=0.3)
    parser.add_argument("--audio-fraction", type=fraction, default=1.0,
                        help="fraction of clips that get an audio track (the rest test missing audio)")
    parser.add_argument("--faceless-fraction", type=fraction, default=0.0,
                        help="vgaf: fraction of clips without people's faces (tests missing faces)")
    parser.add_argument("--stills", type=positive_int, default=40, help="GroupEmoW-format stills per class and split")
    parser.add_argument("--workers", type=positive_int, default=2,
                        help="processes for data generation and preprocessing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stream-epochs", type=positive_int, default=None,
                        help="override the tiny stream configs' epochs")
    parser.add_argument("--features", default=DEFAULT_FEATURES,
                        help=f"in_sample, holdout, cross_fit or a features recipe (default {DEFAULT_FEATURES})")
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    layout = DEMO_LAYOUTS[args.layout]
    args.train, args.val, args.test = (default if given is None else given
                                       for given, default in zip((args.train, args.val, args.test), layout.counts))
    if not layout.faceless and args.faceless_fraction:
        parser.error(f"--faceless-fraction does not apply to --layout {args.layout} (every clip shows one actor)")
    if args.out is None:
        args.out = layout.out
    return args


class DemoRun(NamedTuple):
    """What every step shares: options, layout row, OUT, configs, features recipe and plan, stream
    runs (:func:`stream_runs`), and the features and Concat-FC folders."""

    args: argparse.Namespace
    layout: DemoLayout
    out: Path
    recipe: Path
    plan: FeaturePlan
    suffix: str
    deployed: dict[str, tuple[Path, dict | None]]
    folds: dict[str, list[tuple[Path, dict]]]
    features: Path
    fusion: Path


def prepare_run(args: argparse.Namespace) -> DemoRun:
    """OUT created (emptied first with ``--fresh``), the features recipe read."""
    out = Path(args.out)
    if args.fresh and out.exists():
        print(f"--fresh: removing {out}")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    recipe = features_recipe(args.features)
    plan = load_feature_plan(recipe)
    suffix = "" if recipe.resolve() == features_recipe(DEFAULT_FEATURES).resolve() else f"_{recipe.stem}"
    deployed, folds = stream_runs(out, plan)
    return DemoRun(args, DEMO_LAYOUTS[args.layout], out, recipe, plan, suffix, deployed, folds,
                   out / f"features{suffix}", out / f"fusion{suffix}")


@contextmanager
def timed_step(times: dict[str, float], key: str, n: int, title: str) -> Iterator[None]:
    """Announce step ``n`` and record its duration (s) as ``times[key]``."""
    print(f"\n=== [{n}/11] {title}", flush=True)
    t = time.perf_counter()
    yield
    times[key] = time.perf_counter() - t


def make_dataset(run: DemoRun, times: dict[str, float]) -> Path:
    """Step 1: the synthetic set in OUT/data; returns the stills folder the scorer trains on."""
    args = run.args
    with timed_step(times, "data", 1, run.layout.data_title):
        wanted = {"n_train": args.train, "n_val": args.val, "n_test": args.test, "seed": args.seed,
                  "cue_noise": args.cue_noise, "duration": args.duration, "audio_fraction": args.audio_fraction}
        counts = [a for k, v in wanted.items() for a in ("--" + k.removeprefix("n_").replace("_", "-"), str(v))]
        return run.layout.make_data(args, run.out, wanted, counts)  # counts: --train 120 ... --audio-fraction 1.0


def select_and_preprocess(run: DemoRun, stills: Path, times: dict[str, float]) -> None:
    """Steps 2 and 3: the keyframe scorer trained on the stills -> OUT/scorer, then the
    preprocessing cache (keyframes it selects, flow, faces, log-mel) -> OUT/cache."""
    with timed_step(times, "scorer", 2, "keyframe scorer (ResNet-50 on the GroupEmoW-format stills)"):
        run_tool("train_keyframe_scorer", ["--config", str(CONFIGS / "keyframes/scorer_demo.yaml"),
                                           "--data", str(stills), "--out", str(run.out / "scorer"),
                                           "--set", f"train.seed={run.args.seed}"])
    title = "preprocessing: keyframes, optical flow, faces, log-mel (one decode per clip)"
    with timed_step(times, "preprocess", 3, title):
        run_tool("preprocess", ["--config", str(CONFIGS / "preprocess/demo.yaml"), "--videos", str(run.out / "data"),
                                "--scorer", str(run.out / "scorer"), "--out", str(run.out / "cache"),
                                "--contact-sheet", "--workers", str(run.args.workers)])


def train_streams(run: DemoRun, times: dict[str, float]) -> None:
    """Step 4: the four streams (and their holdout or cross-fitting runs) -> OUT/streams."""
    args = run.args
    with timed_step(times, "streams", 4, f"the four streams (fusion features: {run.plan.record()})"):
        for s in METHOD_STREAMS:
            for stream_run, exclude in [run.deployed[s], *run.folds[s]]:
                print(f"--- {s} stream" + (f", holding back {exclude}" if exclude else ""))
                sets = [f"train.seed={args.seed}"]
                sets += [f"train.epochs={args.stream_epochs}"] if args.stream_epochs else []
                if exclude:  # a held-back part leaves train sizes where a last batch of 1 would break BatchNorm
                    sets += [f"exclude.{k}={v}" for k, v in exclude.items()] + ["train.drop_last=true"]
                run_tool("train_stream", ["--config", str(get_spec(s).recipe_path(tiny=True)), "--cache",
                                          str(run.out / "cache"), "--out", str(stream_run), "--set", *sets])


def extract_features(run: DemoRun, times: dict[str, float]) -> None:
    """Step 5: the stream features fusion trains on -> OUT/features<suffix>."""
    with timed_step(times, "features", 5, "stream features for fusion"):
        fold_args = (["--fold-runs", ",".join(f"{s}={r}" for s in METHOD_STREAMS for r, _ in run.folds[s])]
                     if run.plan.fold_excludes() else [])
        run_tool("extract_features", ["--streams", ",".join(f"{s}={run.deployed[s][0]}" for s in METHOD_STREAMS),
                                      *fold_args, "--config", str(run.recipe),
                                      "--cache", str(run.out / "cache"), "--out", str(run.features)])


def train_fusion(run: DemoRun, times: dict[str, float]) -> dict:
    """Steps 6 and 7: Concat-FC -> OUT/fusion<suffix>, then the rest of the fusion family on the
    same features; returns :func:`train_family`'s table."""
    with timed_step(times, "fusion", 6, "Concat-FC fusion"):
        before = _finished_stamp(run.fusion)
        run_tool("train_fusion", ["--config", str(CONFIGS / "fusion/concat_fc.yaml"), "--features", str(run.features),
                                  "--out", str(run.fusion), "--set", f"train.seed={run.args.seed}"])
    concat_fc_reused = before is not None and _finished_stamp(run.fusion) == before
    others = ", ".join(n for n in FUSION_HEADS if n != DEFAULT_HEAD)
    with timed_step(times, "family", 7, "the fusion family on the same features: " + others):
        return train_family(run.out, CONFIGS, features=run.features, concat_fc_run=run.fusion, suffix=run.suffix,
                            seed=run.args.seed, concat_fc=(times["fusion"], concat_fc_reused))


def evaluate_and_predict(run: DemoRun, times: dict[str, float]) -> None:
    """Steps 8 and 9: Concat-FC evaluated on val, then prediction and live mode on a held-out clip."""
    with timed_step(times, "evaluate", 8, "evaluation (val split)"):
        run_tool("evaluate", ["--run", str(run.fusion), "--split", "val"])
    with timed_step(times, "predict", 9, "prediction on a held-out clip, and live mode on it"):
        test_clip = run.layout.first_test_clip(run.out / "data")
        if test_clip is not None:
            run_tool("predict", [str(test_clip), "--run", str(run.fusion)])
            live_preview(test_clip, run.fusion, run.out / f"live{run.suffix}")


def write_report(run: DemoRun, times: dict[str, float]) -> Path:
    """Step 10: every model on val and test -> OUT/report<suffix>; returns that folder."""
    report = run.out / f"report{run.suffix}"
    with timed_step(times, "report", 10,
                    "the report: every model on val and test, 95 % bootstrap intervals, McNemar against the method"):
        run_tool("report", ["--runs", str(run.out), "--out", str(report), "--method", str(run.fusion)])
    return report


def main(argv: list[str] | None = None) -> int:
    run = prepare_run(parse_arguments(argv))
    t_all = time.perf_counter()
    times: dict[str, float] = {}
    stills = make_dataset(run, times)
    select_and_preprocess(run, stills, times)
    train_streams(run, times)
    extract_features(run, times)
    family = train_fusion(run, times)
    evaluate_and_predict(run, times)
    metrics = json.loads((run.fusion / "eval_val" / "metrics.json").read_text())
    print_summary(run.out, run.fusion, run.plan, metrics, family, val_split=run.layout.val_split)
    report = write_report(run, times)
    with timed_step(times, "bundle", 11, "release bundle (ONNX, manifest, model card) -> OUT/bundle; predict from it"):
        run_tool("export", ["--run", str(run.fusion), "--out", str(run.out / f"bundle{run.suffix}"), "--update"])
        for clip in filter(None, [run.layout.first_test_clip(run.out / "data")]):  # none with --test 0
            run_tool("predict", [str(clip), "--bundle", str(run.out / f"bundle{run.suffix}")])
    print(f"\nThe report, its figures and how to read them: {report / 'report.md'}")
    print("Step times: " + ", ".join(f"{k} {v:.0f}s" for k, v in times.items())
          + f"; total {time.perf_counter() - t_all:.0f}s")
    return 0


def live_preview(clip: Path, fusion_dir: Path, out: Path) -> Path:
    """``tools/live.py`` on ``clip`` with the demo's fusion run: OUT/annotated.mp4 (the visual
    stream's attention overlaid), OUT/annotated.jsonl, and its last frame as OUT/annotated_frame.png.
    Windows of 2 s every 0.5 s, shorter than the 3 s clip, so the last frames carry a prediction."""
    import cv2

    from media.decoding import VideoReader

    video = out / "annotated.mp4"
    run_tool("live", ["--run", str(fusion_dir), "--source", str(clip), "--out", str(video), "--window", "2",
                      "--stride", "0.5", "--show-attention", "--quiet"])
    with VideoReader(video) as reader:
        last = None
        for frame in reader.iter_frames():
            last = frame
    png = out / "annotated_frame.png"
    if last is None or not cv2.imwrite(str(png), cv2.cvtColor(last.image, cv2.COLOR_RGB2BGR)):
        raise SystemExit(f"demo: could not write {png} from {video}")
    print(f"live mode on {clip.name}: {video}, its last frame {png}")
    return png


def _finished_stamp(run: Path) -> int | None:
    """mtime of a finished run's metrics.json (None when the run has not finished): unchanged
    after a training call means the call reused the run."""
    path = run / "metrics.json"
    return path.stat().st_mtime_ns if path.exists() and json.loads(path.read_text()).get("finished") else None


def train_family(out: Path, cfg: Path, *, features: Path, concat_fc_run: Path, suffix: str, seed: int,
                 concat_fc: tuple[float, bool]) -> dict:
    """Train every head of :data:`fusion.heads.FUSION_HEADS` but Concat-FC (``concat_fc_run``,
    with ``concat_fc`` its time and whether it was reused) on ``features`` into
    OUT/fusion_family<suffix>/<head>; write OUT/fusion_family<suffix>.json: per head val accuracy,
    macro F1, training time (s; a reused run keeps the time measured then) and run directory."""
    table_path = out / f"fusion_family{suffix}.json"
    previous = ({row["head"]: row for row in json.loads(table_path.read_text())["heads"]} if table_path.exists()
                else {})
    rows = []
    for name, kind in FUSION_HEADS.items():
        if name == DEFAULT_HEAD:
            run, (seconds, reused) = concat_fc_run, concat_fc
        else:
            run = out / f"fusion_family{suffix}" / name
            before = _finished_stamp(run)
            t = time.perf_counter()
            run_tool("train_fusion", ["--config", str(cfg / "fusion" / f"{name}.yaml"), "--features",
                                      str(features), "--out", str(run), "--set", f"train.seed={seed}"])
            seconds = time.perf_counter() - t
            reused = before is not None and _finished_stamp(run) == before
        if reused:
            seconds = previous.get(name, {}).get("train_seconds")
        metrics = json.loads((run / "metrics.json").read_text())
        report = metrics.get("best_val_report") or {}
        rows.append({"head": name, "title": kind.title, "val_acc": metrics["best_val_acc"],
                     "val_macro_f1": report.get("macro_f1"), "best_epoch": metrics["best_epoch"],
                     "train_seconds": None if seconds is None else round(seconds, 2), "reused": reused,
                     "run": str(run)})
    table = {"split": "val", "features": str(features), "heads": rows}
    atomic_write_json(table_path, table)
    return {**table, "table": str(table_path), "runs": str(out / f"fusion_family{suffix}")}


def format_family(table: dict) -> str:
    """The fusion family as a text table: head, val accuracy, macro F1, training time."""
    w = max(len(r["title"]) for r in table["heads"]) + len(" (the method)")
    lines = [f"  {'head'.ljust(w)}  val acc  macro F1  train time"]
    for r in table["heads"]:
        title = r["title"] + (" (the method)" if r["head"] == DEFAULT_HEAD else "")
        secs = "n/a" if r["train_seconds"] is None else f"{r['train_seconds']:.1f} s"
        acc = "n/a" if r["val_acc"] is None else f"{r['val_acc']:.3f}"
        f1 = "n/a" if r["val_macro_f1"] is None else f"{r['val_macro_f1']:.3f}"
        lines.append(f"  {title.ljust(w)}  {acc:>7}  {f1:>8}  {secs:>10}" + ("  (reused)" if r["reused"] else ""))
    return "\n".join(lines)


def targets_met(metrics: dict) -> dict[str, bool]:
    """The demo's targets on val, for any class count C: every stream above twice chance
    (``2 / C``), and Concat-FC above the best stream."""
    floor = 2.0 / len(metrics["class_names"])
    streams = [v["accuracy_when_available"] or 0.0 for v in metrics["streams"].values()]
    return {f"every stream above twice chance ({floor:.3f})": all(a > floor for a in streams),
            "Concat-FC above the best stream": metrics["accuracy"] > max(streams)}


def print_summary(out: Path, fusion_dir: Path, plan: FeaturePlan, metrics: dict, family: dict, *,
                  val_split: str = "Val") -> None:
    from synthetic.cues import cue_ceiling

    ceiling = cue_ceiling(json.loads((out / "data" / "synthetic.json").read_text()), val_split)
    rows = [(f"{s} stream", v["accuracy_when_available"], ceiling["modalities"].get(s))
            for s, v in metrics["streams"].items()]
    rows += [(f"late fusion: {k}" + (f" (weights tuned on {v['weights_searched_on']})"
                                     if "weights_searched_on" in v else ""),
              v["accuracy"], ceiling["fused"]) for k, v in metrics["late_fusion"].items()]
    rows.append(("Concat-FC fusion (the method)", metrics["accuracy"], ceiling["fused"]))
    w = max(len(r[0]) for r in rows)
    print("\n" + "=" * 60)
    print(f"Val accuracy on the synthetic set ({metrics['clips']} clips, {len(metrics['class_names'])} classes)")
    print(f"  {''.ljust(w)}  accuracy  cue ceiling")
    for name, acc, top in rows:
        shown, ceiling_shown = "n/a" if acc is None else f"{acc:.3f}", "" if top is None else f"{top:.3f}"
        print(f"  {name.ljust(w)}  {shown:>8}  {ceiling_shown:>11}")
    print("  (cue ceiling: the expected accuracy of a perfect reader of the cues the clips show, ties\n"
          "   broken at random, so a model can beat it by a lucky clip; with cue noise a modality shows\n"
          "   another class on some clips, see docs/guides/synthetic-data.md. Weights tuned on the\n"
          "   split they are scored on make that late fusion an optimistic reference.)")
    best_stream = max((v["accuracy_when_available"] or 0.0) for v in metrics["streams"].values())
    print(f"  fusion gain over the best stream: {100 * (metrics['accuracy'] - best_stream):+.1f} points")
    print("  targets: " + "; ".join(f"{name}: {'met' if ok else 'NOT met'}"
                                    for name, ok in targets_met(metrics).items()))
    print(f"\nThe fusion family on the same features (val, {metrics['clips']} clips; each head's checkpoint\n"
          "selected on val like Concat-FC's; time: training on this machine)")
    print(format_family(family))
    print(f"  fusion trained on features: {plan.record()} (docs/concepts/leakage.md)")
    sheets = sorted((out / "cache").rglob("contact_sheet.png"))
    print("\nWhere things are:")
    print(f"  run directory      {out}")
    print(f"  TensorBoard        tensorboard --logdir {out}  (scorer/, streams/*/, fusion/ each have tb/)")
    print(f"  metrics.json       {fusion_dir / 'eval_val' / 'metrics.json'}")
    print(f"  fusion family      {family['table']}  (runs in {family['runs']})")
    print(f"  confusion matrix   {fusion_dir / 'eval_val' / 'confusion_matrix.png'}")
    print(f"  report (step 10)   {out / 'report'}  (report.md, report.json, roc/pr curves, reliability, "
          "contributions)")
    if sheets:
        print(f"  keyframe sheet     {sheets[0]}")
    for frame in sorted(out.glob("live*/annotated_frame.png")):
        print(f"  live mode frame    {frame}  (python tools/live.py --run {fusion_dir} --source VIDEO_OR_CAMERA)")
    print(f"  predict any video  python tools/predict.py VIDEO --run {fusion_dir}  (or --bundle {out}/bundle)")


if __name__ == "__main__":
    sys.exit(run_main(main))
