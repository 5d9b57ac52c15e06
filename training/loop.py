"""The one training loop (HF Accelerate) used by the keyframe scorer, the four streams and fusion.

``fit`` trains a classifier ``model(inputs) -> logits (B, C)`` on a dataset of ``(inputs, label)``
items (``inputs`` a Tensor or a dict of Tensors, ``label`` an int class index), evaluates on a
validation set, and keeps a run directory (layout in :mod:`training.checkpoints`) from which an
interrupted run resumes exactly. Validation gathers predictions as :mod:`training.evaluation` does.

The ``train:`` section (its keys and defaults) is documented in :mod:`training.train_config`; the
run directory in :mod:`training.run_directory`; processes in :mod:`training.processes`.

Epochs are numbered from 1. Before epoch ``e`` the loop calls ``train_dataset.set_epoch(e)`` if the
dataset has it, and asks for each item as ``(index, e)`` (:class:`training.data_loaders.EpochItems`),
so the dataset's copy in each DataLoader worker (workers live across epochs) is set to ``e`` too:
datasets that seed their augmentation from (seed, epoch, index) make a killed-and-resumed run reach
exactly the weights of an uninterrupted one, with or without workers.

Several processes (``accelerate launch`` / ``torchrun``, see ``configs/accelerate/``)
----------------------------------------------------------------------------------------
Every process builds the same model and datasets and runs ``fit``; DDP keeps the weights equal.
Each process trains on its share of every global batch (the shuffled order depends only on
(seed, epoch), so all processes agree on it; Accelerate deals out the batches). Dropout and other
global-RNG draws are seeded per (seed, epoch, process). Only the main process writes the run
directory (config.yaml, checkpoints, train.log, tb/, metrics.json; ``state/`` also gets one RNG
file per process from Accelerate); the other processes log warnings only. On resume every
process loads the same ``state/`` (also with a different number of processes: the global batch
stays the same). Validation gathers the predictions of all processes and drops the samples
Accelerate repeats to even out the last batch, so the metrics equal those of one process. Processes
launched on a machine without a GPU run on the CPU (gloo); the run dir must be on a filesystem
that every node sees.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from accelerate import Accelerator
from accelerate.utils import set_seed
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from core.storage import atomic_write_json, atomic_write_text
from training.batch_norm import (
    NO_BATCH_NORM,
    SMALL_DEVICE_BATCH,
    convert_to_sync_batchnorm,
    recompute_bn_statistics,
    revert_sync_batchnorm,
    sync_batchnorm_wanted,
)
from training.checkpoints import WEIGHTS_NAME, link_checkpoint, save_checkpoint
from training.cuda_settings import channels_last_inputs, cuda_speed_settings, use_channels_last_3d
from training.data_loaders import build_loaders, draw_as_a_fresh_loader_would, stop_workers
from training.evaluation import gather_predictions, logits_report
from training.metrics import format_report, render_confusion_matrix
from training.processes import (
    derive_seed,
    launcher_mixed_precision,
    make_accelerator,
    partial_state,
)
from training.run_directory import (
    RunConfigMismatchError,
    check_existing_run,
    clear_run_dir,
    load_state,
    metrics_record,
    read_progress,
    recover_state_dir,
    run_config_record,
    save_state,
)
from training.tensorboard_logs import log_hparams, log_pr_curves
from training.train_config import build_optimizer, lr_factor, plan_batches, resolve_train_config

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN/inf; raised before the update, so the last checkpoint is intact.

    ``epoch`` is 1-based, ``step`` the 1-based batch within the epoch, ``loss`` the value seen.
    """

    def __init__(self, message: str, *, epoch: int, step: int, loss: float):
        super().__init__(message)
        self.epoch, self.step, self.loss = epoch, step, loss


# ------------------------------------------------------------------------------------------------ fit


