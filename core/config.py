"""YAML recipes and command-line overrides.

A recipe is one YAML file. It may name at most one ``base:`` file (a path relative to itself)
whose keys it overrides; the base itself may not have a base (no deep inheritance). Overrides
from the command line use dotted keys, ``--set optim.lr=0.001 data.batch_size=8``, and the value
is parsed as YAML (so ``8`` is an int, ``[1, 2]`` a list, ``null`` None).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import inspect
import math
import os
import re
import typing
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, TypeVar

import yaml

from core.errors import UserInputError


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


class ConfigError(UserInputError, ValueError):
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


@contextlib.contextmanager
def building_from(section: str) -> Iterator[None]:
    """Inside, a ``ValueError``, ``TypeError`` or ``RuntimeError`` raised by a ``create_*`` builder
    called with a recipe section's values (``model.depth: 7``, ``model.dropout: 2``, a string where
    a size goes) becomes a :class:`ConfigError` prefixed with ``section``: the builders check their
    arguments, so there such an error is the recipe's. The project's typed errors (a weights file
    that is missing or does not fit) pass unchanged; the original stays chained (``--debug``)."""
    try:
        yield
    except (ValueError, TypeError, RuntimeError) as e:
        if type(e) not in (ValueError, TypeError, RuntimeError):
            raise
        raise ConfigError(f"{section}: {e}") from e


def check_widths(**widths: Any) -> None:
    """A ``create_*`` builder's check of its layer widths (channels, hidden units): each must be an
    integer >= 1, else ``ValueError`` naming it (:func:`building_from` makes that the recipe's
    error). A width of 0 builds a network that fails in its first forward pass, or trains to
    chance."""
    for name, value in widths.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")


def get_path(cfg: dict, dotted: str, default: Any = None) -> Any:
    """Read ``cfg['a']['b']`` as ``get_path(cfg, 'a.b')``; ``default`` when absent."""
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


# -- settings sections: a recipe section as a frozen dataclass, checked when it is read ----------

_SettingsT = TypeVar("_SettingsT")


def setting(default: Any, *, minimum: float | None = None, above: float | None = None,
            maximum: float | None = None, choices: Iterable[Any] | None = None) -> Any:
    """A field of a settings dataclass (:func:`check_settings`) with its default and the values it
    accepts: ``minimum``/``maximum`` (inclusive), ``above`` (exclusive), ``choices``."""
    limits = {"minimum": minimum, "above": above, "maximum": maximum,
              "choices": None if choices is None else tuple(choices)}
    return dataclasses.field(default=default, metadata={k: v for k, v in limits.items() if v is not None})


def _as_type(value: Any, kind: Any) -> Any:
    """``value`` as the field type ``kind`` (int, float, str, bool, or one of them ``| None``);
    raises ``TypeError`` with what was expected when it is not one. Other types (a union of
    several) are left to the settings class to check."""
    if value is None and type(None) in typing.get_args(kind):
        return None
    kinds = [k for k in typing.get_args(kind) if k is not type(None)] or [kind]
    if len(kinds) > 1:
        return value
    kind = kinds[0]
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise TypeError("true or false")
    if kind is int:  # YAML gives 8 or 8.0; "8", 8.5 and true are mistakes
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise TypeError("an integer")
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
        raise TypeError("a finite number")
    if kind is str:
        if isinstance(value, str):
            return value
        raise TypeError("a string")
    return value


def check_settings(settings: Any, where: str) -> None:
    """Convert each field of the frozen settings dataclass ``settings`` to its annotated type and
    check it against its :func:`setting` limits; call it from ``__post_init__``. Raises
    :class:`ConfigError` naming ``where.field`` (``where``: the recipe section, e.g. ``faces``),
    the accepted values and the value given."""
    hints = typing.get_type_hints(type(settings))
    for f in dataclasses.fields(settings):
        value, name = getattr(settings, f.name), f"{where}.{f.name}"
        try:
            value = _as_type(value, hints[f.name])
        except TypeError as e:
            raise ConfigError(f"{name} must be {e}, got {value!r}") from None
        object.__setattr__(settings, f.name, value)
        if value is None:
            continue
        limits = f.metadata
        if "choices" in limits and value not in limits["choices"]:
            raise ConfigError(f"{name} must be one of {list(limits['choices'])}, got {value!r}")
        if "minimum" in limits and value < limits["minimum"]:
            raise ConfigError(f"{name} must be >= {limits['minimum']}, got {value!r}")
        if "above" in limits and value <= limits["above"]:
            raise ConfigError(f"{name} must be > {limits['above']}, got {value!r}")
        if "maximum" in limits and value > limits["maximum"]:
            raise ConfigError(f"{name} must be <= {limits['maximum']}, got {value!r}")


def settings_from_section(cls: type[_SettingsT], section: Mapping[str, Any] | None, where: str, *,
                          ignore: Iterable[str] = ()) -> _SettingsT:
    """The settings dataclass ``cls`` from the recipe mapping ``section`` (``None``: all defaults):
    a key that is not one of its fields (nor in ``ignore``, keys another reader owns) is a
    :class:`ConfigError` naming ``where``, as is a value ``cls`` rejects (:func:`check_settings`)."""
    section = {} if section is None else section
    names = [f.name for f in dataclasses.fields(cls)]
    check_keys(section, [*names, *ignore], where)
    return cls(**{k: v for k, v in section.items() if k in names})
