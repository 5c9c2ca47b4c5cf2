"""Quick measurements of a generator on held-out frames, and the preview grids.

``heldout_report`` runs G as inference does (each frame conditioned on the previous output,
the first on zeros) over the first frames of a split and returns the mean absolute error to
the real frames (on the [-1, 1] scale) and preview rows (label | real | generated).
Training logs both at every checkpoint: a cheap progress signal, not the paper's SSIM /
LPIPS evaluation.
"""

from __future__ import annotations

import numpy as np
import torch

from backend.models.images import to_image
from backend.runtime import Runtime
from backend.target.window import Windows

from .data.dataset import FrameSequenceDataset
from .step import Generation, generate_video


def _frames(dataset: FrameSequenceDataset, count: int, runtime: Runtime):
    """Labels, images, face boxes and windows (None without a window) of the first ``count``
    frames of the dataset's split."""
    labels, images, boxes, windows = [], [], [], []
    for t in range(dataset.first, min(dataset.stop, dataset.first + count)):
        label, image = dataset.frame(t)
        labels.append(runtime.to_device(label[None]))
        images.append(runtime.to_device(image[None]))
        boxes.append([tuple(int(v) for v in dataset.boxes[t])])
        if dataset.window is not None:
            windows.append(Windows.of([dataset.windows[t]], dataset.window.size))
    return labels, images, boxes, windows or None


@torch.no_grad()
def heldout_report(generation: Generation, dataset: FrameSequenceDataset, runtime: Runtime,
                   count: int = 8, rows: int = 3) -> tuple[float, list[list[np.ndarray]]]:
    """(mean |G - real| over the first ``count`` frames generated as a video, preview rows
    (label | real | generated) of the first ``rows`` of them)."""
    labels, images, boxes, windows = _frames(dataset, max(count, rows), runtime)
    if not labels:
        return float("nan"), []
    plate = None if dataset.plate is None else runtime.to_device(dataset.plate[None])
    was_training = generation.training
    generation.eval()
    try:
        with runtime.autocast():
            fakes = generate_video(generation, labels, boxes, plate, windows)
    finally:
        generation.train(was_training)
    error = float(torch.stack([(f.float() - y.float()).abs().mean()
                               for f, y in zip(fakes[:count], images[:count])]).mean())
    preview = [[to_image(x[0]), to_image(y[0]), to_image(f[0])]
               for x, y, f in zip(labels[:rows], images[:rows], fakes[:rows])]
    return error, preview

