"""Training infrastructure shared by the keyframe scorer, the four streams and fusion:
the training settings, checkpoints, external weights, metrics and the one Accelerate loop."""
