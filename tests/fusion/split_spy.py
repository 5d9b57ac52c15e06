"""A recorder of which split the training and selection code reads, for the tests that the test
split never reaches model selection.

Installed with a ``pytest.MonkeyPatch``, it records in order:

* ``read`` events: every :class:`fusion.features.FeatureSet` opened (``"features"``, its split)
  and every cache split a stream's datasets are built from (``"cache"``, via
  ``streams.data.load_entries``);
* ``select`` events: every call that chooses something from data (the training loop's ``fit``
  for streams and fusion heads, the one-pass fusion fits, the late-fusion weight search), with
  the splits of the data it was handed: a dataset's clips' splits, a FeatureSet's split, or for
  the weight search the split whose labelled clips its labels are;

and whether a read happened inside a selection call.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Event:
    kind: str            # "read" | "select"
    what: str            # "features", "cache" | "stream fit", "fusion fit", "one-pass fit", "weight search"
    splits: frozenset    # the splits read, or the splits of the data handed to the selection
    inside_selection: bool = False


class SplitSpy:
    def __init__(self) -> None:
        self.events: list[Event] = []
        self._depth = 0
        self._feature_sets: list = []  # every FeatureSet opened, to tell which split an array came from

    # ------------------------------------------------------------------------------ installation
    def install(self, mp) -> "SplitSpy":
        import fusion.evaluation
        import fusion.features
        import fusion.heads.score_weighted
        import fusion.training
        import streams.data
        import streams.training

        spy = self
        original_init = fusion.features.FeatureSet.__init__

        def feature_set_init(fs, feats_dir, split, streams=None):
            spy._read("features", split)
            original_init(fs, feats_dir, split, streams)
            spy._feature_sets.append(fs)

        mp.setattr(fusion.features.FeatureSet, "__init__", feature_set_init)

        original_load = streams.data.load_entries

        def load_entries(cache_root, *, split=None, **kwargs):
            spy._read("cache", split)
            return original_load(cache_root, split=split, **kwargs)

        mp.setattr(streams.data, "load_entries", load_entries)
        mp.setattr(streams.training, "load_entries", load_entries)  # the held-back clips, the temperature fit

        def entries_splits(kw):  # a stream's datasets: the splits of their cache entries
            datasets = (kw["train_dataset"], kw["val_dataset"])
            return frozenset((e.split or "").lower() for d in datasets if d is not None for e in d.entries)

        def feature_splits(kw):  # a fusion head's datasets: their FeatureSets' splits
            return frozenset(d.fs.split for d in (kw["train_dataset"], kw["val_dataset"]) if d is not None)

        mp.setattr(streams.training, "fit", self._selection("stream fit", streams.training.fit, entries_splits))
        mp.setattr(fusion.training, "fit", self._selection("fusion fit", fusion.training.fit, feature_splits))
        original_one_pass = fusion.training._fit_in_one_pass

        def one_pass(head, train_fs, val_fs, *args, **kwargs):
            splits = frozenset(fs.split for fs in (train_fs, val_fs) if fs is not None)
            return spy._call("one-pass fit", splits, original_one_pass, head, train_fs, val_fs, *args, **kwargs)

        mp.setattr(fusion.training, "_fit_in_one_pass", one_pass)
        for module in (fusion.evaluation, fusion.heads.score_weighted):
            original_search = module.search_weights

            def search(probs, available, labels, *args, _original=original_search, **kwargs):
                return spy._call("weight search", spy._splits_of_labels(labels), _original, probs, available, labels,
                                 *args, **kwargs)

            mp.setattr(module, "search_weights", search)
        return self

    # ------------------------------------------------------------------------------ recording
    def _read(self, what: str, split) -> None:
        self.events.append(Event("read", what, frozenset([str(split).lower()]), self._depth > 0))

    def _call(self, what: str, splits: frozenset, fn, *args, **kwargs):
        self.events.append(Event("select", what, splits))
        self._depth += 1
        try:
            return fn(*args, **kwargs)
        finally:
            self._depth -= 1

    def _selection(self, what: str, fn, splits_of):
        def wrapped(**kwargs):
            return self._call(what, splits_of(kwargs), fn, **kwargs)
        return wrapped

    def _splits_of_labels(self, labels) -> frozenset:
        """The splits of the opened FeatureSets whose labelled clips' labels are ``labels``."""
        labels = np.asarray(labels)
        return frozenset(fs.split for fs in self._feature_sets
                         if np.array_equal(fs.labels[fs.labels >= 0], labels))

    # ------------------------------------------------------------------------------ questions
    def selections(self) -> list[Event]:
        return [e for e in self.events if e.kind == "select"]

    def test_reads(self) -> list[int]:
        """Indexes of the events that read a test split."""
        return [i for i, e in enumerate(self.events) if e.kind == "read" and "test" in e.splits]

    def leaks(self) -> list[Event]:
        """Selection calls handed test data, and test reads made inside a selection call."""
        return [e for e in self.events if ("test" in e.splits and e.kind == "select")
                or (e.kind == "read" and e.inside_selection and "test" in e.splits)]

    def selections_after_the_first_test_read(self) -> list[Event]:
        reads = self.test_reads()
        return [] if not reads else [e for e in self.events[reads[0]:] if e.kind == "select"]
