"""The results report as text: :func:`format_table` (the terminal table ``tools/report.py``
prints) and :func:`format_markdown` (``report.md``), both from the content of ``report.json``
(:func:`experiments.report.write_report` documents its rows).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

from experiments.report_calibration import calibration_markdown
from experiments.report_runs import HELD_OUT_SPLIT, REPORT_SPLITS, SELECTION_SPLIT


def _acc(row: Mapping | None) -> str:
    if row is None:
        return "n/a"
    lo, hi = row["ci95"]
    return f"{row['accuracy']:.3f} [{lo:.3f}, {hi:.3f}]"


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _p(value: float | None) -> str:
    if value is None:
        return "—"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def _points(d: Mapping) -> str:
    lo, hi = d["interval"]
    return f"{100 * d['difference']:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"


def _scored_splits(report: Mapping) -> list[str]:
    return [s for s in REPORT_SPLITS if report["splits"].get(s, {}).get("scored")]


def format_table(report: Mapping) -> str:
    """The models as a text table: accuracy with its interval on each scored split, then the
    macro F1, ROC AUC and McNemar p of the last (held-out) split."""
    splits = _scored_splits(report)
    by = {(r["name"], r["split"]): r for r in report["rows"]}
    names = list(dict.fromkeys(r["name"] for r in report["rows"]))
    last = splits[-1]
    head = ["model"] + [f"{s} acc [95% CI] ({report['splits'][s]['clips']} clips)" for s in splits] + \
           [f"{last} F1", f"{last} AUC", f"{last} p vs method"]
    lines = [[n] + [_acc(by.get((n, s))) for s in splits]
             + [_num((by.get((n, last)) or {}).get("macro_f1")), _num((by.get((n, last)) or {}).get("roc_auc")),
                _p((by.get((n, last)) or {}).get("p_vs_method"))] for n in names]
    widths = [max(len(x[i]) for x in [head] + lines) for i in range(len(head))]
    text = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
            for row in [head] + lines]
    for s in REPORT_SPLITS:
        if not report["splits"].get(s, {}).get("scored") and s in report["splits"]:
            text.append(f"({s}: not scored, {report['splits'][s]['why']})")
    return "\n".join(text)


def format_markdown(report: Mapping) -> str:
    """``report.md``: the tables per split, per-class metrics, calibration (raw and calibrated),
    the streams' contributions, the
    keyframe ablation when present, how to read the intervals, and the provenance."""
    md = _opening(report) + _split_tables(report) + _per_class_tables(report) + calibration_markdown(report) \
        + _contributions(report) + _figures(report) + _ablation(report)
    md += ["## Reading the intervals", "", INTERVALS_NOTE, ""]
    return "\n".join(md + _provenance_lines(report)) + "\n"


def _opening(report: Mapping) -> list[str]:
    """The title, the method and how the numbers were made."""
    cfg = report["settings"]
    method = report["method"]
    return [f"# Results report: `{report['root']}`", "",
            f"Method: **{method['name']}** (`{method['run']}`), streams {', '.join(method['streams'])}, "
            f"features `{method['features']}`. Written {report['created']}.", "",
            f"Accuracy: point estimate and {100 * cfg['confidence']:.0f} % {cfg['interval']} "
            f"({cfg['draws']:,} resamples, seed {cfg['seed']}). p vs method: {cfg['p_vs_method']}. "
            "ROC AUC: macro one-vs-rest. Every choice (checkpoints, late-fusion weights, the stream drawn "
            f"beside the method) was made on {report['selection']['split']}; nothing was chosen on "
            f"{HELD_OUT_SPLIT}.", ""]


def _split_tables(report: Mapping) -> list[str]:
    """Per split: the models' accuracy, macro F1, ROC AUC and p vs the method (the method in
    bold), or why the split was not scored."""
    method = report["method"]
    md: list[str] = []
    for split in REPORT_SPLITS:
        info = report["splits"].get(split)
        if info is None:
            continue
        role = "selection split: optimistic for what was chosen on it" if split == SELECTION_SPLIT else \
            "held out: nothing chosen on it"
        if not info.get("scored"):
            md += [f"## {split}", "", f"Not scored: {info['why']}.", ""]
            continue
        md += [f"## {split} ({info['clips']} clips; {role})", "",
               "| model | accuracy [95 % CI] | macro F1 | ROC AUC | p vs method |", "|---|---|---|---|---|"]
        for r in (r for r in report["rows"] if r["split"] == split):
            name = f"**{r['name']}**" if r["name"] == method["name"] else r["name"]
            md.append(f"| {name} | {_acc(r)} | {_num(r['macro_f1'])} | {_num(r['roc_auc'])} "
                      f"| {_p(r['p_vs_method'])} |")
        md.append("")
    return md


def _per_class_tables(report: Mapping) -> list[str]:
    """Per scored split: each model's precision / recall / F1 per class."""
    classes = report["class_names"]
    md: list[str] = []
    for split in _scored_splits(report):
        md += [f"### Per-class precision / recall / F1 ({split})", "",
               "| model | " + " | ".join(f"{c} P / R / F1" for c in classes) + " |",
               "|---|" + "---|" * len(classes)]
        for r in (r for r in report["rows"] if r["split"] == split):
            cells = [f"{r['per_class'][c]['precision']:.2f} / {r['per_class'][c]['recall']:.2f} / "
                     f"{r['per_class'][c]['f1']:.2f}" for c in classes]
            md.append(f"| {r['name']} | " + " | ".join(cells) + " |")
        md.append("")
    return md


