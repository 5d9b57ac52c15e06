"""Occlusion: how much one part of a stream's input (a keyframe, a person's face crops, a second
of the spectrogram) carries the stream's output for one class.

An occluded part is *replaced by its neighbour* (the nearest part that is not occluded), not
blacked out: the stream then sees an input like the ones it was trained on, only without that
part. The contribution is ``logit_c(input) - logit_c(occluded input)`` of the stream's own
classifier, in logits: positive where the part supports class ``c``, zero for a part the stream
ignores. The variants of a clip run as batches of the stream's eval view.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch

from training import devices


def replace_by_neighbours(array: np.ndarray, occluded: Sequence[int] | set[int], *, fill: float | None = None
                          ) -> np.ndarray:
    """A copy of ``array`` (N, ...) in which each item of ``occluded`` (indices along axis 0) is
    the nearest item not occluded (the later one on a tie). When every item is occluded they take
    ``fill`` (default: the array's mean)."""
    out = np.array(array, copy=True)
    occluded = set(int(i) for i in occluded)
    kept = [i for i in range(len(array)) if i not in occluded]
    for i in occluded:
        if not kept:
            out[i] = np.asarray(array).mean() if fill is None else fill
        else:
            out[i] = array[min(kept, key=lambda j: (abs(j - i), -j))]
    return out


def occlude_seconds(mel: np.ndarray, frames_per_second: float) -> list[tuple[float, float, np.ndarray]]:
    """Per second ``k`` of the spectrogram ``mel`` (F, T) (``frames_per_second`` columns each):
    ``(start_s, end_s, copy of mel with that second's columns replaced by the neighbouring
    second's)`` (the previous second's, the next one's for the first; the mean for a clip of one
    second)."""
    t = mel.shape[1]
    n = max(1, int(round(t / frames_per_second)))  # a tail shorter than half a second joins the last second
    starts = [int(round(k * frames_per_second)) for k in range(n)]
    out = []
    for k, a in enumerate(starts):
        b = starts[k + 1] if k + 1 < n else t
        occluded = np.array(mel, copy=True)
        if len(starts) == 1:
            occluded[:, a:b] = mel.mean()
        else:
            src_a, src_b = (starts[k - 1], a) if k > 0 else (starts[1], starts[2] if n > 2 else t)
            cols = src_a + np.arange(b - a) % (src_b - src_a)  # the neighbour's columns, repeated to fit
            occluded[:, a:b] = mel[:, cols]
        out.append((a / frames_per_second, b / frames_per_second, occluded))
    return out


@torch.inference_mode()
def class_logits(model, view, arrays: Sequence[np.ndarray], meta: Mapping[str, Any], class_index: int, *,
                 batch_size: int = 8) -> np.ndarray:
    """(K,) the logit of ``class_index`` of stream ``model`` on each of ``arrays`` (the stream's
    stored array and variants of it), through ``view``'s eval input (a
    :class:`streams.data.StreamDataset`'s ``spec.load_input`` with its settings, no augmentation)."""
    device = devices.module_device(model)
    out = []
    for start in range(0, len(arrays), batch_size):
        x = torch.stack([view.spec.load_input(a, meta, view.settings, None) for a in arrays[start:start + batch_size]])
        out.append(model(x.to(device)).float()[:, class_index])
    return devices.to_host(torch.cat(out)).astype(np.float64)


def contributions(model, view, array: np.ndarray, variants: Sequence[np.ndarray], meta: Mapping[str, Any],
                  class_index: int) -> list[float]:
    """``logit_c(array) - logit_c(variant)`` for each of ``variants`` (one batch with the original)."""
    if not variants:
        return []
    logits = class_logits(model, view, [array, *variants], meta, class_index)
    return [float(logits[0] - v) for v in logits[1:]]
