"""The recipe reference page (docs/reference/config.md), rendered from the settings dataclasses.

Every recipe section is a settings dataclass (:mod:`core.config`): its fields' defaults, limits and
help text are the one place they are written, and this module turns them into Markdown tables,
one per section, so the page cannot drift from the code. Which sections the page lists is the
caller's choice (``tools/config_reference.py`` collects them from the packages above ``core``):

    render_reference([Chapter("Training", "intro", [Section("train", TrainSettings)]), ...]) -> str

A field made by :func:`core.config.setting` with ``kinds`` (e.g. ``train.optimizer``) gets one
table per kind after its section's table.
"""
from __future__ import annotations

import dataclasses
import inspect
import json
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Sequence

from core.config import describe_field

GENERATED_NOTE = ("<!-- Generated from the settings dataclasses by `python tools/config_reference.py --out "
                  "docs/reference/config.md`; do not edit by hand. -->")


@dataclass(frozen=True)
class Section:
    """One recipe section: its dotted ``key`` in the recipe (``train``, ``faces``), the settings
    dataclass that reads it, and an optional ``note`` (Markdown) printed under its heading."""

    key: str
    settings: type
    note: str = ""


@dataclass(frozen=True)
class Chapter:
    """A group of sections under one heading (a kind of recipe: stream, fusion, preprocessing)."""

    title: str
    intro: str
    sections: Sequence[Section] = field(default_factory=tuple)


def render_reference(chapters: Sequence[Chapter], *, title: str = "Recipe reference", intro: str = "") -> str:
    """The whole page: ``title``, ``intro``, then each chapter's sections as Markdown tables
    (key | default | accepts | meaning). Ends with one newline."""
    parts = [f"# {title}", GENERATED_NOTE]
    if intro:
        parts.append(intro.strip())
    for chapter in chapters:
        parts.append(f"## {chapter.title}")
        if chapter.intro:
            parts.append(chapter.intro.strip())
        for section in chapter.sections:
            parts.extend(render_section(section))
    return "\n\n".join(parts) + "\n"


def render_section(section: Section, *, level: int = 3) -> list[str]:
    """The heading, summary and table of one section (Markdown blocks), then one sub-section per
    kind of each field that has ``kinds``."""
    cls = section.settings
    source = getattr(cls, "__builder__", None)
    blocks = [f"{'#' * level} `{section.key}`",
              f"*the keyword arguments of `{source}`*" if source else f"*{cls.__module__}.{cls.__qualname__}*"]
    summary = summary_of(cls)
    if summary:
        blocks.append(summary)
    if section.note:
        blocks.append(section.note.strip())
    blocks.append(settings_table(cls))
    for f in dataclasses.fields(cls):
        for name, kind in f.metadata.get("kinds", {}).items():
            blocks.extend(render_section(Section(f"{section.key}.{f.name}: {{name: {name}}}", kind), level=level + 1))
    return blocks


def settings_table(cls: type) -> str:
    """A Markdown table of the fields of the settings dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    rows = ["| key | default | accepts | meaning |", "| --- | --- | --- | --- |"]
    for f in dataclasses.fields(cls):
        default = "(required)" if f.metadata.get("required") else _default_text(f)
        cells = [f"`{f.name}`", default, describe_field(f, hints.get(f.name, Any)),
                 _plain(f.metadata.get("help", ""))]
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows)


def summary_of(cls: type) -> str:
    """The first paragraph of ``cls``'s docstring as one line of Markdown (reST roles and double
    backquotes made plain)."""
    doc = inspect.getdoc(cls) or ""
    if doc.startswith(cls.__name__ + "("):  # dataclasses' generated signature: no docstring
        return ""
    return _plain(" ".join(doc.split("\n\n")[0].split()))


def _default_text(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "(required)"
    if dataclasses.is_dataclass(value) and "name" in {g.name for g in dataclasses.fields(value)}:
        return f"`{{name: {value.name}}}`"
    return f"`{_yaml_text(value)}`"


def _yaml_text(value: Any) -> str:
    if isinstance(value, tuple):
        value = list(value)
    if callable(value) and not isinstance(value, type):
        return getattr(value, "__name__", repr(value))
    try:
        return json.dumps(value).replace('"', "")
    except TypeError:
        return repr(value)


def _plain(text: str) -> str:
    text = re.sub(r":[a-z]+:`~?([^`]+)`", lambda m: f"`{m.group(1)}`", text)
    return text.replace("``", "`")


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