def _contributions(report: Mapping) -> list[str]:
    """The accuracy lost without each stream, per split that has it (nothing when none does)."""
    contrib = report["contributions"]
    if not any(contrib.values()):
        return []
    splits = [s for s in REPORT_SPLITS if contrib.get(s)]
    md = ["## What each stream contributes", "",
          f"Accuracy of {report['method']['name']} minus the same head retrained without the stream, in points, "
          "with a paired bootstrap interval (both scored on the same resampled clips). Positive: the stream helps.",
          "", "| left out | " + " | ".join(splits) + " |", "|---|" + "---|" * len(splits)]
    for s in next(contrib[x] for x in splits):
        md.append(f"| {s} | " + " | ".join(_points(contrib[x][s]) for x in splits) + " |")
    md.append("")
    return md


def _figures(report: Mapping) -> list[str]:
    """The figures' file names (nothing when there are none)."""
    figures = report.get("figures", {})
    if not figures:
        return []
    md = [f"## Figures ({report['figure_split']} split)", ""]
    for key in ("roc_curves", "pr_curves", "reliability", "contributions"):
        if key in figures:
            md.append(f"- {key.replace('_', ' ')}: `{Path(figures[key]).name}`")
    cms = [Path(v).name for k, v in figures.items() if k.startswith("confusion ")]
    if cms:
        md.append("- confusion matrices (counts and row percentages): " + ", ".join(f"`{c}`" for c in cms))
    md.append("")
    return md


def _ablation(report: Mapping) -> list[str]:
    """The keyframe ablation table, when the report has one."""
    ablation = report.get("keyframe_ablation")
    if not ablation:
        return []
    md = ["## Keyframe ablation", "", f"From `{ablation['path']}` (`tools/ablate.py keyframes`; 95 % intervals over "
          "clips and seeds, the difference to uniform paired clip by clip).", "",
          "| family | selection | salient recall | val accuracy [95% CI] | vs uniform, points [95% CI] |",
          "|---|---|---|---|---|"]
    for r in ablation["rows"]:
        acc, diff = r["val_accuracy"], r["diff_vs_uniform"]
        label = r["selection"] if r.get("intensity") is None else f"{r['selection']} ({r['intensity']})"
        md.append(f"| {r['family']} | {label} | {_num(r['salient_recall']['mean'], 2)} | {_num(acc['mean'])} "
                  f"[{_num(acc['ci95'][0])}, {_num(acc['ci95'][1])}] | {100 * diff['mean']:+.1f} "
                  f"[{100 * diff['ci95'][0]:+.1f}, {100 * diff['ci95'][1]:+.1f}] |")
    md.append("")
    return md


def _provenance_lines(report: Mapping) -> list[str]:
    """The stream runs behind the method's features, then the warnings, the late-fusion weights,
    the runs not scored and the stream runs found but not used."""
    prov = report["provenance"]
    md = ["## Provenance", "", "| stream | run | checkpoint (features) | checkpoint now |", "|---|---|---|---|"]
    md += [f"| {s} | `{v['run']}` | {v['features_checkpoint_hash']} | {v['checkpoint_hash_now'] or 'missing'} |"
           for s, v in prov["streams"].items()]
    md.append("")
    md += [f"- warning: {w}" for w in prov["warnings"]]
    if report["selection"]["late_fusion_weights"]:
        md.append("- late-fusion weights (chosen on val): " + "; ".join(
            f"{k}: " + ", ".join(f"{s} {w:g}" for s, w in v.items())
            for k, v in report["selection"]["late_fusion_weights"].items()))
    md += [f"- not scored: `{p}` ({why})" for p, why in prov.get("not_scored", {}).items()]
    if prov["other_stream_runs"]:
        md.append("- stream runs found but not behind the method's features: "
                  + ", ".join(f"`{p}` ({s})" for p, s in prov["other_stream_runs"].items()))
    return md


INTERVALS_NOTE = (
    "An interval is the spread of the accuracy over resamples of the split's clips: it says how "
    "much the number would move on another draw of clips of the same kind, not how much training "
    "noise there is. On 60 clips it is wide: at 80 % accuracy the 95 % interval is about ±10 "
    "points, at 50 % about ±12, because one clip is 1.7 points. Two models whose intervals overlap "
    "can still differ reliably, and two ±12-point intervals say little about a 5-point gap. Both "
    "models were scored on the same clips, so most of that spread is shared (the hard clips are "
    "hard for both); McNemar's test looks only at the clips where exactly one of the two is right "
    "and asks whether those split unevenly, which is the sharper question. E.g. a 10-point gap on "
    "60 clips that comes from 6 clips only the method gets right and none the other way gives "
    "p = 0.03; the same gap from 9 against 3 gives p = 0.15. The contribution intervals are paired "
    "the same way. Val numbers of anything chosen on val (every checkpoint, the searched late-fusion "
    "weights) are optimistic; test is the estimate.")
