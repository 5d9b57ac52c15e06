#!/usr/bin/env python
"""The main job: the whole method end to end on the embedded synthetic dataset.

    python tools/demo.py [--out runs/demo] [--fresh] [--train 120 --val 60 --test 6] [--cue-noise 0.3]
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
  7. evaluation on the val split                                -> OUT/fusion/eval_val
  8. prediction on a held-out test clip

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
from pathlib import Path

from training.command_line import add_debug_argument, run_main
from streams.specs import get_spec
from fusion.training import METHOD_STREAMS

TOOLS = Path(__file__).resolve().parent
ROOT = TOOLS.parent


def run_tool(name: str, argv: list[str]) -> int:
    """Run ``tools/<name>.py``'s ``main(argv)`` in this process (the same code as the CLI)."""
    spec = importlib.util.spec_from_file_location(f"tool_{name}", TOOLS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rc = module.main(argv)
    if rc:
        raise SystemExit(f"demo: step tools/{name}.py failed with exit code {rc}")
    return rc


def step(n: int, title: str) -> float:
    print(f"\n=== [{n}/8] {title}", flush=True)
    return time.perf_counter()


#: per layout: default clip counts (train, val, test)
LAYOUT_DEFAULTS = {"vgaf": (120, 60, 6), "ravdess": (192, 64, 4), "cremad": (144, 60, 4)}
DISPLAY_NAMES = {"vgaf": "VGAF", "ravdess": "RAVDESS", "cremad": "CREMA-D"}


def existing_dataset_matches(data: Path, wanted: dict, stills: int | None) -> bool:
    """True when ``data/synthetic.json`` exists and was written with the ``wanted`` parameters
    (and ``stills`` per class and split, unless None).

    A dataset written with other parameters is an error (the rest of the run was built on it):
    the caller is told to pass ``--fresh`` rather than having finished steps silently mixed.
    """
    meta = data / "synthetic.json"
    if not meta.exists():
        return False
    params = json.loads(meta.read_text())["params"]
    have = {k: params.get(k) for k in wanted}
    have_stills = params.get("n_stills_per_class", {})
    differs = any(have[k] is None or (have[k] != v if isinstance(v, str) else float(have[k]) != float(v))
                  for k, v in wanted.items())
    if differs or (stills is not None and any(v != stills for v in have_stills.values())):
        raise SystemExit(f"demo: {meta} was generated with other parameters ({have}, stills {have_stills}); "
                         f"run with --fresh to start over with {wanted}, stills {stills}")
    return True


def first_test_clip(data: Path, layout: str) -> Path | None:
    """A held-out clip of the synthetic set: VGAF's first ``Test/`` clip, or the first clip of the
    test actors (RAVDESS, CREMA-D)."""
    if layout == "vgaf":
        clips = sorted((data / "Test").glob("*.mp4"))
        return clips[0] if clips else None
    test = json.loads((data / "synthetic.json").read_text())["clips"]["test"]
    return data / f"{test[0]['clip_id']}.mp4" if test else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None,
                        help="where everything lands (default runs/demo, runs/demo_<layout> for the others)")
    parser.add_argument("--fresh", action="store_true", help="delete OUT and start over")
    parser.add_argument("--layout", choices=tuple(LAYOUT_DEFAULTS), default="vgaf",
                        help="dataset layout: vgaf (groups, 3 classes; default), ravdess (8 emotions), cremad (6)")
    parser.add_argument("--train", type=int, default=None, help="train clips (default vgaf 120, ravdess 192, cremad 144)")
    parser.add_argument("--val", type=int, default=None, help="val clips (default vgaf 60, ravdess 64, cremad 60)")
    parser.add_argument("--test", type=int, default=None, help="test clips (default vgaf 6, ravdess 4, cremad 4)")
    parser.add_argument("--duration", type=float, default=3.0, help="clip length (s)")
    parser.add_argument("--cue-noise", type=float, default=0.3)
    parser.add_argument("--audio-fraction", type=float, default=1.0,
                        help="fraction of clips that get an audio track (the rest test missing audio)")
    parser.add_argument("--faceless-fraction", type=float, default=0.0,
                        help="vgaf: fraction of clips without people's faces (tests missing faces)")
    parser.add_argument("--stills", type=int, default=40, help="GroupEmoW-format stills per class and split")
    parser.add_argument("--workers", type=int, default=2, help="processes for data generation and preprocessing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stream-epochs", type=int, default=None, help="override the tiny stream configs' epochs")
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    defaults = LAYOUT_DEFAULTS[args.layout]
    args.train, args.val, args.test = (default if given is None else given
                                       for given, default in zip((args.train, args.val, args.test), defaults))
    if args.layout != "vgaf" and args.faceless_fraction:
        parser.error("--faceless-fraction applies to --layout vgaf (every RAVDESS/CREMA-D clip shows one actor)")
    if args.out is None:
        args.out = "runs/demo" if args.layout == "vgaf" else f"runs/demo_{args.layout}"

    out = Path(args.out)
    if args.fresh and out.exists():
        print(f"--fresh: removing {out}")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg = ROOT / "configs"
    t_all = time.perf_counter()
    times = {}

    t = step(1, "synthetic dataset" + ("" if args.layout == "vgaf" else f" ({DISPLAY_NAMES[args.layout]} layout)"))
    data = out / "data"
    wanted = {"n_train": args.train, "n_val": args.val, "n_test": args.test, "seed": args.seed,
              "cue_noise": args.cue_noise, "duration": args.duration, "audio_fraction": args.audio_fraction}
    counts = ["--train", str(args.train), "--val", str(args.val), "--test", str(args.test), "--seed", str(args.seed),
              "--cue-noise", str(args.cue_noise), "--duration", str(args.duration),
              "--audio-fraction", str(args.audio_fraction)]
    if args.layout == "vgaf":
        stills = data / "groupemow"
        wanted["faceless_fraction"] = args.faceless_fraction
        if existing_dataset_matches(data, wanted, args.stills):
            print(f"reusing the synthetic dataset in {data} (same parameters)")
        else:
            run_tool("make_synthetic", ["--out", str(data), *counts, "--faceless-fraction", str(args.faceless_fraction),
                                        "--stills", str(args.stills), "--workers", str(args.workers)])
    else:
        stills = out / "stills"
        wanted["layout"] = args.layout
        if existing_dataset_matches(data, wanted, None):
            print(f"reusing the synthetic dataset in {data} (same parameters)")
        else:
            run_tool("make_synthetic", ["--layout", args.layout, "--out", str(data), *counts,
                                        "--workers", str(args.workers)])
        if existing_dataset_matches(stills, {"seed": args.seed}, args.stills):
            print(f"reusing the GroupEmoW-format stills in {stills} (same parameters)")
        else:
            run_tool("make_synthetic", ["--layout", "groupemow", "--out", str(stills), "--stills", str(args.stills),
                                        "--seed", str(args.seed), "--workers", str(args.workers)])
    times["data"] = time.perf_counter() - t

    t = step(2, "keyframe scorer (ResNet-50 on the GroupEmoW-format stills)")
    run_tool("train_keyframe_scorer", ["--config", str(cfg / "keyframes/scorer_demo.yaml"),
                                       "--data", str(stills), "--out", str(out / "scorer"),
                                       "--set", f"train.seed={args.seed}"])
    times["scorer"] = time.perf_counter() - t

    t = step(3, "preprocessing: keyframes, optical flow, faces, log-mel (one decode per clip)")
    run_tool("preprocess", ["--config", str(cfg / "preprocess/demo.yaml"), "--videos", str(data),
                            "--scorer", str(out / "scorer"), "--out", str(out / "cache"), "--contact-sheet",
                            "--workers", str(args.workers)])
    times["preprocess"] = time.perf_counter() - t

    t = step(4, "the four streams")
    for s in METHOD_STREAMS:
        print(f"--- {s} stream")
        sets = [f"train.seed={args.seed}"] + ([f"train.epochs={args.stream_epochs}"] if args.stream_epochs else [])
        run_tool("train_stream", ["--config", str(get_spec(s).recipe_path(tiny=True)), "--cache", str(out / "cache"),
                                  "--out", str(out / "streams" / s), "--set", *sets])
    times["streams"] = time.perf_counter() - t

    t = step(5, "stream features for fusion")
    run_tool("extract_features", ["--streams", ",".join(f"{s}={out / 'streams' / s}" for s in METHOD_STREAMS),
                                  "--cache", str(out / "cache"), "--out", str(out / "features")])
    times["features"] = time.perf_counter() - t

    t = step(6, "Concat-FC fusion")
    run_tool("train_fusion", ["--config", str(cfg / "fusion/concat_fc.yaml"), "--features", str(out / "features"),
                              "--out", str(out / "fusion"), "--set", f"train.seed={args.seed}"])
    times["fusion"] = time.perf_counter() - t

    t = step(7, "evaluation (val split)")
    run_tool("evaluate", ["--run", str(out / "fusion"), "--split", "val"])
    times["evaluate"] = time.perf_counter() - t

    t = step(8, "prediction on a held-out clip")
    test_clip = first_test_clip(data, args.layout)
    if test_clip is not None:
        run_tool("predict", [str(test_clip), "--run", str(out / "fusion")])
    times["predict"] = time.perf_counter() - t

    metrics = json.loads((out / "fusion" / "eval_val" / "metrics.json").read_text())
    print_summary(out, metrics, times, time.perf_counter() - t_all, val_split="Val" if args.layout == "vgaf" else "val")
    return 0


