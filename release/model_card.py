"""``model_card.md``: generated from later in this file."""
from __future__ import annotations


def write_model_card(path, *, run, fields, report=None) -> None:
    from core.storage import atomic_write_text

    atomic_write_text(path, "# Model card\n")
