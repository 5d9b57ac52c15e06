"""Every trainable recipe under configs/, trained for a few steps on the processes ``accelerate
launch`` started, with Accelerate's default DDP settings (no ``find_unused_parameters``); before
each optimizer step it records which trainable parameters have no gradient, or a non-finite one.

    accelerate launch --config_file configs/accelerate/cpu_2proc.yaml tests/training/ddp_recipe_check.py OUT

(tests/training/test_ddp_recipes.py launches it on 2 CPU processes.) Each recipe trains through its
real tool (``tools/<tool>.py``'s ``main``, in this process) and the real loop
(:func:`training.loop.fit`): the tool builds the model and datasets, the loop prepares them with
``Accelerator.prepare``. The only addition is an observer: ``fit`` is wrapped to learn the model,
and a global optimizer step pre-hook looks at every ``requires_grad`` parameter after DDP has
reduced the gradients. A parameter with ``requires_grad=False`` (a frozen encoder) is not trained
and is not checked. When any process finds a parameter without a gradient, all processes stop that
recipe together (DDP would fail at the next step with "Expected to have finished reduction in the
prior iteration") and go on to the next recipe; any other error stops the check.

Which recipes (:func:`recipes_to_check`): each ``configs/<folder>/*.yaml`` of a folder in
:data:`TOOLS` (the recipe folders of the four training tools). A recipe another recipe of its folder
derives from (``base:``) is checked through the derived ones, the same code at test size
(``streams/visual.yaml`` through ``visual_tiny.yaml``); a fusion recipe whose head is fitted in one
pass (no gradient) has no DDP and is listed as such. Every recipe gets the train settings in
:data:`TRAIN_SETTINGS` (one epoch of 3 or 4 steps of 4 samples, 2 per process) and the image sizes
in :data:`TEST_SIZE`; its network is the one the recipe builds.

Writes ``OUT/rank<R>.json``: recipe (``streams/speech_tiny.yaml``) -> ``{"steps", "parameters",
"missing", "non_finite", "error", "seconds"}`` (``missing``/``non_finite``: parameter names;
``error``: what stopped the recipe, ``"did not finish"`` when the process died in it), rewritten
before and after each recipe; ``OUT/data/`` holds the fabricated inputs, ``OUT/runs/`` the run
directories.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
#: recipe folder -> the tool that trains its recipes and that tool's data flag
TOOLS = {"streams": ("train_stream", "--cache"), "fusion": ("train_fusion", "--features"),
         "keyframes": ("train_keyframe_scorer", "--data"), "faces": ("train_face_pretrain", "--data")}
#: config folders that hold no training recipe, and what they hold instead
NOT_TRAINING = {"accelerate": "launcher settings", "features": "feature extraction recipes",
                "preprocess": "preprocessing recipes", "shared": "blocks other recipes name as base:",
                "slurm": "Slurm job scripts"}
#: every recipe's test size: one epoch of 3 optimizer steps (12 train samples, global batch 4; 4 steps
#: for fer2013_tiny's 14 images), plain SGD (no optimizer state to save; which parameters get a
#: gradient does not depend on the optimizer)
TRAIN_SETTINGS = ("train.epochs=1", "train.batch_size=4", "train.num_workers=0",
                  "train.optimizer={name: sgd, lr: 0.001, momentum: 0.0}")
#: smaller images for the full-width 2D ResNet-50s (the networks stay as their recipes build them)
TEST_SIZE = {"keyframes": ("data.input_size=32",), "faces": ("data.input_size=48",)}
#: training folder -> its fabricated data under OUT/data
DATA = {"streams": "cache", "fusion": "features", "keyframes": "groupemow", "faces": "fer2013"}
CLASSES = ["Positive", "Neutral", "Negative"]
TRAIN_SAMPLES, VAL_SAMPLES = 12, 4


@dataclass(frozen=True)
class Recipe:
    """One recipe file: ``name`` (``folder/file.yaml``) and, when it is not trained here, why
    (``covered_by``: the recipes deriving from it; ``reason``: why it has no DDP)."""

    path: Path
    name: str
    covered_by: tuple[str, ...] = ()
    reason: str | None = None

    @property
    def trained(self) -> bool:
        return not self.covered_by and self.reason is None


def recipes_to_check(configs: Path = CONFIGS) -> list[Recipe]:
    """Every recipe file of the training folders (:data:`TOOLS`), sorted by name; raises
    ``ValueError`` naming a config folder that is neither a training folder nor in
    :data:`NOT_TRAINING` (a new kind of recipe this check does not know how to train)."""
    from core.config import load_yaml
    from fusion.heads import FUSION_HEADS, head_name

    unknown = sorted(p.name for p in configs.iterdir() if p.is_dir() and p.name not in {*TOOLS, *NOT_TRAINING})
    if unknown:
        raise ValueError(f"config folders {unknown} are unknown to {Path(__file__).name}: add them to TOOLS "
                         "(their recipes train) or NOT_TRAINING")
    recipes = []
    for folder in sorted(TOOLS):
        files = sorted((configs / folder).glob("*.yaml"))
        derived: dict[Path, list[str]] = {}
        for f in files:
            base = load_yaml(f).get("base")
            if base is not None:
                derived.setdefault((f.parent / base).resolve(), []).append(f"{folder}/{f.name}")
        for f in files:
            name = f"{folder}/{f.name}"
            reason = None
            if folder == "fusion" and not FUSION_HEADS[head_name(load_yaml(f).get("model"))].gradient:
                reason = "its head is fitted in one pass, without gradients"
            recipes.append(Recipe(f, name, tuple(derived.get(f.resolve(), ())), reason))
    return recipes


# ----------------------------------------------------------------------------------- fabricated data


def _write_stream_cache(root: Path) -> None:
    """Clips with an array of every stream (as streams/cache.py lays them out), random content."""
    rng = np.random.default_rng(0)
    for split, n in (("train", TRAIN_SAMPLES), ("val", VAL_SAMPLES)):
        for i in range(n):
            clip = root / f"{split}_{i:03d}"
            clip.mkdir(parents=True)
            arrays = {
                "keyframes.npy": rng.integers(0, 256, (8, 40, 40, 3), dtype=np.uint8),
                "mel.npy": rng.normal(-40, 10, (128, 40)).astype(np.float16),
                "flow.npy": rng.integers(0, 256, (8, 2, 64, 64), dtype=np.uint8),
                "faces.npy": rng.integers(0, 256, (8, 48, 48, 3), dtype=np.uint8),
                "speech.npy": rng.normal(0, 0.1, 40000).astype(np.float16),
            }
            for file, array in arrays.items():
                np.save(clip / file, array)
            meta = {"clip_id": clip.name, "split": split, "label": i % 3, "class_names": CLASSES,
                    "arrays": {s: "fabricated" for s in ("visual", "audio", "flow", "face", "speech")},
                    "has_audio": True, "n_faces": 1, "flow": {"bound": 20.0}}
            (clip / "meta.json").write_text(json.dumps(meta), encoding="utf-8")


def _write_groupemow(root: Path) -> None:
    rng = np.random.default_rng(0)
    for split, n in (("train", TRAIN_SAMPLES), ("val", VAL_SAMPLES)):
        for i in range(n):
            path = root / split / ("positive", "neutral", "negative")[i % 3] / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            assert cv2.imwrite(str(path), rng.integers(0, 256, (36, 48, 3), dtype=np.uint8))


def write_data(root: Path) -> dict[str, Path]:
    """The inputs of each training folder's tool, at ``root /`` :data:`DATA` ``[folder]`` (returned)."""
    from synthetic.fer2013 import generate_fer2013
    from tests.conftest import load_helper

    toy = load_helper(REPO / "tests" / "fusion" / "toy_features.py", "tests_fusion_toy_features")
    data = {folder: root / sub for folder, sub in DATA.items()}
    _write_stream_cache(data["streams"])
    # some clips miss audio or faces: the heads' learned defaults are in play
    toy.write_feature_dir(data["fusion"], {"visual": 12, "audio": 6, "flow": 6, "face": 6},
                          splits={"train": TRAIN_SAMPLES, "val": VAL_SAMPLES}, missing={"audio": 0.3, "face": 0.3})
    _write_groupemow(data["keyframes"])
    # 14 train images of the 7 classes: 12 once fer2013_valence drops Surprise
    generate_fer2013(data["faces"], form="csv", n_train=TRAIN_SAMPLES + 2, n_val=VAL_SAMPLES + 3, seed=0)
    return data


