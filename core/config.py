"""YAML recipes and command-line overrides.

A recipe is one YAML file. It may name at most one ``base:`` file (a path relative to itself)
whose keys it overrides; the base itself may not have a base (no deep inheritance). Overrides
from the command line use dotted keys, ``--set optim.lr=0.001 data.batch_size=8``, and the value
is parsed as YAML (so ``8`` is an int, ``[1, 2]`` a list, ``null`` None).
"""
from __future__ import annotations

import collections.abc
import contextlib
import copy
import dataclasses
import functools
import inspect
import math
import os
import re
import types
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
#
# Every section of a recipe (train:, its optimizer: and schedule:, model:, data:, labels: and the
# preprocessing sections) is a frozen dataclass whose fields are made by :func:`setting`: the
# field's default, the values it accepts and its help text are written once, there. The dataclass
# checks itself (``__post_init__`` calls :func:`check_settings`), :func:`settings_from_section`
# reads it from a recipe mapping, and docs/reference/config.md is rendered from the same fields
# (:mod:`core.config_reference`).

_SettingsT = TypeVar("_SettingsT")


def setting(default: Any, *, minimum: float | None = None, above: float | None = None,
            maximum: float | None = None, below: float | None = None, choices: Iterable[Any] | None = None,
            kinds: Mapping[str, type] | None = None, accepts: str = "", help: str = "") -> Any:
    """A field of a settings dataclass (:func:`check_settings`) with its default and the values it
    accepts: ``minimum``/``maximum`` (inclusive), ``above``/``below`` (exclusive), ``choices``;
    ``kinds`` (name -> settings dataclass): the value is a mapping naming one of them (``name:``),
    or that name alone, read into that dataclass (e.g. ``train.optimizer``); the default is then
    an instance of one of them. ``accepts``: what the field accepts, in words, where its type and
    limits do not say it (a union the settings class checks itself). ``help``: one line for the
    reference page."""
    limits = {"minimum": minimum, "above": above, "maximum": maximum, "below": below,
              "choices": None if choices is None else tuple(choices),
              "kinds": None if kinds is None else dict(kinds), "accepts": accepts or None, "help": help or None}
    return dataclasses.field(default=default, metadata={k: v for k, v in limits.items() if v is not None})


def _kinds_of(kind: Any) -> list[Any]:
    """The non-None members of a field type (``int | None`` -> [int]; ``int`` -> [int])."""
    return [k for k in typing.get_args(kind) if k is not type(None)] if typing.get_origin(kind) in (
        typing.Union, types.UnionType) else [kind]


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _as_type(value: Any, kind: Any) -> Any:
    """``value`` as the field type ``kind`` (int, float, str, bool, ``int | float``: a number kept
    as given, or one of them ``| None``); raises ``TypeError`` when it is not one. Other types (a
    mapping, a union of others) are left to the settings class to check."""
    if value is None and type(None) in typing.get_args(kind):
        return None
    kinds = _kinds_of(kind)
    if set(kinds) == {int, float}:
        if _is_number(value):
            return value
        raise TypeError
    if len(kinds) > 1:
        return value
    kind = kinds[0]
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise TypeError
    if kind is int:  # YAML gives 8 or 8.0; "8", 8.5 and true are mistakes
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        raise TypeError
    if kind is float:
        if _is_number(value):
            return float(value)
        raise TypeError
    if kind is str and not isinstance(value, str):
        raise TypeError
    return value


_TYPE_WORDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def describe_field(f: dataclasses.Field, kind: Any) -> str:
    """What the settings field ``f`` of type ``kind`` accepts, in words (``an integer >= 1``,
    ``a positive number``, ``one of ['dis', 'tvl1']``, ``... or null``): the phrase of its
    ConfigError and of the reference page."""
    meta, kinds = f.metadata, _kinds_of(kind)
    if "accepts" in meta:
        return meta["accepts"]
    if "kinds" in meta:
        return f"a mapping with name: one of {sorted(meta['kinds'])} (or the name alone)"
    if "choices" in meta:
        text = f"one of {list(meta['choices'])}"
    elif set(kinds) == {int, float}:
        text = _with_limits("a number", meta)
    else:
        text = _with_limits(" or ".join(dict.fromkeys(_type_words(k) for k in kinds)), meta)
    return text + (" or null" if type(None) in typing.get_args(kind) else "")


