"""Mapping a dataset's classes onto a task's classes, from a recipe's ``labels:`` section.

    labels:
      map: {Happy: Positive, Surprise: Positive, Neutral: Neutral,
            Angry: Negative, Fear: Negative, Sad: Negative}
      drop: [Disgust]
      classes: [Positive, Neutral, Negative]     # optional: the task's class order

Every class of the dataset must be mapped (``map``) or dropped (``drop``, its items are left
out), so no class silently disappears or lands in the wrong target; a class that is neither is a
:class:`~core.config.ConfigError` naming it. ``classes`` fixes the order of the task's classes
(label ``i`` is ``classes[i]``); without it they come in the order they first appear in ``map``.
Class names are matched exactly, or else case-insensitively (``happy`` finds ``Happy``).

Used by the FER2013 face pretraining (:mod:`streams.face_pretraining`) and by the preprocessing
tools, where a ``labels:`` section of the preprocessing recipe relabels the dataset's clips
before they are cached (e.g. RAVDESS's eight emotions onto Positive / Neutral / Negative).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from core.config import ConfigError, check_settings, setting, settings_from_section
from media.layouts import ClipRecord

__all__ = ["LabelMap", "LabelsSettings", "create_label_map", "relabel_records"]


@dataclass(frozen=True)
class LabelMap:
    """``source_classes[i]`` becomes ``target_classes[targets[i]]``, or is dropped when
    ``targets[i]`` is None."""

    source_classes: tuple[str, ...]
    target_classes: tuple[str, ...]
    targets: tuple[int | None, ...]

    def map_label(self, label: int) -> int | None:
        """The task label of source label ``label`` (None: dropped)."""
        return self.targets[int(label)]

    def map_labels(self, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(keep, mapped)`` for source labels ``labels`` (N,) int: ``keep`` (N,) bool marks the
        items whose class is kept, ``mapped`` (keep.sum(),) int64 their task labels."""
        labels = np.asarray(labels, dtype=np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.source_classes)):
            raise ValueError(f"labels must be in 0..{len(self.source_classes) - 1}, got {labels.min()}..{labels.max()}")
        table = np.array([-1 if t is None else t for t in self.targets], np.int64)
        mapped = table[labels]
        keep = mapped >= 0
        return keep, mapped[keep]

    def describe(self) -> str:
        """One line: ``Happy, Surprise -> Positive; ...; dropped: Disgust``."""
        parts = []
        for t, name in enumerate(self.target_classes):
            sources = [s for s, target in zip(self.source_classes, self.targets) if target == t]
            parts.append(f"{', '.join(sources)} -> {name}")
        dropped = [s for s, target in zip(self.source_classes, self.targets) if target is None]
        return "; ".join(parts) + (f"; dropped: {', '.join(dropped)}" if dropped else "")


def _resolve(name: Any, source_classes: Sequence[str], where: str) -> int:
    text = str(name)
    if text in source_classes:
        return list(source_classes).index(text)
    folded = [i for i, c in enumerate(source_classes) if c.lower() == text.lower()]
    if len(folded) == 1:
        return folded[0]
    raise ConfigError(f"{where}: {text!r} is not a class of the dataset; its classes are "
                      f"{', '.join(source_classes)}")


@dataclass(frozen=True)
class LabelsSettings:
    """The ``labels:`` section (see the module docstring); what its mapping means is checked
    against the dataset's classes by :func:`create_label_map`."""

    map: Mapping[str, str] | None = setting(None, help=(
        "dataset class -> task class; every class of the dataset is mapped or dropped"))
    drop: Sequence[str] | None = setting(None, help="the dataset's classes left out (their items too)")
    classes: Sequence[str] | None = setting(None, help=(
        "the task's class order (label i is classes[i]); null: the order they first appear in map"))

    def __post_init__(self) -> None:
        check_settings(self, "labels")


