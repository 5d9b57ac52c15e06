"""``BUNDLE/model_card.md``, generated from the exported runs and their report (tools/report.py's
``report.json``): what the system was trained on (dataset, sizes, splits, labels), its val/test
metrics with intervals, the per-stream contributions, intended and out-of-scope uses, known
limits, and the licences and initial weights the runs record. Nothing in it is typed by hand:
a fact the runs do not record is said to be unrecorded.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

from core.storage import atomic_write_text, read_json

#: report row fields shown, with their titles (interval fields: ``<name>_ci95``, accuracy's ``ci95``)
METRICS = {"accuracy": "accuracy", "macro_f1": "macro F1", "roc_auc": "ROC AUC", "ece": "ECE", "nll": "NLL",
           "brier": "Brier"}
_INTERVALS = {"accuracy": "ci95", "ece": "ece_ci95", "nll": "nll_ci95", "brier": "brier_ci95"}


def cache_clip_metas(cache: str | None, limit: int = 20000) -> list[dict]:
    """The ``meta.json`` objects of up to ``limit`` clips of preprocessing cache ``cache`` (unreadable
    ones skipped); empty when the cache is not here."""
    if not cache or not Path(cache).is_dir():
        return []
    out = []
    for path in sorted(Path(cache).rglob("meta.json"))[:limit]:
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return out


def _data_section(pipeline: dict, class_names: list[str]) -> tuple[list[str], bool]:
    """Markdown lines on the training data, and whether it is synthetic (``synthetic.json`` beside it)."""
    metas = cache_clip_metas(pipeline.get("cache"))
    if not metas:
        return [f"The preprocessing cache the runs record ({pipeline.get('cache')}) is not readable here: the data's "
                "names, sizes and splits are not recorded in this card.", ""], False
    roots = sorted({str(Path(m["source"]).parent.parent) for m in metas if m.get("source")})
    synthetic = [r for r in roots if (Path(r) / "synthetic.json").is_file()]
    lines = [f"Dataset: {', '.join(roots) or 'not recorded'}"
             + (" (synthetic, made by tools/make_synthetic.py)" if synthetic else ""), ""]
    for root in synthetic:
        info = read_json(Path(root) / "synthetic.json") or {}
        lines += [f"Synthetic generator settings ({root}/synthetic.json): `{json.dumps(info.get('params', {}))}`", ""]
    lines += ["| split | clips | " + " | ".join(class_names) + " | unlabelled |",
              "|---|---|" + "---|" * len(class_names) + "---|"]
    for split in sorted({str(m.get("split")) for m in metas}):
        labels = Counter(m.get("label") for m in metas if str(m.get("split")) == split)
        n = sum(labels.values())
        counts = [str(labels.get(i, 0)) for i in range(len(class_names))]
        lines.append(f"| {split} | {n} | " + " | ".join(counts) + f" | {labels.get(None, 0)} |")
    widths = sorted({(m.get("width"), m.get("height")) for m in metas if m.get("width")})
    durations = clip_durations(metas)
    if durations:
        lines += ["", f"Clip sizes: {', '.join(f'{w}x{h}' for w, h in widths[:5])}; durations "
                      f"{durations[0]:.1f}-{durations[-1]:.1f} s (median {durations[len(durations) // 2]:.1f} s)."]
    return lines + [""], bool(synthetic)


def clip_durations(metas: list[dict]) -> list[float]:
    """The clips' durations (s), sorted, of the cache ``metas`` that record a positive one."""
    return sorted(float(m["duration"]) for m in metas if isinstance(m.get("duration"), (int, float))
                  and m["duration"] > 0)


def _fmt(value: Any, interval: Any = None) -> str:
    if not isinstance(value, (int, float)):
        return "n/a"
    text = f"{value:.3f}"
    if (isinstance(interval, (list, tuple)) and len(interval) == 2
            and all(isinstance(v, (int, float)) for v in interval)):
        text += f" [{interval[0]:.3f}, {interval[1]:.3f}]"
    return text


