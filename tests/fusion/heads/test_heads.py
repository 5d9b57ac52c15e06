"""The fusion family's table: one recipe per head, each builds from its config, names and keys
are checked."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from core.config import ConfigError, load_config
from fusion.heads import DEFAULT_HEAD, FUSION_HEADS, create_fusion_head, head_arguments, head_name

ROOT = Path(__file__).resolve().parents[3]
DIMS = {"visual": 8, "audio": 6}


def test_every_head_has_its_recipe_and_every_recipe_a_head():
    recipes = {p.stem for p in (ROOT / "configs" / "fusion").glob("*.yaml")}
    assert recipes == set(FUSION_HEADS)
    for name in FUSION_HEADS:
        assert load_config(ROOT / "configs" / "fusion" / f"{name}.yaml")["model"]["name"] == name


@pytest.mark.parametrize("name", list(FUSION_HEADS))
def test_each_recipe_builds_its_head_with_the_table_s_interface(name):
    model = load_config(ROOT / "configs" / "fusion" / f"{name}.yaml")["model"]
    head = create_fusion_head(model, stream_dims=DIMS, num_classes=3)
    assert head.streams == tuple(DIMS) and head.stream_dims == DIMS and head.num_classes == 3
    assert FUSION_HEADS[name].gradient == any(p.requires_grad for p in head.parameters())
    again = create_fusion_head(model, stream_dims=DIMS, num_classes=3)
    again.load_state_dict(head.state_dict())  # a fresh head of the recipe takes the saved weights
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), head.state_dict().values()))


def test_concat_fc_is_the_default():
    assert DEFAULT_HEAD == "concat_fc" and head_name({"dropout": 0.5}) == "concat_fc" and head_name(None) == "concat_fc"


def test_unknown_head_and_unknown_keys_are_config_errors():
    with pytest.raises(ConfigError, match="unknown fusion head 'lstm'"):
        head_name({"name": "lstm"})
    with pytest.raises(ConfigError, match="hidden_dim"):
        head_arguments({"name": "concat_fc", "hidden_dim": 8})  # a key Concat-FC does not take
    assert head_arguments({"name": "concat_fc", "dropout": 0.1}) == {"dropout": 0.1}