def fit(*, model: torch.nn.Module, train_dataset: Dataset, val_dataset: Dataset | None,
        class_names: Sequence[str], cfg: Mapping[str, Any] | None, out_dir: str | os.PathLike,
        collate_fn: Callable | None = None, loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        callbacks: Iterable[Callable[[int, dict], None]] = (), fresh: bool = False,
        recipe: Mapping[str, Any] | None = None, checkpoint_meta: Mapping[str, Any] | None = None) -> dict:
    """Train ``model`` and keep the run directory ``out_dir``; returns the run's metrics dict.

    ``model(inputs) -> logits (B, C)`` with ``C == len(class_names)``; dataset items are
    ``(inputs, label)``. ``loss_fn(logits (B, C) float32, labels (B,) int64) -> scalar``; default
    cross-entropy with ``cfg['label_smoothing']``. ``callbacks``: ``cb(epoch, epoch_record)`` on the
    main process after each epoch's checkpoints are written. ``recipe``: the rest of the recipe
    (model, data sections) to record in ``config.yaml``/``meta.json`` and to compare on resume.
    ``checkpoint_meta``: more JSON-ready fields for every checkpoint's ``meta.json`` (e.g. what was
    loaded from a pretrained file), not compared on resume.

    Re-running on the same ``out_dir`` resumes after the last completed epoch; a finished run with
    the same config returns its stored metrics; a different config (other than the keys
    :class:`~training.train_config.TrainSettings` names as resumable: ``epochs``, ``num_workers``,
    the batch split, ``mixed_precision`` and the speed and saving settings) raises
    :class:`RunConfigMismatchError`. ``fresh=True`` first deletes the run
    files (only the entries of the run layout, see ``RUN_ENTRIES``). After training the model holds
    the weights of the last epoch (the best ones are in ``out_dir/best``); when a finished run is
    reused the model is left untouched. Extending ``epochs`` of a cosine schedule re-stretches the
    remaining schedule over the new length.

    Returned dict: ``history`` (per epoch: epoch, train_loss, train_acc, val_loss, val_acc,
    val_macro_f1, lr), ``best_epoch``, ``best_val_acc``, ``best_val_report``, ``class_names``,
    ``batch_plan``, ``run_dir``, ``finished``.
    """
    tc = resolve_train_config(cfg)
    class_names = [str(c) for c in class_names]
    if not class_names:
        raise ValueError("class_names is empty")
    out_dir = Path(out_dir)
    run_config = run_config_record(tc, class_names, recipe)
    num_processes = partial_state().num_processes
    grad_accum, per_device, plan_text = plan_batches(tc["batch_size"], num_processes, tc["grad_accum_steps"],
                                                     tc["max_device_batch"])
    batch_plan = {"num_processes": num_processes, "grad_accum_steps": grad_accum, "per_device_batch": per_device,
                  "description": plan_text}
    accelerator = make_accelerator(tc["mixed_precision"], grad_accum, out_dir)
    try:
        sync_bn, why = sync_batchnorm_wanted(tc["sync_batchnorm"], model=model, num_processes=num_processes,
                                             per_device=per_device, device=accelerator.device)
        batch_plan["sync_batchnorm"] = sync_bn
        with _run_log(accelerator, out_dir, fresh=fresh):
            _warn_if_launcher_disagrees(accelerator, tc)
            reused = check_existing_run(out_dir, run_config, tc)
            if reused is not None:
                log.info("%s: already finished (%d epochs), reusing the stored metrics", out_dir, tc["epochs"])
                return reused
            progress = _open_run_dir(accelerator, out_dir, tc, run_config)
            log.info("%s: %s", out_dir, plan_text)
            run = _TrainingRun(accelerator=accelerator, tc=tc, class_names=class_names, run_config=run_config,
                               out_dir=out_dir, batch_plan=batch_plan, callbacks=tuple(callbacks),
                               checkpoint_meta=dict(checkpoint_meta or {}))
            _log_sync_batchnorm(accelerator, sync_bn, why, per_device)
            replaced = convert_to_sync_batchnorm(model) if sync_bn else []
            try:
                with cuda_speed_settings(tc, accelerator.device):
                    return _train(run, model=model, train_dataset=train_dataset, val_dataset=val_dataset,
                                  collate_fn=collate_fn, loss_fn=loss_fn, progress=progress, per_device=per_device)
            finally:
                revert_sync_batchnorm(replaced)  # the caller's model keeps its own BatchNorm classes
    finally:
        accelerator.unwrap_model(model, keep_fp32_wrapper=False)  # undo the autocast wrapper on the caller's model
        accelerator.free_memory()


