"""The keyframe ablation's table (``ablation.md``): per family and selection, salient recall
against its ceiling, the keyframe stream's val accuracy, the paired difference to uniform and how
often the selection differs from the default's, each with its 95 % interval; then what the
figures say about the issue's questions, computed from them, and what was measured with what."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from experiments.keyframe_intervals import significant


def _ci(interval: Sequence[float], scale: float = 1.0, fmt: str = ".2f") -> str:
    return f"{interval[0] * scale:{fmt}} to {interval[1] * scale:{fmt}}"


def _label(row: Mapping[str, Any]) -> str:
    return row["selection"] if row["intensity"] is None else f"{row['selection']} ({row['intensity']})"


def _verdicts(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Lines that read the table for each family (computed, not written by hand)."""
    lines = []
    for family in dict.fromkeys(r["family"] for r in rows):
        mine = [r for r in rows if r["family"] == family and r["selection"] != "uniform"]
        better = [_label(r) for r in mine if significant(r["diff_vs_uniform"]["ci95"]) > 0]
        worse = [_label(r) for r in mine if significant(r["diff_vs_uniform"]["ci95"]) < 0]
        for r in mine:
            if r["selection"] == "default":
                d = r["diff_vs_uniform"]
                lines.append(f"- {family}: {_label(r)} vs uniform {100 * d['mean']:+.1f} points of val accuracy "
                             f"(95 % CI {_ci(d['ci95'], 100, '+.1f')}); salient recall "
                             f"{r['salient_recall']['mean']:.2f} of a ceiling of "
                             f"{r['salient_recall']['recall_ceiling']:.2f}.")
        lines.append(f"  Significantly better than uniform: {', '.join(better) or 'none'}; "
                     f"significantly worse: {', '.join(worse) or 'none'}.")
        moved = [f"{_label(r)} {r['changed_vs_default']:.0%}" for r in mine if r["selection"].startswith("no_rule")]
        if moved:
            lines.append(f"  Clips whose selection a rule's ablation changes: {', '.join(moved)}.")
    return lines


def format_table(result: Mapping[str, Any]) -> str:
    """The ablation as Markdown: one row per family and selection, the readings, the settings."""
    rows = result["rows"]
    lines = ["| family | selection | salient recall (95 % CI) | ceiling | of ceiling | val accuracy (95 % CI) "
             "| vs uniform, points (95 % CI) | changed vs default |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        rec, acc, diff = r["salient_recall"], r["val_accuracy"], r["diff_vs_uniform"]
        lines.append(f"| {r['family']} | {_label(r)} | {rec['mean']:.2f} ({_ci(rec['ci95'])}) | "
                     f"{rec['recall_ceiling']:.2f} | {rec['of_ceiling']:.2f} | {acc['mean']:.3f} "
                     f"({_ci(acc['ci95'], 1, '.3f')}) | {100 * diff['mean']:+.1f} ({_ci(diff['ci95'], 100, '+.1f')}) | "
                     f"{r['changed_vs_default']:.0%} |")
    s = result["settings"]
    seeds = list(range(s["seed"], s["seed"] + s["seeds"]))
    first = rows[0] if rows else {}
    lines += ["", *_verdicts(rows), "",
              f"Salient recall: {result['salient_recall']}. Val accuracy: {result['val_accuracy']} "
              f"({first.get('val_accuracy', {}).get('clips', 0)} clips over {len(seeds)} seed(s), "
              f"{result['recipe']}, {first.get('epochs')} epochs). Intervals: {result['intervals']}.",
              f"Data per family and seed: {s['n_train']} train + {s['n_val']} val clips, {s['duration']:g} s at "
              f"{s['fps']:g} fps, {s['width']}x{s['height']}, off-peak strength {s['off_peak']:g}, cue noise "
              f"{s['cue_noise']:g}; seeds {', '.join(map(str, seeds))}. Scorer: {result['scorer']['run']}"
              + (" (trained here on generated stills)" if result["scorer"]["trained_here"] else "")
              + f", scoring at {result['scorer']['input_size']} px."
              + (f" Recipe overrides: {', '.join(s['overrides'])}." if s.get("overrides") else ""),
              f"Time: {result['seconds']['total']:.0f} s wall ({_stages(result['seconds'])}) with {s['workers']} "
              f"worker(s), load average {result['machine']['load_avg_1min_at_start']} at the start and "
              f"{result['machine']['load_avg_1min']} at the end on {result['machine']['cpu_count']} cores; "
              f"{result['cpu_seconds']['total']:.0f} CPU s in all processes ({_stages(result['cpu_seconds'])}); "
              "work already done in the output folder is reused and not counted."]
    return "\n".join(lines) + "\n"


def _stages(times: Mapping[str, float]) -> str:
    return ", ".join(f"{k} {v:.0f}" for k, v in times.items() if k != "total")
