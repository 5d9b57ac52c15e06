#!/usr/bin/env python
"""Export a trained system (a fusion run and the runs it records) as a release bundle.

    python tools/export.py --run runs/demo/fusion --out runs/demo/bundle [--archive]

Writes BUNDLE/: ONNX graphs (opset 17, dynamic batch axis, checked by onnx.checker) of the
keyframe scorer, every fused stream and the fusion head; the same networks' safetensors
checkpoints (for --engine torch); manifest.json (format_version, every file's sha256 and size,
each model's inputs, outputs and normalisation, class names, the preprocessing recipe and its
hash, temperatures, the runs' identities, the exporting commit); and model_card.md (data, val/test
metrics with intervals from the run's report, intended and out-of-scope uses, limits, licences).
--archive also writes BUNDLE.tar.gz; --update keeps an earlier bundle in OUT when it is of the
run's current checkpoints and report, and replaces it otherwise. Run it with
`python tools/predict.py VIDEO --bundle BUNDLE`.
"""
from __future__ import annotations

import argparse
import logging
import sys

from core.command_line import add_debug_argument, run_main
from fusion.prediction import PipelineError
from release.bundle_writer import export_bundle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="fusion run directory")
    parser.add_argument("--out", required=True, help="bundle directory to write (new, or empty)")
    parser.add_argument("--archive", action="store_true", help="also write OUT.tar.gz")
    parser.add_argument("--update", action="store_true",
                        help="OUT may hold an earlier bundle: kept when exported from the run's current checkpoints "
                             "and report, else replaced")
    parser.add_argument("--report", default=None,
                        help="report.json for the model card (default: report/report.json beside the run, if any)")
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    manifest = export_bundle(args.run, args.out, archive=args.archive, report=args.report, update=args.update)
    size = sum(f["bytes"] for f in manifest["files"]) / 1e6
    if manifest.get("reused"):
        print(f"reusing {args.out}: a bundle of the run's current checkpoints ({size:.1f} MB)")
        return 0
    print(f"wrote {args.out}: {len(manifest['models'])} ONNX models, {len(manifest['files'])} files, {size:.1f} MB"
          + (f"; {args.out.rstrip('/')}.tar.gz" if args.archive else ""))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main, user_errors=(PipelineError,)))
