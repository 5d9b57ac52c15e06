"""tools/config_reference.py: docs/reference/config.md is rendered from the settings dataclasses,
and the committed page must be what they render now."""
from __future__ import annotations

from pathlib import Path

from tests.conftest import load_tool

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "reference" / "config.md"


def test_the_committed_reference_page_is_current():
    tool = load_tool("config_reference")
    rendered = tool.render()
    committed = PAGE.read_text(encoding="utf-8") if PAGE.exists() else ""
    assert committed == rendered, f"{PAGE} is stale: rewrite it with `{tool.COMMAND}` and commit it"


def test_the_page_lists_every_key_with_its_default_written_once(tmp_path):
    tool = load_tool("config_reference")
    text = tool.render()
    assert "| `min_confidence` | `0.9` | a number in [0, 1] |" in text        # faces:, from FaceSettings
    assert "| `lr` | `0.01` | a positive number |" in text                     # train.optimizer sgd
    assert "| `hidden_dim` | `64` | an integer |" in text                      # a fusion head's builder
    assert "#### `train.schedule: {name: cosine}`" in text


def test_check_names_the_command_that_rewrites_a_stale_page(tmp_path, capsys):
    tool = load_tool("config_reference")
    page = tmp_path / "config.md"
    assert tool.main(["--out", str(page)]) == 0 and tool.main(["--check", str(page)]) == 0
    page.write_text(page.read_text(encoding="utf-8").replace("`0.9`", "`0.8`"), encoding="utf-8")
    assert tool.main(["--check", str(page)]) == 1
    assert tool.COMMAND in capsys.readouterr().err
