"""Synthetic data with known answers, for the demo, the tests, the benchmarks and the
experiments (never imported by the method's own packages): the group-level set in the VGAF
layout with GroupEmoW-format stills (``group``) and the individual-level sets in the RAVDESS and
CREMA-D layouts with FER2013 stills (``individual``)."""
