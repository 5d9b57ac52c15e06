"""The bundle's model card is generated from the run and its report: it names every split and
every metric the report has, with intervals, the per-stream contributions, the uses it is not
for, and says what the runs do not record."""
from __future__ import annotations

import json

from release.model_card import METRICS, model_card_text


def _row(name: str, kind: str, split: str, run: str, acc: float) -> dict:
    return {"name": name, "kind": kind, "split": split, "run": run, "clips": 30, "accuracy": acc,
            "ci95": [acc - 0.1, acc + 0.1], "macro_f1": 0.5, "roc_auc": 0.6, "ece": 0.11, "ece_ci95": [0.05, 0.2],
            "nll": 1.01, "nll_ci95": [0.9, 1.2], "brier": 0.61, "brier_ci95": [0.5, 0.7]}


def test_model_card_names_every_split_and_metric_of_the_report(tmp_path):
    run = tmp_path / "fusion"
    splits = ("val", "test", "extra_split")
    report = {"created": "now", "out_dir": "R", "method": {"name": "Concat-FC (the method)"},
              "settings": {"interval": "percentile bootstrap", "confidence": 0.95},
              "splits": {s: {"scored": True, "clips": 30} for s in splits},
              "rows": [_row("Concat-FC (the method)", "fusion_head", s, str(run), 0.7) for s in splits]
              + [_row("visual stream", "stream", s, "x", 0.4) for s in splits],
              "contributions": {s: {"visual": {"difference": 0.25, "interval": [0.1, 0.4]}} for s in splits}}
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    fields = {"class_names": ["Positive", "Neutral", "Negative"], "streams": ["visual"],
              "fusion_head": {"name": "concat_fc"}, "temperatures": {"fusion": 1.0}, "runs": {}, "exported_by": "abc"}
    card = model_card_text(run=run, fields=fields, report=path)
    for split in splits:
        assert f"| {split} | 30 | 0.700 [0.600, 0.800]" in card
    for title in METRICS.values():
        assert title in card
    assert "0.110 [0.050, 0.200]" in card and "0.250 [0.100, 0.400]" in card  # ECE and a contribution
    assert "Out-of-scope" in card and "Surveillance" in card and "individuals" in card


def test_model_card_without_a_report_says_so(tmp_path):
    fields = {"class_names": ["a", "b"], "streams": ["visual"], "fusion_head": {"name": "gated"},
              "temperatures": {}, "runs": {}, "exported_by": "abc"}
    card = model_card_text(run=tmp_path / "fusion", fields=fields, report=tmp_path / "none.json")
    assert "No report.json" in card and "not recorded" in card
