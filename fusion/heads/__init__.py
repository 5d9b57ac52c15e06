"""The fusion family: one table of heads, keyed by a recipe's ``model.name``.

Every head is a :class:`fusion.heads.base.FusionHead`: it maps the inputs of
:mod:`fusion.heads.inputs` (stream features, availability mask, stream probabilities) to logits
(B, C), has ``streams``, ``stream_dims`` and ``num_classes``, and is saved as a safetensors state
dict that its builder's head loads back. The neural heads share the base's missing-stream front
(:class:`~fusion.heads.inputs.MaskedStreams`: standardisation, modality dropout, learned defaults
for missing streams) and train with :func:`training.loop.fit`; the others (``gradient=False``)
are fitted in one pass by their ``fit_inputs`` method and written to a run directory of the same
layout by :func:`fusion.training.train_fusion_head`. ``docs/develop/extending_heads.md`` walks
through adding one.

    name              module                          what is fused
    concat_fc         fusion/heads/concat_fc.py       features, concatenated -> linear (the method)
    attention         fusion/heads/attention.py       features, weighted per clip by a scoring net
    gated             fusion/heads/gated.py           features, projected and sigmoid-gated per modality
    cross_attention   fusion/heads/cross_attention.py modality tokens through multi-head attention
    score_weighted    fusion/heads/score_weighted.py  the streams' probabilities, weighted average
    stacking          fusion/heads/stacking.py        features -> SVM + forest + boosting -> logistic
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from core.config import ConfigError, building_from, check_builder_section
from fusion.heads.attention import create_attention_fusion
from fusion.heads.base import FusionHead
from fusion.heads.concat_fc import create_concat_fc
from fusion.heads.cross_attention import create_cross_attention_fusion
from fusion.heads.gated import create_gated_fusion
from fusion.heads.score_weighted import create_score_weighted
from fusion.heads.stacking import create_stacking


@dataclass(frozen=True)
class FusionHeadKind:
    """One member of the family: its keyword-only builder ``create(*, stream_dims, num_classes,
    **model)`` (the recipe's ``model:`` section less ``name`` is ``model``), a title for tables,
    and whether it trains by gradient (:func:`training.loop.fit`) or is fitted in one pass
    (``head.fit_inputs``)."""

    create: Callable[..., FusionHead]
    title: str
    gradient: bool = True


FUSION_HEADS: dict[str, FusionHeadKind] = {
    "concat_fc": FusionHeadKind(create_concat_fc, "Concat-FC"),
    "attention": FusionHeadKind(create_attention_fusion, "Attention"),
    "gated": FusionHeadKind(create_gated_fusion, "Gated"),
    "cross_attention": FusionHeadKind(create_cross_attention_fusion, "Cross-attention"),
    "score_weighted": FusionHeadKind(create_score_weighted, "Score-weighted", gradient=False),
    "stacking": FusionHeadKind(create_stacking, "Stacking (SVM+RF+GB)", gradient=False),
}
#: the method's fusion, used when a recipe's ``model:`` names none
DEFAULT_HEAD = "concat_fc"


def head_name(model_cfg: Mapping[str, Any] | None) -> str:
    """The head a recipe's ``model:`` section names (``name``, default :data:`DEFAULT_HEAD`);
    :class:`ConfigError` for a name outside :data:`FUSION_HEADS`."""
    if model_cfg is not None and not isinstance(model_cfg, Mapping):
        raise ConfigError(f"model must be a mapping (name: and the head's arguments), got {model_cfg!r}")
    name = (model_cfg or {}).get("name", DEFAULT_HEAD)
    if name not in FUSION_HEADS:
        raise ConfigError(f"model.name: unknown fusion head {name!r}; choose from {', '.join(FUSION_HEADS)}")
    return name


def head_arguments(model_cfg: Mapping[str, Any] | None) -> dict[str, Any]:
    """The builder arguments of a ``model:`` section: every key but ``name``, checked against the
    builder's keyword arguments (:class:`ConfigError` for an unknown key)."""
    model_cfg = dict(model_cfg or {})
    create = FUSION_HEADS[head_name(model_cfg)].create
    model_cfg.pop("name", None)
    check_builder_section(create, model_cfg, "model", given=("stream_dims", "num_classes"))
    return model_cfg


def create_fusion_head(model_cfg: Mapping[str, Any] | None, *, stream_dims: Mapping[str, int],
                       num_classes: int) -> FusionHead:
    """The head of a recipe's ``model:`` section for streams of ``stream_dims`` {stream: D_s} and
    ``num_classes`` classes."""
    kind = FUSION_HEADS[head_name(model_cfg)]
    with building_from("model"):
        return kind.create(stream_dims=dict(stream_dims), num_classes=num_classes, **head_arguments(model_cfg))