@contextlib.contextmanager
def _run_log(accelerator: Accelerator, out_dir: Path, *, fresh: bool) -> Iterator[None]:
    """Clear the run directory if ``fresh``, create it, and send this module's log to
    ``train.log`` on the main process (the other processes only warn) while the block runs."""
    is_main = accelerator.is_main_process
    if fresh and is_main:
        clear_run_dir(out_dir)
    if is_main:
        out_dir.mkdir(parents=True, exist_ok=True)
    accelerator.wait_for_everyone()
    handler = None
    old_level = log.level
    if is_main:
        handler = logging.FileHandler(out_dir / "train.log", encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
        log.addHandler(handler)
        if log.getEffectiveLevel() > logging.INFO:
            log.setLevel(logging.INFO)
    else:
        log.setLevel(logging.WARNING)  # the main process tells the story once; the others only warn
    try:
        yield
    finally:
        if handler is not None:
            log.removeHandler(handler)
            handler.close()
        log.setLevel(old_level)


def _log_sync_batchnorm(accelerator: Accelerator, sync_bn: bool, why: str, per_device: int) -> None:
    if not accelerator.is_main_process or why == NO_BATCH_NORM:
        return
    if sync_bn:
        log.info("SyncBatchNorm: on (%s)", why)
    elif accelerator.num_processes > 1 and per_device < SMALL_DEVICE_BATCH:
        log.warning("BatchNorm trains on %d samples per device, each process on its own (%s); its batch statistics "
                    "are noisy at this size", per_device, why)


def _warn_if_launcher_disagrees(accelerator: Accelerator, tc: dict) -> None:
    launcher_mp = launcher_mixed_precision()
    if accelerator.is_main_process and launcher_mp not in (None, "no", tc["mixed_precision"]):
        log.warning("accelerate launch asked for mixed_precision=%s, but the recipe says train.mixed_precision=%s, "
                    "which is used (pass --set train.mixed_precision=%s to follow the launcher)",
                    launcher_mp, tc["mixed_precision"], launcher_mp)


def _open_run_dir(accelerator: Accelerator, out_dir: Path, tc: dict, run_config: dict) -> dict | None:
    """Finish an interrupted state swap, read the progress of an interrupted run (``None`` for a new
    one) and write ``config.yaml``."""
    state_dir = out_dir / "state"
    if accelerator.is_main_process:
        recover_state_dir(out_dir)
    accelerator.wait_for_everyone()
    progress = read_progress(state_dir)
    if progress is not None and progress["epoch"] > tc["epochs"]:
        raise RunConfigMismatchError(
            f"{state_dir / 'progress.json'}: the run already completed {progress['epoch']} epochs, more than "
            f"train.epochs={tc['epochs']}; use --fresh or a new out dir")
    if accelerator.is_main_process:
        atomic_write_text(out_dir / "config.yaml", yaml.safe_dump(run_config, sort_keys=False))
    return progress


@dataclass
class _TrainingRun:
    """What the epoch loop works with: the run's fixed settings and its progress so far."""

    accelerator: Accelerator
    tc: dict
    class_names: list[str]
    run_config: dict
    out_dir: Path
    batch_plan: dict
    callbacks: tuple
    checkpoint_meta: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    best_epoch: int | None = None
    best_val_acc: float | None = None
    best_report: dict | None = None
    global_step: int = 0

    def progress(self, epoch: int) -> dict:
        return {"epoch": epoch, "global_step": self.global_step, "history": self.history,
                "best_epoch": self.best_epoch, "best_val_acc": self.best_val_acc,
                "best_val_report": self.best_report}


def _train(run: _TrainingRun, *, model, train_dataset, val_dataset, collate_fn, loss_fn, progress: dict | None,
           per_device: int) -> dict:
    accelerator, tc = run.accelerator, run.tc
    set_seed(tc["seed"])
    train_loader, val_loader = build_loaders(accelerator, train_dataset, val_dataset, tc, per_device, collate_fn)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no parameter with requires_grad=True: nothing to train")
    channels_last = use_channels_last_3d(model, tc, accelerator.device)  # before the optimizer sees the weights
    optimizer = build_optimizer(params, tc["optimizer"])
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(tc))
    objects = [model, optimizer, train_loader, scheduler] + ([val_loader] if val_loader is not None else [])
    prepared = accelerator.prepare(*objects)
    model, optimizer, train_loader, scheduler = prepared[:4]
    val_loader = prepared[4] if val_loader is not None else None
    criterion = loss_fn or torch.nn.CrossEntropyLoss(label_smoothing=float(tc["label_smoothing"]))
    start_epoch = _resume(run, progress)

    writer = None
    if accelerator.is_main_process:
        from torch.utils.tensorboard import SummaryWriter  # imported here: loads tensorboard
        writer = SummaryWriter(log_dir=str(run.out_dir / "tb"))
    try:
        for epoch in range(start_epoch, tc["epochs"] + 1):
            # re-derived each epoch so a resumed run does not depend on restoring RNG state
            set_seed(derive_seed(tc["seed"], "epoch", epoch), device_specific=True)
            if hasattr(train_dataset, "set_epoch"):
                train_dataset.set_epoch(epoch)
            train_loader.set_epoch(epoch)  # the sampler's epoch: also what each worker's dataset copy is set to
            draw_as_a_fresh_loader_would(train_loader)
            lr = float(optimizer.param_groups[0]["lr"])
            train_loss, train_acc, run.global_step = _train_one_epoch(
                accelerator=accelerator, model=model, loader=train_loader, optimizer=optimizer, criterion=criterion,
                grad_clip=tc["grad_clip"], epoch=epoch, epochs=tc["epochs"], global_step=run.global_step,
                writer=writer, out_dir=run.out_dir, channels_last=channels_last)
            scheduler.step()
            record: dict[str, Any] = {"epoch": epoch, "train_loss": train_loss, "train_acc": train_acc,
                                      "val_loss": None, "val_acc": None, "val_macro_f1": None, "lr": lr}
            if tc["precise_bn_batches"]:  # every epoch writes a checkpoint, validated or not
                recompute_bn_statistics(accelerator, model, train_loader, tc["precise_bn_batches"], epoch=epoch)
            report = None
            if val_loader is not None and (epoch % tc["eval_every"] == 0 or epoch == tc["epochs"]):
                report = _validate(accelerator, model, val_loader, run.class_names, record, writer)
            _end_epoch(run, model, record, report, writer)
        return _finish(run, writer)
    finally:
        if writer is not None:
            writer.close()
        for loader in (train_loader, val_loader):
            if loader is not None:
                loader.end()  # an exception mid-epoch leaves the loader registered in Accelerate's GradientState
                stop_workers(loader)


