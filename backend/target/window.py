"""The person window: the part of the canvas where G paints, a fixed-size box that follows
the person.

With a matte and a plate (a static camera), everything but the person is already known, so
G need not paint the whole canvas: it paints colour and alpha inside a window around the
person, and the rest of the frame is the plate (`backend.models.step`). Its cost then follows
the person, not the frame: at 512x256 a standing person's window was 40-50% of the canvas on
the clips of shared/data.

Where the window is, frame by frame, comes from the label's keypoints alone (body, face and
hands, drawn where their confidence is above 0), so training (the target's own poses) and
transfer (the normalized source poses) place it the same way:

* the *needed box* of a frame is the box of its keypoints in canvas pixels, grown on every
  side by ``margin`` pixels (hair above the brows, shoes below the ankles, loose clothes);
* the window's centre follows the needed box's centre with an exponential moving average
  (``follow`` of the way each frame), then moves just enough to hold the needed box: causal,
  so a frame's window depends only on the poses up to it (a revised job keeps its earlier
  frames; see `backend.transfer.job`), and steady, so G does not see the room jitter;
* the window's corner is rounded to G's grid (``step``, its size multiple: only under such
  shifts do its strided convolutions repeat themselves exactly, so the person does not
  shimmer as the window moves);
* the window is shifted to lie inside the canvas (at the frame's edge the person is off the
  window's centre, never cut by the shift).

The window's size is fixed per model (``WindowSpec.for_target``): the needed boxes of the
target's training poses at the output scale, their 99th percentile, rounded up to G's size
multiple. **A pose that does not fit** (an arm stretched wider than the target ever did)
is *scaled*: the frame's region grows, keeping the window's aspect, until it holds the
needed box; G sees that region resized to the window's size (area-averaged) and its output
is resized back (bilinear) before it is pasted. Nothing of the person is cut (unlike a
clamp), and the region stays sharp where it fits (unlike scaling every frame); the price is a
softer person in those frames, and a person drawn a little smaller than G learnt it. Training
does the same with the few target frames above the percentile, and both log how many frames
were scaled. A needed box larger than the whole canvas is clipped to it, as a full-frame
model's would be.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..pose.track import PoseTrack
from .letterbox import Letterbox

Region = tuple[int, int, int, int]  # (x0, y0, x1, y1) in canvas pixels, x1/y1 exclusive

# Around the keypoints, a fraction of the target's typical (median) body height, for what the
# keypoints do not reach (the top of the head, the shoes, loose clothes). On target_taiji and
# target_dumbbell no pixel of the person's mask fell outside the windows at 0.1 (0.02% on
# dumbbell at 0.05); the rest is headroom for poses the target never made.
MARGIN = 0.1
FOLLOW = 0.5  # of the way to the person's centre each frame: half-way, a one-frame half-life
QUANTILE = 0.99  # of the training frames' needed boxes, for the window's size


@dataclass(frozen=True)
class WindowSpec:
    """A model's window: its ``size`` (width, height) in canvas pixels, what G works at;
    ``margin`` in canvas pixels around the keypoints; how fast it ``follow``s the person."""

    size: tuple[int, int]
    margin: float
    follow: float = FOLLOW
    # The region's corner lies on this grid of canvas pixels: G's size multiple. Its convolutions
    # repeat themselves exactly only under shifts of that size; a window that moved by single
    # pixels made G repaint the person a little differently each frame (on target_taiji the
    # same model flickered 3.78 against 3.30 on the grid; every other figure equal).
    step: int = 1

    def __post_init__(self) -> None:
        w, h = self.size
        if w < 1 or h < 1 or not math.isfinite(self.margin) or self.margin < 0 \
                or not 0 < self.follow <= 1 or self.step < 1:
            raise ValueError(f"unusable person window: size {w}x{h}, margin {self.margin}, "
                             f"follow {self.follow}, step {self.step}")

    def to_dict(self) -> dict:
        return {"size": list(self.size), "margin": self.margin, "follow": self.follow,
                "step": self.step}

    @staticmethod
    def from_dict(data: dict) -> "WindowSpec":
        return WindowSpec((int(data["size"][0]), int(data["size"][1])), float(data["margin"]),
                          float(data.get("follow", FOLLOW)), int(data.get("step", 1)))

    @staticmethod
    def for_target(track: PoseTrack, layout: Letterbox, multiple: int,
                   margin: float = MARGIN) -> "WindowSpec":
        """The window for a target whose training poses are ``track`` (its video's pixels),
        drawn into ``layout.canvas``: see the module docstring. ``multiple``: G's."""
        points = layout.apply_points(_label_points(track))
        boxes = keypoint_boxes(points)
        seen = ~np.isnan(boxes[:, 0])
        canvas_w, canvas_h = layout.canvas
        if not seen.any():
            return WindowSpec((canvas_w, canvas_h), 0.0)
        heights = boxes[seen, 3] - boxes[seen, 1]
        pad = float(margin * np.median(heights))
        widths = boxes[seen, 2] - boxes[seen, 0] + 2 * pad
        tall = heights + 2 * pad
        w = _round_up(float(np.quantile(widths, QUANTILE)), multiple, canvas_w)
        h = _round_up(float(np.quantile(tall, QUANTILE)), multiple, canvas_h)
        return WindowSpec((w, h), round(pad, 3), step=multiple)

    def regions(self, track: PoseTrack, layout: Letterbox) -> np.ndarray:
        """(T, 4) int64 regions, one per frame of ``track`` (see the module docstring)."""
        boxes = keypoint_boxes(layout.apply_points(_label_points(track)))
        return self.place(boxes, layout.canvas)

    def place(self, boxes: np.ndarray, canvas: tuple[int, int]) -> np.ndarray:
        """Regions for (T, 4) keypoint boxes in canvas pixels (NaN rows: no keypoint, the
        window stays where it was; the canvas' centre before any)."""
        out = np.zeros((len(boxes), 4), np.int64)
        centre: np.ndarray | None = None
        last = np.array([canvas[0], canvas[1], canvas[0], canvas[1]]) / 2  # nobody yet
        for t, box in enumerate(boxes):
            if not np.isnan(box[0]):
                last = box + (-self.margin, -self.margin, self.margin, self.margin)
            need = last
            size = self.region_size(need[2] - need[0], need[3] - need[1], canvas)
            aim = (need[:2] + need[2:]) / 2
            centre = aim if centre is None else centre + self.follow * (aim - centre)
            half = np.array(size, np.float64) / 2
            # hold the needed box wherever the region can (it can where it is big enough)
            centre = np.clip(centre, np.minimum(need[2:] - half, need[:2] + half),
                             np.maximum(need[2:] - half, need[:2] + half))
            x0 = min(max(self._snap(centre[0] - half[0]), 0), canvas[0] - size[0])
            y0 = min(max(self._snap(centre[1] - half[1]), 0), canvas[1] - size[1])
            out[t] = (x0, y0, x0 + size[0], y0 + size[1])
        return out

    def _snap(self, corner: float) -> int:
        return round(corner / self.step) * self.step

    def region_size(self, need_w: float, need_h: float,
                    canvas: tuple[int, int]) -> tuple[int, int]:
        """The window's size, or for a needed box that does not fit it, the window scaled
        up (same aspect) until it does; never larger than the canvas (what the canvas cuts
        is not asked for: a window as tall as the canvas is not widened for a taller box)."""
        w, h = self.size
        scale = max(1.0, min(need_w, canvas[0]) / w, min(need_h, canvas[1]) / h)
        if scale == 1.0:
            return (min(w, canvas[0]), min(h, canvas[1]))
        return (min(canvas[0], math.ceil(w * scale)), min(canvas[1], math.ceil(h * scale)))

    def scaled_frames(self, regions: np.ndarray) -> int:
        """How many of ``regions`` are larger than the window (drawn scaled)."""
        sizes = regions[:, 2:] - regions[:, :2]
        return int(((sizes[:, 0] != self.size[0]) | (sizes[:, 1] != self.size[1])).sum())

    def describe(self, regions: np.ndarray) -> str:
        """A line for the log: the window and how many frames did not fit it."""
        scaled = self.scaled_frames(regions)
        text = (f"person window {self.size[0]}x{self.size[1]} (margin {self.margin:g} px): "
                f"{scaled} of {len(regions)} frames did not fit and were drawn scaled")
        if scaled:
            sizes = regions[:, 2:] - regions[:, :2]
            largest = float(np.max(sizes / np.array(self.size), axis=1).max())
            text += f" (at most {largest:.2f}x)"
        return text


def _label_points(track: PoseTrack) -> np.ndarray:
    """(T, K, 3) every keypoint the label draws: body, face and both hands."""
    return np.concatenate([track.body, track.face, track.hands.reshape(len(track), -1, 3)], 1)


def keypoint_boxes(points: np.ndarray) -> np.ndarray:
    """(T, 4) float boxes of the points with confidence above 0 (NaN where there is none)."""
    found = points[..., 2] > 0
    xs = np.where(found, points[..., 0], np.nan)
    ys = np.where(found, points[..., 1], np.nan)
    boxes = np.full((len(points), 4), np.nan)
    any_found = found.any(axis=1)
    if any_found.any():
        boxes[any_found] = np.stack([np.nanmin(xs[any_found], 1), np.nanmin(ys[any_found], 1),
                                     np.nanmax(xs[any_found], 1), np.nanmax(ys[any_found], 1)], 1)
    return boxes


def _round_up(value: float, multiple: int, limit: int) -> int:
    """``value`` rounded up to a multiple of ``multiple``, at most ``limit`` (rounded down)."""
    return max(multiple, min(math.ceil(value / multiple) * multiple, limit // multiple * multiple))


# --------------------------------------------------------------------------------------------
# Tensors: cutting a batch's windows out of canvases and pasting G's output back
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Windows:
    """The window of every sample of a batch: its region in the canvas, all cut to ``size``
    (width, height), the window's size."""

    regions: tuple[Region, ...]
    size: tuple[int, int]

    @staticmethod
    def of(regions: Sequence[Sequence[int]] | np.ndarray, size: tuple[int, int]) -> "Windows":
        return Windows(tuple(tuple(int(v) for v in r) for r in regions),  # type: ignore[misc]
                       (int(size[0]), int(size[1])))

    def cut(self, images: Tensor) -> Tensor:
        """N x C x h x w: each sample's region of ``images`` (N x C x H x W), resized to the
        window's size where the region is larger (area average)."""
        w, h = self.size
        crops = []
        for image, (x0, y0, x1, y1) in zip(images, self._per_sample(images)):
            crop = image[None, :, y0:y1, x0:x1]
            if (x1 - x0, y1 - y0) != (w, h):
                crop = F.interpolate(crop.float(), size=(h, w), mode="area").to(image.dtype)
            crops.append(crop)
        return torch.cat(crops)

    def paste(self, windows: Tensor, canvas: tuple[int, int], fill: float = -1.0) -> Tensor:
        """N x C x H x W canvases (``canvas`` is width, height) holding each window at its
        region (resized back where it was scaled: bilinear) and ``fill`` elsewhere."""
        width, height = canvas
        out = []
        for window, (x0, y0, x1, y1) in zip(windows, self._per_sample(windows)):
            window = window[None]
            if (x1 - x0, y1 - y0) != tuple(window.shape[-1:-3:-1]):
                window = F.interpolate(window.float(), size=(y1 - y0, x1 - x0), mode="bilinear",
                                       align_corners=False).to(windows.dtype)
            out.append(F.pad(window, (x0, width - x1, y0, height - y1), value=fill))
        return torch.cat(out)

    def inside(self, like: Tensor) -> Tensor:
        """N x 1 x H x W: 1 inside each sample's region, 0 elsewhere (``like``'s size)."""
        mask = torch.zeros(like.shape[0], 1, *like.shape[2:], dtype=like.dtype,
                           device=like.device)
        for m, (x0, y0, x1, y1) in zip(mask, self._per_sample(like)):
            m[:, y0:y1, x0:x1] = 1
        return mask

    def _per_sample(self, batch: Tensor) -> tuple[Region, ...]:
        if len(self.regions) == batch.shape[0]:
            return self.regions
        if len(self.regions) == 1:
            return self.regions * batch.shape[0]
        raise ValueError(f"{len(self.regions)} window regions for a batch of {batch.shape[0]}")
