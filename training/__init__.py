"""Training infrastructure shared by the keyframe scorer, the four streams and fusion:
configs, checkpoints, external weights, metrics and the one Accelerate training loop."""
