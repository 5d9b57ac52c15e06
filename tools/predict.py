#!/usr/bin/env python
"""Predict the group emotion of raw videos with a trained pipeline.

    python tools/predict.py clip1.mp4 clip2.mp4 --run runs/fusion [--json] [--device cuda] [--no-calibration]
    python tools/predict.py clip.mp4 --bundle runs/demo/bundle [--engine onnxruntime|torch] [--json]

Per video: label, class probabilities, each stream's probabilities, missing modalities, the
keyframe times used and time per stage. The probabilities are calibrated (each run's temperature,
fitted on val); --no-calibration prints the raw ones. A file without video frames (an audio-only .m4a, a video
stream that does not decode) is predicted from its audio, the frame streams marked missing. An
unreadable video gets an error entry and the others go on; the exit code is non-zero only when no
video could be predicted. With --bundle (a release bundle of tools/export.py) the same pipeline
runs from the bundle, by ONNX Runtime unless --engine torch; its JSON adds ``engine``. A bundle
with a missing or changed file is refused before any work.
"""
from __future__ import annotations

import argparse
import json
import sys

from core.command_line import add_calibration_argument, add_debug_argument, add_device_argument, run_main
from fusion.prediction import PipelineError
from release.pipeline_source import add_pipeline_arguments, build_predictor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("videos", nargs="+")
    add_pipeline_arguments(parser)
    parser.add_argument("--json", action="store_true", help="one JSON object per video on stdout")
    add_device_argument(parser, what="the keyframe scorer, MTCNN, the streams and the fusion head")
    add_calibration_argument(parser)
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    predictor = build_predictor(args, parser)
    results = predictor.predict_many(args.videos)
    for r in results:
        if args.json:
            print(json.dumps(r))
        elif "error" in r:
            print(f"{r['video']}: ERROR {r['error']}")
        else:
            probs = "  ".join(f"{c} {p:.2f}" for c, p in r["probs"].items())
            missing = f"  (missing: {', '.join(r['missing'])})" if r["missing"] else ""
            print(f"{r['video']}: {r['label']}  [{probs}]{missing}  {r['timings_s']['total']:.2f} s")
            for why in dict.fromkeys(r["missing_reasons"].values()):
                streams = [s for s, w in r["missing_reasons"].items() if w == why]
                print(f"  {', '.join(streams)} not computed: {why}")
    return 0 if any("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(run_main(main, user_errors=(PipelineError,)))