def _same_run(recorded: str | None, run: Path) -> bool:
    """Whether a report row's run (relative to where the report was made, or absolute) is ``run``."""
    if not recorded:
        return False
    mine = run.resolve().as_posix()
    return mine == Path(recorded).resolve().as_posix() or mine.endswith("/" + recorded.strip("/"))


def metrics_section(report: dict, run: str | os.PathLike | None = None) -> list[str]:
    """Markdown of a report's metrics: every metric (:data:`METRICS`) on every split of the row of
    fusion run ``run`` (the report's method when no row is that run's), each stream's accuracy,
    and the per-stream contributions (leave-one-out differences)."""
    splits = list(report.get("splits") or {})
    method = (report.get("method") or {}).get("name")
    note: list[str] = []
    if run is not None:
        mine = [r for r in report.get("rows") or [] if _same_run(r.get("run"), Path(run))]
        method = mine[0]["name"] if mine else method
        if not mine:
            note = [f"The report has no row for {run}: the rows below are its method's ({method}).", ""]
    settings = report.get("settings") or {}
    lines = [f"From {report.get('out_dir', 'the report')}/report.json ({report.get('created', '')}); intervals: "
             f"{settings.get('interval', 'as the report computes them')}, {settings.get('confidence', 0.95):g} "
             f"confidence.", "", *note, f"**{method}**" + (" (the exported head):" if not note else ":"), "",
             "| split | clips | " + " | ".join(METRICS.values()) + " |", "|---|---|" + "---|" * len(METRICS)]
    rows = report.get("rows") or []
    for split in splits:
        row = next((r for r in rows if r.get("name") == method and r.get("split") == split), None)
        if row is None:
            lines.append(f"| {split} | not scored |" + " |" * len(METRICS))
            continue
        cells = [_fmt(row.get(k), row.get(_INTERVALS.get(k, ""))) for k in METRICS]
        lines.append(f"| {split} | {row.get('clips', 'n/a')} | " + " | ".join(cells) + " |")
    streams = [r for r in rows if r.get("kind") == "stream"]
    if streams:
        lines += ["", "Each stream alone (accuracy [interval]):", "", "| stream | " + " | ".join(splits) + " |",
                  "|---|" + "---|" * len(splits)]
        for name in dict.fromkeys(r["name"] for r in streams):
            cells = [_fmt(r.get("accuracy"), r.get("ci95")) for split in splits
                     for r in streams if r["name"] == name and r["split"] == split] or ["n/a"]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    contributions = report.get("contributions") or {}
    if contributions:
        lines += ["", "Per-stream contributions (accuracy of the method minus the method retrained without the "
                      "stream [interval]):", "", "| split | " + " | ".join(next(iter(contributions.values()))) + " |",
                  "|---|" + "---|" * len(next(iter(contributions.values())))]
        for split, per in contributions.items():
            lines.append(f"| {split} | " + " | ".join(_fmt(v.get("difference"), v.get("interval"))
                                                      for v in per.values()) + " |")
    return lines + [""]


def report_path(run: str | os.PathLike, report: str | os.PathLike | None = None) -> Path | None:
    """The report.json a model card of ``run`` reads: ``report`` when given, else the first
    ``report*/report.json`` beside the run's directory with a row of ``run`` (the demo writes
    ``report_<mode>`` for the fusion run ``fusion_<mode>``), else ``report/report.json``; None when
    that file does not exist."""
    if report:
        path = Path(report)
    else:
        path = Path(run).parent / "report" / "report.json"
        for candidate in sorted(Path(run).parent.glob("report*/report.json")):
            rows = (read_json(candidate) or {}).get("rows") or []
            if any(_same_run(r.get("run"), Path(run)) for r in rows if isinstance(r, dict)):
                path = candidate
                break
    return path if path.is_file() else None


