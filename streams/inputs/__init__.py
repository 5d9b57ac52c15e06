"""Per-stream inputs computed from decoded media (pure functions on arrays).

Import the submodule you need (they are not re-exported here, so that e.g. computing a
spectrogram does not import torch and MTCNN):

- :mod:`streams.inputs.optical_flow`: dense flow estimators (TV-L1, Farneback, DIS), flow
  positions in a clip, denseflow-style uint8 quantisation.
- :mod:`streams.inputs.faces`: MTCNN face detection, the 16-faces-per-clip selection, aligned
  crops.
- :mod:`streams.inputs.spectrogram`: 128-band log-mel spectrogram in dB.
"""