def targets_met(metrics: dict) -> dict[str, bool]:
    """The demo's targets on val, for any class count C: every stream above twice chance
    (``2 / C``), and Concat-FC above the best stream."""
    floor = 2.0 / len(metrics["class_names"])
    streams = [v["accuracy_when_available"] or 0.0 for v in metrics["streams"].values()]
    return {f"every stream above twice chance ({floor:.3f})": all(a > floor for a in streams),
            "Concat-FC above the best stream": metrics["accuracy"] > max(streams)}


def print_summary(out: Path, metrics: dict, times: dict, total: float, *, val_split: str = "Val") -> None:
    from media.synthetic import cue_ceiling

    ceiling = cue_ceiling(json.loads((out / "data" / "synthetic.json").read_text()), val_split)
    rows = [(f"{s} stream", v["accuracy_when_available"], ceiling["modalities"].get(s))
            for s, v in metrics["streams"].items()]
    rows += [(f"late fusion: {k}" + (f" (weights tuned on {v['weights_searched_on']})" if "weights_searched_on" in v else ""),
              v["accuracy"], ceiling["fused"]) for k, v in metrics["late_fusion"].items()]
    rows.append(("Concat-FC fusion (the method)", metrics["accuracy"], ceiling["fused"]))
    w = max(len(r[0]) for r in rows)
    print("\n" + "=" * 60)
    print(f"Val accuracy on the synthetic set ({metrics['clips']} clips, {len(metrics['class_names'])} classes)")
    print(f"  {''.ljust(w)}  accuracy  cue ceiling")
    for name, acc, top in rows:
        print(f"  {name.ljust(w)}  {'n/a' if acc is None else f'{acc:.3f}':>8}  {'' if top is None else f'{top:.3f}':>11}")
    print("  (cue ceiling: the expected accuracy of a perfect reader of the cues the clips show, ties\n"
          "   broken at random, so a model can beat it by a lucky clip; with cue noise a modality shows\n"
          "   another class on some clips, see README 'The synthetic dataset'. Weights tuned on the\n"
          "   split they are scored on make that late fusion an optimistic reference.)")
    best_stream = max((v["accuracy_when_available"] or 0.0) for v in metrics["streams"].values())
    print(f"  fusion gain over the best stream: {100 * (metrics['accuracy'] - best_stream):+.1f} points")
    print("  targets: " + "; ".join(f"{name}: {'met' if ok else 'NOT met'}" for name, ok in targets_met(metrics).items()))
    sheets = sorted((out / "cache").rglob("contact_sheet.png"))
    print("\nWhere things are:")
    print(f"  run directory      {out}")
    print(f"  TensorBoard        tensorboard --logdir {out}  (scorer/, streams/*/, fusion/ each have tb/)")
    print(f"  metrics.json       {out / 'fusion' / 'eval_val' / 'metrics.json'}")
    print(f"  confusion matrix   {out / 'fusion' / 'eval_val' / 'confusion_matrix.png'}")
    if sheets:
        print(f"  keyframe sheet     {sheets[0]}")
    print(f"  predict any video  python tools/predict.py VIDEO --run {out / 'fusion'}")
    print("\nStep times: " + ", ".join(f"{k} {v:.0f}s" for k, v in times.items()) + f"; total {total:.0f}s")


if __name__ == "__main__":
    sys.exit(run_main(main))
