"""A write that fails because the disk is full (simulated, tests/faults/full_disk.py) leaves the
previous file intact and says so: the atomic writes of core/storage.py, a checkpoint
(training/checkpoints.save_checkpoint), the resume state swapped into a run directory
(training/run_directory.save_state), and a training run through tools/train_stream.py, which the
same command finishes once there is space again, as if nothing had happened."""
from __future__ import annotations

import errno
import runpy
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from core.storage import atomic_save_npy, atomic_write_json, atomic_write_text
from tests.conftest import load_helper
from tests.faults.conftest import ROOT, compare_run, runs, train_stream_argv
from training.checkpoints import load_checkpoint, save_checkpoint

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def full_disk(monkeypatch, full, *, after: int = 0):
    return load_helper(Path(__file__).with_name("full_disk.py"), "tests_faults_full_disk").FullDisk(
        monkeypatch, full, after=after)


def files(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` with its bytes (temp files included: none may be left)."""
    return {p.relative_to(directory).as_posix(): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def says_intact(error: BaseException | str, *names: str) -> None:
    text = str(error)
    assert "intact" in text, text
    for name in names:
        assert name in text, (name, text)


WRITERS = {
    "json": ("meta.json", lambda path, v: atomic_write_json(path, {"v": v})),
    "npy": ("mel.npy", lambda path, v: atomic_save_npy(path, np.full(4, v))),
    "text": ("config.yaml", lambda path, v: atomic_write_text(path, f"v: {v}\n")),
}


@pytest.mark.parametrize("kind", WRITERS)
def test_an_atomic_write_on_a_full_disk_keeps_the_previous_file_and_says_so(tmp_path, monkeypatch, kind):
    name, write = WRITERS[kind]
    path = tmp_path / name
    write(path, 1)
    before = files(tmp_path)
    disk = full_disk(monkeypatch, lambda p: Path(p).parent == tmp_path)
    with pytest.raises(OSError) as info:
        write(path, 2)
    monkeypatch.undo()
    assert disk.refused
    assert info.value.errno == errno.ENOSPC
    says_intact(info.value, str(path))
    assert files(tmp_path) == before  # the old bytes, and no temp file


def test_a_first_write_on_a_full_disk_leaves_nothing_and_says_so(tmp_path, monkeypatch):
    name, write = WRITERS["json"]
    disk = full_disk(monkeypatch, lambda p: Path(p).parent == tmp_path)
    with pytest.raises(OSError) as info:
        write(tmp_path / name, 1)
    monkeypatch.undo()
    assert disk.refused and info.value.errno == errno.ENOSPC
    assert str(tmp_path / name) in str(info.value) and "no meta.json was written" in str(info.value)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("failing", ["model.safetensors", "meta.json"])
def test_a_checkpoint_written_on_a_full_disk_keeps_the_previous_checkpoint_and_says_so(tmp_path, monkeypatch,
                                                                                       failing):
    ckpt = tmp_path / "last"
    old = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.ones(3)}
    save_checkpoint(ckpt, state_dict=old, meta={"epoch": 1})
    before = files(ckpt)
    disk = full_disk(monkeypatch, lambda p: Path(p).parent == ckpt and failing in Path(p).name)
    with pytest.raises(OSError) as info:
        save_checkpoint(ckpt, state_dict={"w": torch.zeros(2, 3), "b": torch.zeros(3)}, meta={"epoch": 2})
    monkeypatch.undo()
    assert disk.refused
    says_intact(info.value, str(ckpt))
    assert files(ckpt) == before
    state, meta = load_checkpoint(ckpt)
    assert meta["epoch"] == 1 and all(torch.equal(state[k], old[k]) for k in old)


@pytest.mark.parametrize("failing", ["model.safetensors", "progress.json"])
def test_a_resume_state_saved_on_a_full_disk_keeps_the_previous_state_and_says_so(tmp_path, monkeypatch, failing):
    from training.processes import make_accelerator
    from training.run_directory import read_progress, save_state

    accelerator = make_accelerator(None, 1, tmp_path)
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model, optimizer = accelerator.prepare(model, optimizer)
    save_state(accelerator, tmp_path, {"epoch": 1, "history": [{"epoch": 1}]})
    before = files(tmp_path)
    disk = full_disk(monkeypatch, lambda p: ".state.tmp" in p and Path(p).name.lstrip(".").startswith(failing))
    with torch.no_grad():
        model.weight.add_(1.0)
    with pytest.raises(OSError) as info:
        save_state(accelerator, tmp_path, {"epoch": 2, "history": [{"epoch": 1}, {"epoch": 2}]})
    monkeypatch.undo()
    assert disk.refused
    says_intact(info.value, str(tmp_path / "state"), "epoch 1")
    assert files(tmp_path) == before  # the previous state, and nothing of the failed one
    assert read_progress(tmp_path / "state")["epoch"] == 1


# ------------------------------------------------------------------------ through tools/train_stream.py


def train_stream(argv: list[str], monkeypatch) -> int:
    """``python tools/train_stream.py argv`` in this process (so the simulated disk applies)."""
    tool = ROOT / "tools" / "train_stream.py"
    monkeypatch.setattr(sys, "argv", [str(tool), *argv])
    with pytest.raises(SystemExit) as info:
        runpy.run_path(str(tool), run_name="__main__")
    return info.value.code


@pytest.fixture(scope="module")
def stream_runs_in_process(reference_cache, tmp_path_factory):
    """Tiny flow runs trained in this process: ``{"path", "one_epoch", "two_epochs"}``: the 2-epoch
    command stopped once epoch 1 is written (as a kill would stop it) and the same command run
    through. Both were made at ``path`` (paths inside a run compare equal) and moved away; a test
    copies one back."""
    import training.loop

    class StopAfterEpoch1(BaseException):
        pass

    end_epoch = training.loop._end_epoch

    def end_epoch_then_stop(run, model, record, *args):
        end_epoch(run, model, record, *args)
        if record["epoch"] == 1:
            raise StopAfterEpoch1

    base = tmp_path_factory.mktemp("full_disk_runs")
    path = base / "run"
    out = {"path": path}
    argv = train_stream_argv(reference_cache.directory, path)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(training.loop, "_end_epoch", end_epoch_then_stop)
        monkeypatch.setattr(sys, "argv", [str(ROOT / "tools" / "train_stream.py"), *argv])
        with pytest.raises(StopAfterEpoch1):
            runpy.run_path(str(ROOT / "tools" / "train_stream.py"), run_name="__main__")
    out["one_epoch"] = path.rename(base / "one_epoch")
    with pytest.MonkeyPatch.context() as monkeypatch:
        assert train_stream(argv, monkeypatch) == 0
    out["two_epochs"] = path.rename(base / "two_epochs")
    return out


SEAMS = {  # what fails at the end of epoch 2, and the files it must leave as they were after epoch 1
    "checkpoint": (lambda rel: rel.startswith("last/") and "model.safetensors" in rel, ["last"]),
    "resume state": (lambda rel: rel.startswith(".state.tmp/"), ["state"]),
    "metrics.json": (lambda rel: rel.startswith(".metrics.json"), ["metrics.json"]),
}


@pytest.mark.parametrize("seam", SEAMS)
def test_training_on_a_full_disk_stops_saying_what_is_intact_and_the_same_command_finishes_it(
        stream_runs_in_process, reference_cache, monkeypatch, capsys, seam):
    full, kept = SEAMS[seam]
    run = stream_runs_in_process["path"]
    if run.exists():
        shutil.rmtree(run)
    shutil.copytree(stream_runs_in_process["one_epoch"], run)
    before = files(run)
    argv = train_stream_argv(reference_cache.directory, run)  # 2 epochs: epoch 2 hits the full disk
    capsys.readouterr()
    with monkeypatch.context() as m:
        disk = full_disk(m, lambda p: Path(p).is_relative_to(run) and full(Path(p).relative_to(run).as_posix()))
        code = train_stream(argv, m)
    assert disk.refused
    # a full disk is the machine's state, not a bug: one "error:" line naming what is intact, status 2
    assert code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, errors
    says_intact(errors[0])
    for name in kept:
        assert {k: v for k, v in files(run).items() if k == name or k.startswith(f"{name}/")} == \
               {k: v for k, v in before.items() if k == name or k.startswith(f"{name}/")}, name
    assert not runs().temp_files(run)
    assert load_checkpoint(run / "last")[1]["epoch"] in (1, 2)  # loadable whatever the step that failed

    assert train_stream(argv, monkeypatch) == 0  # space again: the same command finishes the run
    assert compare_run(stream_runs_in_process["two_epochs"], run) == []