def create_label_map(section: Mapping[str, Any] | None, source_classes: Sequence[str], *,
                     where: str = "labels") -> LabelMap | None:
    """The :class:`LabelMap` of a ``labels:`` section for a dataset with ``source_classes``;
    None when ``section`` is None (the dataset's own classes are used).

    Raises :class:`~core.config.ConfigError` (``where`` names the section) for an unknown
    key, a class of the dataset that is neither mapped nor dropped (named), a name that is not a
    class of the dataset, a class both mapped and dropped or mapped twice, a target missing from
    ``classes`` or a ``classes`` entry that no class maps to, and a map that keeps no class."""
    if section is None:
        return None
    settings = settings_from_section(LabelsSettings, section, where)
    source_classes = tuple(str(c) for c in source_classes)
    targets, target_names = _mapped_targets(settings.map or {}, source_classes, where)
    _drop_classes(settings.drop or [], targets, source_classes, where)
    unmapped = [c for c, t in zip(source_classes, targets) if t == _UNSET]
    if unmapped:
        raise ConfigError(f"{where}: the dataset's class(es) {', '.join(repr(c) for c in unmapped)} are neither "
                          "mapped nor dropped; add them to map (class: target) or to drop")
    if not target_names:
        raise ConfigError(f"{where}: every class is dropped; map at least one")
    if settings.classes is not None:
        targets, target_names = _reordered(settings.classes, targets, target_names, where)
    return LabelMap(source_classes, tuple(target_names), tuple(targets))  # type: ignore[arg-type]


_UNSET = "unset"


def _mapped_targets(mapping: Any, source_classes: tuple[str, ...], where: str) -> tuple[list, list[str]]:
    """``(targets, target_names)`` of ``map``: per source class the index of its target name in
    ``target_names`` (first-appearance order), or :data:`_UNSET`."""
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"{where}.map must be a mapping from the dataset's classes to the task's, got {mapping!r}")
    targets: list[int | None | str] = [_UNSET] * len(source_classes)
    target_names: list[str] = []
    for source, target in mapping.items():
        i = _resolve(source, source_classes, f"{where}.map")
        if targets[i] != _UNSET:
            raise ConfigError(f"{where}.map: the class {source_classes[i]!r} is mapped twice")
        if not isinstance(target, str) or not target:
            raise ConfigError(f"{where}.map: {source_classes[i]!r} must map to a class name, got {target!r}")
        if target not in target_names:
            target_names.append(target)
        targets[i] = target_names.index(target)
    return targets, target_names


def _drop_classes(drop: Any, targets: list, source_classes: tuple[str, ...], where: str) -> None:
    """Mark the classes of ``drop`` as dropped (None) in ``targets``, in place."""
    if isinstance(drop, (str, bytes)) or not isinstance(drop, Iterable):
        raise ConfigError(f"{where}.drop must be a list of the dataset's classes, got {drop!r}")
    for source in drop:
        i = _resolve(source, source_classes, f"{where}.drop")
        if targets[i] is None:
            raise ConfigError(f"{where}.drop: the class {source_classes[i]!r} is listed twice")
        if targets[i] != _UNSET:
            raise ConfigError(f"{where}: the class {source_classes[i]!r} is in map and in drop; choose one")
        targets[i] = None


def _reordered(classes: Sequence[Any], targets: list, target_names: list[str],
               where: str) -> tuple[list, list[str]]:
    """``targets`` and ``target_names`` in the order of ``classes``, which must list exactly the
    targets of the map."""
    order = [str(c) for c in classes]
    if len(set(order)) != len(order):
        raise ConfigError(f"{where}.classes lists a class twice: {order}")
    absent = [t for t in target_names if t not in order]
    unused = [c for c in order if c not in target_names]
    if absent or unused:
        raise ConfigError(f"{where}.classes {order} must list exactly the targets of map {target_names}"
                          + (f"; missing {absent}" if absent else "")
                          + (f"; no class maps to {unused}" if unused else ""))
    remap = [order.index(name) for name in target_names]
    return [None if t is None else remap[t] for t in targets], order


def relabel_records(records: Sequence[ClipRecord], section: Mapping[str, Any] | None, *,
                    where: str = "labels") -> list[ClipRecord]:
    """The dataset's records with the ``labels:`` section applied: class names and labels of the
    task, dropped classes left out; unlabelled records (a test split) keep label None and get the
    task's class names. ``records`` unchanged when ``section`` is None. All labelled records must
    share one set of class names (one dataset)."""
    records = list(records)
    if section is None:
        return records
    names = {r.class_names for r in records if r.class_names}
    if len(names) != 1:
        raise ConfigError(f"{where}: the records must come from one labelled dataset to map its classes, "
                          f"found class sets {sorted(names)}")
    label_map = create_label_map(section, next(iter(names)), where=where)
    out = []
    for r in records:
        if r.label is None:
            out.append(replace(r, class_names=label_map.target_classes))
            continue
        target = label_map.map_label(r.label)
        if target is not None:
            out.append(replace(r, label=target, class_names=label_map.target_classes))
    return out