def _resume(run: _TrainingRun, progress: dict | None) -> int:
    """Load the saved Accelerate state and progress of an interrupted run into ``run``; returns the
    first epoch to train (1 for a new run)."""
    if progress is None:
        return 1
    state_dir = run.out_dir / "state"
    try:
        load_state(run.accelerator, state_dir)
    except (RuntimeError, OSError, ValueError, KeyError) as e:
        raise ValueError(f"{state_dir}: cannot resume from this saved state ({type(e).__name__}: {e}); "
                         "use --fresh to start over") from e
    run.history = progress["history"]
    run.best_epoch, run.best_val_acc = progress.get("best_epoch"), progress.get("best_val_acc")
    run.best_report = progress.get("best_val_report")
    run.global_step = progress.get("global_step", 0)
    log.info("%s: resuming after epoch %d from %s", run.out_dir, progress["epoch"], state_dir)
    return progress["epoch"] + 1


def _validate(accelerator: Accelerator, model, val_loader, class_names: list[str], record: dict, writer) -> dict:
    """Score the model on the validation set; fills ``record``'s val fields, returns the report.
    The main process (``writer`` not None) also logs the per-class PR curves."""
    val_loader.set_epoch(0)  # validation data do not depend on the epoch
    _, logits, labels = gather_predictions(accelerator, model, val_loader)
    report = logits_report(logits, labels, class_names)
    record.update(val_loss=float(F.cross_entropy(logits, labels).item()),
                  val_acc=report["accuracy"], val_macro_f1=report["macro_f1"])
    if writer is not None:
        log_pr_curves(writer, record["epoch"], torch.softmax(logits, dim=1).numpy(), labels.numpy(), class_names)
    return report


