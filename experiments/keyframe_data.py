"""The keyframe ablation's data: one generated set per clip family and seed, named by the hash of
what it was generated with (so a re-run or an extra seed reuses every set it already has), the
scorer's stills when the scorer is trained here, and where each clip's emotion is."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Mapping

from benchmarks.timing import BenchmarkError
from core.config import load_config
from core.storage import config_hash
from experiments.keyframe_settings import SCORER_RECIPE, AblationSettings
from synthetic.cues import VISUAL
from synthetic.group import generate_dataset
from synthetic.peaks import emotion_windows
from training.checkpoints import read_meta

NEUTRAL = "Neutral"
PEAK_CUE = VISUAL
"""The synthetic modality (the wall's colour grade) whose shown class decides whether a clip's
emotion is visible: the cue the keyframe stream reads. A clip whose cue shows Neutral has valence
0, so its moments are invisible and it is left out of salient recall."""


def dataset_params(settings: AblationSettings, family: str, seed: int) -> dict[str, Any]:
    """What one set is generated with (its hash names its folder)."""
    return {"family": family, "off_peak": settings.off_peak, "n_train": settings.n_train, "n_val": settings.n_val,
            "seed": seed, "cue_noise": settings.cue_noise, "duration": settings.duration, "fps": settings.fps,
            "width": settings.width, "height": settings.height}


def data_key(settings: AblationSettings, family: str, seed: int) -> str:
    """``<family>-seed<seed>-<hash>``: the folder name of a set under ``OUT/data`` (and of its
    caches and runs)."""
    return f"{family}-seed{seed}-{config_hash(dataset_params(settings, family, seed))[:8]}"


def generate_family_set(data: Path, settings: AblationSettings, family: str, seed: int) -> bool:
    """Write the set of ``family`` and ``seed`` to ``data`` (no audio, no stills, every clip of
    that family), or reuse the one there (a complete set has its ``synthetic.json``, written
    last). Returns True when it was reused."""
    if (data / "synthetic.json").exists():
        return True
    p = dataset_params(settings, family, seed)
    generate_dataset(data, n_train=p["n_train"], n_val=p["n_val"], n_test=0, seed=seed, cue_noise=p["cue_noise"],
                     duration=p["duration"], width=p["width"], height=p["height"], fps=p["fps"],
                     n_stills_per_class={"train": 0, "val": 0, "test": 0}, audio=False, peak_fraction=1.0,
                     peak_family={"family": family, "off_peak": settings.off_peak}, workers=settings.workers,
                     overwrite=True)
    return False


def train_scorer_here(out: Path, settings: AblationSettings) -> dict[str, Any]:
    """Train the demo scorer recipe (configs/keyframes/scorer_demo.yaml) on GroupEmoW-format
    stills generated into ``out/scorer_data`` (``stills_per_class`` per class in train and val;
    seed ``settings.seed``) into ``out/scorer``. Returns its run's metrics (a finished run is reused)."""
    from keyframes.training import train_scorer

    stills = out / "scorer_data"
    if not (stills / "synthetic.json").exists():
        n = settings.stills_per_class
        generate_dataset(stills, n_train=0, n_val=0, n_test=0, seed=settings.seed, width=settings.width,
                         height=settings.height, n_stills_per_class={"train": n, "val": n, "test": 0}, audio=False,
                         workers=settings.workers, overwrite=True)
    return train_scorer(load_config(SCORER_RECIPE, [f"train.seed={settings.seed}"]), stills / "groupemow",
                        out / "scorer")


def scorer_input_size(scorer: str | os.PathLike) -> int:
    """The size (px) the scorer was trained at (its recipe's ``data.input_size``, 224 when absent)."""
    return int(read_meta(scorer).get("config", {}).get("data", {}).get("input_size", 224))


def clip_truth(metadata: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per clip id (as in the cache: ``Train/1_1``) of a loaded ``synthetic.json``: ``shown``
    (the class its visual cue shows), ``windows`` (where its emotion is, s) and ``duration``."""
    fps = float(metadata["params"]["fps"])
    out = {}
    for split, clips in metadata["clips"].items():
        for clip in clips:
            if clip.get("peak"):
                out[f"{split}/{clip['name']}"] = {"shown": clip["shown"][PEAK_CUE],
                                                   "windows": emotion_windows(clip["peak"]),
                                                   "duration": clip["frames"] / fps}
    return out


def clear_outputs(out: Path) -> None:
    """Delete what an ablation wrote into ``out`` (``--fresh``)."""
    for name in ("data", "scorer", "scorer_data", "caches", "runs", "ablation.json", "ablation.md"):
        path = out / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def read_metadata(data: Path) -> dict[str, Any]:
    path = data / "synthetic.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BenchmarkError(f"{path}: cannot read the set's record ({e}); pass --fresh to start over") from e
