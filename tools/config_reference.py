#!/usr/bin/env python
"""Write (or check) the recipe reference page, rendered from the settings dataclasses.

    python tools/config_reference.py --out docs/reference/config.md     # rewrite the page
    python tools/config_reference.py --check docs/reference/config.md   # exit 1 when it is stale

The page lists every section of every kind of recipe in configs/ with each key's default, the
values it accepts and what it does, from the dataclasses that read them (:mod:`core.config`,
:mod:`core.config_reference`); tests/tools/test_config_reference.py fails when the committed page
differs from what this renders.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from core.command_line import add_debug_argument, run_main
from core.config import builder_settings
from core.config_reference import Chapter, Section, render_reference
from core.storage import atomic_write_text
from fusion.features import FeaturesSettings
from fusion.heads import DEFAULT_HEAD, FUSION_HEADS
from keyframes.extraction import KeyframeSettings
from keyframes.scorer import create_scorer
from keyframes.training import ScorerData
from streams.face_pretraining import FacePretrainData, create_face_expression_model
from streams.folds import ExcludeSettings
from streams.specs import STREAM_SPECS
from training.label_maps import LabelsSettings
from training.train_config import TrainSettings

PAGE = Path(__file__).resolve().parents[1] / "docs" / "reference" / "config.md"
COMMAND = "python tools/config_reference.py --out docs/reference/config.md"

INTRO = """\
A recipe is one YAML file in configs/. It may name ONE `base:` file (a path relative to itself)
whose keys it overrides, mapping by mapping; a base file may not name a base of its own
(configs/shared/ holds what several recipes share). `--set key.sub=value` overrides any key on
the command line (the value is read as YAML). A misspelt key or a value outside what a key
accepts stops the tool with one `error:` line naming the file and `section.key`."""


def chapters() -> list[Chapter]:
    """Every recipe section, grouped by the kind of recipe that holds it."""
    streams = [Section(f"model ({name})", builder_settings(spec.model_builder, ("num_classes",)),
                       f"configs/streams/{spec.recipe}.yaml")
               for name, spec in STREAM_SPECS.items()]
    readers: dict[type, list[str]] = {}
    for name, spec in STREAM_SPECS.items():
        readers.setdefault(type(spec.data_settings(None)), []).append(name)
    data = [Section(f"data ({', '.join(names)})", cls) for cls, names in readers.items()]
    heads = [Section(f"model (name: {name})", builder_settings(head.create, ("num_classes", "stream_dims")),
                     f"configs/fusion/{name}.yaml" + (" (the default head)" if name == DEFAULT_HEAD else ""))
             for name, head in FUSION_HEADS.items()]
    preprocess = [Section("keyframes", KeyframeSettings)] + [
        Section(spec.section, spec.settings_class,
                "`enabled: true` also computes this optional stream" if spec.optional else "")
        for spec in STREAM_SPECS.values()] + [Section("labels", LabelsSettings)]
    return [
        Chapter("Training (`train:`)", "Every trained recipe (streams, fusion heads, the keyframe scorer, face "
                "pretraining) has this section; the loop reads it (`training/loop.py`).",
                [Section("train", TrainSettings)]),
        Chapter("Stream recipes (configs/streams/)", "Top-level keys: `stream` (the stream's name), `model`, "
                "`data`, `exclude` (optional: the train clips held back for fusion) and `train`.",
                [*streams, *data, Section("exclude", ExcludeSettings)]),
        Chapter("Fusion recipes (configs/fusion/)", "Top-level keys: `streams` (the fused streams, in order), "
                "`model` (`name:` picks the head, the other keys are its builder's arguments) and `train`.",
                heads),
        Chapter("Features recipes (configs/features/)", "One key, `features`: how fusion's training features are "
                "made (docs/concepts/leakage.md); `tools/extract_features.py --config` checks the stream runs against "
                "it.", [Section("features", FeaturesSettings)]),
        Chapter("Keyframe scorer recipes (configs/keyframes/)", "Top-level keys: `model`, `data`, `train`.",
                [Section("model", builder_settings(create_scorer, ("num_classes",))), Section("data", ScorerData)]),
        Chapter("Face pretraining recipes (configs/faces/)", "Top-level keys: `model`, `data`, `labels` (optional: "
                "FER2013's classes mapped onto the task's, as the preprocessing `labels` section below) and `train`.",
                [Section("model", builder_settings(create_face_expression_model, ("num_classes",))),
                 Section("data", FacePretrainData)]),
        Chapter("Preprocessing recipes (configs/preprocess/)", "One section per stage; each section's values are "
                "hashed as written, so changing one recomputes only the arrays it feeds.", preprocess),
    ]


def render() -> str:
    """The reference page's text."""
    return render_reference(chapters(), intro=INTRO)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--out", type=Path, help="write the page here")
    target.add_argument("--check", type=Path, help="exit 1 when this page differs from the rendered one")
    add_debug_argument(parser)
    args = parser.parse_args(argv)
    text = render()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.out, text)
        return 0
    current = args.check.read_text(encoding="utf-8") if args.check.exists() else None
    if current != text:
        print(f"{args.check} is stale; rewrite it with: {COMMAND}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