def _end_epoch(run: _TrainingRun, model, record: dict, report: dict | None, writer) -> None:
    """Track the best epoch, write the checkpoints, the resume state and ``metrics.json``, log, and
    call the callbacks."""
    accelerator, epoch = run.accelerator, record["epoch"]
    improved = record["val_acc"] is not None and (run.best_val_acc is None or record["val_acc"] > run.best_val_acc)
    if improved:
        run.best_epoch, run.best_val_acc, run.best_report = epoch, record["val_acc"], report
    run.history.append(record)
    saved = epoch % run.tc["save_every"] == 0 or epoch == run.tc["epochs"]
    state_dict = accelerator.get_state_dict(model) if saved or improved else None
    if accelerator.is_main_process:
        meta = {**run.checkpoint_meta, "config": run.run_config, "class_names": run.class_names, "epoch": epoch,
                "metrics": record}
        if saved:  # the weights are written once: best and the resume state link to last's file
            save_checkpoint(run.out_dir / "last", state_dict=state_dict, meta=meta)
            if improved:
                link_checkpoint(run.out_dir / "last", run.out_dir / "best")
        elif improved:
            save_checkpoint(run.out_dir / "best", state_dict=state_dict, meta=meta)
        _log_epoch(writer, record, report, run.class_names, improved, run.tc["epochs"])
    del state_dict
    progress = run.progress(epoch)
    if saved:
        save_state(accelerator, run.out_dir, progress, weights=run.out_dir / "last" / WEIGHTS_NAME)
    if accelerator.is_main_process:
        atomic_write_json(run.out_dir / "metrics.json",
                          metrics_record(progress, run.class_names, run.batch_plan, run.out_dir, finished=False))
        for cb in run.callbacks:
            cb(epoch, dict(record))


def _finish(run: _TrainingRun, writer) -> dict:
    """Write the final ``metrics.json`` (``finished``: true) and the run's HParams entry in
    TensorBoard (main process: ``writer`` not None), and return the metrics."""
    final = metrics_record(run.progress(len(run.history)), run.class_names, run.batch_plan, run.out_dir,
                           finished=True)
    if run.accelerator.is_main_process:
        atomic_write_json(run.out_dir / "metrics.json", final)
        log_hparams(writer, run.run_config, {"best_val_acc": run.best_val_acc}, step=run.tc["epochs"])
        if run.best_report is not None:
            log.info("finished; best epoch %s, val acc %.4f\n%s", run.best_epoch, run.best_val_acc,
                     format_report(run.best_report))
        else:
            log.info("finished (no validation set: no best epoch)")
    run.accelerator.wait_for_everyone()
    return final


