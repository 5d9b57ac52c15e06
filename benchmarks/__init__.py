"""Speed and memory measurements of the pipeline (the logic behind ``tools/benchmark.py``), one
module per thing measured: ``keyframes`` (keyframe extraction against scoring every frame),
``preprocessing`` (the one-pass preprocessing against each stream reading the clip on its own,
and peak memory), ``training`` (a stream's training step with and without its attention, and the
loader, on a chosen device), ``live`` (windows per second of live mode against real time),
``memory`` (the per-device memory of training a recipe, estimated without a GPU) and
``gpu_check`` (all of it on one GPU: ``make gpu-check``). ``timing`` holds how
everything is timed; ``inputs`` what it runs on (generated clips, scorers).
Quality (the keyframe ablation, the report) is measured in :mod:`experiments`.

A benchmark never asserts a goal: it measures a cheap setting and its baseline **in the same
run**, interleaved (A B A B ...), and reports medians, spreads and the ratio, so a number means
something even on a busy machine. Every benchmark returns one flat JSON-ready dict.
"""
