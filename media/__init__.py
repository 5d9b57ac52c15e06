"""Media layer: decoding and writing video and audio (``decoding``, ``encoding``, ``sampling``),
capture from cameras, microphones and streams (``capture``), dataset layouts and the clips a batch
tool selects (``datasets``, ``selection``), and reuse of work between passes (``reuse``)."""
