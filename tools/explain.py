#!/usr/bin/env python
"""Explain the group emotion predicted for a clip: which stream, which moments, which people,
which regions.

    python tools/explain.py clip.mp4 --run runs/demo/fusion --out explained/ [--gradcam] [--video]
    python tools/explain.py --cache runs/demo/cache --split Test --clips 5 --run runs/demo/fusion --out explained/
    python tools/explain.py --check --runs runs/demo --out check/ [--clips 60]

Per clip: explanation.json (the prediction; each stream's exact Shapley value, the check that they
add up to the full minus the all-missing prediction; each keyframe's time, selector score, rule
and occlusion contribution; each second of audio's; each tracked person's boxes, crops and
contribution; with --gradcam the heat maps' peaks) and the card explanation.png; --video adds an
annotated explanation.mp4. One file is written into --out, several into --out/<name>/.
Probabilities are calibrated with the run's temperature (--no-calibration: raw).

--check generates synthetic clips whose answer is known (one modality carries the class, one person
of several carries the expression, the class peaks in one second), preprocesses them with the
run's recipe, explains them and writes check.json: how often the explanation names the truth, each
rate with its 95 % interval and the chance level (docs/results/explanations.md).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.command_line import (
    add_calibration_argument,
    add_debug_argument,
    add_device_argument,
    positive_int,
    run_main,
)
from fusion.prediction import PipelineError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="*", help="video (or audio) files to explain")
    parser.add_argument("--run", help="fusion run directory")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--cache", help="explain clips of this preprocessing cache instead of files")
    parser.add_argument("--split", default="Test", help="the cache split (with --cache)")
    parser.add_argument("--clips", type=positive_int, default=None,
                        help="clips to explain (--cache: the first N; --check: per kind, default 60)")
    parser.add_argument("--check", action="store_true", help="check explanations against synthetic ground truth")
    parser.add_argument("--runs", help="with --check: the demo's runs directory (RUNS/fusion, RUNS/cache)")
    parser.add_argument("--gradcam", action="store_true", help="also compute the Grad-CAM maps")
    parser.add_argument("--video", action="store_true", help="also write an annotated explanation.mp4")
    parser.add_argument("--markdown", help="with --check: also write the results page (command, commit, machine) "
                                           "here, e.g. docs/results/explanations.md")
    add_device_argument(parser, what="the keyframe scorer, MTCNN, the streams and the fusion head")
    add_calibration_argument(parser)
    add_debug_argument(parser)
    args = parser.parse_args(argv)

    if args.check:
        from core.results_page import write_results_page
        from experiments.explanation_check import check_markdown, run_check

        if not args.runs:
            parser.error("--check needs --runs (the directory holding fusion/ and data/)")
        summary = run_check(args.runs, args.out, clips=args.clips or 60, device=args.device,
                            calibrated=args.calibrated)
        if args.markdown:
            write_results_page(args.markdown, "Explanations checked against synthetic ground truth",
                               "tools/explain.py", argv, check_markdown(summary))
        for name, v in summary["checks"].items():
            if v["rate"] is None:
                print(f"{name}: no clips")
                continue
            print(f"{name}: {v['rate']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]  chance {v['chance']:.3f}  "
                  f"({v['clips']} clips)")
        print(f"wrote {Path(args.out) / 'check.json'}")
        return 0
    if not args.run:
        parser.error("--run is required (the fusion run to explain)")
    if bool(args.cache) == bool(args.videos):
        parser.error("give video files or --cache, not both and not neither")
    from explanations.explainer import Explainer
    from explanations.output import explain_cache, explain_files

    if args.videos:
        for v in args.videos:  # before the networks load: a wrong path costs nothing
            if not Path(v).is_file():
                raise FileNotFoundError(2, "no such clip", v)
    explainer = Explainer.from_run(args.run, device=args.device, calibrated=args.calibrated, gradcam=args.gradcam)
    if args.cache:
        records = explain_cache(explainer, args.cache, args.split, args.clips, args.out, video=args.video)
    else:
        records = explain_files(explainer, args.videos, args.out, video=args.video)
    for r in records:
        shap = "  ".join(f"{s} {v['shapley']:+.3f}" if v["available"] else f"{s} missing"
                         for s, v in r["streams"].items())
        print(f"{r['video']}: {r['prediction']['label']}  [{shap}]  {len(r['keyframes'])} keyframes, "
              f"{len(r['people'])} people")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, user_errors=(PipelineError,)))
