"""YAML recipes and command-line overrides.

A recipe is one YAML file. It may name at most one ``base:`` file (a path relative to itself)
whose keys it overrides; the base itself may not have a base (no deep inheritance). Overrides
from the command line use dotted keys, ``--set optim.lr=0.001 data.batch_size=8``, and the value
is parsed as YAML (so ``8`` is an int, ``[1, 2]`` a list, ``null`` None).
"""
from __future__ import annotations

import copy
import inspect
import os
import re
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import yaml


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads ``1e-3`` as a float (YAML 1.1 wants ``1.0e-3``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."),
)


def parse_yaml(text: str):
    """``yaml.safe_load`` with scientific notation (``1e-4``) read as floats."""
    return yaml.load(text, Loader=_Loader)


class ConfigError(ValueError):
    """A recipe file or override that cannot be used; the message names the file or key."""


def load_yaml(path: str | os.PathLike) -> dict:
    """Read one YAML mapping from ``path`` (no ``base:`` handling)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        with open(path, encoding="utf-8") as f:
            data = parse_yaml(f.read())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def merge(base: dict, override: dict) -> dict:
    """Recursively merge ``override`` into a copy of ``base`` (mappings merge, anything else
    replaces). A mapping that names a different ``name:`` (another optimizer or schedule type)
    replaces the base mapping instead of inheriting its now meaningless keys."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        switches_kind = (isinstance(value, dict) and isinstance(out.get(key), dict)
                         and "name" in value and value.get("name") != out[key].get("name"))
        if isinstance(value, dict) and isinstance(out.get(key), dict) and not switches_kind:
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_config(path: str | os.PathLike, overrides: Iterable[str] = ()) -> dict:
    """Load a recipe, apply its optional single ``base:`` and then ``key.sub=value`` overrides."""
    path = Path(path)
    cfg = load_yaml(path)
    base_name = cfg.pop("base", None)
    if base_name is not None:
        base_path = (path.parent / base_name).resolve()
        base = load_yaml(base_path)
        if "base" in base:
            raise ConfigError(f"{base_path}: a base file may not have a base of its own (one level only)")
        cfg = merge(base, cfg)
    for item in overrides:
        apply_override(cfg, item)
    return cfg


def apply_override(cfg: dict, item: str) -> None:
    """Apply one ``dotted.key=value`` override in place; the value is parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key.sub=value")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {item!r}: empty key part")
    try:
        value = parse_yaml(raw)
    except yaml.YAMLError as e:
        raise ConfigError(f"override {item!r}: value is not valid YAML: {e}") from None
    node = cfg
    for part in parts[:-1]:
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"override {item!r}: {part!r} is not a mapping in the config")
        node = child
    node[parts[-1]] = value


def check_keys(section: Mapping[str, Any], known: Iterable[str], where: str) -> None:
    """Raise :class:`ConfigError` when the recipe mapping ``section`` has a key outside ``known``
    (a misspelt key would otherwise be ignored, or fail deep inside as a TypeError); ``where``
    names the section in the message (``'model'``, ``'the stream recipe'``)."""
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {type(section).__name__} {section!r}")
    unknown = sorted(set(section) - set(known))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")


def builder_keys(builder: Callable[..., Any], *, given: Iterable[str] = ()) -> set[str]:
    """The keyword arguments a recipe section may give ``builder`` (a ``create_*`` function whose
    arguments are that section): its named parameters less ``given``, those the code passes itself
    (``num_classes``)."""
    params = inspect.signature(builder).parameters.values()
    named = {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    return named - set(given)


def get_path(cfg: dict, dotted: str, default: Any = None) -> Any:
    """Read ``cfg['a']['b']`` as ``get_path(cfg, 'a.b')``; ``default`` when absent."""
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node
