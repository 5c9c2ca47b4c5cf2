"""The target's background plate, and whether the camera stood still.

Most target videos are shot from a tripod: everything but the person is the same in every
frame. The plate is that background, clean: per pixel, the median over the frames where the
person does not cover it (their mask, widened by a margin for soft edges, hair and motion
blur). Pixels the person never uncovers are filled from around them (``cv2.inpaint``). The
median is taken over at most ``SAMPLES`` frames spread over the video, so memory does not
grow with its length.

A plate only helps when the camera is static. Measured on the pixels the person does not
cover, frame by frame against the plate: how well the background matches it (the peak of
their phase correlation: the frames of a handheld or panning camera match their blurred
median poorly, 0.23 and 0.34 on source_handheld.mp4 and hard_multi_person.avi, where a
tripod's reach 0.93 to 1.0 on target_taiji, target_dumbbell, source_juggle and
source_turning_1), and how much it differs (median absolute difference in 8-bit levels;
exposure flicker and noise stay within a few). The shift the correlation finds is reported
too (target_taiji's room drifts by 2% of the frame height over 17 s), but it does not
decide: on a plain white wall it is noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np

SAMPLES = 64  # frames the median is taken over
COVERED = 0.1  # mask value from which a pixel counts as the person's
MARGIN = 1 / 40  # the person's mask is widened by this fraction of the frame height
MIN_MATCH = 0.5  # the median frame's phase-correlation peak
MAX_RESIDUAL = 10.0  # 8-bit levels, the median frame's median |frame - plate|


@dataclass
class Background:
    """The plate and what was measured on it."""

    plate: np.ndarray  # H x W x 3 uint8, the canvas
    holes: float  # fraction of the content never uncovered (filled by inpainting)
    drift: float  # the largest background shift from the plate, in frame heights
    match: float  # the median phase-correlation peak (1: identical backgrounds)
    residual: float  # 8-bit levels
    frames: int  # frames the plate was made from

    @property
    def static(self) -> bool:
        return self.match >= MIN_MATCH and self.residual <= MAX_RESIDUAL

    def verdict(self) -> str:
        """Why the camera counts as static or not, in words."""
        figures = (f"the background matches the plate at {self.match:.2f} (static: at least "
                   f"{MIN_MATCH}) and differs from it by {self.residual:.1f} levels (at most "
                   f"{MAX_RESIDUAL:g}); it drifts by up to {self.drift:.1%} of the frame height")
        return ("static camera: " if self.static else "moving camera: ") + figures

    def record(self) -> dict:
        """The measurements as plain JSON values (without the image)."""
        fields = asdict(self)
        del fields["plate"]
        return {**{k: round(v, 4) if isinstance(v, float) else v for k, v in fields.items()},
                "static": self.static, "verdict": self.verdict()}


def sample_indices(n_frames: int, samples: int = SAMPLES) -> list[int]:
    """At most ``samples`` frame indices spread evenly over ``n_frames``."""
    if n_frames <= samples:
        return list(range(n_frames))
    return sorted({round(i * (n_frames - 1) / (samples - 1)) for i in range(samples)})


def covered(mask: np.ndarray) -> np.ndarray:
    """Where the person (widened by ``MARGIN``) covers the frame: a bool H x W array."""
    radius = max(1, round(mask.shape[0] * MARGIN))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate((mask >= COVERED).astype(np.uint8), kernel) > 0


def estimate_background(frames: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                        content: np.ndarray | None = None) -> Background:
    """The plate of ``frames`` (H x W x 3 uint8) given the person's ``masks`` (H x W in
    [0, 1]); ``content`` (bool H x W) is where the video is (not the letterbox bars)."""
    stack = np.stack(frames)  # S x H x W x 3 uint8: SAMPLES canvases at most
    hidden = np.stack([covered(m) for m in masks])  # S x H x W
    if content is None:
        content = np.ones(stack.shape[1:3], bool)
    plate, seen = _masked_median(stack, hidden)
    holes = ~seen & content
    if holes.any():
        plate = cv2.inpaint(plate, holes.astype(np.uint8), 5, cv2.INPAINT_TELEA)
    drift, match, residual = _stillness(stack, hidden, plate, content)
    return Background(plate, float(holes.sum() / max(1, content.sum())), drift, match,
                      residual, len(frames))


def _masked_median(stack: np.ndarray, hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the median over the frames where it is not hidden; and where it ever was
    seen. Row by row, so the float copy stays small."""
    s, h, w, _ = stack.shape
    plate = np.zeros((h, w, 3), np.uint8)
    seen = (~hidden).any(axis=0)
    for y in range(h):
        rows = stack[:, y].astype(np.float32)  # S x W x 3
        rows[hidden[:, y]] = np.nan
        with np.errstate(all="ignore"), _quiet_nan_warnings():
            median = np.nanmedian(rows, axis=0)
        plate[y] = np.nan_to_num(np.round(median), nan=0.0).astype(np.uint8)
    return plate, seen


def _stillness(stack: np.ndarray, hidden: np.ndarray, plate: np.ndarray,
               content: np.ndarray) -> tuple[float, float, float]:
    """Over the frames: (the largest shift of the background from the plate in frame
    heights, the median correlation peak, the median of the median |frame - plate| on
    visible background pixels), measured inside the content (not the letterbox bars)."""
    ys, xs = np.nonzero(content)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    reference = cv2.cvtColor(plate[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY).astype(np.float32)
    window = cv2.createHanningWindow(reference.shape[::-1], cv2.CV_32F)
    shifts, peaks, residuals = [], [], []
    for frame, hide in zip(stack, hidden):
        visible = ~hide & content
        if visible.sum() < 0.05 * content.sum():
            continue  # the person fills the frame: nothing to measure
        background = np.where(hide[..., None], plate, frame)[y0:y1, x0:x1]
        gray = cv2.cvtColor(background, cv2.COLOR_RGB2GRAY).astype(np.float32)
        (dx, dy), peak = cv2.phaseCorrelate(reference, gray, window)
        shifts.append(float(np.hypot(dx, dy)) / (y1 - y0))
        peaks.append(float(peak))
        diff = np.abs(frame.astype(np.int16) - plate.astype(np.int16)).mean(axis=-1)
        residuals.append(float(np.median(diff[visible])))
    if not shifts:
        return 0.0, 1.0, 0.0
    return max(shifts), float(np.median(peaks)), float(np.median(residuals))


class _quiet_nan_warnings:
    """np.nanmedian warns about all-NaN slices (pixels never seen): expected, filled later."""

    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._catch.__exit__(*exc)
