"""core/results_page.py: a results page carries the command, the commit, the date and the machine
beside the numbers; a result dict renders as a table; the page is written atomically; and
tools/benchmark.py --markdown writes one end to end (the tiny training-step benchmark)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from core import results_page as rp
from tests.conftest import load_tool

ROOT = Path(__file__).resolve().parents[2]


def test_page_has_title_command_commit_date_machine_and_the_body_below_one_title():
    body = ("# Results report: `runs/demo`\n\n## val (60 clips)\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
            "```\n# not a heading\n```")
    page = rp.results_page("Demo", "python tools/report.py --runs runs/demo", body, commit="abc1234",
                           date="2026-12-07 04:00", machine="Some CPU, 2 logical CPUs")
    lines = page.splitlines()
    assert lines[0] == "# Demo"
    assert [ln for ln in lines if ln.startswith("# ")] == ["# Demo", "# not a heading"]  # body's title dropped
    assert "```bash\npython tools/report.py --runs runs/demo\n```" in page
    assert "Commit `abc1234`, written 2026-12-07 04:00 UTC on Some CPU, 2 logical CPUs." in page
    assert "### val (60 clips)" in page and "| 1 | 2 |" in page
    assert "```\n# not a heading\n```" in page  # fenced code is left alone
    assert rp.GENERATED_MARK in page
    assert "\n\n\n" not in page  # no gap where the body's own title was


def test_commit_is_this_checkouts_head_or_unknown_outside_git(tmp_path):
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode == 0:
        assert rp.code_commit().split("+")[0] == head.stdout.strip()
    assert rp.code_commit(tmp_path) == "unknown"


def test_command_text_quotes_arguments_and_defaults_to_sys_argv(monkeypatch):
    assert rp.command_text("tools/x.py", ["--set", "a=b c"]) == "python tools/x.py --set 'a=b c'"
    monkeypatch.setattr("sys.argv", ["tools/x.py", "keyframes", "--json"])
    assert rp.command_text("tools/x.py", None) == "python tools/x.py keyframes --json"


def test_result_table_flattens_and_puts_the_machine_apart():
    result = {"total_s": 1.23456, "ratio": 250.0, "keeps_up": True, "ids": [1, 2], "name": "a|b",
              "spread": {"min": 0.5, "iqr": [0.4, 0.6]}, "nan": float("nan"),
              "machine_start": {"cpu_count": 2, "load_avg_1min": 0.5}}
    table = rp.result_table(result)
    before, after = table.split("## Machine")
    assert "| `total_s` | 1.235 |" in before and "| `ratio` | 250.0 |" in before
    assert "| `keeps_up` | yes |" in before and "| `ids` | [1, 2] |" in before and "| `name` | a\\|b |" in before
    assert "| `spread.min` | 0.500 |" in before and "| `spread.iqr` | [0.4, 0.6] |" in before
    assert "| `nan` | nan |" in before and "machine" not in before
    assert "| `machine_start.cpu_count` | 2 |" in after and "| `machine_start.load_avg_1min` | 0.500 |" in after


def test_write_is_atomic_and_leaves_the_old_page_when_rendering_fails(tmp_path, monkeypatch):
    path = tmp_path / "results" / "page.md"
    rp.write_results_page(path, "T", "tools/x.py", ["a"], "body one")
    first = path.read_text()
    assert "python tools/x.py a" in first and "body one" in first

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(rp, "atomic_write_text", broken)
    with pytest.raises(OSError):
        rp.write_results_page(path, "T", "tools/x.py", ["b"], "body two")
    assert path.read_text() == first and [p.name for p in path.parent.iterdir()] == ["page.md"]


def test_benchmark_markdown_writes_a_results_page(tmp_path, capsys):
    page = tmp_path / "bench_train_audio.md"
    argv = ["train", "audio", "--tiny", "--steps", "1", "--warmup", "0", "--batch", "2", "--clips", "2",
            "--loader-clips", "2", "--threads", "1", "--json", "--markdown", str(page)]
    assert load_tool("benchmark").main(argv) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 1  # --json still prints one object
    text = page.read_text()
    assert text.startswith("# Benchmark: train audio\n")
    assert "python tools/benchmark.py train audio --tiny --steps 1" in text and f"--markdown {page}" in text
    assert f"Commit `{rp.code_commit()}`" in text
    assert "| `step_s` |" in text and "| `ratio` |" in text
    assert "## Machine" in text and "| `machine_start.cpu_count` |" in text
