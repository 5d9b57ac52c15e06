#!/usr/bin/env python
"""The results report of a runs directory: every stream, late fusion and fusion head on val and
test, with 95 % bootstrap intervals, McNemar's test against the method, calibration (ECE, NLL,
Brier, raw and after temperature scaling fitted on val), curves and the streams' contributions
(leave-one-stream-out Concat-FC heads, trained here in seconds).

    python tools/report.py --runs runs/demo --out runs/demo/report [--method RUN] [--ablation PATH]
                           [--markdown docs/results/demo.md]

Writes OUT/report.md, OUT/report.json, OUT/roc_curves.png, OUT/pr_curves.png, OUT/reliability.png,
OUT/confusion_<model>.png, OUT/contributions.png and OUT/leave_one_out/ (reused by a re-run), and
prints the table. See experiments/report.py. With --errors N also the error analysis
(experiments/error_analysis.py): OUT/errors.md, OUT/errors.json and the explanation cards of the N
most confident test mistakes in OUT/errors/.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from core.command_line import add_debug_argument, add_device_argument, positive_int, run_main
from core.results_page import write_results_page
from experiments.report import ReportError, build_report, format_table, write_report
from training.statistics import DRAWS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", required=True,
                        help="runs directory (e.g. runs/demo), searched for stream and fusion runs")
    parser.add_argument("--out", required=True, help="report directory")
    parser.add_argument("--method", default=None,
                        help="the method's fusion run (default: the one Concat-FC run under --runs)")
    parser.add_argument("--ablation", default=None,
                        help="keyframe ablation table of tools/ablate.py keyframes "
                             "(default RUNS/ablation/ablation.json when it exists)")
    parser.add_argument("--draws", type=positive_int, default=DRAWS, help=f"bootstrap resamples (default {DRAWS})")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--markdown", metavar="PATH", default=None,
                        help="also write report.md as a results page (command, commit, machine), "
                             "e.g. docs/results/demo.md")
    parser.add_argument("--errors", type=positive_int, default=None, metavar="N",
                        help="also the error analysis: explain every test clip with the method's run, write the "
                             "cards of the N most confident mistakes and OUT/errors.md (docs/guides/explanations.md)")
    add_device_argument(parser, what="the networks that explain the test clips (with --errors)")
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    report = build_report(args.runs, args.out, method=args.method, ablation=args.ablation, draws=args.draws,
                          seed=args.seed)
    written = write_report(report, args.out)
    if args.markdown:
        write_results_page(args.markdown, f"Results report: {args.runs}", "tools/report.py", argv,
                           Path(written["markdown"]).read_text(encoding="utf-8"))
    print(format_table(report.data))
    if args.errors:
        from experiments.error_analysis import error_analysis

        errors = error_analysis(report.data["method"]["run"], args.out, cards=args.errors, device=args.device)
        print(f"error analysis: {len(errors['mistakes'])} of {errors['clips']} test clips wrong; "
              f"wrote {Path(args.out) / 'errors.md'}")
    for warning in report.data["provenance"]["warnings"]:
        print(f"warning: {warning}")
    figures = [k for k in ("roc_curves", "pr_curves", "reliability", "contributions") if k in written]
    confusions = sum(1 for k in written if k.startswith("confusion "))
    print(f"\nwrote {written['markdown']}, {written['json']}")
    if figures or confusions:
        print(f"figures ({report.data['figure_split']} split) in {args.out}: "
              + ", ".join(f"{k}.png" for k in figures)
              + (f", confusion_<model>.png for {confusions} models" if confusions else ""))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, user_errors=(ReportError,)))
