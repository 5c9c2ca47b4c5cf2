"""Image metrics (the paper's Tables 1-2) and temporal flicker, on HxWx3 uint8 RGB frames.

* **SSIM**: scikit-image's ``structural_similarity`` (7x7 window, data range 255, the mean
  over the three channels); 1 is identical. Regions smaller than the window are skipped.
* **LPIPS**: see `lpips` (0 is identical).
* **Regions**: the full frame; the body's bounding box (every keypoint the label showed,
  padded by `BODY_PAD` of its height on each side); the face box the face GAN works on.
* **Flicker**: the mean absolute difference, in 8-bit levels, between the output's change
  from one frame to the next and the real video's change, ``|(o_t - o_t-1) - (r_t - r_t-1)|``;
  0 when the output changes exactly as the real video does. A model that is right on
  average but jitters from frame to frame scores badly here and not on SSIM.
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive), pixels
SSIM_WINDOW = 7
BODY_PAD = 0.05
REGIONS = ("full", "body", "face")


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two same-sized RGB uint8 images (nan when smaller than the window)."""
    if a.shape != b.shape:
        raise ValueError(f"images differ in size: {a.shape} and {b.shape}")
    if min(a.shape[:2]) < SSIM_WINDOW:
        return float("nan")
    return float(structural_similarity(a, b, win_size=SSIM_WINDOW, channel_axis=2,
                                       data_range=255))


def crop(image: np.ndarray, box: Box | None) -> np.ndarray | None:
    """``image[box]``; None for no box or an empty one."""
    if box is None:
        return None
    x0, y0, x1, y1 = box
    region = image[y0:y1, x0:x1]
    return region if region.size else None


def clip_box(box: tuple[float, float, float, float], size: tuple[int, int]) -> Box | None:
    """A float box rounded outwards and clipped to a (w, h) frame; None when nothing is left."""
    w, h = size
    x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x1, y1 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def body_box(xy: np.ndarray, size: tuple[int, int], pad: float = BODY_PAD) -> Box | None:
    """The padded bounding box of (K, 2) keypoints (those present) in a (w, h) frame."""
    if len(xy) == 0:
        return None
    x0, y0 = xy.min(axis=0)
    x1, y1 = xy.max(axis=0)
    margin = pad * max(y1 - y0, 1.0)
    return clip_box((x0 - margin, y0 - margin, x1 + margin, y1 + margin), size)


class Flicker:
    """Accumulates the flicker of a sequence: feed (output, real) pairs in frame order."""

    def __init__(self) -> None:
        self.previous: tuple[np.ndarray, np.ndarray] | None = None
        self.total = 0.0
        self.pairs = 0

    def add(self, output: np.ndarray, real: np.ndarray) -> None:
        o, r = output.astype(np.int16), real.astype(np.int16)
        if self.previous is not None:
            po, pr = self.previous
            self.total += float(np.abs((o - po) - (r - pr)).mean())
            self.pairs += 1
        self.previous = (o, r)

    @property
    def value(self) -> float:
        return self.total / self.pairs if self.pairs else float("nan")
