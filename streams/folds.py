"""Which train clips a stream fits: seeded, stratified parts of the train split, so that fusion can
train on features of clips the streams never saw (docs/concepts/leakage.md).

A stream recipe's optional ``exclude:`` section holds part of the train split back:

* ``{fraction: 0.25, seed: 0}``: the holdout part, that fraction of each class;
* ``{folds: 3, fold: 1, seed: 0}``: fold 1 of a 3-fold partition (cross-fitting).

Membership depends only on the seed and on the ids and labels of the labelled train clips. Each
clip's position is the SHA-256 of ``"<seed>:<clip_id>"``; within each class the clips are ranked
by it; the holdout part is the first ``round(fraction * n_class)`` of each class, and fold ``k`` the
clips whose rank in their class is ``k`` modulo ``folds``. Stratifying keeps each part's class mix
equal to the split's (a plain hash threshold gives parts whose size and mix vary by chance, which
matters at demo size: 30 held-back clips). The partition is made over ALL labelled train clips of
the cache, not over the clips where a stream's modality is available, so every stream holds back
the same clips.

A stream run records which clips it fitted in ``RUN/train_clips.json`` (:class:`TrainClips`).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from core.config import ConfigError, check_settings, setting, settings_from_section
from core.storage import atomic_write_json, read_json

TRAIN_CLIPS_FILE = "train_clips.json"


#: the values a holdout fraction and a fold count accept, in the ``exclude:`` section and in the
#: features recipe that names them (:mod:`fusion.features`)
FRACTION_LIMITS: dict[str, float] = {"above": 0, "below": 1}
FOLDS_LIMITS: dict[str, int] = {"minimum": 2}


@dataclass(frozen=True)
class ExcludeSettings:
    """The ``exclude:`` section of a stream recipe: the train clips held back for fusion, either
    the holdout part (``fraction``) or fold ``fold`` of ``folds`` (cross-fitting), under ``seed``."""

    seed: int = setting(0, help="seeds the clips' order (the same seed holds back the same clips)")
    fraction: float | None = setting(None, **FRACTION_LIMITS, help=(
        "holdout: this fraction of each class is held back; not with folds and fold"))
    folds: int | None = setting(None, **FOLDS_LIMITS, help="cross-fitting: the number of folds (with fold)")
    fold: int | None = setting(None, minimum=0, help="cross-fitting: the fold held back, 0 <= fold < folds")

    def __post_init__(self) -> None:
        check_settings(self, "exclude")
        if self.fraction is not None:
            if self.folds is not None or self.fold is not None:
                raise ConfigError(
                    "'exclude' takes either fraction (holdout) or folds and fold (cross-fitting), not both")
        elif self.folds is None or self.fold is None:
            raise ConfigError(f"'exclude' needs fraction, or folds and fold; got {self.to_config()}")
        elif self.fold >= self.folds:
            raise ConfigError(f"exclude.fold must be < folds ({self.folds}), got {self.fold}")

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> "ExcludeSettings | None":
        """``None`` for an absent or empty section (the stream fits every train clip); a
        :class:`ConfigError` names a bad key or value."""
        if not section:
            return None
        if not isinstance(section, Mapping):
            raise ConfigError(f"'exclude' must be a mapping such as {{fraction: 0.25}} or {{folds: 3, fold: 0}}, "
                              f"got {section!r}")
        return settings_from_section(cls, section, "exclude")

    def to_config(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def describe(self) -> str:
        if self.fraction is not None:
            return f"holdout {self.fraction:g} (seed {self.seed})"
        return f"fold {self.fold} of {self.folds} (seed {self.seed})"


def clip_position(clip_id: str, seed: int) -> int:
    """The clip's place in the seeded order: SHA-256 of ``"<seed>:<clip_id>"`` as an integer (the
    same on every machine and Python run, unlike ``hash()``)."""
    return int.from_bytes(hashlib.sha256(f"{int(seed)}:{clip_id}".encode("utf-8")).digest()[:8], "big")


def ranked_by_class(labels: Mapping[str, int], seed: int) -> dict[int, list[str]]:
    """``{label: clip ids of that class in seeded order}`` for ``labels`` (clip id -> label)."""
    out: dict[int, list[str]] = {}
    for clip_id in sorted(labels, key=lambda c: (clip_position(c, seed), c)):
        out.setdefault(int(labels[clip_id]), []).append(clip_id)
    return out


def fold_assignment(labels: Mapping[str, int], folds: int, seed: int) -> dict[str, int]:
    """``{clip id: fold}`` of a stratified ``folds``-fold partition (see the module docstring)."""
    return {c: rank % folds for ranked in ranked_by_class(labels, seed).values() for rank, c in enumerate(ranked)}


def holdout_clips(labels: Mapping[str, int], fraction: float, seed: int) -> set[str]:
    """The holdout part: the first ``round(fraction * n)`` clips of each class in seeded order."""
    return {c for ranked in ranked_by_class(labels, seed).values() for c in ranked[:int(round(fraction * len(ranked)))]}


def excluded_clips(labels: Mapping[str, int], settings: ExcludeSettings | None) -> set[str]:
    """The clips of ``labels`` (clip id -> label, the labelled train split) that ``settings`` holds
    back from the stream (none for ``None``)."""
    if settings is None:
        return set()
    if settings.fraction is not None:
        return holdout_clips(labels, settings.fraction, settings.seed)
    assignment = fold_assignment(labels, int(settings.folds), settings.seed)
    return {c for c, f in assignment.items() if f == settings.fold}


@dataclass
class TrainClips:
    """What a stream run fitted: ``trained_on`` (the clips of ``split`` its training set held,
    i.e. the labelled ones with the modality, minus the held-out part), ``held_out`` (the labelled
    clips of ``split`` its ``exclude`` settings held back) and those settings (``None``: none)."""

    split: str
    trained_on: list[str]
    held_out: list[str]
    exclude: dict | None = None

    def to_json(self) -> dict:
        return {"split": self.split, "exclude": self.exclude, "trained_on": sorted(self.trained_on),
                "held_out": sorted(self.held_out)}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> "TrainClips":
        return cls(split=str(obj["split"]), trained_on=list(obj["trained_on"]), held_out=list(obj["held_out"]),
                   exclude=obj.get("exclude"))


def run_directory(run: str | os.PathLike) -> Path:
    """The run directory of ``run`` (a run directory, or one of its checkpoint directories)."""
    run = Path(run)
    if not (run / "config.yaml").exists() and (run.parent / "config.yaml").exists():
        return run.parent
    return run


def read_train_clips(run: str | os.PathLike) -> TrainClips | None:
    """The record of a stream run (or of one of its checkpoints); ``None`` for a run made before
    runs recorded their clips (it fitted every labelled train clip with its modality)."""
    obj = read_json(run_directory(run) / TRAIN_CLIPS_FILE)
    return None if obj is None else TrainClips.from_json(obj)


def record_train_clips(out_dir: str | os.PathLike, record: TrainClips, *, fresh: bool = False) -> None:
    """Write ``OUT/train_clips.json`` for a run about to be trained. A run directory that was
    started on other clips (the cache changed since) is refused unless ``fresh``; one started
    before runs recorded their clips is left without a record rather than given a guessed one."""
    out_dir = Path(out_dir)
    path = out_dir / TRAIN_CLIPS_FILE
    started = (out_dir / "config.yaml").exists()
    if started and not fresh:
        old = read_json(path)
        if old is None:
            return
        if TrainClips.from_json(old).to_json() != record.to_json():
            raise ConfigError(f"{path}: this run was trained on other clips than the cache now gives "
                              f"({len(old['trained_on'])} recorded, {len(record.trained_on)} now); "
                              "re-run with --fresh or choose a new out dir")
        return
    atomic_write_json(path, record.to_json())


def labelled_ids(entries: Iterable[Any]) -> dict[str, int]:
    """``{clip id: label}`` of the labelled entries (anything with ``clip_id`` and ``label``)."""
    return {e.clip_id: int(e.label) for e in entries if e.label is not None}
