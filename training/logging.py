"""What a run tells the outside world: status.json, TensorBoard, image grids, a progress bar.

``status.json`` in the run folder is what the Blender add-on polls. It is replaced
atomically (never half written) and holds::

    {"state": "running" | "done" | "failed" | "cancelled", "stage": "local",
     "stages": ["global", "local", "face"], "step": 1200, "total_steps": 90000,
     "epoch": 0.4, "losses": {"G_GAN": 0.41, ...}, "seconds_per_step": 0.31,
     "eta_s": 27528.0, "last_checkpoint": "checkpoints/local/step_00001000",
     "message": "", "updated": "2025-01-01T12:00:00+00:00", "pid": 1234}

Only rank 0 of a distributed run writes any of these.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from backend.paths import atomic_write_bytes, atomic_write_json

STATES = ("running", "done", "failed", "cancelled")


class StatusFile:
    """``status.json`` of a run, updated field by field."""

    def __init__(self, path: Path, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self.data: dict[str, Any] = {"state": "running", "stage": None, "stages": [], "step": 0,
                                     "total_steps": 0, "epoch": 0.0, "losses": {},
                                     "seconds_per_step": None, "eta_s": None,
                                     "last_checkpoint": None, "message": ""}

    def update(self, **fields: Any) -> None:
        if "state" in fields and fields["state"] not in STATES:
            raise ValueError(f"unknown state {fields['state']!r}")
        self.data.update(fields)
        if self.enabled:
            self.data["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            self.data["pid"] = os.getpid()
            atomic_write_json(self.path, self.data)


class Board:
    """TensorBoard scalars and images (a no-op when disabled or unavailable)."""

    def __init__(self, folder: Path, enabled: bool = True) -> None:
        self.writer = None
        if enabled:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional for training to work
                print("tensorboard is not installed: no TensorBoard logs", file=sys.stderr)
            else:
                self.writer = SummaryWriter(str(folder))

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(f"{prefix}/{key}", value, step)

    def image(self, tag: str, rgb: np.ndarray, step: int) -> None:
        if self.writer is not None:
            self.writer.add_image(tag, rgb, step, dataformats="HWC")

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def image_grid(rows: list[list[np.ndarray]], gap: int = 2) -> np.ndarray:
    """RGB images arranged in rows (every image the same size), white gaps between them."""
    h, w = rows[0][0].shape[:2]
    n_cols = max(len(r) for r in rows)
    grid = np.full((len(rows) * (h + gap) - gap, n_cols * (w + gap) - gap, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            grid[i * (h + gap):i * (h + gap) + h, j * (w + gap):j * (w + gap) + w] = img
    return grid


def save_png(path: Path, rgb: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"could not encode {path}")
    atomic_write_bytes(path, data.tobytes())


class ProgressBar:
    """Steps of a stage on stderr with ETA and the latest losses."""

    def __init__(self, stage: str, start: int, total: int, enabled: bool) -> None:
        self.bar = tqdm(total=total, initial=start, desc=f"train {stage}", unit="step",
                        file=sys.stderr, disable=not enabled, dynamic_ncols=True,
                        smoothing=0.05)

    def advance(self, losses: dict[str, float] | None = None) -> None:
        self.bar.update(1)
        if losses:
            keys = ("G_GAN", "G_VGG", "D_real", "D_fake", "L1")
            self.bar.set_postfix({k: f"{losses[k]:.3f}" for k in keys if k in losses},
                                 refresh=False)

    def close(self) -> None:
        self.bar.close()