# ---------------------------------------------------------------------------------------- the check


class MissingGradients(RuntimeError):
    """Some process found a trainable parameter without a finite gradient before an optimizer step."""


class GradientCheck:
    """Watches the model :func:`training.loop.fit` trains (:meth:`watch` wraps ``fit``) and, before
    each optimizer step, records that model's ``requires_grad`` parameters whose gradient is
    ``None`` or not finite (:meth:`before_step`, a global optimizer step pre-hook)."""

    def __init__(self) -> None:
        self.model: torch.nn.Module | None = None
        self.report: dict | None = None

    def watch(self, fit):
        def watched_fit(*, model, **kwargs):
            self.model = model
            self.report.update(parameters=sum(p.requires_grad for p in model.parameters()))
            try:
                return fit(model=model, **kwargs)
            finally:
                self.model = None
        return watched_fit

    def before_step(self, optimizer, args, kwargs) -> None:
        if self.model is None:
            return
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        missing = [n for n, p in named if p.grad is None]
        non_finite = [n for n, p in named if p.grad is not None and not bool(torch.isfinite(p.grad).all())]
        report = self.report
        report["steps"] += 1
        report["missing"] = sorted(set(report["missing"]) | set(missing))
        report["non_finite"] = sorted(set(report["non_finite"]) | set(non_finite))
        bad = torch.tensor([float(bool(missing or non_finite))])
        if torch.distributed.is_initialized():  # every process stops the recipe at the same step
            torch.distributed.all_reduce(bad, op=torch.distributed.ReduceOp.MAX)
        if bad.item() > 0:
            raise MissingGradients(f"step {report['steps']}: no gradient for {missing}, non-finite in {non_finite}")