def _type_words(kind: Any) -> str:
    if kind in _TYPE_WORDS:
        return _TYPE_WORDS[kind]
    origin = typing.get_origin(kind) or kind
    for words, bases in (("a list", (list, tuple, collections.abc.Sequence)), ("a mapping", (dict, Mapping)),
                         ("a callable", (collections.abc.Callable,)), ("a path", (os.PathLike,))):
        if isinstance(origin, type) and issubclass(origin, bases):
            return words
    return "any value" if kind is Any else getattr(kind, "__name__", str(kind))


def _with_limits(text: str, meta: Mapping[str, Any]) -> str:
    low = (f"[{meta['minimum']}" if "minimum" in meta else f"({meta['above']}" if "above" in meta else None)
    high = (f"{meta['maximum']}]" if "maximum" in meta else f"{meta['below']})" if "below" in meta else None)
    if low and high:
        return f"{text} in {low}, {high}"
    if meta.get("above") == 0 and not high and text == "a number":
        return "a positive number"
    bounds = [f"{op} {meta[key]}" for key, op in (("minimum", ">="), ("above", ">"), ("maximum", "<="),
                                                  ("below", "<")) if key in meta]
    return " ".join([text, *bounds])


def _check_limits(value: Any, limits: Mapping[str, Any], name: str) -> None:
    if "choices" in limits and value not in limits["choices"]:
        raise ConfigError(f"{name} must be one of {list(limits['choices'])}, got {value!r}")
    for key, fails, op in (("minimum", lambda v, m: v < m, ">="), ("above", lambda v, m: v <= m, ">"),
                           ("maximum", lambda v, m: v > m, "<="), ("below", lambda v, m: v >= m, "<")):
        if key in limits and fails(value, limits[key]):
            raise ConfigError(f"{name} must be {op} {limits[key]}, got {value!r}")


def check_settings(settings: Any, where: str) -> None:
    """Convert each field of the frozen settings dataclass ``settings`` to its annotated type and
    check it against its :func:`setting` limits; call it from ``__post_init__``. Raises
    :class:`ConfigError` naming ``where.field`` (``where``: the recipe section, e.g. ``faces``),
    the accepted values and the value given."""
    hints = typing.get_type_hints(type(settings))
    for f in dataclasses.fields(settings):
        value, name = getattr(settings, f.name), f"{where}.{f.name}"
        if "kinds" in f.metadata:
            object.__setattr__(settings, f.name, settings_of_kind(f.metadata["kinds"], value, name))
            continue
        if value is None and f.metadata.get("required"):
            raise ConfigError(f"{name} is required: {describe_field(f, hints[f.name])}")
        try:
            value = _as_type(value, hints[f.name])
        except TypeError:
            raise ConfigError(f"{name} must be {describe_field(f, hints[f.name])}, got {value!r}") from None
        object.__setattr__(settings, f.name, value)
        if value is not None:
            _check_limits(value, f.metadata, name)


def settings_of_kind(kinds: Mapping[str, type], value: Any, where: str) -> Any:
    """The settings of a section that names its kind (``{name: adamw, lr: 0.001}`` or ``adamw``):
    an instance of ``kinds[name]`` read from the rest of the mapping (an instance of one of the
    kinds is kept). :class:`ConfigError` for a missing or unknown name, as for its keys."""
    if isinstance(value, tuple(kinds.values())):
        return value
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, Mapping) or "name" not in value:
        raise ConfigError(f"{where} must be a mapping with a 'name' (one of {sorted(kinds)}), got {value!r}")
    if value["name"] not in kinds:
        raise ConfigError(f"{where}.name must be one of {sorted(kinds)}, got {value['name']!r}")
    return settings_from_section(kinds[value["name"]], value, where)


