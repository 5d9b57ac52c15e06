"""What a stream is: a :class:`StreamSpec` owns everything specific to one stream, so the rest of
the code (preprocessing, the datasets, feature extraction, prediction, live mode, the demo and the
benchmarks) iterates over :data:`streams.specs.STREAM_SPECS` instead of naming streams.

A spec says

* **what it stores**: one array per clip in the cache (``array_file``), and when the modality is
  really there for a clip (:meth:`StreamSpec.available`, e.g. at least one face found);
* **how it is preprocessed**: which part of the preprocessing config is its own (``section``) and
  therefore invalidates its array (:meth:`StreamSpec.config_hash`), what it needs from the one
  shared decoding pass (keyframe images at some size, extra frames, the audio track at some
  rate), and the step that turns a :class:`DecodedClip` into its array
  (:meth:`StreamSpec.make_step`);
* **what the network sees**: its ``data:`` settings and the input view with its augmentation
  (:meth:`StreamSpec.load_input`);
* **its network**: the model builder (:meth:`StreamSpec.create_model`) and its recipes
  (``configs/streams/<recipe>.yaml`` and the test/demo size ``<recipe>_tiny.yaml``).

A new stream is one module with a spec, its recipes, its tests and one line in
:mod:`streams.specs` (docs/develop/extending.md, "Adding a stream").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from core.config import settings_from_section
from core.storage import config_hash
from keyframes.extraction import KeyframeResult
from media.decoding import VideoInfo
from media.reuse import ClipReuse
from media.sampling import FrameRequest, FrameSample

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@dataclass
class DecodedClip:
    """What the shared decoding pass gives the streams of one clip.

    ``info``: the source's metadata. ``sample``: the frames the streams' :class:`FrameRequest` s
    asked for (``sample.picks[request.name]``); ``None`` when no stream needed frames.
    ``keyframes``: the selected keyframes, with one image list per size a stream asked for
    (``keyframes.images[name]``, N images in keyframe order); ``None`` when no stream needed them.
    ``audio``: the audio track per requested sample rate, mono float32 ``(N,)`` in [-1, 1], or
    ``None`` when the source has no audio track. ``reuse``: set when the clip is one of several
    overlapping clips of one source (live windows) whose per-frame work is shared
    (:mod:`media.reuse`); ``None`` for a file.
    """

    info: VideoInfo
    sample: FrameSample | None = None
    keyframes: KeyframeResult | None = None
    audio: Mapping[int, np.ndarray | None] = field(default_factory=dict)
    reuse: ClipReuse | None = None

    def waveform(self, sample_rate: int) -> np.ndarray | None:
        """The mono waveform at ``sample_rate`` Hz, ``None`` when there is no (non-empty) track."""
        samples = self.audio.get(int(sample_rate))
        return samples if samples is not None and samples.size > 0 else None


@dataclass
class StreamOutput:
    """One stream's result for one clip: ``array`` (stored as the spec's ``array_file``; ``None``
    when the modality is missing and nothing is stored) and the fields it adds to ``meta.json``."""

    array: np.ndarray | None
    meta: dict = field(default_factory=dict)


Step = Callable[[DecodedClip], StreamOutput]


class StreamSpec:
    """Base class of the stream specs (see the module docstring). Subclasses set the class
    attributes and implement :meth:`make_step`, :meth:`load_input` and :meth:`create_model`; the
    other methods have defaults that a stream overrides when it needs to."""

    #: the stream's name, as in recipes (``stream:``), ``--streams`` lists and fusion runs
    name: str = ""
    #: the array this stream stores in each clip's cache entry
    array_file: str = ""
    #: its section of the preprocessing config (the settings that invalidate its array)
    section: str = ""
    #: its recipes: ``configs/streams/<recipe>.yaml`` (full size) and ``<recipe>_tiny.yaml``
    recipe: str = ""
    #: a stream of the method is computed by default; an optional one only when its section says
    #: ``enabled: true``
    optional: bool = False
    #: it reads the selected keyframes (they are selected once per clip for every such stream)
    uses_keyframes: bool = False
    #: its array is the keyframe images themselves (what ``tools/extract_keyframes.py`` writes)
    stores_keyframes: bool = False
    #: its section's settings: a frozen dataclass of :func:`core.config.setting` fields that
    #: checks itself (:meth:`checked_settings`)
    settings_class: type
    #: the settings of its section for the straightforward, expensive way of computing it, which
    #: the preprocessing benchmark compares against (e.g. face detection at full resolution)
    naive_settings: Mapping[str, Any] = {}
    #: keys of its section hashed with their value even where the recipe leaves them out (a section
    #: is otherwise hashed as written): settings whose default changed what the array holds, so an
    #: array made under the old default is recomputed instead of reused
    hashed_defaults: tuple[str, ...] = ()

    # -- configuration -------------------------------------------------------------------------

    def settings(self, cfg: Mapping[str, Any]) -> dict:
        """This stream's section of the preprocessing config ``cfg`` (a copy; ``{}`` if absent)."""
        return dict(cfg.get(self.section) or {})

    def checked_settings(self, cfg: Mapping[str, Any]) -> Any:
        """This stream's section of ``cfg`` as its ``settings_class``, defaults filled in. Raises
        :class:`core.config.ConfigError` naming ``section.key`` for a misspelt key or a value
        the stream cannot use; :class:`ClipPreprocessor` reads every section it computes before
        the first clip, so a recipe mistake stops a run at once instead of failing every clip."""
        return settings_from_section(self.settings_class, self.settings(cfg), self.section,
                                     ignore=("enabled",) if self.optional else ())

    def enabled(self, cfg: Mapping[str, Any]) -> bool:
        """Whether preprocessing computes this stream when no stream list is given."""
        return not self.optional or bool(self.settings(cfg).get("enabled", False))

    def config_hash(self, cfg: Mapping[str, Any], keyframes_hash: str) -> str:
        """Hash of everything that determines this stream's array: its section (as written, plus
        the :attr:`hashed_defaults`), plus the keyframe selection when it reads keyframes."""
        section = self.settings(cfg)
        if self.hashed_defaults:
            checked = self.checked_settings(cfg)
            section.update({k: getattr(checked, k) for k in self.hashed_defaults})
        parts: dict[str, Any] = {self.section: section}
        if self.uses_keyframes:
            parts["keyframes"] = keyframes_hash
        return config_hash(parts)

    def recipe_path(self, *, tiny: bool = False) -> Path:
        return CONFIGS / "streams" / f"{self.recipe}{'_tiny' if tiny else ''}.yaml"

    # -- preprocessing --------------------------------------------------------------------------

    def keyframe_sizes(self, cfg: Mapping[str, Any]) -> tuple[tuple[str, int | None, int | None], ...]:
        """Keyframe images this stream reads, as ``(name, short_side, max_side)`` (``None``: no
        limit); they are converted from the same decoded frames during the one pass."""
        return ()

    def frame_requests(self, frame_count: int, cfg: Mapping[str, Any]) -> tuple[FrameRequest, ...]:
        """Frames (other than keyframes) this stream reads from the decoding pass, given the
        clip's ``frame_count`` (decoded frames when known, else the container's count)."""
        return ()

    def audio_rate(self, cfg: Mapping[str, Any]) -> int | None:
        """Sample rate (Hz) at which this stream reads the audio track; ``None``: it does not."""
        return None

    def reads_frames(self, cfg: Mapping[str, Any]) -> bool:
        """Whether this stream reads video frames (keyframes or its own frame requests); a source
        without decodable frames leaves such a stream missing."""
        return self.uses_keyframes or bool(self.frame_requests(1, cfg))

    def audio_frame_step(self, cfg: Mapping[str, Any]) -> int | None:
        """Samples (at :meth:`audio_rate`) between this stream's analysis frames of the audio, when
        it analyses audio in frames; live windows start their audio on a multiple of it, so that
        overlapping windows share those frames. ``None``: no such grid."""
        return None

    def source_sides(self, cfg: Mapping[str, Any]) -> tuple[int, int]:
        """``(short_side, max_side)`` of the largest source image this stream reads (0: none),
        so live mode can keep frames no larger than the pipeline needs."""
        return 0, 0

    def make_step(self, cfg: Mapping[str, Any], *, device: str | torch.device = "cpu") -> Step:
        """The preprocessing step ``DecodedClip -> StreamOutput`` for config ``cfg``. Heavy tools
        (a face detector, a flow estimator) are built on first use, once per step; a network
        among them (the face detector) runs on the torch ``device``."""
        raise NotImplementedError

    # -- cache ----------------------------------------------------------------------------------

    def available(self, meta: Mapping[str, Any]) -> bool:
        """Whether the modality is really there for a clip whose array was computed (``meta`` is
        its ``meta.json``): e.g. faces were found, the clip has an audio track."""
        return True

    def stores_array(self, meta: Mapping[str, Any]) -> bool:
        """Whether a computed entry holds this stream's array file (a missing modality may store
        nothing)."""
        return True

    # -- training and inference -----------------------------------------------------------------

    def data_settings(self, section: Mapping[str, Any] | None) -> Any:
        """The stream recipe's ``data:`` section parsed into what :meth:`load_input` takes."""
        from streams.views import ViewSettings

        return ViewSettings.from_config(section or {})

    def load_input(self, array: np.ndarray, meta: Mapping[str, Any], settings: Any,
                   rng: np.random.Generator | None) -> torch.Tensor:
        """The network input for one clip from its stored ``array`` (``rng``: the training view
        with augmentation drawn from it; ``None``: the deterministic evaluation view)."""
        raise NotImplementedError

    #: the stream's keyword-only ``create_*`` builder (wrap it in ``staticmethod``); the recipe's
    #: ``model:`` section is its arguments, ``num_classes`` comes from the data
    model_builder: Callable[..., torch.nn.Module]

    def create_model(self, *, num_classes: int, **kwargs: Any) -> torch.nn.Module:
        """Build the stream's network (the recipe's ``model:`` section is ``kwargs``); it maps
        :meth:`load_input` batches to logits ``(B, num_classes)`` and has ``features()``."""
        return self.model_builder(num_classes=num_classes, **kwargs)

    def input_shape(self, settings: Any) -> tuple[int, ...]:
        """The shape of one clip's network input, without the batch axis: what :meth:`load_input`
        returns for the ``data:`` settings ``settings`` (:meth:`data_settings`), whatever the
        stored array's size. The memory estimate (:mod:`benchmarks.memory`) builds its stand-in
        batch from it."""
        raise NotImplementedError

    def input_dtype(self) -> torch.dtype:
        """The dtype of :meth:`load_input`'s tensor (float32 unless a stream's clips travel as
        uint8 and its model normalises them); the memory estimate's stand-in batch has it."""
        return torch.float32

    def trained_model_config(self, model_cfg: Mapping[str, Any]) -> dict:
        """The ``model:`` section that rebuilds a TRAINED network of this stream before its
        checkpoint is loaded: what only initialises the weights (``pretrained``) is dropped, so
        prediction does not need those files."""
        return {k: v for k, v in model_cfg.items() if k != "pretrained"}

    def __repr__(self) -> str:
        return f"<stream spec {self.name!r}: {self.array_file}>"
