#!/usr/bin/env python
"""Pretrain the face stream's network on facial expressions: a 2D ResNet-50 on FER2013.

    python tools/train_face_pretrain.py --config configs/faces/fer2013_r50.yaml \
        --data FER2013 --out runs/fer2013 [--set train.epochs=10] [--fresh]

FER2013 is fer2013.csv (emotion,pixels,Usage), a folder holding it, or the image-folder release
(train/<emotion>/*.png, test/...; it has no val split: add --set data.val_split=null or test).
The 48x48 grey images are upsampled to data.input_size and repeated to 3 channels. The run
directory is the one every training writes; give it to the face stream as
    model: {pretrained: {path: runs/fer2013, format: inflate2d}}
(I3D inflation of the 2D kernels into the 3D ResNet-50; the FER classifier is skipped).
Re-running on the same --out resumes from the last completed epoch (or reuses a finished run).
"""
from __future__ import annotations

import sys

from core.command_line import run_main, run_training, training_parser
from streams.face_pretraining import train_face_pretraining


def main(argv: list[str] | None = None) -> int:
    parser = training_parser(__doc__, data_flag="--data",
                             data_help="FER2013: fer2013.csv, a folder holding it, or the image-folder root")
    return run_training(train_face_pretraining, parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(run_main(main))