def _train_one_epoch(*, accelerator: Accelerator, model, loader, optimizer, criterion, grad_clip, epoch: int,
                     epochs: int, global_step: int, writer, out_dir: Path,
                     channels_last: bool = False) -> tuple[float, float, int]:
    """One epoch of optimizer steps; returns ``(mean train loss, train accuracy, global_step)``.

    The host waits for the device once per optimizer step (not per batch): the losses of the
    batches accumulated into the step are checked for NaN/inf and summed for the log together,
    right before the update (:func:`_check_window`)."""
    model.train()
    device = accelerator.device
    loss_sum = torch.zeros((), device=device, dtype=torch.float64)
    correct = torch.zeros((), device=device, dtype=torch.float64)
    count = torch.zeros((), device=device, dtype=torch.float64)
    window: list[tuple[int, torch.Tensor, int]] = []  # (batch, loss, samples) since the last optimizer step
    bar = tqdm(total=len(loader), desc=f"epoch {epoch}/{epochs}", leave=False, dynamic_ncols=True,
               disable=not accelerator.is_local_main_process)
    try:
        for step, batch in enumerate(loader, start=1):
            inputs, labels = batch
            if channels_last:
                inputs = channels_last_inputs(inputs)
            n = labels.shape[0]
            with accelerator.accumulate(model):
                logits = model(inputs).float()
                loss = criterion(logits, labels)
                loss_value = loss.detach()
                window.append((step, loss_value, n))
                accelerator.backward(loss)  # a non-finite loss reaches the gradients, never the weights
                if accelerator.sync_gradients:
                    window_loss = _check_window(accelerator, window, epoch=epoch, out_dir=out_dir)
                    if grad_clip is not None:
                        accelerator.clip_grad_norm_(model.parameters(), grad_clip)
                optimizer.step()
                optimizer.zero_grad()
            loss_sum += loss_value.double() * n
            correct += (logits.detach().argmax(dim=-1) == labels).sum().double()
            count += n
            if accelerator.sync_gradients:
                global_step += 1
                if writer is not None:
                    writer.add_scalar("train/loss_step", window_loss, global_step)
                bar.set_postfix(loss=f"{window_loss:.4f}")
                window = []
            bar.update(1)
    finally:
        bar.close()
    totals = accelerator.reduce(torch.stack([loss_sum, correct, count]), reduction="sum").cpu()
    n_total = float(totals[2])
    return float(totals[0]) / n_total, float(totals[1]) / n_total, global_step


def _check_window(accelerator: Accelerator, window: list[tuple[int, torch.Tensor, int]], *, epoch: int,
                  out_dir: Path) -> float:
    """Before an optimizer step: raise :class:`NonFiniteLossError` when any process saw a NaN/inf
    loss in the batches ``window`` (``(batch, loss, samples)``; all processes agree via reduce),
    else return this process's sample-weighted mean loss over them. One host sync."""
    losses = torch.stack([loss for _, loss, _ in window]).float()
    bad = (~torch.isfinite(losses)).any().to(torch.float64).reshape(1)
    if accelerator.num_processes > 1:
        bad = accelerator.reduce(bad, reduction="sum")
    weighted = sum(loss.double() * n for _, loss, n in window).reshape(1)
    bad_count, loss_total = torch.cat([bad, weighted]).tolist()
    if bad_count > 0:
        local = [(step, float(loss)) for step, loss, _ in window if not math.isfinite(float(loss))]
        step, value = local[0] if local else (window[-1][0], float(window[-1][1]))
        where = "" if local else " (on another process)"
        raise NonFiniteLossError(
            f"non-finite training loss {value}{where} at epoch {epoch}, batch {step}; stopped before the update. "
            f"The checkpoints and resume state of the last completed epoch in {out_dir} are untouched. "
            "Check the inputs, the learning rate and mixed precision.",
            epoch=epoch, step=step, loss=value)
    return loss_total / sum(n for _, _, n in window)


def _log_epoch(writer, record: dict, report: dict | None, class_names: list[str], improved: bool, epochs: int) -> None:
    e = record["epoch"]
    writer.add_scalar("train/loss", record["train_loss"], e)
    writer.add_scalar("train/acc", record["train_acc"], e)
    writer.add_scalar("lr", record["lr"], e)
    parts = [f"epoch {e}/{epochs}", f"train_loss {record['train_loss']:.4f}", f"train_acc {record['train_acc']:.4f}"]
    if report is not None:
        writer.add_scalar("val/loss", record["val_loss"], e)
        writer.add_scalar("val/acc", record["val_acc"], e)
        writer.add_scalar("val/macro_f1", record["val_macro_f1"], e)
        if improved or e == epochs:  # drawing costs ~0.2 s: only the epochs a reader looks at
            image = render_confusion_matrix(np.asarray(report["confusion_matrix"]), class_names,
                                            title=f"validation, epoch {e}")
            writer.add_image("val/confusion_matrix", image, e, dataformats="HWC")
        parts += [f"val_loss {record['val_loss']:.4f}", f"val_acc {record['val_acc']:.4f}",
                  f"val_macro_f1 {record['val_macro_f1']:.4f}"]
    parts.append(f"lr {record['lr']:.3g}")
    if improved:
        parts.append("(best)")
    writer.flush()
    log.info("  ".join(parts))
