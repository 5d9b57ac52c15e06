"""What the keyframe ablation (:mod:`experiments.keyframe_ablation`) generates and runs: its
settings, the selections it compares and the stream it trains."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from benchmarks.timing import BenchmarkError
from core.config import load_config
from keyframes.selection import ABLATIONS, INTENSITIES
from streams.specs import STREAM_SPECS, StreamSpec
from synthetic.peaks import FAMILIES, MAX_OFF_PEAK, SPREAD_GAP_S, SPREAD_HALF_WIDTH_S

ROOT = Path(__file__).resolve().parents[1]
PREPROCESS_CONFIG = ROOT / "configs/preprocess/demo.yaml"
SCORER_RECIPE = ROOT / "configs/keyframes/scorer_demo.yaml"
SELECTION_MODES = ("uniform", "literal", "default", *ABLATIONS)
"""Every selection the ablation can run, by ``keyframes.mode``; uniform is the baseline of the
paired differences and default the reference of ``changed_vs_default``, so both always run."""
SPREAD_MIN_DURATION_S = 2 * SPREAD_HALF_WIDTH_S + SPREAD_GAP_S
DEFAULT_OFF_PEAK = 0.3
"""``--off-peak``, chosen before any result was seen: at 0.3 half of the peak clips show the
opposite emotion at 30 % for the ~4 s outside their emotional second, so over a uniform sample
the opposite cue (0.8 x 0.3 = 0.24 of the clip) outweighs the peak's own (about 1 s / 5 s = 0.2);
a stream that reads the clip's average then gets about half of those clips wrong, which puts
uniform sampling at about 0.8 or below, while a selection that finds the peak second sees mostly
the clip's own emotion."""


@dataclass(frozen=True)
class AblationSettings:
    """What the ablation generates and runs.

    ``families``: the clip families (:data:`synthetic.peaks.FAMILIES`); ``modes``: the
    selections (:data:`SELECTION_MODES`; ``uniform`` and ``default`` are added when missing);
    ``seeds``: how many seeds, ``seed``, ``seed + 1``, ... (each seed generates its own sets and
    trains its own streams); ``n_train``/``n_val``: clips per split and set (balanced classes);
    ``off_peak``: the strength (0-0.3) of the opposite emotion on the off-moment frames of the
    clips that show it (:data:`DEFAULT_OFF_PEAK`); ``duration`` (s), ``fps``, ``width``/``height``
    (px): the clips; ``cue_noise``: the generator's per-modality probability of showing a random
    class (0: every clip's visual cue shows its class); ``intensities``: those the non-uniform
    selections run with (``None``: the recipe's ``keyframes.intensity``); ``stills_per_class``:
    GroupEmoW-format stills per class and split when the scorer is trained here; ``epochs``: the
    stream recipe's ``train.epochs`` override; ``workers``: processes for generation,
    preprocessing and training (each training uses one torch thread, so results do not depend on
    it); ``preprocess_config`` with ``overrides`` (``KEY=VALUE``) applied to every selection."""

    n_train: int = 120
    n_val: int = 60
    seed: int = 0
    seeds: int = 3
    families: tuple[str, ...] = FAMILIES
    modes: tuple[str, ...] = SELECTION_MODES
    off_peak: float = DEFAULT_OFF_PEAK
    duration: float = 5.0
    fps: float = 25.0
    width: int = 320
    height: int = 180
    cue_noise: float = 0.0
    intensities: tuple[str, ...] | None = None
    stills_per_class: int = 40
    epochs: int | None = None
    workers: int = 2
    preprocess_config: str = str(PREPROCESS_CONFIG)
    overrides: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.n_train < 3 or self.n_val < 1:
            raise BenchmarkError(f"the ablation needs at least 3 train clips (one per class) and 1 val clip, "
                                 f"got --train {self.n_train} --val {self.n_val}")
        if self.seeds < 1:
            raise BenchmarkError(f"--seeds must be >= 1, got {self.seeds}")
        if not self.families or any(f not in FAMILIES for f in self.families):
            raise BenchmarkError(f"families must be among {list(FAMILIES)}, got {list(self.families)}")
        if any(m not in SELECTION_MODES for m in self.modes):
            raise BenchmarkError(f"selections must be among {list(SELECTION_MODES)}, got {list(self.modes)}")
        if not 0.0 <= self.off_peak <= MAX_OFF_PEAK:
            raise BenchmarkError(f"--off-peak must be in [0, {MAX_OFF_PEAK}], got {self.off_peak}")
        if self.intensities is not None and (not self.intensities
                                             or any(i not in INTENSITIES for i in self.intensities)):
            raise BenchmarkError(f"intensities must be among {INTENSITIES}, got {list(self.intensities)}")
        if "spread" in self.families and self.duration < SPREAD_MIN_DURATION_S:
            raise BenchmarkError(f"spread clips need at least {SPREAD_MIN_DURATION_S:g} s for two moments, "
                                 f"got --duration {self.duration}")
        if self.duration <= 1.0:
            raise BenchmarkError(f"clips must be longer than the peak second, got --duration {self.duration}")
        if self.epochs is not None and self.epochs < 1:
            raise BenchmarkError(f"epochs must be >= 1, got {self.epochs}")

    def recipe(self, extra: Sequence[str] = ()) -> dict[str, Any]:
        """The preprocessing recipe with ``overrides`` (``--set``) and then ``extra`` applied."""
        return load_config(self.preprocess_config, [*self.overrides, *extra])

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seed, self.seed + self.seeds))

    @property
    def mode_list(self) -> list[str]:
        """The selections in :data:`SELECTION_MODES` order, uniform and default always among them."""
        wanted = set(self.modes) | {"uniform", "default"}
        return [m for m in SELECTION_MODES if m in wanted]


@dataclass(frozen=True)
class Selection:
    """One selection of the ablation: a keyframe ``mode`` and (except for ``uniform``) an ``intensity``."""

    mode: str
    intensity: str | None

    @property
    def name(self) -> str:
        return self.mode if self.intensity is None else f"{self.mode}-{self.intensity}"


def selections(modes: Sequence[str], intensities: Sequence[str]) -> list[Selection]:
    """``uniform`` once, then every other mode of ``modes`` for each intensity."""
    out = [Selection("uniform", None)] if "uniform" in modes else []
    return out + [Selection(m, i) for i in intensities for m in modes if m != "uniform"]


def keyframe_stream() -> StreamSpec:
    """The stream whose input is the keyframes themselves (the one the ablation trains)."""
    found = [s for s in STREAM_SPECS.values() if s.stores_keyframes]
    if len(found) != 1:
        raise BenchmarkError(f"expected one stream that stores the keyframes, found {[s.name for s in found]}")
    return found[0]