def run_recipe(recipe: Recipe, data: Path, out: Path, check: GradientCheck) -> dict:
    """Train ``recipe`` with its tool on ``data`` into ``out``; returns its report (the check's
    findings and the error that stopped it, if any)."""
    from tests.conftest import load_tool
    from training import loop

    tool_name, data_flag = TOOLS[recipe.name.split("/")[0]]
    tool = load_tool(tool_name)
    # the training modules call fit by the name they imported it under
    patched = [m for m in list(sys.modules.values()) if m is not loop and getattr(m, "fit", None) is loop.fit]
    for module in patched:
        module.fit = check.watch(loop.fit)
    check.report = report = {"steps": 0, "parameters": 0, "missing": [], "non_finite": [], "error": None}
    start = time.perf_counter()
    try:
        tool.main(["--config", str(recipe.path), data_flag, str(data), "--out", str(out),
                   "--set", *TRAIN_SETTINGS, *TEST_SIZE.get(recipe.name.split("/")[0], ())])
    except MissingGradients as e:
        report["error"] = f"{type(e).__name__}: {e}"
    finally:
        for module in patched:
            module.fit = loop.fit
        report["seconds"] = round(time.perf_counter() - start, 1)
    return report


def main(out: Path) -> int:
    from accelerate import PartialState

    from core.storage import atomic_write_json

    # a process that stops while the other waits in a collective fails after 2 minutes, not 30
    state = PartialState(cpu=True, timeout=timedelta(minutes=2))
    if state.is_main_process:
        write_data(out / "data")
    state.wait_for_everyone()
    check = GradientCheck()
    register_optimizer_step_pre_hook(check.before_step)
    reports: dict[str, dict] = {}
    for recipe in recipes_to_check():
        if not recipe.trained:
            continue
        # a process that dies (gloo aborts on a collective mismatch) leaves this entry
        reports[recipe.name] = {"error": "did not finish"}
        atomic_write_json(out / f"rank{state.process_index}.json", reports)
        try:
            reports[recipe.name] = run_recipe(recipe, out / "data" / DATA[recipe.name.split("/")[0]],
                                              out / "runs" / recipe.name.replace("/", "_"), check)
        except Exception as e:
            reports[recipe.name] = {**(check.report or {}), "error": f"{type(e).__name__}: {e}"}
            raise  # the processes may no longer agree on what comes next
        finally:
            atomic_write_json(out / f"rank{state.process_index}.json", reports)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