def settings_from_section(cls: type[_SettingsT], section: Mapping[str, Any] | None, where: str, *,
                          ignore: Iterable[str] = ()) -> _SettingsT:
    """The settings dataclass ``cls`` from the recipe mapping ``section`` (``None``: all defaults):
    a key that is not one of its fields (nor in ``ignore``, keys another reader owns) is a
    :class:`ConfigError` naming ``where``, as is a value ``cls`` rejects (:func:`check_settings`)."""
    section = {} if section is None else section
    names = [f.name for f in dataclasses.fields(cls)]
    check_keys(section, [*names, *ignore], where)
    return cls(**{k: v for k, v in section.items() if k in names})


def settings_dict(settings: Any) -> dict:
    """A settings dataclass as the plain mapping the code consumes (nested settings as mappings,
    lists and tuples copied)."""
    return dataclasses.asdict(settings)


# -- model: sections: the builder's keyword arguments, as a generated settings dataclass ---------

@functools.lru_cache(maxsize=None)
def builder_settings(builder: Callable[..., Any], given: tuple[str, ...] = ()) -> type:
    """The settings dataclass of a ``model:`` section whose keys are the keyword arguments of the
    ``create_*`` ``builder`` (less ``given``, those the code passes itself, e.g. ``num_classes``):
    the builder's signature is the one place their defaults are written; the field types come from
    its annotations and the help from its docstring's ``Args:``. A key that is not an argument, or
    a value of the wrong type, is the same :class:`ConfigError` as in any other section; the
    builder checks the values themselves (:func:`building_from`)."""
    func = builder.func if isinstance(builder, functools.partial) else builder
    # a class (a head whose class is its builder) keeps its arguments' annotations on __init__
    annotated = func.__init__ if inspect.isclass(func) else func
    try:
        hints = typing.get_type_hints(annotated)
    except Exception:  # noqa: BLE001 - an annotation that cannot be resolved: leave that field unchecked
        hints = {}
    helps = _argument_help(inspect.getdoc(func) or "") or _argument_help(inspect.getdoc(annotated) or "")
    fields = []
    for p in inspect.signature(builder).parameters.values():
        if p.kind not in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) or p.name in given:
            continue
        default = None if p.default is p.empty else p.default
        kind = hints.get(p.name, Any)
        meta: dict[str, Any] = {"help": helps[p.name]} if p.name in helps else {}
        if p.default is p.empty:  # the builder refuses the section without it (building_from)
            meta["required"] = True
        field = dataclasses.field(default=default, metadata=meta)
        if not _hashable(default):
            field = dataclasses.field(default_factory=lambda d=default: copy.deepcopy(d), metadata=field.metadata)
        fields.append((p.name, kind, field))
    name = "".join(w.title() for w in getattr(func, "__name__", "model").split("_")) + "Settings"

    def post_init(self: Any) -> None:
        check_settings(self, "model")

    return dataclasses.make_dataclass(name, fields, frozen=True, namespace={
        "__post_init__": post_init, "__module__": func.__module__,
        "__builder__": f"{func.__module__}.{func.__name__}"})


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _argument_help(doc: str) -> dict[str, str]:
    """``{argument: first sentence}`` from a Google-style docstring's ``Args:`` block."""
    out: dict[str, str] = {}
    lines = doc.splitlines()
    if "Args:" not in [line.strip() for line in lines]:
        return out
    current = None
    for line in lines[[line.strip() for line in lines].index("Args:") + 1:]:
        if line.strip() and not line.startswith(" "):
            break
        match = re.match(r"^ {4}(\w+)(?: \(.*?\))?: ?(.*)$", line)
        if match:
            current = match.group(1)
            out[current] = match.group(2).strip()
        elif current and line.strip():
            out[current] += " " + line.strip()
    return {k: v for k, v in out.items() if v}


def check_builder_section(builder: Callable[..., Any], section: Mapping[str, Any] | None, where: str, *,
                          given: Iterable[str] = ()) -> None:
    """Check a recipe's ``model:`` ``section`` against :func:`builder_settings` (keys and types);
    :class:`ConfigError` naming ``where`` as for any settings section. The builder is then called
    with the section's own values (as written), so what it builds does not change."""
    settings_from_section(builder_settings(builder, tuple(sorted(given))), section, where)
