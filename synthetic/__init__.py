"""Synthetic data with known answers, for the demo, the tests, the benchmarks and the
experiments (never imported by the method's own packages).

The sets: ``group`` (group clips in the VGAF layout), ``stills`` (GroupEmoW-format stills),
``individual`` (one-actor clips in the RAVDESS and CREMA-D layouts), ``fer2013`` (FER2013-format
faces); ``peaks`` makes a group clip's cues swell for about a second (the keyframe ablation's
peak clips). What they draw: ``faces`` (the cartoon person), ``scenes`` (group scenes),
``actors`` (one-actor scenes), ``audio`` (tone and speech). What their cues mean: ``cues`` (the
modalities, the group classes, cue noise and the best score a reader of the cues could reach)
and ``emotions`` (the individual sets' emotions). ``output`` holds what every generator does the
same way (argument checks, claiming the output folder, seeded labels, the process pool)."""