def _report_for(run: Path, report: str | os.PathLike | None) -> tuple[dict | None, Path | None]:
    path = report_path(run, report)
    data = read_json(path) if path is not None else None
    return data, (path if data is not None else None)


def _weights_section(fields: dict) -> list[str]:
    lines = []
    for name, info in (fields.get("runs") or {}).items():
        config = read_json(Path(info["run"]) / "best" / "meta.json") or read_json(Path(info["run"]) / "meta.json") or {}
        recipe = config.get("config") or {}
        pretrained = (recipe.get("model") or {}).get("pretrained")
        licence = recipe.get("licence") or recipe.get("license")
        lines.append(f"- {name}: run {info['run']} (checkpoint {info.get('checkpoint_hash')}); initial weights: "
                     f"{pretrained or 'random initialisation (none recorded)'}; licence: "
                     f"{licence or 'not recorded by the run'}")
    return lines


def model_card_text(*, run: str | os.PathLike, fields: dict, report: str | os.PathLike | None = None) -> str:
    """The model card's Markdown for the bundle ``fields`` (:mod:`release.manifest`) of fusion run ``run``."""
    run = Path(run)
    meta = read_json(run / "best" / "meta.json") or read_json(run / "meta.json") or {}
    pipeline = (meta.get("config") or {}).get("pipeline") or {}
    class_names = list(fields["class_names"])
    data_lines, synthetic = _data_section(pipeline, class_names)
    report_data, report_path = _report_for(run, report)
    lines = ["# Model card", "",
             f"Group-level emotion recognition from video: {len(class_names)} classes ({', '.join(class_names)}), "
             f"streams {', '.join(fields['streams'])} fused by the {fields['fusion_head']['name']} head. Exported by "
             f"tools/export.py at commit {fields.get('exported_by')} from {run}.", "",
             "## Training data", "", *data_lines,
             "## Metrics", ""]
    lines += (metrics_section(report_data, run) if report_data else
              ["No report.json found for this run (tools/report.py writes one; tools/export.py --report PATH "
               "names it): no val/test metrics are recorded in this card.", ""])
    lines += ["## Intended use", "",
              "Research on group-level affect: estimating the overall emotion (valence) a video clip of a group "
              "conveys, for studies, demonstrations and benchmarking against VGAF-style datasets.", "",
              "## Out-of-scope uses", "",
              "- Decisions about individuals (hiring, grading, policing, health, credit or any other consequential "
              "decision): the system rates a clip as a whole, not the people in it, and was not validated for that.",
              "- Surveillance: monitoring people, crowds or workplaces without their informed consent.",
              "- Inferring a person's inner state: the labels are perceived group affect in short clips.", "",
              "## Known limits", ""]
    if synthetic:
        lines.append("- Trained on synthetic clips only (cartoon faces, tones, drawn motion): its numbers say that the "
                     "pipeline works, not how it does on real people; do not use it on real videos for anything but "
                     "testing the code path.")
    lines += ["- Groups, languages, cultures and recording conditions not in the training data are not covered; "
              "the data section above is all the runs record about what was seen.",
              "- Face detection (MTCNN, facenet-pytorch) misses small, turned or occluded faces; the face stream "
              "is then missing and the head predicts from the others.",
              "- Probabilities are calibrated with each run's temperature fitted on val "
              f"({fields.get('temperatures')}).",
              "", "## Runs, initial weights and licences", "", *_weights_section(fields), "",
              "The code's licence: the repository's LICENSE file (MIT). Dataset licences are not recorded by the runs "
              "unless listed above.", ""]
    if report_path is not None:
        lines += [f"Report: {report_path}", ""]
    return "\n".join(lines)


def write_model_card(path: str | os.PathLike, *, run: str | os.PathLike, fields: dict,
                     report: str | os.PathLike | None = None) -> None:
    """Write :func:`model_card_text` to ``path`` (atomically)."""
    atomic_write_text(path, model_card_text(run=run, fields=fields, report=report))
