"""The error-analysis page: the mean-Shapley table per predicted class and the mistakes, most
confident first, each with its card when one was written."""
from __future__ import annotations

from experiments.error_analysis import errors_markdown


def test_page_lists_the_table_and_the_cards():
    data = {"run": "runs/demo/fusion", "split": "Test", "clips": 3,
            "mistakes": [{"clip": "Test/1", "label": "Positive", "predicted": "Neutral", "confidence": 0.9,
                          "card": "errors/Test_1/explanation.png"},
                         {"clip": "Test/2", "label": "Negative", "predicted": "Neutral", "confidence": 0.6}],
            "mean_shapley": {"Neutral": {"visual": 0.2, "audio": -0.1}}, "clips_per_class": {"Neutral": 3}}
    page = errors_markdown(data, ["visual", "audio"])
    assert "| Neutral | 3 | +0.200 | -0.100 |" in page
    assert "![Test/1](errors/Test_1/explanation.png)" in page
    assert page.index("Test/1") < page.index("Test/2") and "Test_2" not in page
