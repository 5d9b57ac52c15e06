"""tools/ablate.py keyframes at a tiny size (2.5 s clips, one epoch): one row per family and
selection with the documented fields; salient recall, val accuracy, the difference to uniform and
changed_vs_default recomputed from the files the run left (keyframes.json against the windows in
synthetic.json; the training loop's own last-epoch val accuracy); an extra seed recomputes only
what is new; recipe overrides (--set) make new caches and runs beside the old ones."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import load_tool

pytestmark = pytest.mark.slow  # generates, preprocesses and trains the keyframe ablation

TINY = ["--train", "3", "--val", "3", "--duration", "2.5", "--fps", "10", "--epochs", "1", "--workers", "1"]
FIELDS = {"family", "selection", "intensity", "seeds", "salient_recall", "val_accuracy", "diff_vs_uniform",
          "changed_vs_default"}


def run(argv):
    return load_tool("ablate").main(argv)


def keyframes_of(cache: str, split: str, name: str) -> list[dict]:
    return json.loads((Path(cache) / split / name / "keyframes.json").read_text())["keyframes"]


def recall_from_files(out: Path, row: dict) -> float:
    """Mean fraction of keyframes inside the recorded windows over the clips whose visual cue is
    not Neutral, every seed of the row, read straight from the files."""
    values = []
    for cache in row["caches"]:
        set_name = Path(cache).parent.name
        meta = json.loads((out / "data" / set_name / "synthetic.json").read_text())
        for split, clips in meta["clips"].items():
            for clip in clips:
                if clip["shown"]["visual"] == "Neutral":
                    continue
                windows = clip["peak"]["windows_s"]
                times = [k["time"] for k in keyframes_of(cache, split, clip["name"])]
                values.append(sum(any(a <= t <= b for a, b in windows) for t in times) / len(times))
    return sum(values) / len(values)


def last_epoch_accuracy(run_dir: str) -> float:
    return json.loads((Path(run_dir) / "metrics.json").read_text())["history"][-1]["val_acc"]


def test_rows_against_the_files(tmp_path, tiny_scorer_run):
    out = tmp_path / "ablation"
    argv = ["keyframes", "--scorer", str(tiny_scorer_run), "--out", str(out), "--families", "peak,spread",
            "--selections", "uniform,no_rule1,no_rule5", "--seeds", "2", *TINY]
    assert run(argv) == 0
    result = json.loads((out / "ablation.json").read_text())
    rows = result["rows"]
    assert [(r["family"], r["selection"]) for r in rows] == [
        (f, s) for f in ("peak", "spread")
        for s in ("uniform", "default", "no_rule1", "no_rule5")]  # default always runs
    by = {(r["family"], r["selection"]): r for r in rows}
    for row in rows:
        assert FIELDS <= set(row) and row["seeds"] == [0, 1] and len(row["runs"]) == 2
        recall, acc = row["salient_recall"], row["val_accuracy"]
        assert recall["mean"] == pytest.approx(recall_from_files(out, row), abs=1e-4)
        assert recall["ci95"][0] <= recall["mean"] <= recall["ci95"][1] and recall["mean"] <= recall["recall_ceiling"]
        # the per-clip re-evaluation of the last epoch agrees with the training loop's own val accuracy
        assert acc["per_seed"] == pytest.approx([last_epoch_accuracy(r) for r in row["runs"]], abs=1e-4)
        assert acc["clips"] == 6 and acc["ci95"][0] <= acc["mean"] <= acc["ci95"][1]
        uniform = by[(row["family"], "uniform")]
        assert row["diff_vs_uniform"]["mean"] == pytest.approx(acc["mean"] - uniform["val_accuracy"]["mean"], abs=2e-4)
        # changed_vs_default, from the stored keyframes of every clip of both seeds
        default = by[(row["family"], "default")]
        flips = []
        for i, (mine, ref) in enumerate(zip(row["caches"], default["caches"])):
            seed_flips = []
            for entry in sorted(p for p in Path(ref).glob("*/*") if (p / "keyframes.json").exists()):
                split, name = entry.parent.name, entry.name
                seed_flips.append([k["index"] for k in keyframes_of(mine, split, name)]
                                  != [k["index"] for k in keyframes_of(ref, split, name)])
            flips += seed_flips
            # a selection that picked the default's frames on every clip of a seed shares its run there
            shares = row["selection"] != "default" and not any(seed_flips)
            assert row["same_as_default"][i] == shares
            assert (row["runs"][i] == default["runs"][i]) == (shares or row["selection"] == "default")
        assert len(flips) == 12 and row["changed_vs_default"] == pytest.approx(sum(flips) / 12, abs=1e-4)
    assert by[("peak", "default")]["changed_vs_default"] == 0.0
    assert by[("peak", "uniform")]["diff_vs_uniform"]["ci95"] == [0.0, 0.0]
    assert set(by[("peak", "uniform")]["picks_by_reason"]) == {"uniform"}
    assert "fill_uniform" in by[("spread", "no_rule5")]["picks_by_reason"]
    table = (out / "ablation.md").read_text()
    assert "| peak | uniform |" in table and "| spread | no_rule5 (" in table


def test_an_extra_seed_recomputes_only_what_is_new_and_overrides_make_new_runs(tmp_path, tiny_scorer_run):
    out = tmp_path / "ablation"
    base = ["keyframes", "--scorer", str(tiny_scorer_run), "--out", str(out), "--families", "steady",
            "--selections", "uniform", *TINY]
    assert run([*base, "--seeds", "1"]) == 0
    first = json.loads((out / "ablation.json").read_text())["rows"]
    # what preprocessing and training made (the logs and pipeline.json are rewritten on every call)
    stamps = {p: p.stat().st_mtime_ns for r in first for d in r["runs"] + r["caches"] for p in Path(d).rglob("*")
              if p.is_file() and p.name not in ("train.log", "pipeline.json")}
    assert any(p.name == "keyframes.json" for p in stamps) and any(p.parent.name == "last" for p in stamps)
    assert run([*base, "--seeds", "2"]) == 0
    again = json.loads((out / "ablation.json").read_text())["rows"]
    assert [r["seeds"] for r in again] == [[0, 1], [0, 1]]
    assert [r["runs"][0] for r in again] == [r["runs"][0] for r in first]
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())  # seed 0's caches and runs untouched
    assert len(list((out / "data").iterdir())) == 2
    # steady clips: every candidate lies in the emotion window, so every selection reaches the ceiling 1
    assert all(r["salient_recall"]["mean"] == r["salient_recall"]["recall_ceiling"] == 1.0 for r in again)

    # --set reaches every selection's preprocessing: new caches and runs named by the new hash
    assert run([*base, "--seeds", "1", "--set", "keyframes.precision=bfloat16"]) == 0
    result = json.loads((out / "ablation.json").read_text())
    assert result["settings"]["overrides"] == ["keyframes.precision=bfloat16"]
    for row in result["rows"]:
        recipe = json.loads((Path(row["caches"][0]) / "pipeline.json").read_text())["config"]
        assert recipe["keyframes"]["precision"] == "bfloat16"
    set_runs = [p for p in (out / "runs").iterdir() if p.name.startswith("steady-seed0")]
    assert len(set_runs) == 1 and len(list(set_runs[0].iterdir())) == 4  # 2 selections x (float32, bfloat16)
