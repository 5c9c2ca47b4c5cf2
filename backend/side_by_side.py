"""Side-by-side previews: source | its stick figure | the normalized stick figure on the target.

Used by ``python -m backend preview`` (and by the transfer's optional side-by-side video).
Every panel is scaled to one height and the panels are laid out left to right.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import cv2
import numpy as np

from .labels import LabelStyle, render_label
from .pose.track import PoseTrack


def panel_width(size: tuple[int, int], height: int) -> int:
    """Width of a panel of ``height`` showing a frame of ``size`` (w, h); even, for H.264."""
    return max(2, int(round(size[0] * height / size[1] / 2)) * 2)


def fit_height(image: np.ndarray, height: int) -> np.ndarray:
    width = panel_width((image.shape[1], image.shape[0]), height)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def overlay(label: np.ndarray, backdrop: np.ndarray, background: tuple[int, int, int]) -> np.ndarray:
    """The label's drawn pixels over ``backdrop`` (same size); label background is see-through."""
    see_through = cv2.inRange(label, tuple(background), tuple(background))  # OpenCV: ~15x numpy
    out = np.ascontiguousarray(label).copy()
    cv2.copyTo(np.ascontiguousarray(backdrop), see_through, out)
    return out


def dimmed(backdrop: np.ndarray) -> np.ndarray:
    """``backdrop`` paler (60 % of it over light grey): a stick figure over it stands out."""
    return (backdrop.astype(np.float32) * 0.6 + 102).astype(np.uint8)


def side_by_side_size(source_size: tuple[int, int], target_size: tuple[int, int], height: int) -> tuple[int, int]:
    return (2 * panel_width(source_size, height) + panel_width(target_size, height), height)


def side_by_side_frames(
    frames: Iterable[np.ndarray],
    source: PoseTrack,
    normalized: PoseTrack,
    backdrop: np.ndarray,
    height: int,
    style: LabelStyle = LabelStyle(),
) -> Iterator[np.ndarray]:
    """One preview frame per source frame: source | source skeleton | normalized over backdrop."""
    src_size = (panel_width(source.size, height), height)
    dst_size = (panel_width(normalized.size, height), height)
    pale = dimmed(fit_height(backdrop, height))
    for i, frame in enumerate(frames):
        skeleton = render_label(source.frame(i), source.size, src_size, style)
        moved = render_label(normalized.frame(i), normalized.size, dst_size, style)
        yield np.hstack([fit_height(frame, height), skeleton, overlay(moved, pale, style.background)])
