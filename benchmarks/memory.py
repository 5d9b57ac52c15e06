"""Memory: how much GPU memory training a stream recipe needs per device, estimated without a GPU
and without allocating anything.

The network is built and run on **fake tensors** (``torch._subclasses.FakeTensorMode``): tensors
that carry a shape, a dtype and a device but whose storage is on the ``meta`` device, so a 3D
ResNet-101 at batch 16 "runs" in about a second on a CPU machine. They stand in for the
``cuda`` device (plain ``meta`` tensors cannot: autocast has no ``meta`` device type, and
autocast's lists of what runs in reduced precision are per device, CPU's differing from CUDA's,
e.g. CPU autocast keeps ``max_pool3d`` in float32), so the forward takes the CUDA code paths
(cuDNN batch norm) and CUDA's autocast rules.

An estimate is the sum of what a training step holds at the end of its forward pass:

* ``params``: the parameters and buffers (float32 master weights; mixed precision keeps them);
* ``grads``: one float32 gradient per trainable parameter;
* ``optimizer``: the optimizer's state per trainable parameter (SGD with momentum one buffer,
  without momentum none; AdamW two);
* ``activations``: the tensors autograd saves for the backward pass in one training-mode forward
  (and the loss) at the per-device batch, recorded with
  ``torch.autograd.graph.saved_tensors_hooks``. Each is counted by its **storage**, once: a
  tensor saved by two operations (a ReLU's output that the next convolution saves as its input;
  an in-place ReLU writing over its batch norm's output) or a view of another counts once, and
  a storage that holds parameters, buffers or the input batch is left out (counted above /
  below). Under autocast, what is saved in bfloat16 counts 2 bytes, and the bfloat16 copies of
  the weights autocast makes are counted here;
* ``inputs``: the batch as the loader delivers it (its dtype from the stream spec: uint8 RGB
  clips for the visual and face streams, float32 otherwise; int64 labels). A uint8 clip's
  float32 normalised copy, which the first convolution saves, counts as an activation.

Not counted, and covered by the stated margin (:data:`MARGIN`, :data:`RESERVED_GIB`): what
exists only for a moment during the backward pass (the gradient of one activation while the
next is computed), cuDNN's workspaces, the CUDA context and the allocator's fragmentation. Under
multi-GPU DDP each device also holds gradient buckets of about ``grads`` (``ddp_buckets``,
reported beside the total).
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping, Sequence

import torch

from benchmarks.timing import BenchmarkError

GIB = float(1 << 30)

#: common GPU memory sizes (GiB) and cards that have them
GPU_SIZES: dict[int, str] = {16: "V100 16GB, T4", 24: "RTX 3090/4090, A10", 40: "A100 40GB",
                             48: "RTX A6000, L40S", 80: "A100 80GB, H100"}
#: an estimate fits a GPU when ``total * (1 + MARGIN) + RESERVED_GIB`` is at most its size
MARGIN = 0.20
RESERVED_GIB = 1.0

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
#: the recipe's ``train.mixed_precision`` -> the precision estimated by default
RECIPE_PRECISION = {"no": "fp32", "bf16": "bf16", "fp16": "fp16"}


def _storage_key(t: torch.Tensor) -> int:
    return t.untyped_storage()._cdata  # the StorageImpl's address: shared by views and in-place results


@contextlib.contextmanager
def autocast_on(device_type: str, dtype: torch.dtype | None) -> Iterator[None]:
    """Autocast to ``dtype`` (``None``: off) for ``device_type``, set directly on torch's
    per-device autocast state: ``torch.autocast("cuda")`` switches itself off on a machine
    without CUDA, which the fake CUDA tensors need on. Restores the previous state and clears
    the cast-weight cache on exit, as ``torch.autocast`` does."""
    enabled, prev_dtype = torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type)
    torch.set_autocast_enabled(device_type, dtype is not None)
    if dtype is not None:
        torch.set_autocast_dtype(device_type, dtype)
    torch.autocast_increment_nesting()
    try:
        yield
    finally:
        if torch.autocast_decrement_nesting() == 0:
            torch.clear_autocast_cache()
        torch.set_autocast_enabled(device_type, enabled)
        torch.set_autocast_dtype(device_type, prev_dtype)


def saved_activation_bytes(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor | None = None, *,
                           autocast_dtype: torch.dtype | None = None) -> dict:
    """Bytes autograd saves for backward in one forward of ``model`` on ``x`` (and, with labels
    ``y``, the cross-entropy loss), each storage counted once, leaving out storages that hold
    ``model``'s parameters and buffers, ``x`` or ``y`` (the batch is counted as the input). Runs
    under autocast to ``autocast_dtype`` on ``x``'s device type when given. Works on real and on
    fake tensors.

    Returns ``{"bytes", "tensors" (distinct storages counted), "bytes_by_dtype" {dtype name:
    bytes}, "saved_bytes_counted_per_save" (the same tensors counted at every save: what a count
    without the de-duplication would give)}``."""
    excluded = {_storage_key(t) for t in (*model.parameters(), *model.buffers(), x, *([] if y is None else [y]))}
    kept: dict[int, torch.Tensor] = {}  # holds the tensors, so no storage is freed and reused meanwhile
    per_save = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal per_save
        key = _storage_key(t)
        if key not in excluded:
            per_save += t.untyped_storage().nbytes()
            kept.setdefault(key, t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t), \
            autocast_on(x.device.type, autocast_dtype):
        logits = model(x)
        if y is not None:
            torch.nn.functional.cross_entropy(logits.float(), y)
    by_dtype: dict[str, int] = {}
    for t in kept.values():
        name = str(t.dtype).removeprefix("torch.")
        by_dtype[name] = by_dtype.get(name, 0) + t.untyped_storage().nbytes()
    return {"bytes": sum(by_dtype.values()), "tensors": len(kept), "bytes_by_dtype": by_dtype,
            "saved_bytes_counted_per_save": per_save}


def optimizer_buffers(optimizer: Mapping[str, Any]) -> int:
    """Float32 state tensors per trainable parameter of a resolved ``train.optimizer`` section:
    SGD 1 with momentum (0 without), AdamW 2 (the two moments)."""
    name = optimizer.get("name")
    if name == "sgd":
        return 1 if float(optimizer.get("momentum", 0.0)) != 0.0 else 0
    if name == "adamw":
        return 2
    raise BenchmarkError(f"no memory rule for optimizer {name!r}")


def fits(total_gib: float, sizes: Sequence[int] = tuple(GPU_SIZES)) -> dict[str, bool]:
    """``{"<size>GiB": fits}``: whether ``total_gib`` with the margin fits each GPU size."""
    need = total_gib * (1.0 + MARGIN) + RESERVED_GIB
    return {f"{size}GiB": need <= size for size in sizes}


def estimate_training_memory(cfg: Mapping[str, Any], *, batch: int | None = None, precision: str | None = None,
                             num_classes: int = 3, device_type: str = "cuda") -> dict:
    """Per-device memory of training the stream recipe ``cfg`` (a loaded ``configs/streams``
    recipe), in GiB, from fake tensors on ``device_type`` (see the module docstring).

    ``batch``: clips per device (default: the recipe's per-device batch on one device, from
    ``train.batch_size``, ``grad_accum_steps`` and ``max_device_batch``). ``precision``: ``fp32``,
    ``bf16`` or ``fp16`` autocast (default: the recipe's ``train.mixed_precision``). The network is
    built as a trained run rebuilds it (no pretrained weight files are read); the speech stream
    needs its encoder's ``config.json``. Returns a flat dict: ``params_gib``, ``grads_gib``,
    ``optimizer_gib``, ``activations_gib``, ``inputs_gib``, ``total_gib``, ``ddp_buckets_gib``,
    ``fits`` ({"16GiB": bool, ...}), ``fits_smallest_gib`` and what they were computed for."""
    from torch._subclasses.fake_tensor import FakeTensorMode

    from streams.training import build_stream_model, recipe_spec
    from training.train_config import plan_batches, resolve_train_config

    spec = recipe_spec(dict(cfg))
    tc = resolve_train_config(cfg.get("train"))
    if batch is None:
        batch = plan_batches(tc["batch_size"], 1, tc["grad_accum_steps"], tc["max_device_batch"])[1]
    precision = precision or RECIPE_PRECISION[tc["mixed_precision"]]
    if precision not in PRECISIONS:
        raise BenchmarkError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    shape = spec.input_shape(spec.data_settings(cfg.get("data")))
    recipe = {"stream": spec.name, "model": spec.trained_model_config(dict(cfg.get("model") or {}))}
    with FakeTensorMode(), torch.device(device_type):
        model = build_stream_model(recipe, num_classes).train()
        x = torch.zeros(batch, *shape, dtype=spec.input_dtype())
        y = torch.zeros(batch, dtype=torch.long)
        saved = saved_activation_bytes(model, x, y, autocast_dtype=PRECISIONS[precision])
        params = [p for p in model.parameters()]
        param_bytes = sum(p.numel() * p.element_size() for p in params)
        buffer_bytes = sum(b.numel() * b.element_size() for b in model.buffers())
        trainable = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
        input_bytes = x.numel() * x.element_size() + y.numel() * y.element_size()
    parts = {"params_gib": (param_bytes + buffer_bytes) / GIB, "grads_gib": trainable / GIB,
             "optimizer_gib": optimizer_buffers(tc["optimizer"]) * trainable / GIB,
             "activations_gib": saved["bytes"] / GIB, "inputs_gib": input_bytes / GIB}
    total = sum(parts.values())
    smallest = next((size for size in GPU_SIZES if fits(total, (size,))[f"{size}GiB"]), None)
    return {"stream": spec.name, "batch": batch, "precision": precision, "input_shape": [batch, *shape],
            "optimizer": tc["optimizer"]["name"], "parameters": sum(p.numel() for p in params),
            "trainable_parameters": sum(p.numel() for p in params if p.requires_grad),
            **parts, "total_gib": total, "ddp_buckets_gib": trainable / GIB,
            "activations_by_dtype_gib": {k: v / GIB for k, v in saved["bytes_by_dtype"].items()},
            "saved_tensors": saved["tensors"],
            "activations_counted_per_save_gib": saved["saved_bytes_counted_per_save"] / GIB,
            "fits": fits(total), "fits_smallest_gib": smallest,
            "margin": f"fits a GPU when total x {1 + MARGIN:g} + {RESERVED_GIB:g} GiB <= its memory",
            "device": f"fake {device_type} tensors (nothing allocated)"}


def memory_markdown(result: Mapping[str, Any]) -> str:
    """The results page body of :func:`estimate_training_memory` results: ``result`` is one
    estimate or ``{"estimates": [...], "skipped": [{"recipe", "reason"}]}``; one table row per
    estimate, the GPU sizes it fits, then what was skipped and how the numbers are made."""
    estimates = result.get("estimates", [result])
    sizes = list(GPU_SIZES)
    head = ["recipe", "batch", "precision", "params", "grads", "optimizer", "activations", "inputs", "total",
            *[f"{s} GiB" for s in sizes]]
    lines = ["Per-device memory of training each recipe, in GiB, estimated on fake CUDA tensors "
             "(`benchmarks/memory.py`: nothing is allocated, no GPU is needed). "
             f"A recipe fits a GPU when total x {1 + MARGIN:g} + {RESERVED_GIB:g} GiB is at most its memory "
             "(the margin covers the backward pass's transient tensors, cuDNN workspaces, the CUDA context "
             "and fragmentation); under multi-GPU DDP each device also holds gradient buckets of about "
             "the size of the gradients.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for e in estimates:
        cells = [f"`{e.get('recipe', e['stream'])}`", str(e["batch"]), e["precision"],
                 *[f"{e[k]:.2f}" for k in ("params_gib", "grads_gib", "optimizer_gib", "activations_gib",
                                           "inputs_gib", "total_gib")],
                 *["yes" if e["fits"][f"{s}GiB"] else "no" for s in sizes]]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "GPU sizes: " + "; ".join(f"{s} GiB: {cards}" for s, cards in GPU_SIZES.items()) + "."]
    for skip in result.get("skipped", []):
        lines += ["", f"Not estimated: `{skip['recipe']}`: {skip['reason']}"]
    return "\n".join(lines)
