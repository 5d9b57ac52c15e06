"""tools/ablate.py keyframes at a tiny size (six 2 s clips, one epoch): the JSON rows, salient
recall computed against the peaks recorded in synthetic.json over the non-neutral clips, reuse
on a re-run, recipe overrides (--set), and refusing a data folder made with other parameters."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import load_tool

pytestmark = pytest.mark.slow  # generates, preprocesses and trains the keyframe ablation

TINY = ["--train", "3", "--val", "3", "--duration", "2", "--fps", "10", "--epochs", "1", "--workers", "1"]


def run(argv):
    return load_tool("ablate").main(argv)


def recall_from_files(out: Path, selection: str) -> tuple[float, int]:
    """Mean fraction of keyframes within 0.5 s of the recorded peak centre over the clips whose
    visual cue is not Neutral, read straight from the files; and how many such clips."""
    meta = json.loads((out / "data" / "synthetic.json").read_text())
    values = []
    for split, clips in meta["clips"].items():
        for clip in clips:
            if clip["shown"]["visual"] == "Neutral":
                continue
            record = json.loads((out / "caches" / selection / split / clip["name"] / "keyframes.json").read_text())
            centre = clip["peak"]["center_s"]
            values.append(sum(abs(k["time"] - centre) <= 0.5 for k in record["keyframes"]) / len(record["keyframes"]))
    return sum(values) / len(values), len(values)


def test_rows_and_recall_against_recorded_peaks(tmp_path, tiny_scorer_run):
    out = tmp_path / "ablation"
    assert run(["keyframes", "--scorer", str(tiny_scorer_run), "--out", str(out), *TINY]) == 0
    result = json.loads((out / "ablation.json").read_text())
    rows = result["rows"]
    assert [r["selection"] for r in rows] == ["uniform", "literal", "default"]
    assert rows[0]["intensity"] is None and rows[1]["intensity"] == rows[2]["intensity"] is not None
    names = {"uniform": "uniform", "literal": f"literal-{rows[1]['intensity']}",
             "default": f"default-{rows[2]['intensity']}"}
    for row in rows:
        assert isinstance(row["salient_recall"], float) and isinstance(row["val_accuracy"], float)
        assert 0.0 <= row["val_accuracy"] <= 1.0 and row["val_clips"] == 3 and row["epochs"] == 1
        expected, clips = recall_from_files(out, names[row["selection"]])
        assert row["salient_recall"] == pytest.approx(expected, abs=1e-4)
        assert row["recall_clips"] == clips == 4  # 6 balanced clips, the 2 Neutral ones left out
        assert sum(row["picks_by_reason"].values()) == 16 * 6
    assert rows[0]["picks_by_reason"] == {"uniform": 96}
    table = (out / "ablation.md").read_text()
    assert "| uniform |" in table and f"| default ({rows[2]['intensity']}) |" in table

    # Move every recorded peak outside the clips: the re-run reuses the caches and runs, and no
    # keyframe lies in a peak second any more.
    meta_path = out / "data" / "synthetic.json"
    meta = json.loads(meta_path.read_text())
    for clips in meta["clips"].values():
        for clip in clips:
            clip["peak"]["center_s"] = 10.0
    meta_path.write_text(json.dumps(meta))
    assert run(["keyframes", "--scorer", str(tiny_scorer_run), "--out", str(out), *TINY]) == 0
    again = json.loads((out / "ablation.json").read_text())["rows"]
    assert [r["salient_recall"] for r in again] == [0.0, 0.0, 0.0]
    assert [r["val_accuracy"] for r in again] == [r["val_accuracy"] for r in rows]  # finished runs reused

    # --set reaches every selection's preprocessing: a bfloat16 scorer makes new caches and runs
    # (named by the new keyframe hash), and the float32 runs stay for comparison.
    assert run(["keyframes", "--scorer", str(tiny_scorer_run), "--out", str(out), *TINY,
                "--set", "keyframes.precision=bfloat16"]) == 0
    result = json.loads((out / "ablation.json").read_text())
    assert result["settings"]["overrides"] == ["keyframes.precision=bfloat16"]
    assert "Recipe overrides: keyframes.precision=bfloat16." in (out / "ablation.md").read_text()
    for name in names.values():
        recipe = json.loads((out / "caches" / name / "pipeline.json").read_text())["config"]
        assert recipe["keyframes"]["precision"] == "bfloat16"
    assert len(list((out / "runs").iterdir())) == 2 * len(names)


def test_refuses_data_made_with_other_parameters(tmp_path, tiny_scorer_run, capsys):
    from benchmarks.timing import BenchmarkError
    from core.command_line import run_main
    from experiments.keyframe_ablation import AblationSettings, generate_peak_set

    out = tmp_path / "ablation"
    generate_peak_set(out / "data", AblationSettings(n_train=3, n_val=3, duration=2, fps=10, workers=1), stills=0)
    other = ["--train", "6", *TINY[2:]]  # 6 train clips where the folder holds 3
    code = run_main(load_tool("ablate").main,
                    ["keyframes", "--scorer", str(tiny_scorer_run), "--out", str(out), *other],
                    user_errors=(BenchmarkError,))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "synthetic.json" in err[0] and "--fresh" in err[0]
