"""Grad-CAM (Selvaraju et al. 2017) of a 3D stream's last block, and the visual stream's own
spatial attention beside it.

The last block's map ``A`` (1, D, T', H', W') (the backbone's output, before the attention neck)
is weighted per channel by the mean gradient of the class logit, summed over channels and passed
through a ReLU: ``cam = relu(sum_d mean(dy_c / dA_d) * A_d)`` (T', H', W'), scaled to a maximum of
1 per clip. It covers the centre crop the eval view takes of each stored frame
(:func:`streams.views.centre_view_box`).
"""
from __future__ import annotations

import numpy as np
import torch

from training import devices


def grad_cam(model, x: torch.Tensor, class_index: int) -> tuple[np.ndarray, np.ndarray | None]:
    """``(cam (T', H', W') float32 in [0, 1], attention (T', H', W') or None)`` of stream ``model``
    (a :class:`streams.models.recognizer.StreamRecognizer`) on ONE input ``x`` (1, C, T, H, W) for
    class ``class_index``. ``attention``: the spatial attention weights of the model's neck
    (normalised per frame, shown scaled to a maximum of 1), None when the neck has none."""
    model.eval()
    with torch.enable_grad():
        a = model.backbone(model.input_adapter(x.to(devices.module_device(model))))
        a = a.detach().requires_grad_(True)
        y = model.head(model.pool(model.neck(a))).float()[0, class_index]
        (grad,) = torch.autograd.grad(y, a)
    weights = grad.mean(dim=tuple(range(2, grad.dim())), keepdim=True)                  # (1, D, 1, 1, 1)
    cam = torch.relu((weights * a.detach()).sum(1))[0]                                   # (T', H', W')
    cam = cam / cam.max().clamp_min(1e-12)
    spatial = getattr(model.neck, "spatial", model.neck)
    attention = getattr(spatial, "last_weights", None)
    att = None
    if attention is not None:
        att = attention[0, 0].float()
        att = att / att.amax(dim=tuple(range(1, att.dim())), keepdim=True).clamp_min(1e-12)
        att = devices.to_host(att).astype(np.float32)
    return devices.to_host(cam.float()).astype(np.float32), att


def region_mass(cam: np.ndarray, region: np.ndarray) -> float:
    """The share of a heat map's mass ``cam`` (H, W) >= 0 that lies in ``region`` (H, W): a bool
    mask, or per cell the fraction of it inside the region (in [0, 1]); the region's mean share
    when the map is empty (a flat map's share)."""
    cam = np.asarray(cam, dtype=np.float64)
    region = np.asarray(region, dtype=np.float64)
    total = cam.sum()
    if total <= 0:
        return float(region.mean())
    return float((cam * region).sum() / total)
