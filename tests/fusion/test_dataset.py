"""FeatureDataset: a feature split as a head's inputs, item by item or as one batch."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from fusion.dataset import FeatureDataset
from fusion.features import FeatureSet
from tests.conftest import load_helper

toy = load_helper(Path(__file__).with_name("toy_features.py"), "tests_fusion_toy_features")


def test_items_and_batch_hold_features_mask_and_probs_in_the_given_stream_order(tmp_path):
    feats = toy.write_feature_dir(tmp_path, toy.TOY_DIMS, missing={"audio": 0.3})
    fs = FeatureSet(feats, "val")
    order = ("face", "visual", "audio")
    ds = FeatureDataset(fs, order)
    x, label = ds[2]
    assert label == fs.labels[2]
    assert torch.equal(x["mask"], torch.tensor([float(fs.available[s][2]) for s in order]))
    assert torch.equal(x["probs"][0], torch.from_numpy(fs.probs["face"][2]))
    batch = ds.batch()
    collated = torch.utils.data.default_collate([ds[i][0] for i in range(len(ds))])
    assert batch.keys() == collated.keys()
    assert all(torch.equal(batch[k], collated[k]) for k in batch)


def test_batch_masks_are_copies(tmp_path):
    fs = FeatureSet(toy.write_feature_dir(tmp_path, toy.TOY_DIMS), "val")
    ds = FeatureDataset(fs, fs.streams)
    ds.batch()["mask"][:] = 0.0
    assert ds.batch()["mask"].sum() == sum(int(np.sum(fs.available[s])) for s in fs.streams)
