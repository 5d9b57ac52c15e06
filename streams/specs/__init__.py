"""The streams, one spec module each (:class:`~streams.specs.base.StreamSpec`), and the one table
that collects them. Preprocessing, the datasets, the model builder, feature extraction,
prediction, live mode, the demo and the benchmarks iterate over :data:`STREAM_SPECS`.

To add a stream, write its spec module and add it to the tuple below (docs/develop/extending.md).
"""
from __future__ import annotations

from typing import Iterable

from streams.specs import audio, face, flow, speech, visual
from streams.specs.base import DecodedClip, StreamOutput, StreamSpec

#: name -> spec, in the order streams are computed and concatenated by default
STREAM_SPECS: dict[str, StreamSpec] = {m.SPEC.name: m.SPEC for m in (visual, flow, face, audio, speech)}


def get_spec(name: str) -> StreamSpec:
    """The spec of stream ``name``; a ``ValueError`` lists the known names."""
    try:
        return STREAM_SPECS[name]
    except KeyError:
        raise ValueError(f"unknown stream {name!r}; known streams: {', '.join(STREAM_SPECS)}") from None


def parse_streams(spec: str | Iterable[str] | None, cfg: dict | None = None) -> tuple[str, ...]:
    """``"visual,flow"`` -> ``("visual", "flow")`` in table order; ``None`` -> every stream enabled by
    the preprocessing config ``cfg`` (the method's streams, plus optional ones it enables).
    Unknown names raise ``ValueError``."""
    if spec is None:
        return tuple(n for n, s in STREAM_SPECS.items() if s.enabled(cfg or {}))
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    bad = [n for n in names if n not in STREAM_SPECS]
    if bad or not names:
        raise ValueError(f"--streams: unknown {bad or 'empty list'}; choose from {','.join(STREAM_SPECS)}")
    return tuple(n for n in STREAM_SPECS if n in names)


__all__ = ["STREAM_SPECS", "DecodedClip", "StreamOutput", "StreamSpec", "get_spec", "parse_streams"]
