"""Plumbing every stage may import and that imports no stage: atomic storage and error logs
(``storage``), the base error class (``errors``), config files and overrides (``config``), the
tools' command line (``command_line``) and the per-clip batch runner (``batch``)."""
