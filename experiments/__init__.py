"""Experiments that measure the method's quality (not its speed, which is :mod:`benchmarks`):
the results report over every trained model (``report``, ``tools/report.py``) and the keyframe
ablation on synthetic clip families over several seeds (``keyframe_ablation``, ``tools/ablate.py``)."""
