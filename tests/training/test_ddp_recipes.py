"""Every trainable recipe trains under DDP: on two processes (``accelerate launch`` with
configs/accelerate/cpu_2proc.yaml, gloo) with Accelerate's default DDP settings (no
``find_unused_parameters``), through its real tool and the real loop, every trainable parameter
has a finite gradient before every optimizer step on every process. A parameter that does not take
part in a training forward (a layer wav2vec 2.0's LayerDrop skipped) would make DDP fail at the next
step; a frozen one (``requires_grad=False``, e.g. the speech encoder's front end in speech.yaml) is
not trained and not checked.

One launch of tests/training/ddp_recipe_check.py trains them all, a few steps each; its docstring
says which recipes it finds under configs/ and how each is trained. A new recipe is trained there
and named here, or, in a config folder the check does not know, stops the collection naming it.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from core.config import load_config
from fusion.heads import FUSION_HEADS, head_name
from streams.specs import STREAM_SPECS
from tests.conftest import load_helper

HERE = Path(__file__).parent
CHECK = HERE / "ddp_recipe_check.py"
check = load_helper(CHECK, "tests_training_ddp_recipe_check")
launcher = load_helper(HERE / "launcher.py", "tests_training_launcher")
RECIPES = check.recipes_to_check()
TRAINED = [r.name for r in RECIPES if r.trained]
#: what the check must train whatever else configs/ holds: the five streams at test size, the
#: neural fusion heads, the keyframe scorer and face pretraining
AT_LEAST = {"streams/visual_tiny.yaml", "streams/audio_tiny.yaml", "streams/flow_tiny.yaml",
            "streams/face_tiny.yaml", "streams/speech_tiny.yaml", "fusion/concat_fc.yaml", "fusion/attention.yaml",
            "fusion/cross_attention.yaml", "fusion/gated.yaml", "keyframes/scorer_demo.yaml",
            "faces/fer2013_tiny.yaml"}


def test_the_check_names_a_parameter_left_without_a_gradient():
    class Detour(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.used, self.skipped = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
            self.frozen = torch.nn.Linear(3, 2).requires_grad_(False)

        def forward(self, x):
            return self.used(x) + self.frozen(x)

    model, gradients = Detour(), check.GradientCheck()
    gradients.report = {"steps": 0, "missing": [], "non_finite": []}
    gradients.model = model
    model(torch.ones(4, 3)).sum().backward()
    with pytest.raises(check.MissingGradients, match="skipped.weight"):
        gradients.before_step(None, (), {})
    assert gradients.report == {"steps": 1, "missing": ["skipped.bias", "skipped.weight"], "non_finite": []}
    model.skipped(torch.full((1, 3), float("inf"))).sum().backward()  # now it has one, not finite
    with pytest.raises(check.MissingGradients, match=r"non-finite in \['skipped.weight'\]"):
        gradients.before_step(None, (), {})
    assert gradients.report["steps"] == 2 and gradients.report["non_finite"] == ["skipped.weight"]


@pytest.fixture(scope="module")
def launched(tmp_path_factory) -> tuple[int, str, list[dict]]:
    """``(exit status, output, [the report of rank 0, of rank 1])`` of one launch of the check."""
    out = tmp_path_factory.mktemp("ddp_recipes")
    rc, output = launcher.launch(CHECK, str(out), timeout=900)
    reports = []
    for rank in (0, 1):
        path = out / f"rank{rank}.json"
        reports.append(json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {})
    return rc, output, reports


def test_the_check_trains_every_stream_every_neural_head_the_scorer_and_face_pretraining():
    assert AT_LEAST <= set(TRAINED)
    trained = {r.name: load_config(r.path) for r in RECIPES if r.trained}
    streams = {cfg.get("stream") for name, cfg in trained.items() if name.startswith("streams/")}
    assert streams == set(STREAM_SPECS)
    heads = {head_name(cfg.get("model")) for name, cfg in trained.items() if name.startswith("fusion/")}
    assert heads == {name for name, kind in FUSION_HEADS.items() if kind.gradient}
    by_name = {r.name: r for r in RECIPES}
    for r in RECIPES:
        if not r.trained:  # a full recipe is checked through the test-size recipes deriving from it
            assert r.reason is not None or all(by_name[d].trained for d in r.covered_by), r.name


@pytest.mark.slow  # the launch trains every recipe
@pytest.mark.parametrize("recipe", TRAINED)
def test_every_trainable_parameter_gets_a_finite_gradient_on_both_processes(launched, recipe):
    rc, output, reports = launched
    for rank, report in enumerate(reports):
        assert recipe in report, f"process {rank} did not reach {recipe} (exit status {rc}):\n{output[-5000:]}"
        result = report[recipe]
        assert result["error"] is None, f"process {rank}: {result['error']}\n{output[-5000:]}"
        assert result["missing"] == [], f"process {rank}: no gradient for {result['missing']}"
        assert result["non_finite"] == [], f"process {rank}: non-finite gradient in {result['non_finite']}"
        assert result["steps"] >= 3 and result["parameters"] > 0, result


@pytest.mark.slow  # the launch trains every recipe
def test_the_launch_trains_every_recipe_and_exits_cleanly(launched):
    rc, output, reports = launched
    assert rc == 0, output[-5000:]
    assert [sorted(r) for r in reports] == [sorted(TRAINED)] * 2
